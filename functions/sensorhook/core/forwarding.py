"""Forwarding: the user's HTTPS endpoints that receive sensorhook's events (docs/forwarding.md).

One model for both sides: infra validates the `forwarding_endpoints` and `forwarding_policy`
keys of cdk.json with it at synth and renders them into the functions' environment; the
forwarder and the endpoint policy read them back with the same model, so both agree on every
rule. The statuses and thresholds are Efento's (seed: efento-cloud-measurement-webhooks).
"""

import json
import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from sensorhook.core.timestamps import UtcDatetime


class EndpointStatus(StrEnum):
    """Exactly Efento's six webhook statuses."""

    NEW = "New"  # configured, never triggered yet
    OK = "OK"  # the last delivery got a 2xx
    NO_RESPONSE = "No response"  # the last delivery timed out or could not connect
    ERROR = "Error"  # the last delivery got any other status
    TEMPORARILY_DISABLED = "Temporarily disabled"  # after N no-responses in a row, for a while
    DISABLED = "Disabled"  # after long without success (or 410 Gone), until an operator enables

    @property
    def enabled(self) -> bool:
        """Deliveries are attempted; otherwise events are kept in the endpoint's backlog."""
        return self not in (EndpointStatus.TEMPORARILY_DISABLED, EndpointStatus.DISABLED)


class SignatureScheme(StrEnum):
    STANDARD_WEBHOOKS = "standard-webhooks"  # webhook-id / webhook-timestamp / webhook-signature
    EVERACTIVE_V2020 = "everactive-v2020-07"  # HTTP Signatures (draft-cavage-12) hmac-sha256


# Headers sensorhook sets itself; a custom header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "date",
        "digest",
        "signature",
        "authorization",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_LOCAL_HOSTS = ("127.0.0.1", "localhost")
# A detail-type pattern: exact, or a prefix ending in `*` (e.g. `readings.*`).
_DETAIL_TYPE = re.compile(r"^[A-Za-z0-9_.:-]+\*?$")


def is_local_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS


