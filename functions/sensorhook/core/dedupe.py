"""The dedupe key of a delivery: what makes two deliveries "the same", per flavor.

- v2020-07 steam trap state change: the provider's `eventId`.
- Data Services sensor_reading: the sensor (`macAddress`) and its reading time. Two copies of
  one reading relayed by different gateways differ in the relay fields (`gatewaySerialNumber`,
  `packetNumberGateway`), so a body hash would let both through.
- Data Services gateway_status: the gateway (`serial`) and its report time.
- Efento measurements: the body without its transmission fields (`measurementsReceivedAt`,
  `signalStrength` of each batch). A batch is defined by all its events on all channels, so
  two batches of one measurement point over one window but with other events are both kept;
  a second transmission of the same measurements is one delivery.
- A body without the fields its key needs (it will be quarantined) falls back to the hash of
  the whole body.

The key names S3 objects (quarantine, inbox), so a provider id is used as it is only when it
is a short token of key-safe characters; anything else is hashed, which keeps one stable key.
Identity hashes are domain-separated from body hashes, so no body can collide with them.
docs/architecture.md ("Dedupe keys") documents these; keep the two in step.
"""

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from sensorhook.core.flavors import Flavor

_SAFE_PROVIDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Everactive's aliases for the gateway serial and report time (providers/everactive_ds/models.py)
_GATEWAY_SERIAL_KEYS = ("serial", "Serial", "serialNumber", "gatewaySerialNumber", "gatewaySerial")
_GATEWAY_TIME_KEYS = ("timestamp", "Timestamp", "reportedAt")
# What one Efento transmission of a batch adds to its measurements.
EFENTO_TRANSMISSION_FIELDS = ("measurementsReceivedAt", "signalStrength")


def canonical_json(body: Any) -> str:
    """One spelling per JSON value, so a re-sent body with other whitespace or key order
    hashes the same."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _instant(value: Any) -> str | None:
    """A JSON time (unix seconds or ISO 8601 text; naive means UTC) as fixed UTC text."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        else:
            return None
        return moment.astimezone(UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return None


def _first(body: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((body[key] for key in keys if key in body), None)


def _identity(flavor: Flavor, body: Any) -> Any:
    """What makes a delivery of `flavor` the same delivery; None when the body lacks it."""
    if flavor is Flavor.EFENTO_MEASUREMENTS:
        return _without_transmission(body)
    if not isinstance(body, dict):
        return None
    if flavor is Flavor.EVERACTIVE_DS_SENSOR_READING:
        sensor = body.get("macAddress")
        at = _instant(body["timestamp"]) if body.get("timestamp") is not None else None
        at = at or _instant(body.get("readingDate"))
        identity = {"sensor": sensor, "at": at}
    elif flavor is Flavor.EVERACTIVE_DS_GATEWAY_STATUS:
        identity = {
            "gateway": _first(body, _GATEWAY_SERIAL_KEYS),
            "at": _instant(_first(body, _GATEWAY_TIME_KEYS)),
        }
    else:
        return None
    if not all(isinstance(part, str) and part for part in identity.values()):
        return None
    return identity


def _without_transmission(body: Any) -> Any:
    """The Efento body (one batch, a list of them, or `{"measurements": [...]}`) without the
    fields of its transmission. One level only: a body nested any deeper is not a batch."""
    if isinstance(body, list):
        return [_batch_without_transmission(batch) for batch in body]
    if (
        isinstance(body, dict)
        and "measurementPointId" not in body
        and isinstance(body.get("measurements"), list)
    ):
        return {
            **body,
            "measurements": [_batch_without_transmission(b) for b in body["measurements"]],
        }
    return _batch_without_transmission(body)


def _batch_without_transmission(batch: Any) -> Any:
    if not isinstance(batch, dict):
        return batch
    return {key: value for key, value in batch.items() if key not in EFENTO_TRANSMISSION_FIELDS}


def event_id_for(flavor: Flavor, body: Any) -> str:
    if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP and isinstance(body, dict):
        provider_id = body.get("eventId")
        if isinstance(provider_id, str) and provider_id:
            if _SAFE_PROVIDER_ID.fullmatch(provider_id):
                return f"{flavor.value}:{provider_id}"
            return f"{flavor.value}:id-sha256:{hashlib.sha256(provider_id.encode()).hexdigest()}"
    identity = _identity(flavor, body)
    if identity is not None:
        # a prefix no canonical JSON starts with: an identity never hashes like a body
        digest = hashlib.sha256(f"identity\n{canonical_json(identity)}".encode()).hexdigest()
    else:
        digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return f"{flavor.value}:{digest}"
