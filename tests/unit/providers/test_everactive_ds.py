"""Everactive Data Services: sensor_reading per family (real samples) and gateway_status."""

import json
from datetime import UTC, datetime

import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.providers.everactive_ds.normalize import sensor_family_of
from sensorhook.providers.registry import InvalidPayload, normalize
from tests.fixtures.loader import fixture_json, fixture_text, sample_json, sample_text

RECEIVED_AT = datetime(2022, 6, 28, 20, 20, 5, tzinfo=UTC)
EVENT_ID = "everactive-ds-sensor-reading:abc"
MHM = "everactive-ds/sensor-reading-mhm.json"
ENVIRONMENTAL = "everactive-ds/sensor-reading-environmental.json"
STEAM_TRAP = "everactive-ds/sensor-reading-steam-trap.json"
COMMON_METRICS = {"temperature", "humidity", "rssi_uplink", "scap_voltage", "vcap_voltage"}


def _reading(body: str) -> NormalizedDelivery:
    return normalize(
        Flavor.EVERACTIVE_DS_SENSOR_READING, body, event_id=EVENT_ID, received_at=RECEIVED_AT
    )


def _status(body: str) -> NormalizedDelivery:
    return normalize(
        Flavor.EVERACTIVE_DS_GATEWAY_STATUS, body, event_id=EVENT_ID, received_at=RECEIVED_AT
    )


def _values(delivery: NormalizedDelivery) -> dict[tuple[str, str], tuple[float | None, str]]:
    return {(r.metric, r.channel): (r.value, r.unit) for r in delivery.readings}


def test_mhm_sample_temperatures_are_converted_from_kelvin_to_celsius():
    # Given the real machine-health reading (332.3125 K and 336.8125 K)
    body = sample_text(MHM)

    # When it is normalized
    values = _values(_reading(body))

    # Then temperatures are in degrees Celsius, per sensor index
    assert values[("temperature", "0")] == (59.1625, "Cel")
    assert values[("temperature", "1")] == (63.6625, "Cel")


def test_mhm_sample_every_vibration_axis_and_level_is_a_reading_with_its_unit():
    # Given the real machine-health reading
    body = sample_text(MHM)

    # When it is normalized
    values = _values(_reading(body))

    # Then every velocity max/overall level, acceleration max level and the field max are there
    assert {key: value for key, value in values.items() if key[0] not in COMMON_METRICS} == {
        ("velocity_max", "axial"): (3.2659326, "mm/s"),
        ("velocity_max", "radial"): (2.6050544, "mm/s"),
        ("velocity_max", "tangential"): (1.5547563, "mm/s"),
        ("velocity_overall", "axial"): (4.113861, "mm/s"),
        ("velocity_overall", "radial"): (4.0024586, "mm/s"),
        ("velocity_overall", "tangential"): (1.6968622, "mm/s"),
        ("acceleration_max", "axial"): (7738.06, "mg"),
        ("acceleration_max", "radial"): (21605.277, "mg"),
        ("acceleration_max", "tangential"): (5286.3975, "mg"),
        ("electrical_field_max", ""): (40.49398, "uT"),
    }


def test_mhm_sample_common_fields_and_identity():
    # Given the real machine-health reading
    delivery = _reading(sample_text(MHM))

    # When its readings are inspected
    values = _values(delivery)
    first = delivery.readings[0]

    # Then the common metrics are there and every reading is keyed on the sensor MAC
    assert values[("humidity", "0")] == (4.1054688, "%RH")
    assert values[("rssi_uplink", "")] == (-53.0, "dBm")
    assert values[("scap_voltage", "")] == (4.3125, "V")
    assert values[("vcap_voltage", "")] == (4.25, "V")
    assert {r.sensor_id for r in delivery.readings} == {"01:01:01:ff:fe:00:0c:fe"}
    assert {r.measured_at for r in delivery.readings} == {
        datetime(2022, 6, 28, 20, 19, 51, tzinfo=UTC)
    }
    assert first.provider == "everactive"
    assert first.sensor_family == "vibration-electrical"
    assert first.gateway_id == "SYN0001"
    assert first.status == "OK"
    assert first.event_id == EVENT_ID
    assert (
        first.schema_name
        == "https://evr.ac/schemas/platform/eversensor/vibration-electrical/v1/reading"
    )
    assert delivery.gateway_statuses == [] and delivery.steam_trap_changes == []


