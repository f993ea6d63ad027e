"""Efento measurement batches -> canonical readings, one per channel per measurement period.

Metric names and units are documented in docs/canonical-reading.md; keep the two in step.
"""

import heapq
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.providers.common import InvalidPayload, as_utc, delivery_of
from sensorhook.providers.efento.extrapolate import ChannelPlan
from sensorhook.providers.efento.models import ChannelMeasurements, MeasurementBatch

PROVIDER = "efento"
SENSOR_FAMILY = "efento"
MAX_READINGS_PER_DELIVERY = 100_000

# channelType -> (metric, canonical unit). Values arrive already in these units; an unlisted
# type keeps its lowercased name and the empty unit rather than failing the batch.
CHANNEL_METRICS: dict[str, tuple[str, str]] = {
    "TEMPERATURE": ("temperature", "Cel"),
    "HUMIDITY": ("humidity", "%RH"),
    "HUMIDITY_ACCURATE": ("humidity", "%RH"),
    "ATMOSPHERIC_PRESSURE": ("pressure", "hPa"),
    "DIFFERENTIAL_PRESSURE": ("differential_pressure", "Pa"),
    "HIGH_PRESSURE": ("pressure_high", "kPa"),
    "CO2_GAS": ("co2", "ppm"),
    "CO2_EQUIVALENT": ("co2_equivalent", "ppm"),
    "CO_GAS": ("co", "ppm"),
    "NO2_GAS": ("no2", "ppm"),
    "H2S_GAS": ("h2s", "ppm"),
    "NH3_GAS": ("nh3", "ppm"),
    "CH4_GAS": ("ch4", "ppm"),
    "BREATH_VOC": ("breath_voc", "ppm"),
    "IAQ": ("iaq", "{IAQ}"),
    "STATIC_IAQ": ("static_iaq", "{IAQ}"),
    "PULSE_CNT": ("pulse_count", "{pulse}"),
    "ELECTRICITY_METER": ("electricity", "W.h"),
    "WATER_METER": ("water", "L"),
    "SOIL_MOISTURE": ("soil_moisture", "kPa"),
    "AMBIENT_LIGHT": ("ambient_light", "lx"),
    "PM_1_0": ("pm1_0", "ug/m3"),
    "PM_2_5": ("pm2_5", "ug/m3"),
    "PM_10_0": ("pm10_0", "ug/m3"),
    "NOISE_LEVEL": ("noise_level", "dB"),
    "DISTANCE_MM": ("distance", "mm"),
    "PERCENTAGE": ("percentage", "%"),
    "VOLTAGE": ("voltage", "mV"),
    "CURRENT": ("current", "mA"),
    "OK_ALARM": ("ok_alarm", ""),
    "FLOODING": ("flooding", ""),
}

_BATTERY_OK = {"OK": 1.0, "LOW": 0.0}
_BATCHES = TypeAdapter(Annotated[list[MeasurementBatch], Field(min_length=1)])


def metric_and_unit(channel_type: str) -> tuple[str, str]:
    key = channel_type.strip().upper()
    return CHANNEL_METRICS.get(key, (key.lower(), ""))


def _batches(payload: Any) -> list[MeasurementBatch]:
    """The document describes one batch object; a list of them, or one wrapped in
    `{"measurements": [...]}`, is read the same way rather than quarantined."""
    if (
        isinstance(payload, dict)
        and "measurementPointId" not in payload
        and "measurements" in payload
    ):
        payload = payload["measurements"]
    if isinstance(payload, list):
        return _BATCHES.validate_python(payload)
    return [MeasurementBatch.model_validate(payload)]


def _device_rows(batch: MeasurementBatch, shared: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Battery, signal and identity ride along as readings so the latest is in sensor_state."""
    at = batch.measurements_received_at or batch.last_measurement_timestamp
    base = {**shared, "channel": "", "status": "OK", "measured_at": at, "period_s": None}
    if batch.battery_status is not None:
        battery = batch.battery_status.strip().upper()
        yield {
            **base,
            "metric": "battery_ok",
            "value": _BATTERY_OK.get(battery),
            "unit": "",
            "text_value": battery,
        }
    if batch.signal_strength is not None:
        yield {**base, "metric": "signal_strength", "value": batch.signal_strength, "unit": "dBm"}
    for metric, text in (
        ("measurement_point_name", batch.measurement_point_name),
        ("serial_number", batch.serial_number),
    ):
        if text is not None:
            yield {**base, "metric": metric, "value": None, "unit": "", "text_value": text}


def _channel_rows(
    channel: ChannelMeasurements, plan: ChannelPlan, shared: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    metric, unit = metric_and_unit(channel.channel_type)
    base = {**shared, "metric": metric, "unit": unit, "channel": str(channel.channel_number)}
    for point in plan.measurements():
        yield {
            **base,
            "measured_at": point.measured_at,
            "value": point.value,
            "status": point.status,
            "error_code": point.error_code,
            "period_s": point.period_s,
        }


def _placed(place: int, rows: Iterator[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    for row in rows:
        yield place, row


def _measured_at(placed: tuple[int, dict[str, Any]]) -> datetime:
    measured_at: datetime = placed[1]["measured_at"]
    return measured_at


class PlannedMeasurements:
    """A delivery sized and checked, its readings not yet made: `rows()` yields them lazily,
    channel readings first (each channel in time order), then the device readings."""

    def __init__(self, payload: Any, *, event_id: str, received_at: datetime) -> None:
        self._device_rows: list[dict[str, Any]] = []
        self._planned: list[tuple[ChannelMeasurements, ChannelPlan, dict[str, Any]]] = []
        for batch in _batches(payload):
            first, last = batch.first_measurement_timestamp, batch.last_measurement_timestamp
            if last < first:
                raise InvalidPayload("lastMeasurementTimestamp is before firstMeasurementTimestamp")
            shared = {
                "provider": PROVIDER,
                "sensor_id": str(batch.measurement_point_id),
                "sensor_family": SENSOR_FAMILY,
                "gateway_id": None,
                "received_at": as_utc(received_at),
                "event_id": event_id,
            }
            self._planned.extend(
                (channel, ChannelPlan(channel.events, first, last), shared)
                for channel in batch.measurements_events
            )
            self._device_rows.extend(_device_rows(batch, shared))
        self.size = len(self._device_rows) + sum(plan.size for _, plan, _ in self._planned)
        if self.size > MAX_READINGS_PER_DELIVERY:
            raise InvalidPayload(
                f"delivery would extrapolate to {self.size} readings, "
                f"over {MAX_READINGS_PER_DELIVERY}"
            )

    def rows(self) -> Iterator[dict[str, Any]]:
        for planned in self._planned:
            yield from _channel_rows(*planned)
        yield from self._device_rows

    def rows_by_time(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """The rows of `rows()`, every channel's merged in time order (equal instants in
        channel order), then the device rows; each with its channel's place in `rows()`, so
        a slice of them can be put back in that order. A slice then holds all channels of its
        instants: one readings item per sensor and instant instead of one per reading."""
        channels = [
            _placed(place, _channel_rows(*planned)) for place, planned in enumerate(self._planned)
        ]
        yield from heapq.merge(*channels, key=_measured_at)
        yield from _placed(len(self._planned), iter(self._device_rows))


def normalize_measurements(
    payload: Any, *, event_id: str, received_at: datetime
) -> NormalizedDelivery:
    """Every batch is sized before any is expanded, so an absurd one costs no memory."""
    planned = PlannedMeasurements(payload, event_id=event_id, received_at=received_at)
    return delivery_of(planned.rows())
