"""Efento batches: the Measurement Event compression round-trips to the simulated series."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from local.emulator.efento import ChannelReading, compress, efento_time
from local.emulator.installation import Installation

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EFENTO_FIELDS = {
    "measurementPointId",
    "measurementPointName",
    "firstMeasurementTimestamp",
    "lastMeasurementTimestamp",
    "measurementsReceivedAt",
    "signalStrength",
    "batteryStatus",
    "measurementsEvents",
}


def parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def expand(body: dict[str, Any]) -> dict[int, list[tuple[datetime, Any, int, str]]]:
    """Reference extrapolation, per the manual: each event repeats every `period` seconds until
    the next event, the last one until lastMeasurementTimestamp (inclusive)."""
    last = parse(body["lastMeasurementTimestamp"])
    series: dict[int, list[tuple[datetime, Any, int, str]]] = {}
    for channel in body["measurementsEvents"]:
        events = channel["events"]
        points = []
        for index, event in enumerate(events):
            at = parse(event["timestamp"])
            stop = parse(events[index + 1]["timestamp"]) if index + 1 < len(events) else None
            while (stop is None and at <= last) or (stop is not None and at < stop):
                points.append((at, event["value"], event["period"], event["status"]))
                at += timedelta(seconds=event["period"])
        series[channel["channelNumber"]] = points
    return series


def test_batches_expand_back_to_the_simulated_series_including_period_changes_and_errors():
    # Given an installation whose Efento points produce many batches
    installation = Installation.create(seed=11, sensors=3, gateways=1, start=START)
    statuses: Counter[str] = Counter()
    periods: set[int] = set()
    for _ in range(150):
        payload = installation.efento_batch()
        body = payload.body
        # When the batch is expanded with the reference extrapolation
        expanded = expand(body)
        # Then it is exactly the per-period series the sensor simulated, on every channel
        for channel, points in expanded.items():
            simulated = [
                (s.measured_at, s.value, s.period_s, s.status)
                for s in payload.samples
                if s.channel == str(channel)
            ]
            assert points == simulated
        assert body["firstMeasurementTimestamp"] == efento_time(payload.samples[0].measured_at)
        statuses.update(s.status for s in payload.samples)
        periods.update(s.period_s for s in payload.samples if s.period_s)
    # And the run exercised what makes extrapolation hard
    assert {"OK", "ERROR", "MISSING"} <= set(statuses)
    assert len(periods) >= 2


def test_batch_carries_the_seed_field_list_and_event_shape():
    installation = Installation.create(seed=2, sensors=3, gateways=1, start=START)
    body = installation.efento_batch(installation.measurement_points[2]).body
    assert set(body) >= EFENTO_FIELDS
    assert body["batteryStatus"] in {"OK", "LOW"}
    assert [c["channelNumber"] for c in body["measurementsEvents"]] == [1, 2, 3]
    for channel in body["measurementsEvents"]:
        assert set(channel) == {"channelNumber", "channelType", "events"}
        for event in channel["events"]:
            assert set(event) == {"timestamp", "value", "period", "status"}
            parse(event["timestamp"])
            if event["status"] == "MISSING":
                assert event["value"] is None
    assert parse(body["measurementsReceivedAt"]) >= parse(body["lastMeasurementTimestamp"])


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def test_compress_reproduces_the_manual_worked_examples():
    ok = "OK"
    # Value change: 20, 20, 20, 21, 21 every 60 s -> events at 12:00 and 12:03
    values = [20, 20, 20, 21, 21]
    events = compress([(_at(i), 60, ChannelReading(v, ok)) for i, v in enumerate(values)])
    assert [(e.at, e.value) for e in events] == [(_at(0), 20), (_at(3), 21)]
    # Period change: 12:00 (180 s) 20, 12:01 (60 s) 20, 12:02 20, 12:03 21
    series = [(_at(0), 180, 20), (_at(1), 60, 20), (_at(2), 60, 20), (_at(3), 60, 21)]
    events = compress([(at, p, ChannelReading(v, ok)) for at, p, v in series])
    assert [(e.at, e.period_s, e.value) for e in events] == [
        (_at(0), 180, 20),
        (_at(1), 60, 20),
        (_at(3), 60, 21),
    ]
    # Status change: 20 OK, probe unplugged (ERROR 10000) 12:01-12:04, 20 OK at 12:05
    readings = [ChannelReading(20, ok)] + [ChannelReading(10000, "ERROR")] * 4
    readings.append(ChannelReading(20, ok))
    events = compress([(_at(i), 60, r) for i, r in enumerate(readings)])
    assert [(e.at, e.value, e.status) for e in events] == [
        (_at(0), 20, ok),
        (_at(1), 10000, "ERROR"),
        (_at(5), 20, ok),
    ]
    # Nothing changes over 43 measurements -> one event
    assert len(compress([(_at(i), 60, ChannelReading(20, ok)) for i in range(43)])) == 1


def test_stale_batch_is_old_data_received_now_and_never_overlaps_fresh_data():
    installation = Installation.create(seed=5, sensors=1, gateways=1, start=START)
    fresh = installation.efento_batch()
    stale = installation.efento_batch(stale=True)
    assert stale.stale and not fresh.stale
    assert parse(stale.body["lastMeasurementTimestamp"]) < START - timedelta(days=1)
    assert parse(stale.body["measurementsReceivedAt"]) >= START
    assert not {s.key for s in stale.samples} & {s.key for s in fresh.samples}


def test_series_instants_are_whole_seconds_like_the_timestamps_that_carry_them():
    # Given an installation started at a wall-clock instant with microseconds
    installation = Installation.create(
        seed=4, sensors=1, gateways=1, start=START.replace(microsecond=260_978)
    )
    # When a batch is built, its expected series matches the second-resolution body
    payload = installation.efento_batch()
    assert all(s.measured_at.microsecond == 0 for s in payload.samples)
    assert expand(payload.body)[1][0][0] == payload.samples[0].measured_at