class ForwardingEndpoint(BaseModel):
    """One endpoint of `forwarding_endpoints` in cdk.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Efento's webhook limits, which users of that policy know.
    MAX_HEADERS: ClassVar[int] = 5
    MAX_HEADER_CHARS: ClassVar[int] = 512
    MAX_URL_CHARS: ClassVar[int] = 500

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    url: str = Field(max_length=MAX_URL_CHARS)
    detail_types: tuple[str, ...] = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    signature_scheme: SignatureScheme = SignatureScheme.STANDARD_WEBHOOKS
    # v2020-07: the `keyId` a receiver looks its secret up by (Everactive: the subscription id)
    key_id: str | None = Field(default=None, pattern=r'^[^"\\\s]{1,128}$')
    rate_limit_per_second: float = Field(default=10.0, gt=0, le=1000)

    @field_validator("url")
    @classmethod
    def _https_or_local(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value
        if is_local_url(value):
            return value
        raise ValueError("must be an https:// URL (http:// only for 127.0.0.1 or localhost)")

    @field_validator("detail_types")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not _DETAIL_TYPE.match(pattern):
                raise ValueError(
                    f"{pattern!r}: an exact detail-type or a prefix ending in '*' (readings.*)"
                )
        if len(set(value)) != len(value):
            raise ValueError("detail_types must be unique")
        return value

    @field_validator("headers")
    @classmethod
    def _efento_headers(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > cls.MAX_HEADERS:
            raise ValueError(f"at most {cls.MAX_HEADERS} custom headers")
        lowered = [name.lower() for name in value]
        if len(set(lowered)) != len(lowered):
            raise ValueError("header names must be unique ignoring case")
        for name, header_value in value.items():
            if not _HEADER_NAME.fullmatch(name) or len(name) > cls.MAX_HEADER_CHARS:
                raise ValueError(
                    f"header {name[:40]!r}: an HTTP field name of at most "
                    f"{cls.MAX_HEADER_CHARS} characters"
                )
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by sensorhook itself")
            if len(header_value) > cls.MAX_HEADER_CHARS or any(
                ch in header_value for ch in "\r\n\0"
            ):
                raise ValueError(
                    f"header {name!r}: a value of at most {cls.MAX_HEADER_CHARS} characters "
                    "on one line"
                )
        return value

    @model_validator(mode="after")
    def _scheme_fields(self) -> Self:
        if (
            self.key_id is not None
            and self.signature_scheme is not SignatureScheme.EVERACTIVE_V2020
        ):
            raise ValueError("key_id belongs to the everactive-v2020-07 signature scheme")
        return self

    @property
    def signing_key_id(self) -> str:
        return self.key_id or self.name

    def receives(self, detail_type: str) -> bool:
        return any(
            detail_type.startswith(pattern[:-1])
            if pattern.endswith("*")
            else detail_type == pattern
            for pattern in self.detail_types
        )


class ForwardingPolicy(BaseModel):
    """The endpoint policy's thresholds (`forwarding_policy` in cdk.json): Efento's values as
    defaults, and the retry schedule every endpoint shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # SQS cannot hide a message for longer than 12 hours: the longest single retry delay.
    MAX_RETRY_DELAY_SECONDS: ClassVar[int] = 12 * 3600

    no_response_limit: int = Field(default=5, ge=1, le=100)
    temporary_disable_seconds: int = Field(default=6 * 3600, ge=1)
    disable_after_seconds: int = Field(default=30 * 3600, ge=1)
    retry_initial_seconds: float = Field(default=5.0, gt=0)
    retry_multiplier: float = Field(default=4.0, ge=1)
    retry_max_seconds: float = Field(default=10 * 3600, gt=0, le=MAX_RETRY_DELAY_SECONDS)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.retry_initial_seconds > self.retry_max_seconds:
            raise ValueError("retry_initial_seconds must not exceed retry_max_seconds")
        return self

    def retry_delay_ceiling(self, attempt: int) -> float:
        """The backoff before retry number `attempt` (1 = after the first failure), before jitter:
        initial x multiplier^(attempt-1), capped."""
        exponent = max(0, attempt - 1)
        delay = self.retry_initial_seconds * self.retry_multiplier**exponent
        return float(min(delay, self.retry_max_seconds))


def render_endpoints(endpoints: Sequence[ForwardingEndpoint]) -> str:
    """The FORWARDING_ENDPOINTS environment value (infra writes it, the functions read it)."""
    return json.dumps(
        [endpoint.model_dump(mode="json") for endpoint in endpoints], separators=(",", ":")
    )


def parse_endpoints(text: str) -> dict[str, ForwardingEndpoint]:
    return {
        endpoint.name: endpoint
        for endpoint in (ForwardingEndpoint.model_validate(item) for item in json.loads(text))
    }


class EndpointSecret(BaseModel):
    """An endpoint's signing secret document in Secrets Manager.

    `{"secret": "…", "previous_secret": "…", "previous_valid_until": "<ISO UTC>"}`: during a
    rotation the previous secret keeps signing too (Standard Webhooks sends both signatures)
    until `previous_valid_until`. The stack generates `secret`; unknown fields are ignored.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    secret: SecretStr = Field(min_length=1)
    previous_secret: SecretStr | None = None
    previous_valid_until: UtcDatetime | None = None

    @model_validator(mode="after")
    def _previous_needs_an_end(self) -> Self:
        if self.previous_secret is not None and self.previous_valid_until is None:
            raise ValueError("previous_secret needs previous_valid_until")
        return self

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets to sign with now: the current one first."""
        found = [self.secret.get_secret_value()]
        if (
            self.previous_secret is not None
            and self.previous_valid_until is not None
            and now < self.previous_valid_until
        ):
            found.append(self.previous_secret.get_secret_value())
        return found
