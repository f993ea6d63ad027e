"""The dedupe key of a delivery: the provider's event id when it has one, else a body hash."""

import hashlib
import json
from typing import Any

from sensorhook.core.flavors import Flavor


def canonical_json(body: Any) -> str:
    """One spelling per JSON value, so a re-sent body with other whitespace or key order
    hashes the same."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_id_for(flavor: Flavor, body: Any) -> str:
    if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP and isinstance(body, dict):
        provider_id = body.get("eventId")
        if isinstance(provider_id, str) and provider_id:
            return f"{flavor.value}:{provider_id}"
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return f"{flavor.value}:{digest}"
