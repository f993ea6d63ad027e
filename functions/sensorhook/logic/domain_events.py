"""The EventBridge events a delivery yields (detail-types and shapes: docs/events.md)."""

import itertools
import json
from collections.abc import Callable, Iterator

from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.dal.events import OutboundEvent, max_detail_bytes

STEAM_TRAP_STATE_CHANGED = "steam_trap.state_changed"
READINGS_RECEIVED = "readings.received"
# published by the endpoint policy on every status change of a forwarding endpoint
ENDPOINT_STATUS_CHANGED = "endpoint.status_changed"
# an Efento gap, detected by the processor (logic/efento_gaps.py)
READINGS_GAP_DETECTED = "readings.gap_detected"
# the recovery machine's outcomes (logic/recovery.py, docs/recovery.md)
SUBSCRIPTION_RECOVERED = "subscription.recovered"
SUBSCRIPTION_DISABLED = "subscription.disabled"

# The widest "count" and event ordinal a detail header can carry, so a header is never
# underestimated.
_COUNT_PLACEHOLDER = 10**9


def dedupe_id(event_id: str, chunk: int, ordinal: int) -> str:
    """`<event_id>:<chunk>:<ordinal>`: the same event of the same delivery always gets the same
    id (chunks and their events are deterministic), and no two events of a delivery share one,
    even when its readings are split over chunks or over several events."""
    return f"{event_id}:{chunk}:{ordinal}"


def delivery_events(
    event_id: str, delivery: NormalizedDelivery, *, chunk: int = 0
) -> list[OutboundEvent]:
    """One event per steam trap state change, then `readings.received` per sensor.

    A sensor's readings are split over several events (same event_id, disjoint readings,
    distinct dedupe_id) only when one event would exceed EventBridge's 256 KB entry limit.
    `chunk` is the index of `delivery` among the chunks a large delivery is stored in.
    """
    ordinals = itertools.count()

    def next_dedupe_id() -> str:
        return dedupe_id(event_id, chunk, next(ordinals))

    events = [
        OutboundEvent(
            STEAM_TRAP_STATE_CHANGED,
            json.dumps(
                {
                    "event_id": change.event_id,
                    "dedupe_id": next_dedupe_id(),
                    **change.model_dump(mode="json", exclude={"event_id"}),
                },
                ensure_ascii=False,
            ),
        )
        for change in delivery.steam_trap_changes
    ]
    by_sensor: dict[tuple[str, str], list[str]] = {}
    for reading in delivery.readings:
        by_sensor.setdefault((reading.provider, reading.sensor_id), []).append(
            reading.model_dump_json()
        )
    for (provider, sensor_id), readings_json in by_sensor.items():
        events.extend(
            _readings_received(provider, sensor_id, event_id, readings_json, next_dedupe_id)
        )
    return events


def _readings_received(
    provider: str,
    sensor_id: str,
    event_id: str,
    readings_json: list[str],
    next_dedupe_id: Callable[[], str],
) -> Iterator[OutboundEvent]:
    def header(count: int, event_dedupe_id: str) -> str:
        fields = {
            "provider": provider,
            "sensor_id": sensor_id,
            "event_id": event_id,
            "dedupe_id": event_dedupe_id,
        }
        return json.dumps({**fields, "count": count}, ensure_ascii=False)[:-1] + ',"readings":['

    widest = header(_COUNT_PLACEHOLDER, dedupe_id(event_id, _COUNT_PLACEHOLDER, _COUNT_PLACEHOLDER))
    budget = max_detail_bytes(READINGS_RECEIVED) - len(widest.encode()) - 2

    def event(chunk: list[str]) -> OutboundEvent:
        detail = header(len(chunk), next_dedupe_id()) + ",".join(chunk) + "]}"
        return OutboundEvent(READINGS_RECEIVED, detail)

    chunk: list[str] = []
    chunk_bytes = 0
    for reading_json in readings_json:
        size = len(reading_json.encode()) + 1  # the separating comma
        if chunk and chunk_bytes + size > budget:
            yield event(chunk)
            chunk, chunk_bytes = [], 0
        chunk.append(reading_json)
        chunk_bytes += size
    if chunk:
        yield event(chunk)
