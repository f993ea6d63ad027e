"""The endpoint policy end to end: the synthesized state machine executing in moto (tasks in
process, waits on a compressed clock), the forwarder reading the real per-endpoint queues the
bus rules fill, and local HTTP endpoints (port 0) that answer 200 or 500 or 410 or 429, hang
past the timeout, or close the connection, verifying every delivery with `standardwebhooks`
and `httpsig`.

The six-hour hold and the retry schedule run on the machine's compressed clock; thirty hours
are judged by wall time in the functions, so the stage's policy shortens them to
`DEMO_POLICY["disable_after_seconds"]` (local/demo_forwarding.py).
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.constants import Output
from local.demo_forwarding import ENDPOINT_TIMEOUT_S, Forwarding
from local.emulator import Installation
from local.endpoint_receiver import EndpointReceiver, Mode
from local.sandbox import Sandbox, sandbox
from sensorhook.core.forwarding import EndpointStatus as S

pytestmark = pytest.mark.slow

NAME = "local-receiver"  # Standard Webhooks; steam_trap.*
OTHER = "local-everactive"  # Everactive v2020-07 signatures; steam_trap.state_changed


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    installation = Installation.create(
        seed=5, sensors=1, gateways=1, start=datetime.now(UTC) - timedelta(minutes=5)
    )
    with sandbox(installation) as started:
        started.stack.drain(timeout=60)
        yield started


@pytest.fixture(scope="module")
def status_events(box: Sandbox) -> str:
    """A queue subscribed to endpoint.status_changed, as a user's consumer would be."""
    sqs, events = box.stack.client("sqs"), box.stack.client("events")
    url = sqs.create_queue(QueueName="test-status-changes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = box.stack.outputs[Output.EVENT_BUS_NAME]
    events.put_rule(
        Name="test-status-changes",
        EventBusName=bus,
        EventPattern=json.dumps({"detail-type": ["endpoint.status_changed"]}),
    )
    events.put_targets(
        Rule="test-status-changes", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}]
    )
    return str(url)


@pytest.fixture
def forwarding(box: Sandbox, status_events: str) -> Iterator[Forwarding]:
    """Each test starts from endpoints that were never triggered and answer 200."""
    forwarding = Forwarding(box.stack)
    yield forwarding
    for name, receiver in box.endpoints.receivers.items():
        receiver.mode = Mode.OK
        running = forwarding.store.get(name).policy_execution
        if running:
            forwarding.machine.stop(running, "test over")
    box.stack.drain(timeout=60)  # every queue empty, retries included; no execution running
    dynamodb, s3 = box.stack.client("dynamodb"), box.stack.client("s3")
    table = box.stack.outputs[Output.ENDPOINTS_TABLE]
    for name, receiver in box.endpoints.receivers.items():
        for item in dynamodb.query(
            TableName=table,
            KeyConditionExpression="endpoint = :n",
            ExpressionAttributeValues={":n": {"S": name}},
        )["Items"]:
            dynamodb.delete_item(
                TableName=table, Key={"endpoint": item["endpoint"], "entry": item["entry"]}
            )
        bucket = box.stack.outputs[Output.BUCKET_NAME]
        for entry in s3.list_objects_v2(Bucket=bucket, Prefix=f"forwarding-backlog/{name}/").get(
            "Contents", []
        ):
            s3.delete_object(Bucket=bucket, Key=entry["Key"])
        receiver.deliveries.clear()
    _published(box, status_events)


def _published(box: Sandbox, queue_url: str) -> list[dict[str, Any]]:
    sqs = box.stack.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"])["detail"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _receiver(box: Sandbox, name: str = NAME) -> EndpointReceiver:
    return box.endpoints.receivers[name]


def _delivered_once_in_order(receiver: EndpointReceiver, ids: list[str]) -> tuple[bool, list[str]]:
    arrivals = [d.delivery_id for d in receiver.ok_deliveries() if d.delivery_id in set(ids)]
    return arrivals == ids, arrivals


