"""Everactive bodies keep the published samples' shape and the seeds' field lists."""

import json
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest

from local.emulator.everactive import (
    STEAM_TRAP_STATES,
    GatewaySchema,
    SensorFamily,
    template,
)
from local.emulator.installation import Installation
from sensorhook.core.flavors import Flavor

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Type-independent reading fields, common to both published samples.
READING_FIELDS = {
    "macAddress",
    "gatewaySerialNumber",
    "readingDate",
    "timestamp",
    "schema",
    "schemaVersion",
    "packetNumberGateway",
    "packetNumberEversensor",
    "rssiUplink",
    "scap",
    "vcap",
    "unsolicited",
    "temperatureMeasurements",
    "humidityMeasurements",
}
# The seed's Steam Trap State Change example body.
STATE_CHANGE_FIELDS = {
    "eventId",
    "eventTimestamp",
    "integrationInfo",
    "facility",
    "location",
    "sensorMacAddress",
    "serviceTag",
    "trapEndState",
    "trapDetailUrl",
    "trapID",
    "trapInsightsUrl",
    "trapStartState",
}


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively: two bodies with the same shape differ only in values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


@pytest.fixture
def installation() -> Installation:
    return Installation.create(seed=7, sensors=6, gateways=2, start=START)


@pytest.mark.parametrize(
    ("family", "sample"),
    [
        (SensorFamily.VIBRATION_ELECTRICAL, "sensor-reading-vibration-electrical.json"),
        (SensorFamily.ENVIRONMENTAL, "sensor-reading-environmental.json"),
    ],
)
def test_sensor_reading_has_the_published_sample_shape(installation, family, sample):
    # Given a sensor of a family Everactive published a sample for
    sensor = next(s for s in installation.eversensors if s.family is family)
    # When it reports
    body = installation.sensor_reading(sensor).body
    # Then the body has the sample's exact shape, with this sensor's identity and schema
    published = json.loads(template(sample))
    assert shape(body) == shape(published)
    assert body["schema"] == published["schema"]
    assert body["macAddress"] == sensor.mac
    assert body["gatewaySerialNumber"] == sensor.gateway.serial


def test_steam_trap_reading_is_constructed_with_the_type_independent_fields(installation):
    sensor = next(s for s in installation.eversensors if s.family is SensorFamily.STEAM_TRAP)
    body = installation.sensor_reading(sensor).body
    assert set(body) == READING_FIELDS
    assert body["schema"] == "https://evr.ac/schemas/platform/eversensor/steamtrap/v1/reading"


def test_reading_dates_agree_advance_per_sensor_and_packets_count(installation):
    sensor = installation.eversensors[1]
    first, second = (installation.sensor_reading(sensor).body for _ in range(2))
    for body in (first, second):
        parsed = datetime.strptime(body["readingDate"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert int(parsed.timestamp()) == body["timestamp"]
    assert second["timestamp"] - first["timestamp"] == 60
    assert second["packetNumberEversensor"] == first["packetNumberEversensor"] + 1
    assert first["temperatureMeasurements"] != second["temperatureMeasurements"]


def test_stale_reading_is_backdated_beyond_a_day(installation):
    payload = installation.sensor_reading(installation.eversensors[0], stale=True)
    assert payload.stale
    assert payload.body["timestamp"] < START.timestamp() - 86_400


def test_gateway_status_v3_has_the_published_shape_and_v1_daily_are_constructed(installation):
    gateway = installation.gateways[0]
    published = json.loads(template("gateway-status-v3.json"))
    v3 = installation.gateway_status(gateway, GatewaySchema.V3).body
    assert shape(v3) == shape(published)
    assert v3["serial"] == gateway.serial
    for schema in GatewaySchema:
        body = installation.gateway_status(gateway, schema).body
        assert body["schema"] == schema.value
        assert body["serial"] == gateway.serial
        datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        assert {"Services", "System"} <= set(body)


def test_state_changes_follow_the_seed_example_and_cover_every_state():
    installation = Installation.create(seed=3, sensors=9, gateways=1, start=START)
    bodies = [installation.steam_trap_change().body for _ in range(300)]
    for body in bodies:
        assert set(body) in (STATE_CHANGE_FIELDS, STATE_CHANGE_FIELDS - {"integrationInfo"})
        assert body["trapStartState"] != body["trapEndState"]
        assert isinstance(body["eventTimestamp"], int)
    assert len({b["eventId"] for b in bodies}) == len(bodies)
    assert {b["trapEndState"] for b in bodies} == set(STEAM_TRAP_STATES)
    assert any("integrationInfo" not in b for b in bodies)
    # one trap's changes chain: each start state is the previous end state
    trap_id = bodies[0]["trapID"]
    chain = [b for b in bodies if b["trapID"] == trap_id]
    assert all(a["trapEndState"] == b["trapStartState"] for a, b in pairwise(chain))


def test_identities_are_stable_for_a_seed_whatever_the_size():
    small = Installation.create(seed=1, sensors=2, gateways=1, start=START)
    large = Installation.create(seed=1, sensors=5, gateways=3, start=START)
    other = Installation.create(seed=2, sensors=2, gateways=1, start=START)
    assert [s.mac for s in small.eversensors] == [s.mac for s in large.eversensors[:2]]
    assert small.gateways[0].serial == large.gateways[0].serial
    assert [p.point_id for p in small.measurement_points] == [
        p.point_id for p in large.measurement_points[:2]
    ]
    assert small.eversensors[0].mac != other.eversensors[0].mac


def test_every_flavor_builds_a_payload_of_that_flavor(installation):
    for flavor in Flavor:
        assert installation.payload(flavor).flavor is flavor
