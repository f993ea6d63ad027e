"""The HTTP front answers first: a poller holds its next batch while the front is busy
(local/runtime/front_priority.py), with a real front and a real poller thread, stand-ins for
the function behind the front and for the poller's source."""

import http.client
import json
import threading
import time
from typing import Any

import pytest

from local.runtime import front_priority
from local.runtime.front_priority import FrontPriority
from local.runtime.http_front import HttpFront, http_apis
from local.runtime.lambda_runner import Invocation
from local.runtime.pollers import Poller
from local.runtime.schedules import Scheduler
from tests.runtime.test_runtime_parts import TEMPLATE

WINDOW_S = 0.2


class HeldFunction:
    """Answers 202 once released; `entered` is set while a request is inside."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, arn: str, event: dict[str, Any]) -> Invocation:
        self.entered.set()
        self.release.wait(10)
        return Invocation(json.dumps({"statusCode": 202, "body": "{}"}), False, "")


class CountingPoller(Poller):
    """A poller whose source always has a batch: counts the batches it starts."""

    def __init__(self, priority: FrontPriority) -> None:
        super().__init__(
            "counting-poller",
            lambda arn, event: Invocation("null", False, ""),
            0.01,
            source_arn="arn:aws:sqs:us-east-1:123456789012:q",
            wakeups=None,
            idle_interval=0.01,
            priority=priority,
        )
        self.batches: list[float] = []

    def poll_once(self) -> bool:
        self.batches.append(time.monotonic())
        self._stopping.wait(0.005)
        return True


def _post(url: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", "/hooks/exact", body=b"{}")
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.fixture
def priority() -> FrontPriority:
    return FrontPriority(busy_share=0.5, window_s=WINDOW_S, longest_hold_s=30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_poller_starts_no_batch_while_the_front_answers_and_resumes_once_it_is_less_busy(
    priority: FrontPriority,
) -> None:
    [spec] = http_apis(TEMPLATE)
    function = HeldFunction()
    front = HttpFront(spec, function, {"Fn": "arn:fn"}, "123456789012", priority=priority)
    front.start()
    poller = CountingPoller(priority)
    poller.start()
    answered: list[int] = []
    client = threading.Thread(target=lambda: answered.append(_post(front.url)))
    try:
        # Given a poller working through its source
        time.sleep(0.1)
        assert poller.batches, "the poller runs while the front is idle"
        # When a request is being answered
        client.start()
        assert function.entered.wait(10)
        time.sleep(WINDOW_S * 0.6)  # busy over half the window; a batch begun before ends
        started_while_answering = len(poller.batches)
        time.sleep(0.3)
        # Then the poller starts no batch until the answer is out
        assert len(poller.batches) == started_while_answering
        function.release.set()
        client.join(10)
        answered_at = time.monotonic()
        time.sleep(0.3)
        # And once the front was busy for at most half of the window, the batches go on
        assert answered == [202]
        resumed = [at for at in poller.batches if at > answered_at]
        assert resumed, "the poller resumes once the front is less busy"
        assert resumed[0] - answered_at >= WINDOW_S / 2 * 0.9
    finally:
        function.release.set()
        poller.stop()
        poller.join(5)
        front.stop()


def test_a_flushing_poller_does_not_hold(priority: FrontPriority) -> None:
    # Given a request in flight for a whole window
    with priority.answering():
        time.sleep(WINDOW_S)
        poller = CountingPoller(priority)
        # When the poller is flushing (a drain waits for its results)
        poller.flush()
        poller.start()
        try:
            time.sleep(0.1)
            # Then it works on
            assert len(poller.batches) >= 3
        finally:
            poller.stop()
            poller.join(5)


def test_a_drain_asked_for_while_a_batch_is_held_ends_the_hold(priority: FrontPriority) -> None:
    # Given a poller holding its batch for a busy front
    with priority.answering():
        time.sleep(WINDOW_S)
        poller = CountingPoller(priority)
        poller.start()
        try:
            time.sleep(0.1)
            held = len(poller.batches)
            assert held <= 1  # a batch begun before the hold at most
            # When a drain asks the poller to flush
            poller.flush()
            time.sleep(0.1)
            # Then it works on, the front still busy
            assert len(poller.batches) >= held + 3
        finally:
            poller.stop()
            poller.join(5)


def test_a_batch_is_held_at_most_longest_hold_s() -> None:
    priority = FrontPriority(window_s=WINDOW_S, longest_hold_s=0.2)
    stopping = threading.Event()
    with priority.answering():  # a front that never falls quiet
        time.sleep(WINDOW_S)
        held = priority.wait_turn(stopping)
    assert 0.2 <= held < 1.0
    assert priority.held_s == pytest.approx(held)


def test_an_idle_front_holds_nothing_and_stopping_ends_a_hold() -> None:
    priority = FrontPriority(window_s=WINDOW_S, longest_hold_s=30)
    stopping = threading.Event()
    assert priority.wait_turn(stopping) < 0.01  # never answered anything
    with priority.answering():
        time.sleep(WINDOW_S)
        threading.Timer(0.1, stopping.set).start()
        held = priority.wait_turn(stopping)
    assert 0.1 <= held < 1.0


def _answer_for(priority: FrontPriority, clock: FakeClock, seconds: float) -> None:
    with priority.answering():
        clock.now += seconds


@pytest.mark.parametrize(
    ("answer_s", "every_s", "share"),
    [
        (0.005, 0.020, 0.25),  # the emulator's default 50 requests/s, 5 ms each
        (0.005, 0.005, 1.0),  # requests back to back
        (0.005, 0.008, 0.625),
    ],
)
def test_the_busy_share_is_the_time_spent_answering_over_the_window(
    monkeypatch: pytest.MonkeyPatch, answer_s: float, every_s: float, share: float
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(front_priority, "time", clock)
    priority = FrontPriority(busy_share=0.5, window_s=1.0, longest_hold_s=5)
    # Given a front answering a request every `every_s` for two windows
    for _ in range(round(2.0 / every_s)):
        _answer_for(priority, clock, answer_s)
        clock.now += every_s - answer_s
    # Then its busy share is the answering time over the last window
    assert priority.busy() == pytest.approx(share, abs=0.01)
    # And a poller holds only when that share is over half
    held = priority.wait_turn(threading.Event()) if share <= 0.5 else None
    assert held is None or held == 0.0
    # And a request still in flight counts up to now
    with priority.answering():
        clock.now += 0.3
        assert priority.busy() == pytest.approx(0.3 + share * 0.7, abs=0.01)


class StubEvents:
    """One scheduled rule, every minute, with a Lambda target (the EventBridge API's answers)."""

    def list_event_buses(self) -> dict[str, Any]:
        return {"EventBuses": [{"Name": "default"}]}

    def list_rules(self, EventBusName: str) -> dict[str, Any]:
        return {
            "Rules": [
                {
                    "Name": "every-minute",
                    "Arn": "arn:aws:events:us-east-1:123456789012:rule/every-minute",
                    "ScheduleExpression": "rate(1 minute)",
                    "State": "ENABLED",
                }
            ]
        }

    def list_targets_by_rule(self, Rule: str, EventBusName: str) -> dict[str, Any]:
        return {"Targets": [{"Id": "t", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}]}


class RecordingInvoker:
    def __init__(self) -> None:
        self.fired: list[float] = []

    def submit(self, function_arn: str, event: dict[str, Any]) -> None:
        self.fired.append(time.monotonic())


def test_a_schedule_due_while_the_front_is_busy_fires_once_it_is_not_without_catching_up(
    priority: FrontPriority,
) -> None:
    invoker = RecordingInvoker()
    # Given a schedule firing every 0.1 s (a minute at 600 times speed)
    scheduler = Scheduler(
        StubEvents(),
        invoker,
        "123456789012",
        "us-east-1",
        600,
        priority=priority,  # type: ignore[arg-type]
    )
    scheduler.start()
    try:
        time.sleep(0.35)
        assert len(invoker.fired) >= 2, "it fires on time while the front is idle"
        # When the front answers for a while
        with priority.answering():
            time.sleep(WINDOW_S)  # busy over half the window from here on
            fired_while_busy = len(invoker.fired)
            time.sleep(0.5)
            # Then nothing more fires meanwhile (one firing due as it got busy may still go)
            assert len(invoker.fired) <= fired_while_busy + 1
            answered_at = time.monotonic()
        time.sleep(0.35)
        # And once it is less busy the schedule fires again, once, not once per period missed
        after = [at for at in invoker.fired if at > answered_at]
        assert 1 <= len(after) <= 3
        assert len([at for at in after if at < after[0] + 0.05]) == 1
    finally:
        scheduler.stop()
        scheduler.join(5)