def test_new_to_ok_is_published_stored_and_read_back(
    box: Sandbox, forwarding: Forwarding, status_events: str
):
    # Given configured endpoints that were never triggered
    assert {r["name"]: r["status"] for r in forwarding.listing()} == {NAME: "New", OTHER: "New"}
    # When events reach it and it answers 200
    ids = forwarding.publish("steam_trap.state_changed", [{"n": n} for n in range(5)])
    assert forwarding.wait_until(lambda: len(_receiver(box).ok_deliveries()) == 5, 30)
    forwarding.wait_for(NAME, S.OK, 30)
    box.stack.drain(timeout=30)
    # Then every delivery verified (standardwebhooks) and carries its event's id
    receiver = _receiver(box)
    assert sorted(d.delivery_id for d in receiver.deliveries) == sorted(ids)
    assert all(d.verified for d in receiver.deliveries)
    assert all(d.headers["x-sensorhook-stage"] == "dev" for d in receiver.deliveries)
    # and the transition is stored with its time, readable, and published
    history = forwarding.store.history(NAME)
    assert [(h.from_status, h.to_status) for h in history] == [(S.NEW, S.OK)]
    assert history[0].at <= datetime.now(UTC)
    published = [e for e in _published(box, status_events) if e["endpoint"] == NAME]
    assert [(e["from"], e["to"]) for e in published] == [("New", "OK")]
    # and status, last attempt and last response code show in one place
    row = next(r for r in forwarding.listing() if r["name"] == NAME)
    assert (row["status"], row["last_response_code"]) == ("OK", 200)
    assert row["last_attempt_at"] is not None


def test_error_is_retried_with_the_same_delivery_id_then_ok(box: Sandbox, forwarding: Forwarding):
    receiver = _receiver(box)
    receiver.mode = Mode.ERROR
    [event_id] = forwarding.publish("steam_trap.state_changed", [{"n": 1}])
    forwarding.wait_for(NAME, S.ERROR, 30)
    assert forwarding.wait_until(lambda: len(receiver.deliveries) >= 2, 30)
    receiver.mode = Mode.OK
    forwarding.wait_for(NAME, S.OK, 30)
    box.stack.drain(timeout=30)
    # every attempt carried the same delivery id; it was delivered once
    assert {d.delivery_id for d in receiver.deliveries} == {event_id}
    assert [d.answered for d in receiver.deliveries].count("200") == 1
    assert [h.to_status for h in forwarding.store.history(NAME)] == [S.ERROR, S.OK]


def test_retry_after_on_429_and_503_is_honoured(box: Sandbox, forwarding: Forwarding):
    receiver = _receiver(box)
    receiver.retry_after = 3  # the policy's own retry delay is 1 s
    for mode in (Mode.BUSY, Mode.UNAVAILABLE):
        receiver.deliveries.clear()
        receiver.mode = mode
        forwarding.publish("steam_trap.state_changed", [{"mode": mode.value}])
        assert forwarding.wait_until(lambda: len(receiver.deliveries) >= 1, 30)
        receiver.mode = Mode.OK
        assert forwarding.wait_until(lambda: len(receiver.ok_deliveries()) == 1, 30)
        first, second = receiver.deliveries[0], receiver.deliveries[1]
        assert first.delivery_id == second.delivery_id
        assert second.at - first.at >= 3.0 - 0.05


def test_410_gone_disables_at_once_and_keeps_the_events(box: Sandbox, forwarding: Forwarding):
    receiver = _receiver(box)
    receiver.mode = Mode.GONE
    ids = forwarding.publish("steam_trap.state_changed", [{"n": n} for n in range(3)])
    forwarding.wait_for(NAME, S.DISABLED, 30)
    later = forwarding.publish("steam_trap.state_changed", [{"n": n} for n in range(3, 5)])
    box.stack.drain(timeout=30)
    assert [h.to_status for h in forwarding.store.history(NAME)] == [S.DISABLED]
    assert "410" in forwarding.store.history(NAME)[0].reason
    assert len(receiver.deliveries) == 1  # one attempt, then nothing until enabled
    assert forwarding.backlog.count(NAME) == 5
    # an operator enables it: everything arrives, in order
    receiver.mode = Mode.OK
    forwarding.enable(NAME)
    forwarding.wait_for(NAME, S.OK, 30)
    box.stack.drain(timeout=30)
    in_order, arrivals = _delivered_once_in_order(receiver, ids + later)
    assert in_order, arrivals
    assert forwarding.backlog.count(NAME) == 0


