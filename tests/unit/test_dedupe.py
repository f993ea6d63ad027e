"""The dedupe key names S3 objects: a provider's event id is used only when it is key-safe."""

import hashlib

import pytest

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import Flavor

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
