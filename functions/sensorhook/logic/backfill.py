"""Backfill: the readings a broken subscription did not deliver, read back from the provider's
readings API and put on the ingest queue as the webhook would have delivered them.

Each reading the Data Services API returns is the body its `sensor_reading` webhook carries
(one reading, the same document), so a backfilled reading is enqueued as exactly that body,
with the dedupe key the receiver computes for it (`core.dedupe.event_id_for`): whatever that
key is made of (a body hash today, a semantic sensor + reading-time key tomorrow), a reading
that arrives both by webhook and by backfill has one key, and the processor's idempotency
stores and publishes it once.

The plan covers, per sensor, the gap from its newest reading measured and received before the
incident was detected (deliveries may have resumed since: the reconciler re-enables a disabled
webhook as it detects it, so the newest reading stored now can lie after the hole, and a reading
of the hole delivered late would hide the readings before it) to the moment the plan is
made (after deliveries resumed, so the overlap with the webhook is deduplicated, never a hole),
at most `backfill_max_hours` back. It is carried in the execution's state and run in an inline
Map: at most `map_max_items` sensors per incident (docs/recovery.md, "Bounds").
"""

import json
import math
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.core.timestamps import UtcDatetime
from sensorhook.dal.health_store import SensorRecord
from sensorhook.logic.incidents import BackfillRequest
from sensorhook.observability import logger
from sensorhook.providers.everactive_api.models import NotFound

DS_PROVIDER = "everactive"  # the sensor_state table's provider name for Everactive sensors
_FLAVOR = Flavor.EVERACTIVE_DS_SENSOR_READING

# What cannot be backfilled, and why (docs/recovery.md, "What cannot be recovered").
NOT_RECOVERABLE = {
    ("everactive-v2020-07", "steam_trap_state_change"): (
        "the v2020-07 API documents no read of a steam trap's current state (only the "
        "trapDetailUrl a webhook carries): state changes missed during the incident cannot "
        "be reconciled"
    ),
    ("everactive-ds", "gateway_status"): (
        "gateway status reports are not kept by the provider's API; gateway health reads "
        "each gateway's last contact from it on every poll"
    ),
}


class PlanKind(StrEnum):
    READINGS = "readings"
    NONE = "none"


class SensorGap(BaseModel):
    model_config = ConfigDict(frozen=True)

    sensor_id: str
    start: UtcDatetime
    end: UtcDatetime


class BackfillPlan(BaseModel):
    """The PlanBackfill step's result: `items` is what the Map runs over."""

    kind: PlanKind
    items: list[SensorGap] = []
    deferred_sensors: int = 0  # beyond the Map's bound: left for an operator's backfill
    reason: str | None = None  # why there is nothing to read (kind none)
    end: UtcDatetime | None = None


class SensorBackfill(BaseModel):
    """What one sensor's backfill did (recorded per sensor on the incident)."""

    sensor_id: str
    start: UtcDatetime
    end: UtcDatetime
    readings: int = 0
    windows: int = 0
    api_calls: int = 0
    error: str | None = None


class ReadingsApi(Protocol):
    def readings(
        self, mac: str, start: datetime, end: datetime, *, window_s: int
    ) -> Iterator[dict[str, Any]]: ...


class EnvelopeQueue(Protocol):
    def send(self, envelope: IngestEnvelope) -> None: ...


