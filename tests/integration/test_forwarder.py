"""The forwarder's logic against moto in-process (table, bucket) and real local HTTP endpoints:
one batch at a time, with the policy machine replaced by a recorder."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from local.endpoint_receiver import EndpointReceiver, Mode
from sensorhook.core.forwarding import (
    EndpointSecret,
    EndpointStatus,
    ForwardingEndpoint,
    ForwardingPolicy,
)
from sensorhook.dal.backlog import Backlog
from sensorhook.dal.endpoint_http import EndpointHttp
from sensorhook.dal.endpoints_store import EndpointsStore
from sensorhook.logic.forwarding import Forwarding, QueuedEvent

SECRET = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TABLE, BUCKET = "endpoints", "bucket"


class Starts:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def start(self, execution_name: str, endpoint: str, action: str = "evaluate") -> str:
        self.started.append((endpoint, action))
        return execution_name


@pytest.fixture
def receiver() -> Iterator[EndpointReceiver]:
    started = EndpointReceiver(secret=SECRET, hang_s=4.0).start()
    yield started
    started.stop()


@pytest.fixture
def forwarding(receiver: EndpointReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Forwarding]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "endpoint", "KeyType": "HASH"},
                {"AttributeName": "entry", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "endpoint", "AttributeType": "S"},
                {"AttributeName": "entry", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        s3.create_bucket(Bucket=BUCKET)
        endpoint = ForwardingEndpoint(
            name="partner",
            url=receiver.url,
            detail_types=("readings.*",),
            timeout_seconds=1.5,  # a loaded CI machine must not turn a 200 into a timeout
            rate_limit_per_second=1000,
        )
        yield Forwarding(
            endpoints={"partner": endpoint},
            policy=ForwardingPolicy(),
            store=EndpointsStore(TABLE, dynamodb),
            backlog=Backlog(BUCKET, s3),
            http=EndpointHttp(),
            secret=lambda _: EndpointSecret(secret=SECRET),
            machine=Starts(),
        )


def _events(count: int, start: int = 0) -> list[QueuedEvent]:
    return [
        QueuedEvent(
            message_id=f"m{n}",
            receipt_handle=f"r{n}",
            body=json.dumps(
                {
                    "id": f"event-{n:03d}",
                    "detail-type": "readings.received",
                    "time": "2026-11-29T20:00:00Z",
                    "source": "sensorhook",
                    "detail": {"n": n},
                }
            ),
            arrived_at_ms=1_795_000_000_000 + n,
            receive_count=1,
        )
        for n in range(start, start + count)
    ]


def test_a_healthy_batch_is_delivered_in_arrival_order_and_wakes_the_policy_once(
    forwarding: Forwarding, receiver: EndpointReceiver
):
    outcome = forwarding.forward_batch("partner", list(reversed(_events(5))))
    assert (outcome.delivered, outcome.kept, outcome.retry_after_s) == (5, 0, {})
    assert [d.delivery_id for d in receiver.deliveries] == [f"event-{n:03d}" for n in range(5)]
    assert all(d.verified for d in receiver.deliveries)
    record = forwarding.store.get("partner")
    assert (record.last_outcome, record.last_response_code) == ("ok", 200)
    assert forwarding._machine.started == [("partner", "evaluate")]  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", [Mode.ERROR, Mode.HANG, Mode.CLOSE])
def test_a_batch_stops_at_its_first_failure_and_retries_later(
    forwarding: Forwarding, receiver: EndpointReceiver, mode: Mode
):
    receiver.mode = mode
    outcome = forwarding.forward_batch("partner", _events(4))
    assert len(receiver.deliveries) == 1  # one attempt, the rest wait with it
    assert set(outcome.retry_after_s) == {"m0", "m1", "m2", "m3"}
    assert all(1 <= delay <= 5 for delay in outcome.retry_after_s.values())
    record = forwarding.store.get("partner")
    expected = "error" if mode is Mode.ERROR else "no_response"
    assert record.last_outcome == expected
    assert record.consecutive_no_responses == (0 if mode is Mode.ERROR else 1)
    assert record.failing_since is not None


def test_retry_after_sets_the_floor(forwarding: Forwarding, receiver: EndpointReceiver):
    receiver.mode, receiver.retry_after = Mode.BUSY, 120
    outcome = forwarding.forward_batch("partner", _events(1))
    assert outcome.retry_after_s["m0"] >= 120


def test_the_fifth_no_response_keeps_the_batch_in_the_backlog(
    forwarding: Forwarding, receiver: EndpointReceiver
):
    receiver.mode = Mode.CLOSE
    for attempt in range(4):
        outcome = forwarding.forward_batch("partner", _events(2))
        assert outcome.kept == 0, attempt
    outcome = forwarding.forward_batch("partner", _events(2))
    assert (outcome.kept, outcome.retry_after_s) == (2, {})
    assert forwarding.backlog.count("partner") == 2
    # later events go to the backlog without an attempt
    attempts = len(receiver.deliveries)
    assert forwarding.forward_batch("partner", _events(1, start=10)).kept == 1
    assert len(receiver.deliveries) == attempts


def test_410_keeps_everything_and_the_backlog_drains_in_order_once_enabled(
    forwarding: Forwarding, receiver: EndpointReceiver
):
    receiver.mode = Mode.GONE
    assert forwarding.forward_batch("partner", _events(3)).kept == 3
    assert forwarding.forward_batch("partner", _events(3, start=3)).kept == 3
    record = forwarding.store.get("partner")
    # the machine makes the transition; here it is made by hand, then an operator enables
    change = forwarding.store.transition(record, EndpointStatus.DISABLED, datetime.now(UTC), "410")
    assert change is not None
    record = forwarding.store.get("partner")
    forwarding.store.transition(
        record, EndpointStatus.NEW, datetime.now(UTC), "operator", enable="operator"
    )
    receiver.mode = Mode.OK
    receiver.deliveries.clear()
    assert forwarding.drain_backlog("partner", limit=4)["delivered"] == 4
    assert forwarding.drain_backlog("partner", limit=4)["delivered"] == 2
    assert forwarding.drain_backlog("partner", limit=4) == {"delivered": 0, "empty": True}
    assert [d.delivery_id for d in receiver.deliveries] == [f"event-{n:03d}" for n in range(6)]
    assert not forwarding.store.get("partner").backlog
