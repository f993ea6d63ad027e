"""Efento gaps, detected exactly: Efento never resends, and its pull API is not in the documents
we have, so what is missing is recorded rather than fetched (docs/recovery.md, "Efento").

Efento's series are per measurement period, so a gap is exact, never a guess from silence:

- `missing_status`: measurements the cloud itself marks MISSING (the sensor was out of range
  and has not resent yet), one gap per run of consecutive MISSING periods of a channel;
- `between_batches`: whole periods absent between the newest stored measurement of a channel
  and the first of the next batch (a batch lost on the way, or never sent).

Each gap is published as `readings.gap_detected`, inside the processor's once-per-delivery
step, so it is published once however often the delivery arrives. The event bus's archive is
its record. The backfill seam for Efento (`EfentoGapSource`) takes exactly these ranges; no
implementation exists until Efento documents a pull API.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from sensorhook.core.reading import Reading
from sensorhook.core.timestamps import UtcDatetime
from sensorhook.dal.events import OutboundEvent
from sensorhook.logic.domain_events import READINGS_GAP_DETECTED, dedupe_id

_MISSING = "MISSING"

# (sensor_id, metric, channel) -> when its newest stored measurement was taken
NewestStored = Callable[[str, str, str], datetime | None]


class GapDetected(BaseModel):
    """The detail of `readings.gap_detected` (docs/events.md)."""

    model_config = ConfigDict(frozen=True)

    provider: Literal["efento"] = "efento"
    measurement_point: str  # the canonical sensor_id of the measurement point
    metric: str
    channel: str
    first_missing_at: UtcDatetime  # the first measurement instant missing
    last_missing_at: UtcDatetime  # the last one (inclusive)
    missing_periods: int
    period_s: int
    kind: Literal["missing_status", "between_batches"]
    event_id: str  # the delivery that revealed it


class EfentoGapSource(Protocol):
    """The seam a backfill for Efento plugs into, once Efento documents a pull API: the
    measurements of one channel of a measurement point at the missing instants, as the
    webhook's batch body would carry them (so they enter through the ingest queue)."""

    def measurements(
        self, measurement_point: str, channel: str, first: datetime, last: datetime
    ) -> Iterator[dict[str, object]]: ...


def detect_gaps(readings: Sequence[Reading], newest_stored: NewestStored) -> list[GapDetected]:
    """The gaps one Efento delivery reveals, per channel, oldest first."""
    series: dict[tuple[str, str, str], list[Reading]] = {}
    for reading in readings:
        if reading.provider == "efento" and reading.period_s and reading.channel:
            series.setdefault((reading.sensor_id, reading.metric, reading.channel), []).append(
                reading
            )
    gaps: list[GapDetected] = []
    for (sensor_id, metric, channel), channel_readings in sorted(series.items()):
        ordered = sorted(channel_readings, key=lambda reading: reading.measured_at)
        first = ordered[0]
        previous = newest_stored(sensor_id, metric, channel)
        period = timedelta(seconds=first.period_s or 0)
        if previous is not None and first.measured_at - previous > period:
            missing = round((first.measured_at - previous) / period) - 1
            if missing >= 1:
                gaps.append(
                    _gap(first, previous + period, first.measured_at - period, missing).model_copy(
                        update={"kind": "between_batches"}
                    )
                )
        gaps += _missing_runs(ordered)
    return gaps


def _missing_runs(ordered: Sequence[Reading]) -> list[GapDetected]:
    runs: list[GapDetected] = []
    run: list[Reading] = []
    for reading in [*ordered, None]:
        if reading is not None and reading.status == _MISSING:
            run.append(reading)
            continue
        if run:
            runs.append(_gap(run[0], run[0].measured_at, run[-1].measured_at, len(run)))
            run = []
    return runs


def _gap(reading: Reading, first: datetime, last: datetime, missing: int) -> GapDetected:
    return GapDetected(
        measurement_point=reading.sensor_id,
        metric=reading.metric,
        channel=reading.channel,
        first_missing_at=first,
        last_missing_at=last,
        missing_periods=missing,
        period_s=reading.period_s or 0,
        kind="missing_status",
        event_id=reading.event_id,
    )


def gap_events(
    gaps: Sequence[GapDetected], *, event_id: str, chunk: int, first: int
) -> list[OutboundEvent]:
    """The gaps as events, numbered on from the chunk's other events (`first`), so each has
    a dedupe_id of its own that a retry or resume gives it again (docs/events.md)."""
    return [
        OutboundEvent(
            READINGS_GAP_DETECTED,
            json.dumps(
                {
                    "dedupe_id": dedupe_id(event_id, chunk, first + ordinal),
                    **gap.model_dump(mode="json"),
                },
                ensure_ascii=False,
            ),
        )
        for ordinal, gap in enumerate(gaps)
    ]