def test_environmental_sample_yields_pressure_movement_and_converted_temperatures():
    # Given the real environmental reading
    body = sample_text(ENVIRONMENTAL)

    # When it is normalized
    delivery = _reading(body)

    # Then every measurement is a reading in canonical units
    assert _values(delivery) == {
        ("temperature", "0"): (22.475, "Cel"),
        ("temperature", "1"): (6.85, "Cel"),
        ("humidity", "0"): (89.63281, "%RH"),
        ("rssi_uplink", ""): (-39.0, "dBm"),
        ("scap_voltage", ""): (1.125, "V"),
        ("vcap_voltage", ""): (2.3125, "V"),
        ("pressure", ""): (1017.0, "hPa"),
        ("acceleration_initial", "x"): (-40.0, "mg"),
        ("acceleration_initial", "y"): (-63.0, "mg"),
        ("acceleration_initial", "z"): (-921.0, "mg"),
    }
    assert {r.sensor_family for r in delivery.readings} == {"environmental"}
    assert {r.gateway_id for r in delivery.readings} == {"7C5BE61372C4"}


def test_steam_trap_reading_yields_temperature_and_humidity():
    # Given a constructed STM reading (no public sample; see tests/fixtures/README.md)
    body = fixture_text(STEAM_TRAP)

    # When it is normalized
    delivery = _reading(body)

    # Then its temperature/humidity arrays and common fields are readings of family steam-trap
    assert _values(delivery) == {
        ("temperature", "0"): (150.0, "Cel"),
        ("temperature", "1"): (100.0, "Cel"),
        ("humidity", "0"): (35.5, "%RH"),
        ("rssi_uplink", ""): (-61.0, "dBm"),
        ("scap_voltage", ""): (3.5, "V"),
        ("vcap_voltage", ""): (3.25, "V"),
    }
    assert {r.sensor_family for r in delivery.readings} == {"steam-trap"}


@pytest.mark.parametrize(
    ("schema", "family"),
    [
        (
            "https://evr.ac/schemas/platform/eversensor/vibration-electrical/v1/reading",
            "vibration-electrical",
        ),
        ("https://evr.ac/schemas/platform/eversensor/environmental/v1/reading", "environmental"),
        ("https://evr.ac/schemas/platform/eversensor/steam-trap/v1/reading", "steam-trap"),
        ("https://evr.ac/schemas/platform/eversensor/steamtrap/v2/reading", "steam-trap"),
        ("https://evr.ac/schemas/platform/eversensor/Steam_Trap/v1/reading/", "steam-trap"),
        ("https://evr.ac/schemas/platform/eversensor/air-quality/v1/reading", "air-quality"),
        ("reading.schema.json", "unknown"),
    ],
)
def test_sensor_family_comes_from_the_schema_url(schema: str, family: str):
    assert sensor_family_of(schema) == family


def test_unknown_family_still_ingests_its_common_fields():
    # Given the environmental sample relabelled as a family sensorhook does not know
    reading = sample_json(ENVIRONMENTAL)
    reading["schema"] = "https://evr.ac/schemas/platform/eversensor/air-quality/v1/reading"
    reading["co2Measurement"] = 612

    # When it is normalized
    delivery = _reading(json.dumps(reading))

    # Then the common measurements are readings, family-specific blocks are left to the raw archive
    assert set(_values(delivery)) == {
        ("temperature", "0"),
        ("temperature", "1"),
        ("humidity", "0"),
        ("rssi_uplink", ""),
        ("scap_voltage", ""),
        ("vcap_voltage", ""),
    }
    assert {r.sensor_family for r in delivery.readings} == {"air-quality"}


def test_unknown_fields_and_axes_are_tolerated_and_new_axes_become_readings():
    # Given the MHM sample with unknown fields at several levels and a fourth velocity axis
    reading = sample_json(MHM)
    reading["firmwareBuild"] = "x"
    reading["vibrationalMeasurements"]["velocity"]["maxLevels"]["vertical"] = 0.5
    reading["vibrationalMeasurements"]["velocity"]["futureBlock"] = {"a": 1}

    # When it is normalized
    values = _values(_reading(json.dumps(reading)))

    # Then nothing fails and the new axis is a reading
    assert values[("velocity_max", "vertical")] == (0.5, "mm/s")
    assert values[("temperature", "0")] == (59.1625, "Cel")


def test_reported_units_are_converted_to_canonical_and_unknown_units_kept():
    # Given MHM velocity reported in in/s and an electrical field in an unknown unit
    reading = sample_json(MHM)
    reading["vibrationalMeasurements"]["velocity"]["configurationMetadata"]["units"] = "in/s"
    reading["electricalFieldMeasurements"]["configurationMetadata"]["units"] = "gauss"

    # When it is normalized
    values = _values(_reading(json.dumps(reading)))

    # Then in/s becomes mm/s and the unknown unit is passed through unconverted
    assert values[("velocity_max", "axial")] == (pytest.approx(3.2659326 * 25.4), "mm/s")
    assert values[("electrical_field_max", "")] == (40.49398, "gauss")


