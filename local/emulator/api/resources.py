"""Gateways and sensors as the provider's API shows them, built from the installation.

The sensor items follow samples/everactive-ds/api/eversensors-list.json field for field. No
public sample shows an Evergateway item: ours keeps the sample's conventions (camelCase,
`customer`, ISO timestamps with milliseconds) and states the last contact as `lastSeen` (Data
Services) and `lastReading` (v2020-07, the field its gateway sort defaults to).
"""

import uuid
from datetime import datetime
from typing import Any

from local.emulator.api.cloud import Evercloud, GatewayState
from local.emulator.everactive import SensorFamily
from local.emulator.installation import Evergateway, Eversensor, Installation

_SENSOR_TYPES = {
    SensorFamily.ENVIRONMENTAL: ("Environmental", "810-00039"),  # the sample's
    SensorFamily.VIBRATION_ELECTRICAL: ("Machine Health Monitor", "810-00041"),  # ours
    SensorFamily.STEAM_TRAP: ("Steam Trap Monitor", "810-00042"),  # ours
}
_FIRMWARE = "tinytiger-f0/v0.5.7-r2700fc09"  # the sample's
_MANUFACTURED_FIRMWARE = "tinytiger-f0/v0.5.6-re078d61c"
_LOCATIONS = ("North plant", "South plant")  # the installation's steam-trap facilities


def iso_millis(at: datetime | None) -> str | None:
    """The samples' timestamp style, e.g. 2022-11-13T08:47:27.000Z."""
    if at is None:
        return None
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def customer(installation: Installation) -> dict[str, Any]:
    return {
        "id": str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"sensorhook-emulator:customer:{installation.seed}")
        ),
        "isSandbox": False,
        "name": "Sensorhook Demo",
        "status": "Production",
    }


def gateway_id(serial: str) -> str:
    """The v2020-07 API addresses gateways by a UUID; a stable one per serial."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sensorhook-emulator:evergateway:{serial}"))


def _location(installation: Installation, gateway: Evergateway) -> str:
    return _LOCATIONS[installation.gateways.index(gateway) % len(_LOCATIONS)]


def data_services_gateway(
    installation: Installation, gateway: Evergateway, state: GatewayState
) -> dict[str, Any]:
    location = _location(installation, gateway)
    return {
        "customer": customer(installation),
        "lastSeen": iso_millis(state.last_contact),
        "location": location,
        "name": f"{location} {gateway.serial}",
        "serialNumber": gateway.serial,
    }


def v2020_gateway(
    installation: Installation, gateway: Evergateway, state: GatewayState
) -> dict[str, Any]:
    location = _location(installation, gateway)
    owner = customer(installation)
    return {
        "customer": {"id": owner["id"], "name": owner["name"]},
        "id": gateway_id(gateway.serial),
        "lastReading": iso_millis(state.last_contact),
        "location": location,
        "name": f"{location} {gateway.serial}",
        "serialNumber": gateway.serial,
    }


def sensor(
    installation: Installation, sensor: Eversensor, last_reading: dict[str, Any] | None
) -> dict[str, Any]:
    kind, part_number = _SENSOR_TYPES[sensor.family]
    since = iso_millis(installation.start)
    gateway_serial = sensor.gateway.serial
    return {
        "customer": customer(installation),
        "devkitBundled": False,
        "lastAssociation": {"gatewaySerialNumber": gateway_serial, "timestamp": since},
        "lastInfo": {
            "firmwareVersion": _FIRMWARE,
            "gatewaySerialNumber": gateway_serial,
            "partNumber": part_number,
            "sensorSerialNumber": f"{int(sensor.mac.replace(':', '')[-6:], 16) % 10**8:08d}",
            "timestamp": since,
        },
        "lastReading": last_reading,
        "macAddress": sensor.mac,
        "manufacturedFirmwareVersion": _MANUFACTURED_FIRMWARE,
        "type": kind,
    }


def gateway_views(cloud: Evercloud) -> list[tuple[Evergateway, GatewayState]]:
    return [(g, cloud.gateway_states[g.serial]) for g in cloud.installation.gateways]
