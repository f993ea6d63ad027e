"""Everactive Data Services bodies -> canonical readings and gateway statuses.

Units and metric names are documented in docs/canonical-reading.md; keep the two in step.
"""

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sensorhook.core.normalized import GatewayStatus, NormalizedDelivery
from sensorhook.providers.common import as_utc, delivery_of, kelvin_to_celsius
from sensorhook.providers.everactive_ds.models import (
    AccelerationMeasurements,
    ElectricalFieldMeasurements,
    EnvironmentalReading,
    EversensorReading,
    GatewayStatusMessage,
    SteamTrapReading,
    VelocityMeasurements,
    VibrationElectricalReading,
)

PROVIDER = "everactive"

_SCHEMA_FAMILY = re.compile(r"/eversensor/(?P<family>[^/]+)/[^/]+/reading/?$")
_UNKNOWN_FAMILY = "unknown"


class _Units(NamedTuple):
    """A canonical unit and the factor to it from each reported unit (lowercased).

    A reported unit not listed is kept as reported, unconverted, so a reader sees the value is
    not canonical rather than getting a wrong number; no reported unit means the canonical one.
    """

    canonical: str
    factors: Mapping[str, float]

    def scaled(self, value: float, reported: str | None) -> tuple[float, str]:
        if reported is None:
            return value, self.canonical
        factor = self.factors.get(reported.strip().lower())
        if factor is None:
            return value, reported
        return (value if factor == 1.0 else value * factor), self.canonical


_VELOCITY = _Units("mm/s", {"mm/s": 1.0, "in/s": 25.4, "m/s": 1000.0})
_ACCELERATION = _Units("mg", {"mg": 1.0, "g": 1000.0})
_MAGNETIC_FIELD = _Units(
    "uT",
    {
        "micro-teslas": 1.0,
        "micro-tesla": 1.0,
        "microtesla": 1.0,
        "microteslas": 1.0,
        "ut": 1.0,
        "µt": 1.0,
        "mt": 1000.0,
        "nt": 0.001,
    },
)

ReadingRow = dict[str, Any]
_MeasuredBlock = VelocityMeasurements | AccelerationMeasurements | ElectricalFieldMeasurements


def sensor_family_of(schema_url: str) -> str:
    """The family segment of `https://evr.ac/schemas/platform/eversensor/<family>/v1/reading`.

    Steam-trap spellings are folded into "steam-trap", the name the v2020 API's traps use too.
    """
    match = _SCHEMA_FAMILY.search(schema_url)
    if match is None:
        return _UNKNOWN_FAMILY
    family = match.group("family").lower()
    return "steam-trap" if family.replace("-", "").replace("_", "") == "steamtrap" else family


class _RowFactory:
    """Binds what every reading of one sensor_reading body shares."""

    def __init__(
        self, reading: EversensorReading, family: str, event_id: str, received_at: datetime
    ):
        measured_at = (
            datetime.fromtimestamp(reading.timestamp, UTC)
            if reading.timestamp is not None
            else reading.reading_date
        )
        self._shared = {
            "provider": PROVIDER,
            "sensor_id": reading.mac_address,
            "sensor_family": family,
            "gateway_id": reading.gateway_serial_number,
            "status": "OK",
            "measured_at": measured_at,
            "received_at": received_at,
            "event_id": event_id,
            "schema_name": reading.schema_url,
        }

    def row(self, metric: str, channel: str, value: float, unit: str) -> ReadingRow:
        return {**self._shared, "metric": metric, "channel": channel, "value": value, "unit": unit}


def _reported_units(block: _MeasuredBlock) -> str | None:
    return block.configuration_metadata.units if block.configuration_metadata else None


def _common_rows(reading: EversensorReading, rows: _RowFactory) -> Iterator[ReadingRow]:
    for measurement in reading.temperature_measurements:
        if measurement.value is not None:
            celsius = kelvin_to_celsius(measurement.value)
            yield rows.row("temperature", str(measurement.sensor_index), celsius, "Cel")
    for measurement in reading.humidity_measurements:
        if measurement.value is not None:
            yield rows.row("humidity", str(measurement.sensor_index), measurement.value, "%RH")
    if reading.rssi_uplink is not None:
        yield rows.row("rssi_uplink", "", reading.rssi_uplink, "dBm")
    if reading.scap is not None:
        yield rows.row("scap_voltage", "", reading.scap, "V")
    if reading.vcap is not None:
        yield rows.row("vcap_voltage", "", reading.vcap, "V")


def _axis_rows(
    rows: _RowFactory,
    metric: str,
    levels: Mapping[str, float | None],
    reported: str | None,
    units: _Units,
) -> Iterator[ReadingRow]:
    for axis, level in levels.items():
        if level is not None:
            yield rows.row(metric, axis, *units.scaled(level, reported))


def _vibration_electrical_rows(
    reading: VibrationElectricalReading, rows: _RowFactory
) -> Iterator[ReadingRow]:
    vibration = reading.vibrational_measurements
    velocity = vibration.velocity if vibration else None
    if velocity is not None:
        reported = _reported_units(velocity)
        yield from _axis_rows(rows, "velocity_max", velocity.max_levels, reported, _VELOCITY)
        yield from _axis_rows(
            rows, "velocity_overall", velocity.overall_levels, reported, _VELOCITY
        )
    acceleration = vibration.acceleration if vibration else None
    if acceleration is not None:
        reported = _reported_units(acceleration)
        yield from _axis_rows(
            rows, "acceleration_max", acceleration.max_levels, reported, _ACCELERATION
        )
    field = reading.electrical_field_measurements
    if field is not None and field.max_level is not None:
        value, unit = _MAGNETIC_FIELD.scaled(field.max_level, _reported_units(field))
        yield rows.row("electrical_field_max", "", value, unit)


