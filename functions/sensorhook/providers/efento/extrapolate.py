"""Reconstruct every per-period measurement of a channel from its Measurement Events.

The rule, read from the four worked examples of Efento's webhook document: an event's value
repeats every `period` seconds from its own timestamp while strictly before the next event's
timestamp; the last event repeats up to and including `lastMeasurementTimestamp`. Only points
inside [firstMeasurementTimestamp, lastMeasurementTimestamp] are kept, so an event dated before
the batch (a state carried over) contributes its points from the batch start on its own grid.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sensorhook.providers.efento.models import MeasurementEvent

ERROR_STATUS = "ERROR"
MISSING_STATUS = "MISSING"


class Measurement(NamedTuple):
    measured_at: datetime
    value: float | None
    status: str
    error_code: int | None
    period_s: int


class _Run(NamedTuple):
    """The points one event stands for: `start + k * step` for k in [first_k, last_k]."""

    event: MeasurementEvent
    step: timedelta
    first_k: int
    last_k: int

    @property
    def size(self) -> int:
        return max(0, self.last_k - self.first_k + 1)


def _ceil_div(numerator: timedelta, step: timedelta) -> int:
    return -(-numerator // step)


def _runs(events: Sequence[MeasurementEvent], first: datetime, last: datetime) -> list[_Run]:
    ordered = sorted(events, key=lambda event: event.timestamp)  # stable: ties keep sent order
    runs = []
    for index, event in enumerate(ordered):
        start, step = event.timestamp, timedelta(seconds=event.period)
        first_k = max(0, _ceil_div(first - start, step))
        last_k = (last - start) // step  # inclusive bound: start + k*step <= last
        if index + 1 < len(ordered):  # exclusive bound: start + k*step < next event
            last_k = min(last_k, _ceil_div(ordered[index + 1].timestamp - start, step) - 1)
        runs.append(_Run(event, step, first_k, last_k))
    return runs


def _measurement(event: MeasurementEvent, at: datetime) -> Measurement:
    status = event.status
    if status.upper() == ERROR_STATUS:  # the value field carries the sensor's error code
        code = int(event.value) if event.value is not None else None
        return Measurement(at, None, status, code, event.period)
    if status.upper() == MISSING_STATUS:
        return Measurement(at, None, status, None, event.period)
    return Measurement(at, event.value, status, None, event.period)


class ChannelPlan:
    """A channel's extrapolation, sized before it is expanded so a caller can refuse a batch
    that would explode (a 1 s period over a year is 31 million points)."""

    def __init__(self, events: Sequence[MeasurementEvent], first: datetime, last: datetime):
        self._runs = _runs(events, first, last)
        self.size = sum(run.size for run in self._runs)

    def measurements(self) -> Iterator[Measurement]:
        """Lazily, in time order: a large delivery is stored in chunks, never held whole."""
        for run in self._runs:
            if run.size == 0:
                continue
            _, value, status, error_code, period_s = _measurement(run.event, run.event.timestamp)
            start, step = run.event.timestamp, run.step
            for k in range(run.first_k, run.last_k + 1):
                yield Measurement(start + k * step, value, status, error_code, period_s)


def extrapolate(
    events: Sequence[MeasurementEvent], first: datetime, last: datetime
) -> list[Measurement]:
    return list(ChannelPlan(events, first, last).measurements())