def test_reading_date_dates_a_reading_without_timestamp():
    # Given the environmental sample without its unix timestamp
    reading = sample_json(ENVIRONMENTAL)
    del reading["timestamp"]

    # When it is normalized
    delivery = _reading(json.dumps(reading))

    # Then readingDate dates it
    assert {r.measured_at for r in delivery.readings} == {
        datetime(2023, 1, 11, 17, 37, 16, tzinfo=UTC)
    }


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        (("macAddress",), "everactive-ds-sensor-reading: macAddress: missing"),
        (("timestamp", "readingDate"), "everactive-ds-sensor-reading: <body>: value_error"),
    ],
)
def test_reading_without_identity_or_time_is_invalid(remove: tuple[str, ...], expected: str):
    # Given the MHM sample without a required field
    reading = sample_json(MHM)
    for key in remove:
        del reading[key]

    # When / Then it is refused with a message naming only the location
    with pytest.raises(InvalidPayload) as raised:
        _reading(json.dumps(reading))
    assert str(raised.value) == expected


def test_gateway_status_v3_sample_becomes_a_gateway_status():
    # Given the real v3 gateway status
    body = sample_text("everactive-ds/gateway-status-v3.json")

    # When it is normalized
    delivery = _status(body)

    # Then one status is produced, with the flat summary
    (status,) = delivery.gateway_statuses
    assert delivery.readings == []
    assert status.provider == "everactive"
    assert status.gateway_id == "SYN0001"
    assert status.reported_at == datetime(2022, 6, 28, 19, 44, 37, tzinfo=UTC)
    assert status.schema_name == "gateway_status_v3.schema.json"
    assert status.online is False
    assert status.summary == {
        "uptime_s": 1659959,
        "load_avg_1m": 0.08,
        "memory_used": 1064980,
        "memory_total": 1916392,
        "mqtt_queue_size": 88,
        "case_humidity_pct": 21.981000083401796,
        "case_temperature_cel": 45.972498,
        "active_connection": "Modem",
        "modem_signal_strength": 51,
    }


def test_gateway_status_v1_keeps_its_flat_fields():
    # Given a constructed v1 status summary
    delivery = _status(fixture_text("everactive-ds/gateway-status-v1.json"))

    # When / Then it is a status with its top-level scalars as the summary
    (status,) = delivery.gateway_statuses
    assert (status.gateway_id, status.schema_name, status.online) == (
        "SYN0002",
        "gateway_status_v1.schema.json",
        True,
    )
    assert status.summary == {
        "online": True,
        "uptime": 1659700,
        "firmwareVersion": "v1.10.0-118-g8e2979a",
        "connectionType": "Ethernet",
    }


def test_gateway_status_daily_reads_v3_sections_and_tolerates_new_ones():
    # Given a constructed daily status with an extra section
    delivery = _status(fixture_text("everactive-ds/gateway-status-daily.json"))

    # When / Then it is a status with the v3-style summary
    (status,) = delivery.gateway_statuses
    assert status.schema_name == "gateway_status_daily.schema.json"
    assert status.online is True
    assert status.reported_at == datetime(2022, 6, 29, 0, 0, 5, tzinfo=UTC)
    assert status.summary["active_connection"] == "Ethernet"
    assert status.summary["mqtt_queue_size"] == 0


def test_gateway_status_without_schema_unix_time_and_other_serial_key():
    # Given a status naming its gateway `serialNumber`, dated in unix seconds, without a schema
    body = json.dumps({"serialNumber": "SYN0003", "timestamp": 1656445477, "online": False})

    # When it is normalized
    (status,) = _status(body).gateway_statuses

    # Then it is read as a v1 summary
    assert status.gateway_id == "SYN0003"
    assert status.reported_at == datetime(2022, 6, 28, 19, 44, 37, tzinfo=UTC)
    assert status.schema_name == "gateway_status_v1"
    assert status.online is False


def test_gateway_status_without_serial_is_invalid():
    # Given the constructed v1 status without its serial
    status = fixture_json("everactive-ds/gateway-status-v1.json")
    del status["serial"]

    # When / Then it is refused
    with pytest.raises(InvalidPayload, match="everactive-ds-gateway-status: serial: missing"):
        _status(json.dumps(status))
