"""Everactive webhook bodies: Data Services `sensor_reading` and `gateway_status`, and v2020-07
Steam Trap State Change.

Where Everactive published a real body (local/emulator/templates/, copies of the shared samples)
it is the template and only values change; the other shapes are built from the seed documents,
see docs/emulator.md for which passage each comes from.
"""

import copy
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from local.emulator.samples import Sample

SCHEMA_BASE = "https://evr.ac/schemas/platform/eversensor"


class SensorFamily(StrEnum):
    """The Eversensor families the emulator plays; the value is the schema URL's family segment."""

    VIBRATION_ELECTRICAL = "vibration-electrical"
    ENVIRONMENTAL = "environmental"
    STEAM_TRAP = "steamtrap"

    @property
    def schema(self) -> str:
        return f"{SCHEMA_BASE}/{self.value}/v1/reading"


class GatewaySchema(StrEnum):
    V1 = "gateway_status_v1.schema.json"
    V3 = "gateway_status_v3.schema.json"
    DAILY = "gateway_status_daily.schema.json"


# Left of the seed's "Valid steam trap states" list; the seed's body example spells the first
# one "Blowthough" (a typo), the emulator sends the listed spelling.
STEAM_TRAP_STATES: tuple[str, ...] = (
    "Blowthrough",
    "Good",
    "Intermittent Blowthrough - Light",
    "Intermittent Blowthrough - Medium",
    "Intermittent Blowthrough - Heavy",
    "Leaking By",
    "Unexpected Cold Condition",
)


@cache
def template(name: str) -> str:
    return resources.files("local.emulator").joinpath("templates", name).read_text()


def _template_body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(template(name))
    return copy.deepcopy(loaded)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Built:
    body: dict[str, Any]
    samples: tuple[Sample, ...]


def _jitter(rng: random.Random, value: float, spread: float, digits: int = 4) -> float:
    return round(value * (1 + rng.uniform(-spread, spread)), digits)


def sensor_reading(
    *,
    family: SensorFamily,
    mac: str,
    gateway_serial: str,
    at: datetime,
    packet_gateway: int,
    packet_sensor: int,
    rng: random.Random,
) -> Built:
    """One `sensor_reading` body; readingDate (ISO Z) and timestamp (unix s) are one second."""
    if family is SensorFamily.VIBRATION_ELECTRICAL:
        body = _vibration_electrical(rng)
    elif family is SensorFamily.ENVIRONMENTAL:
        body = _environmental(rng)
    else:
        body = _steam_trap(rng)
    body.update(
        {
            "macAddress": mac,
            "gatewaySerialNumber": gateway_serial,
            "readingDate": iso_z(at),
            "timestamp": int(at.timestamp()),
            "packetNumberGateway": packet_gateway,
            "packetNumberEversensor": packet_sensor,
            "rssiUplink": rng.randint(-90, -35),
            "scap": round(rng.uniform(1.0, 4.5) * 16) / 16,
            "vcap": round(rng.uniform(2.0, 4.5) * 16) / 16,
            "unsolicited": rng.random() < 0.02,
            "schema": family.schema,
            "schemaVersion": "v1",
        }
    )
    return Built(body, _reading_samples(body, mac, at.replace(microsecond=0)))


def _vibration_electrical(rng: random.Random) -> dict[str, Any]:
    body = _template_body("sensor-reading-vibration-electrical.json")
    body["temperatureMeasurements"] = [
        {"sensorIndex": 0, "value": round(rng.uniform(310.0, 345.0) * 16) / 16},
        {"sensorIndex": 1, "value": round(rng.uniform(310.0, 345.0) * 16) / 16},
    ]
    body["humidityMeasurements"] = [{"sensorIndex": 0, "value": round(rng.uniform(2, 30), 5)}]
    velocity = body["vibrationalMeasurements"]["velocity"]
    load = rng.uniform(0.5, 1.6)  # the machine runs harder or softer: all levels move together
    for levels in ("maxLevels", "overallLevels"):
        for axis in velocity[levels]:
            velocity[levels][axis] = _jitter(rng, velocity[levels][axis] * load, 0.1, 6)
    for peaks in velocity["spectralPeaks"].values():
        for peak in peaks:
            peak["frequency"] = _jitter(rng, peak["frequency"], 0.01, 5)
            peak["magnitude"] = _jitter(rng, peak["magnitude"] * load, 0.1, 7)
    acceleration = body["vibrationalMeasurements"]["acceleration"]["maxLevels"]
    for axis in acceleration:
        acceleration[axis] = _jitter(rng, acceleration[axis] * load, 0.1, 3)
    electrical = body["electricalFieldMeasurements"]
    for peak in electrical["spectral_peaks"]:
        peak["magnitude"] = _jitter(rng, peak["magnitude"] * load, 0.05, 5)
    electrical["maxLevel"] = max(peak["magnitude"] for peak in electrical["spectral_peaks"])
    return body


def _environmental(rng: random.Random) -> dict[str, Any]:
    body = _template_body("sensor-reading-environmental.json")
    body["temperatureMeasurements"] = [
        {"value": round(rng.uniform(285.0, 305.0) * 8) / 8, "sensorIndex": 0},
        {"value": round(rng.uniform(275.0, 300.0) * 8) / 8, "sensorIndex": 1},
    ]
    body["humidityMeasurements"] = [{"value": round(rng.uniform(20, 95), 5), "sensorIndex": 0}]
    body["pressureMeasurement"] = rng.randint(990, 1035)
    body["loadCounts"] = [{"trim": 4, "count": rng.randint(1, 20), "measurementTime": 10}]
    body["movementMeasurement"] = {
        "initialAcceleration": {
            "x": rng.randint(-80, 80),
            "y": rng.randint(-80, 80),
            "z": rng.randint(-1000, -900),
        }
    }
    return body


