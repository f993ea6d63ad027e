"""Everactive v2020-07 Steam Trap State Change: states, conditions and the trap_state reading."""

import json
from datetime import UTC, datetime

import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.providers.registry import InvalidPayload, normalize
from tests.fixtures.loader import fixture_json, fixture_text

RECEIVED_AT = datetime(2020, 9, 23, 16, 36, 40, tzinfo=UTC)
EVENT_ID = "everactive-v2020-07:state-change-event-id-1"
EXAMPLE = "everactive-v2020/steam-trap-state-change.json"


def _normalize(body: str) -> NormalizedDelivery:
    return normalize(
        Flavor.EVERACTIVE_V2020_STEAM_TRAP, body, event_id=EVENT_ID, received_at=RECEIVED_AT
    )


def _with_end_state(state: str) -> str:
    body = fixture_json(EXAMPLE)
    body["trapEndState"] = state
    return json.dumps(body)


def test_seed_example_becomes_one_state_change_and_one_trap_state_reading():
    # Given the seed's own example body (end state spelled "Blowthough")
    body = fixture_text(EXAMPLE)

    # When it is normalized
    delivery = _normalize(body)

    # Then the state change carries every documented field, the typo resolved to Blowthrough
    (change,) = delivery.steam_trap_changes
    assert change.model_dump() == {
        "event_id": EVENT_ID,
        "trap_id": "steam-trap-id",
        "sensor_mac": "ca:fe:00:01:02:03",
        "changed_at": datetime(2020, 9, 23, 16, 36, 31, tzinfo=UTC),
        "start_state": "Good",
        "end_state": "Blowthrough",
        "end_condition": "Failure",
        "facility": "facility",
        "location": "location",
        "service_tag": "service-tag",
        "asset_id": "asset-id-1",
        "asset_name": "Asset 1",
        "trap_detail_url": "https://api.data.everactive.com/v2020-07/steamtraps/steam-trap-id",
        "trap_insights_url": "https://insights.everactive.com/steamtrap/steam-trap-id",
    }
    # And one text reading records the end state on the sensor's series
    (reading,) = delivery.readings
    assert (reading.provider, reading.sensor_id, reading.sensor_family) == (
        "everactive",
        "ca:fe:00:01:02:03",
        "steam-trap",
    )
    assert (reading.metric, reading.channel, reading.value, reading.unit) == (
        "trap_state",
        "",
        None,
        "",
    )
    assert (reading.text_value, reading.status) == ("Blowthrough", "OK")
    assert reading.measured_at == datetime(2020, 9, 23, 16, 36, 31, tzinfo=UTC)
    assert (reading.event_id, reading.received_at) == (EVENT_ID, RECEIVED_AT)


@pytest.mark.parametrize(
    ("state", "condition"),
    [
        ("Blowthrough", "Failure"),
        ("Good", "Good"),
        ("Intermittent Blowthrough - Light", "Light"),
        ("Intermittent Blowthrough - Medium", "Medium"),
        ("Intermittent Blowthrough - Heavy", "Heavy"),
        ("Leaking By", "Leaking"),
        ("Unexpected Cold Condition", "Cold"),
    ],
)
def test_every_documented_state_maps_to_its_condition(state: str, condition: str):
    # Given a state change ending in a documented state
    # When it is normalized
    (change,) = _normalize(_with_end_state(state)).steam_trap_changes

    # Then the condition is the one the seed lists
    assert (change.end_state, change.end_condition) == (state, condition)


@pytest.mark.parametrize(
    ("sent", "state"),
    [
        ("Blowthough", "Blowthrough"),
        ("intermittent blowthrough-light", "Intermittent Blowthrough - Light"),
        ("LEAKING BY", "Leaking By"),
    ],
)
def test_spelling_variants_resolve_to_the_documented_state(sent: str, state: str):
    (change,) = _normalize(_with_end_state(sent)).steam_trap_changes
    assert change.end_state == state


def test_unknown_future_state_is_kept_with_condition_unknown():
    # Given a state the seed does not list
    # When it is normalized
    delivery = _normalize(_with_end_state("Flooded"))

    # Then it is accepted, kept as sent, with condition Unknown
    (change,) = delivery.steam_trap_changes
    assert (change.end_state, change.end_condition) == ("Flooded", "Unknown")
    assert delivery.readings[0].text_value == "Flooded"


def test_integration_info_is_optional_and_unknown_fields_are_tolerated():
    # Given the example without integrationInfo and with a field the seed does not list
    body = fixture_json(EXAMPLE)
    del body["integrationInfo"]
    body["trapModel"] = "TD-52"

    # When it is normalized
    (change,) = _normalize(json.dumps(body)).steam_trap_changes

    # Then the asset fields are empty and nothing fails
    assert (change.asset_id, change.asset_name) == (None, None)


@pytest.mark.parametrize(
    "field", ["eventId", "eventTimestamp", "sensorMacAddress", "trapID", "trapEndState"]
)
def test_missing_required_field_is_invalid(field: str):
    # Given the example without one of the fields that identify and date the change
    body = fixture_json(EXAMPLE)
    del body[field]

    # When / Then it is refused, naming the field
    with pytest.raises(InvalidPayload) as raised:
        _normalize(json.dumps(body))
    assert str(raised.value) == f"everactive-v2020-07: {field}: missing"
