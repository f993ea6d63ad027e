"""The registry: one entry for every flavor, and failures that are safe to store."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.providers.registry import InvalidPayload, normalize
from tests.fixtures.loader import fixture_text, sample_text

RECEIVED_AT = datetime(2022, 6, 28, 20, 20, 5, tzinfo=UTC)

BODIES = {
    Flavor.EVERACTIVE_V2020_STEAM_TRAP: fixture_text(
        "everactive-v2020/steam-trap-state-change.json"
    ),
    Flavor.EVERACTIVE_DS_SENSOR_READING: sample_text("everactive-ds/sensor-reading-mhm.json"),
    Flavor.EVERACTIVE_DS_GATEWAY_STATUS: sample_text("everactive-ds/gateway-status-v3.json"),
    Flavor.EFENTO_MEASUREMENTS: fixture_text("efento/example-1-value-change.json"),
}


def test_every_flavor_has_an_adapter():
    assert set(BODIES) == set(Flavor)


@pytest.mark.parametrize("flavor", list(Flavor))
def test_each_flavor_normalizes_its_own_body(flavor: Flavor):
    # Given a real or constructed body of the flavor
    # When it is normalized
    delivery = normalize(flavor, BODIES[flavor], event_id="id-1", received_at=RECEIVED_AT)

    # Then it yields records, all stamped with the delivery's identity
    assert delivery.readings or delivery.gateway_statuses
    assert {(r.event_id, r.received_at) for r in delivery.readings} <= {("id-1", RECEIVED_AT)}


@pytest.mark.parametrize("flavor", list(Flavor))
@pytest.mark.parametrize("body", ["", "{", "not json", '{"a": NaN}', '{"a": Infinity}'])
def test_non_json_body_is_invalid(flavor: Flavor, body: str):
    with pytest.raises(InvalidPayload, match=rf"^{flavor.value}: body is not JSON$"):
        normalize(flavor, body, event_id="id-1", received_at=RECEIVED_AT)


@pytest.mark.parametrize("flavor", list(Flavor))
@pytest.mark.parametrize("body", ["[]", "42", '"text"', "null", "{}"])
def test_json_of_the_wrong_shape_is_invalid(flavor: Flavor, body: str):
    with pytest.raises(InvalidPayload, match=rf"^{flavor.value}: "):
        normalize(flavor, body, event_id="id-1", received_at=RECEIVED_AT)


def test_invalid_payload_message_never_echoes_values():
    # Given a reading whose required fields hold values that look like secrets
    body = json.loads(BODIES[Flavor.EVERACTIVE_DS_SENSOR_READING])
    body["macAddress"] = {"token": "s3cr3t-value"}
    body["timestamp"] = "Bearer abc.def"

    # When it is normalized
    with pytest.raises(InvalidPayload) as raised:
        normalize(
            Flavor.EVERACTIVE_DS_SENSOR_READING,
            json.dumps(body),
            event_id="id-1",
            received_at=RECEIVED_AT,
        )

    # Then the message has locations and error types only
    message = str(raised.value)
    assert "s3cr3t" not in message and "Bearer" not in message
    assert message == (
        "everactive-ds-sensor-reading: macAddress: string_type; timestamp: int_parsing"
    )


def test_many_errors_are_capped():
    # Given an Efento batch with many invalid events
    body = {
        "measurementPointId": 1,
        "firstMeasurementTimestamp": 0,
        "lastMeasurementTimestamp": 60,
        "measurementsEvents": [
            {"channelNumber": 1, "channelType": "TEMPERATURE", "events": [{"period": 0}] * 12}
        ],
    }

    # When / Then the message lists ten problems and counts the rest
    with pytest.raises(InvalidPayload, match=r"; and 14 more$"):
        normalize(
            Flavor.EFENTO_MEASUREMENTS, json.dumps(body), event_id="i", received_at=RECEIVED_AT
        )


def test_received_at_is_stored_in_utc():
    # Given a receive time with a non-UTC offset
    received = datetime(2022, 6, 28, 22, 20, 5, tzinfo=timezone(timedelta(hours=2)))

    # When a body is normalized
    delivery = normalize(
        Flavor.EVERACTIVE_DS_SENSOR_READING,
        BODIES[Flavor.EVERACTIVE_DS_SENSOR_READING],
        event_id="id-1",
        received_at=received,
    )

    # Then readings carry the same instant in UTC
    assert {r.received_at.utcoffset() for r in delivery.readings} == {timedelta(0)}
    assert delivery.readings[0].received_at == RECEIVED_AT


@pytest.mark.parametrize("flavor", list(Flavor))
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_body_is_invalid_not_a_crash(flavor: Flavor, depth: int):
    # Given an authentic body nested about as deep as the interpreter can parse, or far deeper
    body = '{"a":' * depth + "1" + "}" * depth

    # When it is normalized
    # Then it is an invalid payload (quarantined), not a RecursionError (retried, then DLQ)
    with pytest.raises(InvalidPayload, match=rf"^{flavor.value}: body is nested too deeply$"):
        normalize(flavor, body, event_id="id-1", received_at=RECEIVED_AT)


@pytest.mark.parametrize("value", ["1e400", "-1e400", "1e200"], ids=["inf", "-inf", "1e200"])
def test_a_value_the_canonical_reading_refuses_is_an_invalid_payload(value: str):
    # Given an Efento body valid for Efento's models whose value no store can hold (it overflows
    # to infinity as a float, or is beyond DynamoDB's range): the canonical Reading refuses it
    body = BODIES[Flavor.EFENTO_MEASUREMENTS].replace('"value": 20,', f'"value": {value},')
    assert value in body

    # When it is normalized
    with pytest.raises(InvalidPayload) as raised:
        normalize(Flavor.EFENTO_MEASUREMENTS, body, event_id="id-1", received_at=RECEIVED_AT)

    # Then the canonical model's error is the payload's (quarantine, not a retried crash),
    # naming the location and not the value
    message = str(raised.value)
    assert message.startswith("efento-measurements: readings.0.value: ")
    assert "1e" not in message and "inf" not in message
