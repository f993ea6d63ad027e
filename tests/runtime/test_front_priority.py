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