def plan_backfill(
    provider: str,
    event_type: str,
    sensors: Sequence[SensorRecord],
    *,
    newest_before: Callable[[str], datetime | None],
    now: datetime,
    max_hours: int,
    max_items: int,
    request: BackfillRequest | None = None,
    listed_sensors: Callable[[], Sequence[str]] = lambda: (),
) -> BackfillPlan:
    """Per sensor, the gap to read. `newest_before(sensor_id)`: its newest stored reading
    measured and received before the incident was detected (None: none of its own).
    `listed_sensors()`: the sensors the provider's API lists (asked only for an incident's
    plan), so a sensor the stores never heard of is planned too. A sensor with no reading of
    its own before the incident (its first readings fell in the hole: newly installed, or
    back from a long silence) starts where the subscription's deliveries stopped, the newest
    reading any sensor had stored before the incident: what it measured earlier would have
    been delivered with the others. A request (a backfill started on its own) names the
    range, and the sensors or none for every known one."""
    reason = NOT_RECOVERABLE.get((provider, event_type))
    if reason is not None:
        return BackfillPlan(kind=PlanKind.NONE, reason=reason)
    if (provider, event_type) != ("everactive-ds", "sensor_reading"):
        return BackfillPlan(kind=PlanKind.NONE, reason=f"no backfill for {provider} {event_type}")
    # every Everactive sensor the stores know: a steam-trap Eversensor's Data Services readings
    # come by the same webhook; one the readings API does not know is recorded as such
    known = {sensor.sensor_id: sensor for sensor in sensors if sensor.provider == DS_PROVIDER}
    end = request.end if request is not None else now
    earliest = end - timedelta(hours=max_hours)
    gaps: list[SensorGap] = []
    if request is not None:
        for sensor_id in request.sensors or sorted(known):
            gaps.append(SensorGap(sensor_id=sensor_id, start=request.start, end=end))
    else:
        candidates = sorted(set(known) | set(listed_sensors()))
        anchors = {sensor_id: newest_before(sensor_id) for sensor_id in candidates}
        stopped = max((newest for newest in anchors.values() if newest is not None), default=None)
        for sensor_id, newest in anchors.items():
            since = newest or stopped
            if since is None:  # nothing stored before the incident: nowhere to start from
                continue
            start = max(since, earliest)
            if start < end:
                gaps.append(SensorGap(sensor_id=sensor_id, start=start, end=end))
    gaps.sort(key=lambda gap: (gap.start, gap.sensor_id))  # the longest gaps first
    if len(gaps) > max_items:
        logger.warning(
            "backfill bounded: sensors deferred",
            extra={"sensors": len(gaps), "bound": max_items},
        )
    return BackfillPlan(
        kind=PlanKind.READINGS,
        items=gaps[:max_items],
        deferred_sensors=max(0, len(gaps) - max_items),
        end=end,
    )


def windows_in(start: datetime, end: datetime, window_s: int) -> int:
    """How many readings-API windows the client cuts [start, end) into."""
    seconds = math.ceil(end.timestamp()) - math.floor(start.timestamp())
    return max(0, math.ceil(seconds / window_s))


def backfill_envelope(
    reading: dict[str, Any], *, received_at: datetime, request_id: str
) -> IngestEnvelope:
    """The envelope the receiver would have queued for this reading's webhook delivery."""
    return IngestEnvelope(
        flavor=_FLAVOR,
        event_id=event_id_for(_FLAVOR, reading),
        received_at=received_at,
        request_id=request_id,
        body=json.dumps(reading, separators=(",", ":"), ensure_ascii=False),
    )


def backfill_sensor(
    gap: SensorGap,
    api: ReadingsApi,
    queue: EnvelopeQueue,
    *,
    window_s: int,
    request_id: str,
    clock: Callable[[], datetime],
) -> SensorBackfill:
    """Read the gap window by window and enqueue every reading. API errors propagate (the
    machine's Retry runs the sensor again: readings already enqueued are deduplicated), but
    for a sensor the provider does not know (404), which no retry changes."""
    readings = 0
    error = None
    try:
        for reading in api.readings(gap.sensor_id, gap.start, gap.end, window_s=window_s):
            queue.send(backfill_envelope(reading, received_at=clock(), request_id=request_id))
            readings += 1
    except NotFound:
        error = "the provider's readings API does not know this sensor"
    return SensorBackfill(
        sensor_id=gap.sensor_id,
        start=gap.start,
        end=gap.end,
        readings=readings,
        windows=windows_in(gap.start, gap.end, window_s),
        error=error,
    )
