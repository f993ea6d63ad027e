"""Efento sensors, simulated per measurement period, and their webhook batches.

The simulation keeps every per-period measurement, so the emulator knows the full series a
receiver must reconstruct; the batch carries only Measurement Events (a change of value, period
or status), exactly as the Efento manual describes.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from local.emulator.samples import Sample

EFENTO_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # UTC; the manual gives no format, see docs/emulator.md
ERROR_CODE = 10000  # the error value in the manual's "probe unplugged" example
PERIODS_S: tuple[int, ...] = (60, 180, 300)


def efento_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(EFENTO_TIME_FORMAT)


@dataclass(frozen=True)
class ChannelSpec:
    """One sensor channel: its type and how its value wanders from one period to the next."""

    number: int
    channel_type: str
    start: float
    step: float
    change_probability: float
    decimals: int


@dataclass(frozen=True)
class ChannelReading:
    value: float | int | None
    status: str  # OK, MISSING or ERROR


@dataclass(frozen=True)
class Measurement:
    """Everything a sensor produced at one period instant, all channels."""

    at: datetime
    period_s: int
    channels: tuple[ChannelReading, ...]


@dataclass(frozen=True)
class MeasurementEvent:
    at: datetime
    value: float | int | None
    period_s: int
    status: str

    def as_json(self) -> dict[str, Any]:
        return {
            "timestamp": efento_time(self.at),
            "value": self.value,
            "period": self.period_s,
            "status": self.status,
        }


def compress(series: Sequence[tuple[datetime, int, ChannelReading]]) -> list[MeasurementEvent]:
    """Keep the first measurement and every one whose value, period or status differs from the
    measurement before it (the Efento Measurement Event rule)."""
    events: list[MeasurementEvent] = []
    previous: tuple[float | int | None, int, str] | None = None
    for at, period_s, reading in series:
        key = (reading.value, period_s, reading.status)
        if key != previous:
            events.append(MeasurementEvent(at, reading.value, period_s, reading.status))
        previous = key
    return events


@dataclass
class SensorSimulation:
    """One Efento sensor ticking through its periods: value walks, period changes, probe errors
    and gaps in what the cloud received (MISSING)."""

    channels: tuple[ChannelSpec, ...]
    next_at: datetime
    rng: random.Random
    period_s: int = 60
    period_change_probability: float = 0.02
    missing_probability: float = 0.01
    error_probability: float = 0.01
    _values: list[float] = field(default_factory=list)
    _error_left: list[int] = field(default_factory=list)
    _missing_left: int = 0

    def __post_init__(self) -> None:
        self._values = [spec.start for spec in self.channels]
        self._error_left = [0 for _ in self.channels]

    def step(self) -> Measurement:
        at, period_s = self.next_at, self.period_s
        readings = tuple(self._read_channel(i, spec) for i, spec in enumerate(self.channels))
        if self._missing_left:
            self._missing_left -= 1
            readings = tuple(ChannelReading(None, "MISSING") for _ in self.channels)
        elif self.rng.random() < self.missing_probability:
            self._missing_left = self.rng.randint(2, 6)
        self._advance()
        return Measurement(at, period_s, readings)

    def miss_next(self, periods: int) -> None:
        """The cloud receives nothing for the next `periods` measurements (MISSING)."""
        self._missing_left = periods

    def run(self, count: int) -> list[Measurement]:
        return [self.step() for _ in range(count)]

    def _read_channel(self, index: int, spec: ChannelSpec) -> ChannelReading:
        if self._error_left[index]:
            self._error_left[index] -= 1
            return ChannelReading(ERROR_CODE, "ERROR")
        if self.rng.random() < self.error_probability:
            self._error_left[index] = self.rng.randint(0, 4)
            return ChannelReading(ERROR_CODE, "ERROR")
        if self.rng.random() < spec.change_probability:
            self._values[index] += spec.step * self.rng.choice((-1, 1))
        value = round(self._values[index], spec.decimals)
        return ChannelReading(int(value) if spec.decimals == 0 else value, "OK")

    def _advance(self) -> None:
        """A reconfigured sensor measures next after min(old, new) period: the manual's
        180 s -> 60 s example measures 60 s later, and never later than the old period, so
        extrapolating the previous event never invents an instant the sensor skipped."""
        step = self.period_s
        if self.rng.random() < self.period_change_probability:
            new_period = self.rng.choice([p for p in PERIODS_S if p != self.period_s])
            step = min(self.period_s, new_period)
            self.period_s = new_period
        self.next_at += timedelta(seconds=step)


@dataclass(frozen=True)
class EfentoBatch:
    body: dict[str, Any]
    samples: tuple[Sample, ...]


def build_batch(
    *,
    point_id: int,
    point_name: str,
    serial_number: str,
    channels: tuple[ChannelSpec, ...],
    measurements: Sequence[Measurement],
    received_at: datetime,
    signal_strength: int,
    battery_status: str,
) -> EfentoBatch:
    """The webhook body for one batch, plus the full per-period series it stands for."""
    events = []
    samples: list[Sample] = []
    for index, spec in enumerate(channels):
        series = [(m.at, m.period_s, m.channels[index]) for m in measurements]
        events.append(
            {
                "channelNumber": spec.number,
                "channelType": spec.channel_type,
                "events": [event.as_json() for event in compress(series)],
            }
        )
        samples.extend(
            Sample(
                sensor_id=str(point_id),
                quantity=spec.channel_type,
                channel=str(spec.number),
                measured_at=at,
                value=reading.value,
                status=reading.status,
                period_s=period_s,
            )
            for at, period_s, reading in series
        )
    body = {
        "measurementPointId": point_id,
        "measurementPointName": point_name,
        "serialNumber": serial_number,
        "firstMeasurementTimestamp": efento_time(measurements[0].at),
        "lastMeasurementTimestamp": efento_time(measurements[-1].at),
        "measurementsReceivedAt": efento_time(received_at),
        "signalStrength": signal_strength,
        "batteryStatus": battery_status,
        "measurementsEvents": events,
    }
    return EfentoBatch(body=body, samples=tuple(samples))
