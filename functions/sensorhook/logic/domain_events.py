"""The EventBridge events a delivery yields (detail-types and shapes: docs/events.md)."""

import json
from collections.abc import Iterator

from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.dal.events import OutboundEvent, max_detail_bytes

STEAM_TRAP_STATE_CHANGED = "steam_trap.state_changed"
READINGS_RECEIVED = "readings.received"
# an Efento gap, detected by the processor (logic/efento_gaps.py)
READINGS_GAP_DETECTED = "readings.gap_detected"
# the recovery machine's outcomes (logic/recovery.py, docs/recovery.md)
SUBSCRIPTION_RECOVERED = "subscription.recovered"
SUBSCRIPTION_DISABLED = "subscription.disabled"

# The widest "count" a detail header can carry, so a header is never underestimated.
_COUNT_PLACEHOLDER = 10**9


def delivery_events(event_id: str, delivery: NormalizedDelivery) -> list[OutboundEvent]:
    """One event per steam trap state change, then `readings.received` per sensor.

    A sensor's readings are split over several events (same event_id, disjoint readings)
    only when one event would exceed EventBridge's 256 KB entry limit.
    """
    events = [
        OutboundEvent(STEAM_TRAP_STATE_CHANGED, change.model_dump_json())
        for change in delivery.steam_trap_changes
    ]
    by_sensor: dict[tuple[str, str], list[str]] = {}
    for reading in delivery.readings:
        by_sensor.setdefault((reading.provider, reading.sensor_id), []).append(
            reading.model_dump_json()
        )
    for (provider, sensor_id), readings_json in by_sensor.items():
        events.extend(_readings_received(provider, sensor_id, event_id, readings_json))
    return events


def _readings_received(
    provider: str, sensor_id: str, event_id: str, readings_json: list[str]
) -> Iterator[OutboundEvent]:
    def header(count: int) -> str:
        fields = {"provider": provider, "sensor_id": sensor_id, "event_id": event_id}
        return json.dumps({**fields, "count": count}, ensure_ascii=False)[:-1] + ',"readings":['

    budget = max_detail_bytes(READINGS_RECEIVED) - len(header(_COUNT_PLACEHOLDER).encode()) - 2
    chunk: list[str] = []
    chunk_bytes = 0
    for reading_json in readings_json:
        size = len(reading_json.encode()) + 1  # the separating comma
        if chunk and chunk_bytes + size > budget:
            yield OutboundEvent(READINGS_RECEIVED, header(len(chunk)) + ",".join(chunk) + "]}")
            chunk, chunk_bytes = [], 0
        chunk.append(reading_json)
        chunk_bytes += size
    if chunk:
        yield OutboundEvent(READINGS_RECEIVED, header(len(chunk)) + ",".join(chunk) + "]}")
