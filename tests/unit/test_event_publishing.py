"""Building and publishing events: size limits, chunking, and rejected entries."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.core.reading import Reading
from sensorhook.dal import events as events_module
from sensorhook.dal.events import (
    MAX_ENTRIES_PER_REQUEST,
    MAX_REQUEST_BYTES,
    EventPublisher,
    EventPublishError,
    OutboundEvent,
)
from sensorhook.logic.domain_events import READINGS_RECEIVED, delivery_events

START = datetime(2021, 5, 25, 8, 0, tzinfo=UTC)


def efento_readings(count: int, sensor_id: str = "77") -> list[Reading]:
    """A long Efento batch: one temperature a minute, as extrapolation produces."""
    return [
        Reading(
            provider="efento",
            sensor_id=sensor_id,
            sensor_family="efento",
            gateway_id=None,
            metric="temperature",
            channel="1",
            value=20.0 + index / 10,
            unit="Cel",
            status="OK",
            measured_at=START + timedelta(minutes=index),
            period_s=60,
            received_at=START + timedelta(days=1),
            event_id="efento-measurements:big",
        )
        for index in range(count)
    ]


class FakeEventBridge:
    """Answers PutEvents like EventBridge, rejecting the entries `reject` says to."""

    def __init__(self, reject: Any = lambda call, index: False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self._reject = reject

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append(Entries)
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            if self._reject(call, index)
            else {"EventId": f"{call}-{index}"}
            for index in range(len(Entries))
        ]
        return {
            "FailedEntryCount": sum("ErrorCode" in r for r in results),
            "Entries": results,
        }


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module.time, "sleep", lambda seconds: None)


def test_a_large_batch_is_split_into_readings_received_events_below_256_kb() -> None:
    # Given a delivery of 3000 readings of one sensor (well over 256 KB as one detail)
    readings = efento_readings(3000)

    # When its events are built
    events = delivery_events("efento-measurements:big", NormalizedDelivery(readings=readings))

    # Then they are several, each under the limit, together carrying every reading in order
    assert len(events) > 1
    assert all(event.size < MAX_REQUEST_BYTES for event in events)
    details = [json.loads(event.detail) for event in events]
    assert all(detail["count"] == len(detail["readings"]) for detail in details)
    assert [r for detail in details for r in detail["readings"]] == [
        r.model_dump(mode="json") for r in readings
    ]
    assert {(d["provider"], d["sensor_id"], d["event_id"]) for d in details} == {
        ("efento", "77", "efento-measurements:big")
    }


def test_readings_of_two_sensors_make_one_event_each() -> None:
    delivery = NormalizedDelivery(readings=efento_readings(3, "1") + efento_readings(2, "2"))

    events = delivery_events("efento-measurements:two", delivery)

    assert [(e.detail_type, json.loads(e.detail)["count"]) for e in events] == [
        (READINGS_RECEIVED, 3),
        (READINGS_RECEIVED, 2),
    ]


def test_requests_hold_at_most_10_entries_and_256_kb() -> None:
    # Given 25 small events and 3 events of about 100 KB
    small = [OutboundEvent("Small", json.dumps({"n": n})) for n in range(25)]
    large = [OutboundEvent("Large", json.dumps({"pad": "x" * 100_000})) for _ in range(3)]
    bridge = FakeEventBridge()

    # When they are published
    published = EventPublisher("bus", client=bridge).publish(small + large)

    # Then every request respects both limits and every event was sent once
    assert published == 28
    assert all(len(call) <= MAX_ENTRIES_PER_REQUEST for call in bridge.calls)
    assert all(
        sum(len(e["Source"]) + len(e["DetailType"]) + len(e["Detail"]) for e in call)
        < MAX_REQUEST_BYTES
        for call in bridge.calls
    )
    assert [e["Detail"] for call in bridge.calls for e in call] == [e.detail for e in small + large]
    assert {e["EventBusName"] for call in bridge.calls for e in call} == {"bus"}


def test_rejected_entries_are_sent_again_and_only_they() -> None:
    # Given EventBridge rejects the second entry of the first request
    bridge = FakeEventBridge(reject=lambda call, index: (call, index) == (0, 1))
    events = [OutboundEvent("Thing", json.dumps({"n": n})) for n in range(3)]

    # When the events are published
    EventPublisher("bus", client=bridge).publish(events)

    # Then the retry carries exactly the rejected entry
    assert [[e["Detail"] for e in call] for call in bridge.calls] == [
        ['{"n": 0}', '{"n": 1}', '{"n": 2}'],
        ['{"n": 1}'],
    ]


def test_entries_rejected_on_every_attempt_raise_instead_of_being_dropped() -> None:
    bridge = FakeEventBridge(reject=lambda call, index: index == 0)

    with pytest.raises(EventPublishError):
        EventPublisher("bus", client=bridge).publish([OutboundEvent("Thing", "{}")])

    assert len(bridge.calls) == 5
