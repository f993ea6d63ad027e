"""The dedupe key of a delivery: the provider's event id when it has one, else a body hash.

The key names S3 objects (quarantine, inbox), so a provider id is used as it is only when it
is a short token of key-safe characters; any other id is hashed, which keeps it one stable key.
"""

import hashlib
import json
import re
from typing import Any

from sensorhook.core.flavors import Flavor

_SAFE_PROVIDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def canonical_json(body: Any) -> str:
    """One spelling per JSON value, so a re-sent body with other whitespace or key order
    hashes the same."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_id_for(flavor: Flavor, body: Any) -> str:
    if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP and isinstance(body, dict):
        provider_id = body.get("eventId")
        if isinstance(provider_id, str) and provider_id:
            if _SAFE_PROVIDER_ID.fullmatch(provider_id):
                return f"{flavor.value}:{provider_id}"
            return f"{flavor.value}:id-sha256:{hashlib.sha256(provider_id.encode()).hexdigest()}"
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return f"{flavor.value}:{digest}"