def _environmental_rows(reading: EnvironmentalReading, rows: _RowFactory) -> Iterator[ReadingRow]:
    if reading.pressure_measurement is not None:
        yield rows.row("pressure", "", reading.pressure_measurement, "hPa")
    if reading.movement_measurement is not None:
        for axis, level in reading.movement_measurement.initial_acceleration.items():
            if level is not None:
                yield rows.row("acceleration_initial", axis, level, "mg")


def _family_rows(reading: EversensorReading, rows: _RowFactory) -> Iterator[ReadingRow]:
    if isinstance(reading, VibrationElectricalReading):
        yield from _vibration_electrical_rows(reading, rows)
    elif isinstance(reading, EnvironmentalReading):
        yield from _environmental_rows(reading, rows)


# Steam-trap (STM) readings carry only the common temperature/humidity arrays.
_FAMILY_MODELS: dict[str, type[EversensorReading]] = {
    "vibration-electrical": VibrationElectricalReading,
    "environmental": EnvironmentalReading,
    "steam-trap": SteamTrapReading,
}


def normalize_sensor_reading(
    payload: Any, *, event_id: str, received_at: datetime
) -> NormalizedDelivery:
    """One `sensor_reading` body; an unknown schema family still yields its common readings."""
    schema_url = payload.get("schema") if isinstance(payload, dict) else None
    family = sensor_family_of(schema_url) if isinstance(schema_url, str) else _UNKNOWN_FAMILY
    reading = _FAMILY_MODELS.get(family, EversensorReading).model_validate(payload)
    rows = _RowFactory(reading, family, event_id, as_utc(received_at))
    return delivery_of([*_common_rows(reading, rows), *_family_rows(reading, rows)])


# --- gateway_status -------------------------------------------------------------------------

_SUMMARY_SCALARS_MAX = 20
_SUMMARY_TEXT_MAX = 200
_IDENTITY_KEYS = frozenset({"serial", "timestamp", "schema"})


def _section(container: Any, name: str) -> Any:
    """Case-insensitive key lookup: v3 spells sections in PascalCase, v1/daily are unpublished."""
    if not isinstance(container, dict):
        return None
    if name in container:
        return container[name]
    wanted = name.lower()
    return next((value for key, value in container.items() if key.lower() == wanted), None)


def _path(container: Any, *names: str) -> Any:
    for name in names:
        container = _section(container, name)
    return container


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _kind_label(message: GatewayStatusMessage, body: Mapping[str, Any]) -> str:
    if message.schema_name:
        return message.schema_name
    v3_sections = ("Services", "System", "Connectivity", "Environmental")
    return "gateway_status_v3" if any(key in body for key in v3_sections) else "gateway_status_v1"


def _online(body: Mapping[str, Any]) -> bool | None:
    for value in (_path(body, "Services", "online"), _section(body, "online")):
        if isinstance(value, bool):
            return value
    return None


def _connectivity_summary(body: Mapping[str, Any]) -> dict[str, object]:
    devices = _path(body, "Connectivity", "devices")
    if not isinstance(devices, list):
        return {}
    summary: dict[str, object] = {}
    for device in devices:
        if not isinstance(device, dict):
            continue
        if str(device.get("status", "")).lower() in {"activated", "connected"}:
            summary.setdefault("active_connection", device.get("type") or device.get("name"))
        strength = _number(_path(device, "ConnectionQuality", "signalStrength"))
        if strength is not None:
            summary.setdefault("modem_signal_strength", strength)
    return summary


def _gateway_summary(body: Mapping[str, Any]) -> dict[str, object]:
    """A few flat fields worth a glance in the gateways table; the raw archive keeps the rest."""
    summary: dict[str, object] = {}
    nested = {
        "uptime_s": _path(body, "System", "uptime"),
        "load_avg_1m": _path(body, "System", "loadAvg", "l1"),
        "memory_used": _path(body, "System", "memoryUsage", "used"),
        "memory_total": _path(body, "System", "memoryUsage", "total"),
        "mqtt_queue_size": _path(body, "Services", "mqttQueueSize", "queueSize"),
        "case_humidity_pct": _path(body, "Environmental", "sensors", "caseHumidity"),
    }
    summary.update({key: value for key, value in nested.items() if _number(value) is not None})
    case_kelvin = _number(_path(body, "Environmental", "sensors", "caseTemperature"))
    if case_kelvin is not None:
        summary["case_temperature_cel"] = kelvin_to_celsius(case_kelvin)
    summary.update(_connectivity_summary(body))
    # v1 / daily bodies are unpublished: keep their top-level scalars, bounded.
    scalars = (
        (key, value)
        for key, value in body.items()
        if key.lower() not in _IDENTITY_KEYS
        and (
            _number(value) is not None
            or isinstance(value, bool)
            or (isinstance(value, str) and len(value) <= _SUMMARY_TEXT_MAX)
        )
    )
    for key, value in scalars:
        if len(summary) >= _SUMMARY_SCALARS_MAX:
            break
        summary.setdefault(key, value)
    return summary


def normalize_gateway_status(
    payload: Any, *, event_id: str, received_at: datetime
) -> NormalizedDelivery:
    """One `gateway_status` body (v1, v3 or daily) -> one GatewayStatus, no readings."""
    message = GatewayStatusMessage.model_validate(payload)
    status = GatewayStatus(
        provider=PROVIDER,
        gateway_id=message.serial,
        reported_at=message.timestamp,
        schema_name=_kind_label(message, payload),
        online=_online(payload),
        summary=_gateway_summary(payload),
    )
    return delivery_of([], gateway_statuses=[status])