def test_five_no_responses_disable_temporarily_then_enable_again_automatically(
    box: Sandbox, forwarding: Forwarding, status_events: str
):
    receiver = _receiver(box)
    receiver.mode = Mode.HANG
    receiver.hang_s = ENDPOINT_TIMEOUT_S * 3
    ids = forwarding.publish("steam_trap.state_changed", [{"n": n} for n in range(3)])
    forwarding.wait_for(NAME, S.NO_RESPONSE, 30)
    receiver.mode = Mode.CLOSE  # a connection closed without an answer is no response too
    forwarding.wait_for(NAME, S.TEMPORARILY_DISABLED, 60)
    attempts = len(receiver.deliveries)
    assert attempts == 5  # five in a row, then no more attempts
    assert {d.answered for d in receiver.deliveries} == {"hang", "close"}
    held = forwarding.publish("steam_trap.state_changed", [{"n": n} for n in range(3, 6)])
    receiver.mode = Mode.OK
    # the six-hour hold passes on the compressed clock, then the backlog arrives in order
    forwarding.wait_for(NAME, S.OK, 60)
    box.stack.drain(timeout=60)
    in_order, arrivals = _delivered_once_in_order(receiver, ids + held)
    assert in_order, arrivals
    assert [h.to_status for h in forwarding.store.history(NAME)] == [
        S.NO_RESPONSE,
        S.TEMPORARILY_DISABLED,
        S.NO_RESPONSE,  # enabled again, with the last answer it gave
        S.OK,
    ]
    published = [
        (e["from"], e["to"]) for e in _published(box, status_events) if e["endpoint"] == NAME
    ]
    assert published == [
        ("New", "No response"),
        ("No response", "Temporarily disabled"),
        ("Temporarily disabled", "No response"),
        ("No response", "OK"),
    ]


def test_thirty_hours_without_success_disable_until_an_operator_enables(
    box: Sandbox, forwarding: Forwarding
):
    receiver = _receiver(box)
    receiver.mode = Mode.ERROR
    ids = forwarding.publish("steam_trap.state_changed", [{"n": n} for n in range(4)])
    forwarding.wait_for(NAME, S.ERROR, 30)
    forwarding.wait_for(NAME, S.DISABLED, 90)
    during = forwarding.publish("steam_trap.state_changed", [{"n": n} for n in range(4, 8)])
    box.stack.drain(timeout=60)
    # Disabled stays Disabled however healthy the endpoint is now: no attempt is made
    receiver.mode = Mode.OK
    attempts = len(receiver.deliveries)
    box.stack.drain(timeout=30)
    assert forwarding.status(NAME) is S.DISABLED
    assert len(receiver.deliveries) == attempts
    assert forwarding.backlog.count(NAME) == 8
    # an operator enables it: the backlog arrives in order, none lost, none twice
    forwarding.enable(NAME)
    forwarding.wait_for(NAME, S.OK, 60)
    box.stack.drain(timeout=60)
    in_order, arrivals = _delivered_once_in_order(receiver, ids + during)
    assert in_order, arrivals
    assert [h.to_status for h in forwarding.store.history(NAME)] == [
        S.ERROR,
        S.DISABLED,
        S.NEW,
        S.OK,
    ]


def test_one_endpoints_outage_never_slows_anothers(box: Sandbox, forwarding: Forwarding):
    hanging, healthy = _receiver(box, NAME), _receiver(box, OTHER)
    hanging.mode = Mode.HANG
    hanging.hang_s = 3.0
    ids = forwarding.publish("steam_trap.state_changed", [{"n": n} for n in range(10)])
    # the healthy endpoint has every event while the hanging one has none
    assert forwarding.wait_until(lambda: len(healthy.ok_deliveries()) == 10, 30)
    assert hanging.ok_deliveries() == []
    assert sorted(d.delivery_id for d in healthy.deliveries) == sorted(ids)
    assert all(d.verified for d in healthy.deliveries)  # httpsig + Digest
    assert forwarding.status(OTHER) is S.OK


def test_an_operator_can_disable_an_endpoint(box: Sandbox, forwarding: Forwarding):
    forwarding.disable(OTHER)
    forwarding.wait_for(OTHER, S.DISABLED, 30)
    ids = forwarding.publish("steam_trap.state_changed", [{"n": 1}])
    box.stack.drain(timeout=30)
    assert _receiver(box, OTHER).deliveries == []
    assert forwarding.backlog.count(OTHER) == 1
    forwarding.enable(OTHER)
    forwarding.wait_for(OTHER, S.OK, 30)
    assert [d.delivery_id for d in _receiver(box, OTHER).ok_deliveries()] == ids
    assert "operator" in forwarding.store.history(OTHER)[0].reason
