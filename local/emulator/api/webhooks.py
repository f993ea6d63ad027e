"""Webhook subscriptions: the seeds' validation, and the registry both API flavors share.

Data Services (everactive-ds-webhooks-api): `callbackUrl` required and HTTPS, `eventType` one of
`gateway_status` / `sensor_reading` (`threshold_crossed` "is not yet available"), `enabled` a
boolean, `headers` an array of key-value pairs (our reading of the shape: `{"key", "value"}`)
whose names are unique ignoring case. v2020-07: HTTPS endpoints too, one event type (the Steam
Trap State Change), and "all subscriptions are saved with a generated webhook secret".
"""

import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from local.emulator.api.problems import FieldError, validation_failed
from sensorhook.core.flavors import Flavor

DS_EVENT_TYPES = {
    "sensor_reading": Flavor.EVERACTIVE_DS_SENSOR_READING,
    "gateway_status": Flavor.EVERACTIVE_DS_GATEWAY_STATUS,
}
NOT_YET_AVAILABLE = frozenset({"threshold_crossed"})
V2020_EVENT_TYPE = "steam_trap_state_change"  # the seed names the event, not its API value


@dataclass(frozen=True)
class Target:
    """Where and how the emulator posts one kind of event for one enabled subscription."""

    webhook_id: str
    flavor: Flavor
    url: str
    headers: dict[str, str]
    secret: str | None = None  # v2020-07: signs each request; the key id is the webhook id


def validated_spec(
    body: Any,
    *,
    current: dict[str, Any] | None,
    event_types: frozenset[str],
    default_event_type: str | None,
    allow_http_loopback: bool,
) -> dict[str, Any]:
    """The webhook's fields after a create (`current` None) or an update (fields not given
    keep their `current` value), with every problem reported in one 400."""
    if not isinstance(body, dict):
        raise validation_failed(
            [FieldError("err_invalid_body", "body", "the body must be a JSON object")]
        )
    base = current or {"enabled": True, "headers": []}
    if default_event_type is not None:
        base = {"eventType": default_event_type} | base
    spec = base | {
        name: body[name]
        for name in ("callbackUrl", "eventType", "enabled", "headers")
        if name in body
    }
    errors = [
        *_callback_url_errors(spec.get("callbackUrl"), allow_http_loopback),
        *_event_type_errors(spec.get("eventType"), event_types),
        *_header_errors(spec.get("headers")),
    ]
    if not isinstance(spec.get("enabled"), bool):
        errors.append(FieldError("err_invalid_value", "enabled", "enabled must be true or false"))
    if errors:
        raise validation_failed(errors)
    return {
        "callbackUrl": spec["callbackUrl"],
        "eventType": spec["eventType"],
        "enabled": spec["enabled"],
        "headers": [{"key": h["key"], "value": h["value"]} for h in spec["headers"]],
    }


def _callback_url_errors(url: Any, allow_http_loopback: bool) -> list[FieldError]:
    if not isinstance(url, str) or not url:
        return [FieldError("err_required", "callbackUrl", "callbackUrl is required")]
    split = urlsplit(url)
    if split.scheme == "https" and split.hostname:
        return []
    if split.scheme == "http" and allow_http_loopback and _is_loopback(split.hostname):
        return []
    return [FieldError("err_invalid_callback_url", "callbackUrl", f"{url} must use HTTPS")]


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _event_type_errors(event_type: Any, allowed: frozenset[str]) -> list[FieldError]:
    if event_type is None:
        return [FieldError("err_required", "eventType", "eventType is required")]
    if event_type in allowed:
        return []
    if event_type in NOT_YET_AVAILABLE:
        return [
            FieldError(
                "err_event_type_not_available", "eventType", f"{event_type} is not yet available"
            )
        ]
    return [
        FieldError(
            "err_invalid_event_type",
            "eventType",
            f"{event_type} is not one of {', '.join(sorted(allowed))}",
        )
    ]


def _header_errors(headers: Any) -> list[FieldError]:
    if not isinstance(headers, list):
        return [FieldError("err_invalid_value", "headers", "headers must be an array")]
    errors = []
    seen: set[str] = set()
    for index, header in enumerate(headers):
        field = f"headers[{index}]"
        if not (
            isinstance(header, dict)
            and isinstance(header.get("key"), str)
            and header["key"].strip()
            and isinstance(header.get("value"), str)
        ):
            errors.append(
                FieldError("err_invalid_header", field, 'a header is {"key": name, "value": text}')
            )
            continue
        name = header["key"].lower()
        if name in seen:
            errors.append(
                FieldError(
                    "err_duplicate_header",
                    f"{field}.key",
                    f"{header['key']} is a duplicate (headers are case-insensitive)",
                )
            )
        seen.add(name)
    return errors


def new_webhook_id() -> str:
    return str(uuid.uuid4())


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def targets(
    ds_webhooks: dict[str, dict[str, Any]], v2020_subscriptions: dict[str, dict[str, Any]]
) -> list[Target]:
    found = [
        Target(
            webhook_id,
            DS_EVENT_TYPES[hook["eventType"]],
            hook["callbackUrl"],
            {h["key"]: h["value"] for h in hook["headers"]},
        )
        for webhook_id, hook in ds_webhooks.items()
        if hook["enabled"]
    ]
    found += [
        Target(
            webhook_id,
            Flavor.EVERACTIVE_V2020_STEAM_TRAP,
            hook["callbackUrl"],
            {h["key"]: h["value"] for h in hook["headers"]},
            secret=hook["secret"],
        )
        for webhook_id, hook in v2020_subscriptions.items()
        if hook["enabled"]
    ]
    return found
