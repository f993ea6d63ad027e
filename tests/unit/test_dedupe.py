"""The dedupe key names S3 objects: a provider's event id is used only when it is key-safe."""

import hashlib
import json

import pytest

from sensorhook.core.dedupe import canonical_json, event_id_for
from sensorhook.core.flavors import Flavor
from tests.fixtures.loader import fixture_text, sample_json

STEAM_TRAP = Flavor.EVERACTIVE_V2020_STEAM_TRAP


@pytest.mark.parametrize(
    "provider_id",
    ["state-change-event-id-1", "6f1c2a0e-5b3d-4c1e-9a77-0d2b8e1f4a10", "a.b:c_d-e", "x" * 128],
)
def test_a_short_safe_provider_id_is_the_key_as_it_is(provider_id: str) -> None:
    assert event_id_for(STEAM_TRAP, {"eventId": provider_id}) == f"{STEAM_TRAP.value}:{provider_id}"


@pytest.mark.parametrize(
    "provider_id",
    ["../../raw/provider=everactive/x", "a b", "id/with/slashes", "é", "x" * 129, "a\nb"],
)
def test_any_other_provider_id_is_hashed_into_a_safe_stable_key(provider_id: str) -> None:
    # Given a provider id that would change an S3 key's path or exceed a sane length
    body = {"eventId": provider_id, "eventTimestamp": 1600878991}

    # When its dedupe key is derived
    key = event_id_for(STEAM_TRAP, body)

    # Then it is the id's SHA-256, the same for a re-send with other fields
    digest = hashlib.sha256(provider_id.encode()).hexdigest()
    assert key == f"{STEAM_TRAP.value}:id-sha256:{digest}"
    assert event_id_for(STEAM_TRAP, {"eventId": provider_id}) == key


def test_copies_of_one_reading_relayed_differently_share_one_key() -> None:
    # Given the real reading and a copy relayed by another gateway with another packet counter
    body = sample_json("everactive-ds/sensor-reading-mhm.json")
    copy = {**body, "gatewaySerialNumber": "SYN0002", "packetNumberGateway": 1}

    # Then both have one key, and a reading of the same sensor a minute later has another
    key = event_id_for(Flavor.EVERACTIVE_DS_SENSOR_READING, body)
    assert event_id_for(Flavor.EVERACTIVE_DS_SENSOR_READING, copy) == key
    later = {**body, "timestamp": body["timestamp"] + 60, "readingDate": "2022-06-28T20:20:51Z"}
    assert event_id_for(Flavor.EVERACTIVE_DS_SENSOR_READING, later) != key
    other_sensor = {**body, "macAddress": "01:01:01:ff:fe:00:0c:ff"}
    assert event_id_for(Flavor.EVERACTIVE_DS_SENSOR_READING, other_sensor) != key
    # and the reading time is the same instant whichever field or spelling carries it
    only_date = {k: v for k, v in body.items() if k != "timestamp"}
    assert event_id_for(Flavor.EVERACTIVE_DS_SENSOR_READING, only_date) == key
    offset = {**only_date, "readingDate": "2022-06-28T22:19:51+02:00"}
    assert event_id_for(Flavor.EVERACTIVE_DS_SENSOR_READING, offset) == key


def test_a_gateway_status_is_keyed_by_gateway_and_report_time() -> None:
    body = sample_json("everactive-ds/gateway-status-v3.json")
    flavor = Flavor.EVERACTIVE_DS_GATEWAY_STATUS
    key = event_id_for(flavor, body)

    assert event_id_for(flavor, {**body, "Services": {}}) == key
    assert event_id_for(flavor, {**body, "timestamp": "2022-06-28T19:49:37Z"}) != key
    assert event_id_for(flavor, {**body, "serial": "SYN0002"}) != key


def test_an_efento_batch_transmitted_twice_is_one_delivery_but_other_events_are_not() -> None:
    body = json.loads(fixture_text("efento/multi-channel-batch.json"))
    flavor = Flavor.EFENTO_MEASUREMENTS
    key = event_id_for(flavor, body)

    retransmitted = {**body, "measurementsReceivedAt": "2030-01-01T00:00:00Z", "signalStrength": -1}
    assert event_id_for(flavor, retransmitted) == key
    assert event_id_for(flavor, [retransmitted]) == event_id_for(flavor, [body])
    other_events = json.loads(json.dumps(body))
    other_events["measurementsEvents"][0]["events"][0]["value"] = 12345.0
    assert event_id_for(flavor, other_events) != key


@pytest.mark.parametrize(
    "body",
    [
        {"macAddress": "aa"},
        {"readingDate": "2022-06-28T20:19:51Z"},
        {"macAddress": 1, "timestamp": 1},
        [],
    ],
)
def test_a_reading_without_its_identity_falls_back_to_the_body_hash(body: object) -> None:
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    assert event_id_for(Flavor.EVERACTIVE_DS_SENSOR_READING, body) == (
        f"{Flavor.EVERACTIVE_DS_SENSOR_READING.value}:{digest}"
    )
