"""Steam Trap State Change -> one SteamTrapStateChanged fact and one `trap_state` reading."""

import re
from datetime import UTC, datetime
from typing import Any

from sensorhook.core.normalized import NormalizedDelivery, SteamTrapStateChanged
from sensorhook.providers.common import as_utc, delivery_of
from sensorhook.providers.everactive_v2020.models import SteamTrapStateChange

PROVIDER = "everactive"
SENSOR_FAMILY = "steam-trap"
SCHEMA_NAME = "everactive-v2020-07/steam-trap-state-change"
UNKNOWN_CONDITION = "Unknown"

# The seed's list of valid states and the condition each one means.
CONDITION_BY_STATE = {
    "Blowthrough": "Failure",
    "Good": "Good",
    "Intermittent Blowthrough - Light": "Light",
    "Intermittent Blowthrough - Medium": "Medium",
    "Intermittent Blowthrough - Heavy": "Heavy",
    "Leaking By": "Leaking",
    "Unexpected Cold Condition": "Cold",
}

_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]+")


def _state_key(state: str) -> str:
    return _NOT_ALPHANUMERIC.sub("", state.lower())


# Matched on letters and digits only, so spacing, dash and case variants of a documented state
# resolve to it. "Blowthough" is the spelling of the seed's own example body.
_STATE_BY_KEY = {_state_key(state): state for state in CONDITION_BY_STATE} | {
    _state_key("Blowthough"): "Blowthrough"
}


def canonical_state(state: str) -> str:
    """The documented spelling of `state`; an undocumented (future) state is kept as sent."""
    return _STATE_BY_KEY.get(_state_key(state), state.strip())


def condition_of(state: str) -> str:
    return CONDITION_BY_STATE.get(canonical_state(state), UNKNOWN_CONDITION)


def normalize_state_change(
    payload: Any, *, event_id: str, received_at: datetime
) -> NormalizedDelivery:
    body = SteamTrapStateChange.model_validate(payload)
    changed_at = datetime.fromtimestamp(body.event_timestamp, UTC)
    end_state = canonical_state(body.trap_end_state)
    info = body.integration_info
    change = SteamTrapStateChanged(
        event_id=event_id,
        trap_id=body.trap_id,
        sensor_mac=body.sensor_mac_address,
        changed_at=changed_at,
        start_state=canonical_state(body.trap_start_state),
        end_state=end_state,
        end_condition=condition_of(end_state),
        facility=body.facility,
        location=body.location,
        service_tag=body.service_tag,
        asset_id=info.asset_id if info else None,
        asset_name=info.name if info else None,
        trap_detail_url=body.trap_detail_url,
        trap_insights_url=body.trap_insights_url,
    )
    reading = {
        "provider": PROVIDER,
        "sensor_id": body.sensor_mac_address,
        "sensor_family": SENSOR_FAMILY,
        "gateway_id": None,
        "metric": "trap_state",
        "channel": "",
        "value": None,
        "unit": "",
        "status": "OK",
        "measured_at": changed_at,
        "received_at": as_utc(received_at),
        "event_id": event_id,
        "schema_name": SCHEMA_NAME,
        "text_value": end_state,
    }
    return delivery_of([reading], steam_trap_changes=[change])