def _steam_trap(rng: random.Random) -> dict[str, Any]:
    """Constructed: the seed says steam-trap monitors send temperature/humidity readings; the
    shape is the environmental sample's type-independent fields plus those two lists (index 0
    the pipe, index 1 ambient)."""
    return {
        "temperatureMeasurements": [
            {"value": round(rng.uniform(290.0, 450.0) * 8) / 8, "sensorIndex": 0},
            {"value": round(rng.uniform(280.0, 310.0) * 8) / 8, "sensorIndex": 1},
        ],
        "humidityMeasurements": [{"value": round(rng.uniform(10, 90), 5), "sensorIndex": 0}],
    }


def _reading_samples(body: dict[str, Any], mac: str, at: datetime) -> tuple[Sample, ...]:
    samples = [
        Sample(mac, quantity, str(item["sensorIndex"]), at, item["value"])
        for quantity in ("temperatureMeasurements", "humidityMeasurements")
        for item in body[quantity]
    ]
    if "pressureMeasurement" in body:
        samples.append(Sample(mac, "pressureMeasurement", "", at, body["pressureMeasurement"]))
    if "vibrationalMeasurements" in body:
        overall = body["vibrationalMeasurements"]["velocity"]["overallLevels"]
        samples.extend(
            Sample(mac, "velocity.overallLevels", axis, at, value)
            for axis, value in overall.items()
        )
    return tuple(samples)


def gateway_status(
    *, schema: GatewaySchema, serial: str, at: datetime, rng: random.Random
) -> dict[str, Any]:
    """A `gateway_status` body. v3 is the published sample with serial, timestamp and live
    figures changed; v1 (the ~5-minute summary) and daily (the detailed once-a-day message) are
    constructed from the same PascalCase sections, see docs/emulator.md."""
    full = _template_body("gateway-status-v3.json")
    online = rng.random() < 0.9
    services = full["Services"]
    system = full["System"]
    services["online"] = online
    services["mqttQueueSize"] = {
        "heapSize": rng.randint(50_000, 200_000),
        "queueSize": 0 if online else rng.randint(1, 500),
    }
    services["ntpDrift"] = {
        "lastoffset": round(rng.uniform(-0.01, 0.01), 9),
        "rmsoffset": round(rng.uniform(0.0, 0.02), 9),
    }
    system["loadAvg"] = {key: round(rng.uniform(0.0, 1.5), 2) for key in ("l1", "l15", "l5")}
    system["memoryUsage"]["used"] = rng.randint(600_000, 1_800_000)
    system["uptime"] = int(at.timestamp()) % 5_000_000
    full["Environmental"]["sensors"] = {
        "caseHumidity": round(rng.uniform(10, 60), 6),
        "caseTemperature": round(rng.uniform(290, 330), 6),
    }
    modem = full["Connectivity"]["devices"][2]
    modem["ConnectionQuality"]["signalStrength"] = rng.randint(10, 99)
    header = {"schema": schema.value, "serial": serial, "timestamp": iso_z(at)}
    if schema is GatewaySchema.V3:
        return {**full, **header}
    if schema is GatewaySchema.V1:
        return {
            **header,
            "Connectivity": full["Connectivity"],
            "Services": {key: services[key] for key in ("online", "mqttQueueSize", "ntpDrift")},
            "System": {key: system[key] for key in ("loadAvg", "memoryUsage", "uptime")},
        }
    return {
        **header,
        "Services": {
            key: services[key] for key in ("online", "firmwareVersions", "softwareVersions")
        },
        "System": {key: system[key] for key in ("diskUsage", "processList", "uptime")},
    }


@dataclass(frozen=True)
class SteamTrapInfo:
    trap_id: str
    sensor_mac: str
    facility: str
    location: str
    service_tag: str
    asset_id: str | None  # integrationInfo is omitted when never set (seed)
    asset_name: str | None


def steam_trap_state_change(
    *, trap: SteamTrapInfo, event_id: str, at: datetime, start_state: str, end_state: str
) -> Built:
    """The v2020-07 Steam Trap State Change body, fields as in the seed's example."""
    body: dict[str, Any] = {
        "eventId": event_id,
        "eventTimestamp": int(at.timestamp()),
    }
    if trap.asset_id is not None:
        body["integrationInfo"] = {"assetId": trap.asset_id, "name": trap.asset_name}
    body.update(
        {
            "facility": trap.facility,
            "location": trap.location,
            "sensorMacAddress": trap.sensor_mac,
            "serviceTag": trap.service_tag,
            "trapEndState": end_state,
            "trapDetailUrl": f"https://api.data.everactive.com/v2020-07/steamtraps/{trap.trap_id}",
            "trapID": trap.trap_id,
            "trapInsightsUrl": f"https://insights.everactive.com/steamtrap/{trap.trap_id}",
            "trapStartState": start_state,
        }
    )
    sample = Sample(
        trap.sensor_mac, "trapState", "", at.replace(microsecond=0), None, text=end_state
    )
    return Built(body, (sample,))
