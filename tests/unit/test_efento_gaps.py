"""Efento gaps (logic/efento_gaps.py): exact, from MISSING periods and from periods absent
between batches, through the real normalization of emulator-built batches."""

import json
from datetime import UTC, datetime, timedelta

from local.emulator.installation import Installation
from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import Flavor
from sensorhook.core.reading import Reading
from sensorhook.logic.efento_gaps import detect_gaps, gap_events
from sensorhook.providers.registry import normalize

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _readings(body: dict) -> list[Reading]:
    event_id = event_id_for(Flavor.EFENTO_MEASUREMENTS, body)
    delivery = normalize(
        Flavor.EFENTO_MEASUREMENTS,
        json.dumps(body),
        event_id=event_id,
        received_at=START + timedelta(days=1),
    )
    return list(delivery.readings)


def test_a_lost_batch_and_missing_periods_are_recorded_exactly_per_channel() -> None:
    # Given a measurement point whose middle batch never arrived, and whose next batch starts
    # with two MISSING periods
    installation = Installation.create(seed=3, sensors=1, gateways=1, start=START)
    gap = installation.efento_gap(lost=3, missing=2)
    first, second = (_readings(payload.body) for payload in gap.sent)
    newest = {(r.sensor_id, r.metric, r.channel): r.measured_at for r in first if r.period_s}
    # When the first batch is stored and the second arrives
    assert detect_gaps(first, lambda *key: None) == []
    gaps = detect_gaps(second, lambda *key: newest.get(key))
    # Then each channel has exactly the lost periods and the MISSING run, nothing else
    channels = {str(channel.number) for channel in gap.point.channels}
    assert {(g.kind, g.channel) for g in gaps} == {
        (kind, channel) for kind in ("between_batches", "missing_status") for channel in channels
    }
    for found in gaps:
        first_at, last_at, periods = gap.lost if found.kind == "between_batches" else gap.missing
        assert (found.first_missing_at, found.last_missing_at, found.missing_periods) == (
            first_at,
            last_at,
            periods,
        )
        assert found.period_s == gap.period_s
        assert found.measurement_point == str(gap.point.point_id)
    events = gap_events(gaps, event_id="efento-measurements:x", chunk=0, first=2)
    assert {event.detail_type for event in events} == {"readings.gap_detected"}
    assert [json.loads(event.detail)["dedupe_id"] for event in events] == [
        f"efento-measurements:x:0:{2 + n}" for n in range(len(events))
    ]


def test_consecutive_batches_reveal_no_gap() -> None:
    installation = Installation.create(seed=4, sensors=1, gateways=1, start=START)
    point = installation.measurement_points[0]
    point.simulation.missing_probability = 0.0
    point.simulation.period_change_probability = 0.0
    first = _readings(installation.efento_batch(point, size=5).body)
    second = _readings(installation.efento_batch(point, size=5).body)
    newest = {(r.sensor_id, r.metric, r.channel): r.measured_at for r in first if r.period_s}
    assert detect_gaps(second, lambda *key: newest.get(key)) == []
