"""Turning a payload into one HTTP request as the provider would send it, or with a chosen fault,
tagged with the outcome sensorhook must give."""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from local.emulator.installation import Payload
from local.emulator.signing import DigestMode, signed_headers
from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import ROUTES, Flavor

Clock = Callable[[], datetime]

STALE_SKEW_MIN_S = 360  # comfortably past the receiver's 300 s window, whatever the latency
STALE_SKEW_MAX_S = 3600


def utc_now() -> datetime:
    return datetime.now(UTC)


class Intent(StrEnum):
    """What sensorhook should do with a request."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # answered 2xx, but must not produce a second reading
    UNAUTHORIZED = "rejected-401"
    MALFORMED = "rejected-400"

    @property
    def expected_status(self) -> int:
        return {"rejected-401": 401, "rejected-400": 400}.get(self.value, 202)


class Fault(StrEnum):
    NONE = "none"
    DUPLICATE = "duplicate"
    STALE_DATE = "stale-date"
    BAD_SIGNATURE = "bad-signature"  # or, for header-auth flavors, a wrong or missing header
    MALFORMED = "malformed"


class _V2020Secret(BaseModel):
    model_config = ConfigDict(extra="allow")
    keys: dict[str, str] = Field(min_length=1)


class _HeaderSecret(BaseModel):
    model_config = ConfigDict(extra="allow")
    headers: dict[str, str] = Field(min_length=1)


class Secrets(BaseModel):
    """The three receiver secrets, each in its Secrets Manager JSON shape
    (docs/architecture.md), so one file can seed both the local stack and the emulator.

    Sections are named after the receiver's settings without `_secret_arn` (`v2020_signing`,
    `ds_header`, `efento_header`); the environment variable names themselves are accepted too,
    and so is the local runtime's `.local/endpoints.json` (its `webhook_secrets`). The defaults
    are the local stack's demo values. The emulator signs with the first `keys` entry (sorted
    by key id) and sends every configured header; rotation fields are accepted and ignored.
    """

    model_config = ConfigDict(extra="forbid")

    v2020_signing: _V2020Secret = _V2020Secret(
        keys={"demo-subscription": "demo-v2020-signing-secret"}
    )
    ds_header: _HeaderSecret = _HeaderSecret(headers={"x-api-key": "demo-data-services-key"})
    efento_header: _HeaderSecret = _HeaderSecret(headers={"x-efento-token": "demo-efento-token"})

    @model_validator(mode="before")
    @classmethod
    def _accept_environment_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("webhook_secrets"), dict):
            data = {name: item.get("value") for name, item in data["webhook_secrets"].items()}
        return {name.lower().removesuffix("_secret_arn"): value for name, value in data.items()}

    @classmethod
    def from_file(cls, path: Path) -> "Secrets":
        return cls.model_validate_json(path.read_text())

    @property
    def v2020_key(self) -> tuple[str, str]:
        key_id = sorted(self.v2020_signing.keys)[0]
        return key_id, self.v2020_signing.keys[key_id]

    def headers_for(self, flavor: Flavor) -> dict[str, str]:
        if flavor is Flavor.EFENTO_MEASUREMENTS:
            return dict(self.efento_header.headers)
        return dict(self.ds_header.headers)


@dataclass(frozen=True)
class Delivery:
    """One request, ready to send, and what it should come to."""

    flavor: Flavor
    url: str
    body: bytes
    headers: dict[str, str]
    intent: Intent
    fault: Fault
    payload: Payload
    event_id: str | None  # the receiver's dedupe key; None when the body is not JSON
    detail: str = ""  # which variant of the fault, e.g. "wrong secret"

    @property
    def expected_status(self) -> int:
        return self.intent.expected_status


def encode(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class DeliveryFactory:
    """Builds requests to `base_url` + the flavor's route (or always to `exact_url`)."""

    secrets: Secrets
    base_url: str = ""
    exact_url: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    clock: Clock = utc_now
    digest_mode: DigestMode = DigestMode.SHA256

    def __post_init__(self) -> None:
        for url in (self.base_url, self.exact_url):
            if url and urlsplit(url).scheme not in ("http", "https"):
                raise ValueError("the target URL must start with http:// or https://")

    def url_for(self, flavor: Flavor) -> str:
        return self.exact_url or self.base_url.rstrip("/") + ROUTES[flavor]

    def authentic(self, payload: Payload) -> Delivery:
        fault = Fault.STALE_DATE if payload.stale else Fault.NONE
        body = encode(payload.body)
        return self._delivery(payload, body, self._headers(payload.flavor, body), fault=fault)

    def with_fault(self, payload: Payload, fault: Fault) -> Delivery:
        """`payload` sent with `fault`; DUPLICATE needs an earlier delivery, see `duplicate`."""
        flavor = payload.flavor
        body = encode(payload.body)
        if fault is Fault.MALFORMED:
            broken = body[: self.rng.randint(1, len(body) - 1)]  # a strict prefix never parses
            headers = self._headers(flavor, broken)
            return self._delivery(payload, broken, headers, fault=fault, intent=Intent.MALFORMED)
        if fault is Fault.STALE_DATE:
            if flavor is not Flavor.EVERACTIVE_V2020_STEAM_TRAP:
                raise ValueError(
                    "a stale Date only exists for signed requests; stale data is "
                    "an Installation payload with stale=True"
                )
            skew = self.rng.randint(STALE_SKEW_MIN_S, STALE_SKEW_MAX_S) * self.rng.choice((-1, 1))
            headers = self._headers(flavor, body, date=self.clock() + timedelta(seconds=skew))
            detail = f"Date off by {skew:+d} s"
            return self._delivery(
                payload, body, headers, fault=fault, intent=Intent.UNAUTHORIZED, detail=detail
            )
        if fault is Fault.BAD_SIGNATURE:
            return self._bad_auth(payload, body)
        return self._delivery(payload, body, self._headers(flavor, body), fault=Fault.NONE)

    def duplicate(self, original: Delivery) -> Delivery:
        """The exact same body again; a signed one is re-signed now, as a retry would be."""
        headers = self._headers(original.flavor, original.body)
        return Delivery(
            original.flavor,
            original.url,
            original.body,
            headers,
            Intent.DUPLICATE,
            Fault.DUPLICATE,
            original.payload,
            original.event_id,
        )

    def _bad_auth(self, payload: Payload, body: bytes) -> Delivery:
        flavor = payload.flavor
        if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP:
            key_id, secret = self.secrets.v2020_key
            variant = self.rng.choice(("wrong secret", "unknown keyId", "body altered"))
            if variant == "wrong secret":
                headers = self._headers(flavor, body, secret=secret + "-wrong")
            elif variant == "unknown keyId":
                headers = self._headers(flavor, body, key_id=key_id + "-unknown")
            else:
                headers = self._headers(flavor, body)
                body = _same_length_alteration(body)
        else:
            headers = self._headers(flavor, body)
            name = self.rng.choice(sorted(self.secrets.headers_for(flavor)))
            variant = self.rng.choice(("wrong header value", "missing header"))
            if variant == "missing header":
                del headers[name]
            else:
                headers[name] = headers[name] + "x"
        return self._delivery(
            payload,
            body,
            headers,
            fault=Fault.BAD_SIGNATURE,
            intent=Intent.UNAUTHORIZED,
            detail=variant,
        )

    def _headers(
        self,
        flavor: Flavor,
        body: bytes,
        *,
        date: datetime | None = None,
        key_id: str | None = None,
        secret: str | None = None,
    ) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"sensorhook-emulator ({flavor.provider})",
        }
        if flavor is not Flavor.EVERACTIVE_V2020_STEAM_TRAP:
            headers["Content-Length"] = str(len(body))
            return headers | self.secrets.headers_for(flavor)
        configured_key_id, configured_secret = self.secrets.v2020_key
        split = urlsplit(self.url_for(flavor))
        path = split.path or "/"
        if split.query:
            path += "?" + split.query
        return headers | signed_headers(
            method="POST",
            path=path,
            host=split.netloc,
            body=body,
            key_id=key_id or configured_key_id,
            secret=secret or configured_secret,
            date=date or self.clock(),
            digest_mode=self.digest_mode,
        )

    def _delivery(
        self,
        payload: Payload,
        body: bytes,
        headers: dict[str, str],
        *,
        fault: Fault,
        intent: Intent = Intent.ACCEPTED,
        detail: str = "",
    ) -> Delivery:
        try:
            event_id: str | None = event_id_for(payload.flavor, json.loads(body))
        except ValueError:
            event_id = None
        return Delivery(
            payload.flavor,
            self.url_for(payload.flavor),
            body,
            headers,
            intent,
            fault,
            payload,
            event_id,
            detail,
        )


def _same_length_alteration(body: bytes) -> bytes:
    """Flip the last digit in the body: still JSON, same Content-Length, different Digest."""
    text = bytearray(body)
    for index in range(len(text) - 1, -1, -1):
        if chr(text[index]).isdigit():
            text[index] = ord("1") if text[index] != ord("1") else ord("2")
            return bytes(text)
    raise ValueError("no digit to alter")
