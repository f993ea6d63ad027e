"""Backfill logic (logic/backfill.py): the plan per sensor, the windows, and an envelope that
the processor dedupes against the webhook's copy of the same reading."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import ROUTES, Flavor
from sensorhook.core.receiver_settings import ReceiverSettings
from sensorhook.dal.health_store import SensorRecord
from sensorhook.handlers.recovery import _listed_sensors
from sensorhook.logic.backfill import (
    PlanKind,
    SensorGap,
    backfill_envelope,
    backfill_sensor,
    plan_backfill,
    windows_in,
)
from sensorhook.logic.incidents import BackfillRequest
from sensorhook.logic.receive import WebhookRequest, receive
from sensorhook.providers.everactive_api.models import ApiError, NotFound
from sensorhook.providers.everactive_api.transport import TransportError
from tests.fixtures.loader import sample_json, sample_text

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _sensor(sensor_id: str, newest: datetime, provider: str = "everactive") -> SensorRecord:
    return SensorRecord(provider=provider, sensor_id=sensor_id, newest_measured_at=newest)


def test_each_sensor_gap_starts_at_its_newest_reading_before_the_incident() -> None:
    # Given two sensors whose webhook readings resumed after the outage (newest is recent)
    sensors = [_sensor("a", NOW), _sensor("b", NOW), _sensor("efento-1", NOW, "efento")]
    before = {"a": NOW - timedelta(hours=3), "b": NOW - timedelta(minutes=5)}
    # When the plan is made
    plan = plan_backfill(
        "everactive-ds",
        "sensor_reading",
        sensors,
        newest_before=before.get,
        now=NOW,
        max_hours=168,
        max_items=100,
    )
    # Then each gap starts where its stored readings stopped before the incident, not now
    assert plan.kind is PlanKind.READINGS
    assert [(g.sensor_id, g.start, g.end) for g in plan.items] == [
        ("a", NOW - timedelta(hours=3), NOW),
        ("b", NOW - timedelta(minutes=5), NOW),
    ]


def test_a_gap_is_bounded_and_sensors_beyond_the_map_bound_are_deferred() -> None:
    sensors = [_sensor(f"s{n}", NOW) for n in range(5)]
    plan = plan_backfill(
        "everactive-ds",
        "sensor_reading",
        sensors,
        newest_before=lambda _sensor_id: NOW - timedelta(days=30),
        now=NOW,
        max_hours=72,
        max_items=3,
    )
    assert len(plan.items) == 3 and plan.deferred_sensors == 2
    assert {g.start for g in plan.items} == {NOW - timedelta(hours=72)}


def test_without_any_reading_stored_before_the_incident_nothing_is_planned() -> None:
    plan = plan_backfill(
        "everactive-ds",
        "sensor_reading",
        [_sensor("new", NOW)],
        newest_before=lambda _sensor_id: None,
        now=NOW,
        max_hours=72,
        max_items=3,
        listed_sensors=lambda: ["listed"],
    )
    assert plan.items == []


def test_a_sensor_whose_first_readings_fell_in_the_hole_is_read_from_where_deliveries_stopped() -> (
    None
):
    # Given the webhook stopped after "a" delivered its reading of NOW - 10 min; "late" first
    # read during the outage (stored only after the incident, or not at all) and "unheard" is
    # one the stores never saw but the provider lists
    stopped = NOW - timedelta(minutes=10)
    before = {"a": stopped, "b": NOW - timedelta(hours=2)}
    sensors = [_sensor("a", NOW), _sensor("b", NOW), _sensor("late", NOW)]
    # When the incident's plan is made
    plan = plan_backfill(
        "everactive-ds",
        "sensor_reading",
        sensors,
        newest_before=before.get,
        now=NOW,
        max_hours=72,
        max_items=10,
        listed_sensors=lambda: ["a", "unheard"],
    )
    # Then both are read back from where the subscription's deliveries stopped
    assert [(g.sensor_id, g.start, g.end) for g in plan.items] == [
        ("b", NOW - timedelta(hours=2), NOW),
        ("a", stopped, NOW),
        ("late", stopped, NOW),
        ("unheard", stopped, NOW),
    ]


def test_a_backfill_request_does_not_ask_the_provider_for_its_sensors() -> None:
    def unexpected() -> list[str]:
        raise AssertionError("a request names its sensors")

    request = BackfillRequest(sensors=None, start=NOW - timedelta(days=1), end=NOW)
    plan = plan_backfill(
        "everactive-ds",
        "sensor_reading",
        [_sensor("a", NOW)],
        newest_before=lambda _sensor_id: None,
        now=NOW,
        max_hours=72,
        max_items=10,
        request=request,
        listed_sensors=unexpected,
    )
    assert [g.sensor_id for g in plan.items] == ["a"]


def test_a_backfill_request_names_the_range_and_sensors() -> None:
    request = BackfillRequest(sensors=("x",), start=NOW - timedelta(days=3), end=NOW)
    plan = plan_backfill(
        "everactive-ds",
        "sensor_reading",
        [_sensor("a", NOW)],
        newest_before=lambda _sensor_id: None,
        now=NOW + timedelta(hours=1),
        max_hours=168,
        max_items=10,
        request=request,
    )
    assert [(g.sensor_id, g.start, g.end) for g in plan.items] == [
        ("x", NOW - timedelta(days=3), NOW)
    ]
    assert windows_in(plan.items[0].start, plan.items[0].end, 24 * 3600) == 3


@pytest.mark.parametrize(
    ("provider", "event_type", "says"),
    [
        ("everactive-v2020-07", "steam_trap_state_change", "cannot"),
        ("everactive-ds", "gateway_status", "not kept"),
    ],
)
def test_what_cannot_be_recovered_is_said_not_faked(
    provider: str, event_type: str, says: str
) -> None:
    plan = plan_backfill(
        provider,
        event_type,
        [_sensor("a", NOW)],
        newest_before=lambda _sensor_id: NOW,
        now=NOW,
        max_hours=1,
        max_items=1,
    )
    assert plan.kind is PlanKind.NONE and plan.items == []
    assert plan.reason is not None and says in plan.reason


def test_windows_are_at_most_the_configured_size() -> None:
    assert windows_in(NOW - timedelta(days=3), NOW, 24 * 3600) == 3
    assert windows_in(NOW - timedelta(days=3, seconds=1), NOW, 24 * 3600) == 4
    assert windows_in(NOW - timedelta(hours=5), NOW, 3600) == 5
    assert windows_in(NOW, NOW, 3600) == 0


def test_the_backfilled_envelope_carries_the_receivers_dedupe_key_for_the_same_reading() -> None:
    # Given a reading as the readings API returns it (the `data` of /readings/last)
    reading = sample_json("everactive-ds/sensor-reading-environmental.json")
    # When it is backfilled, and when the same document arrives by webhook
    envelope = backfill_envelope(reading, received_at=NOW, request_id="recovery:x")
    queued: list[IngestEnvelope] = []

    class Queue:
        def send(self, sent: IngestEnvelope) -> None:
            queued.append(sent)

    class Secrets:
        def read(self, secret_id: str, model: Any, *, fresh: bool = False) -> Any:
            return model.model_validate({"headers": {"x-api-key": "k"}})

    response = receive(
        WebhookRequest(
            method="POST",
            route_key=f"POST {ROUTES[Flavor.EVERACTIVE_DS_SENSOR_READING]}",
            path=ROUTES[Flavor.EVERACTIVE_DS_SENSOR_READING],
            raw_path=ROUTES[Flavor.EVERACTIVE_DS_SENSOR_READING],
            headers={"content-type": "application/json", "x-api-key": "k"},
            # the webhook's own spelling: whitespace and key order differ from the backfill's
            body=json.dumps(reading, indent=2, sort_keys=False).encode(),
            source_ip="203.0.113.7",
            request_id="r",
            received_at=NOW,
        ),
        ReceiverSettings(
            ingest_queue_url="q",
            bucket_name="b",
            v2020_signing_secret_arn="v",
            ds_header_secret_arn="d",
            efento_header_secret_arn="e",
        ),
        secrets=Secrets(),
        queue=Queue(),
        inbox=None,  # type: ignore[arg-type]
    )
    # Then both carry one dedupe key, the one the shared rule computes
    assert response.status_code == 202, response.body
    assert queued[0].event_id == envelope.event_id
    assert envelope.event_id == event_id_for(Flavor.EVERACTIVE_DS_SENSOR_READING, reading)
    assert json.loads(envelope.body or "") == reading
    assert envelope.flavor is Flavor.EVERACTIVE_DS_SENSOR_READING


class _Api:
    def __init__(self, readings: list[dict[str, Any]], error: Exception | None = None) -> None:
        self.readings_served = readings
        self.error = error
        self.asked: list[tuple[str, datetime, datetime, int]] = []

    def readings(
        self, mac: str, start: datetime, end: datetime, *, window_s: int
    ) -> Iterator[dict[str, Any]]:
        self.asked.append((mac, start, end, window_s))
        if self.error:
            raise self.error
        yield from self.readings_served


def test_a_sensor_backfill_enqueues_every_reading_and_counts_the_windows() -> None:
    reading = sample_json("everactive-ds/sensor-reading-environmental.json")
    later = {**reading, "timestamp": reading["timestamp"] + 60}
    api = _Api([reading, later])
    queued: list[IngestEnvelope] = []

    class Queue:
        def send(self, envelope: IngestEnvelope) -> None:
            queued.append(envelope)

    gap = SensorGap(sensor_id="m", start=NOW - timedelta(days=2, hours=1), end=NOW)
    result = backfill_sensor(
        gap, api, Queue(), window_s=86_400, request_id="recovery:x", clock=lambda: NOW
    )
    assert api.asked == [("m", gap.start, gap.end, 86_400)]
    assert [json.loads(e.body or "") for e in queued] == [reading, later]
    assert (result.readings, result.windows, result.error) == (2, 3, None)


def test_a_sensor_the_provider_does_not_know_is_recorded_not_retried() -> None:
    gap = SensorGap(sensor_id="m", start=NOW - timedelta(hours=1), end=NOW)
    result = backfill_sensor(
        gap,
        _Api([], NotFound(404, "not_found", "no sensor")),
        None,  # type: ignore[arg-type]
        window_s=3600,
        request_id="r",
        clock=lambda: NOW,
    )
    assert result.readings == 0 and result.error is not None


def test_api_errors_other_than_not_found_propagate_for_the_machines_retry() -> None:
    from sensorhook.providers.everactive_api.models import ProviderUnavailable

    gap = SensorGap(sensor_id="m", start=NOW - timedelta(hours=1), end=NOW)
    with pytest.raises(ProviderUnavailable):
        backfill_sensor(
            gap,
            _Api([], ProviderUnavailable(503, "unavailable", "down")),
            None,  # type: ignore[arg-type]
            window_s=3600,
            request_id="r",
            clock=lambda: NOW,
        )


def test_the_sample_api_reading_is_a_webhook_body() -> None:
    # the readings API's document and the sensor_reading webhook body are one shape
    api_reading = json.loads(sample_text("everactive-ds/sensor-reading-environmental.json"))
    webhook = json.loads(sample_text("everactive-ds/sensor-reading-mhm.json"))
    assert {"macAddress", "timestamp", "readingDate"} <= set(api_reading) & set(webhook)


@pytest.mark.parametrize(
    "failure",
    [ApiError(503, None, "unavailable"), TransportError("reset", request_sent=True)],
)
def test_a_provider_that_cannot_list_its_sensors_leaves_the_plan_to_the_stored_ones(
    failure: Exception,
) -> None:
    # Given the provider's API failing to list its sensors
    class FailingApi:
        def sensors(self) -> list[Any]:
            raise failure

    # When the recovery handler asks it for the plan's sensors, it gets none (and the incident
    # is planned from the stores) instead of failing the recovery
    assert _listed_sensors(FailingApi()) == []  # type: ignore[arg-type]
