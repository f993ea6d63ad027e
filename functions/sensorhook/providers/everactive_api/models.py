"""The Everactive REST API's shapes: response wrapper, pagination, errors and resources.

Tolerant readers like the webhook models: every resource keeps unknown fields and only what
identifies it is required, so a field the provider adds or drops never breaks a poll. Field
names are snake_case; the JSON keys are their camelCase aliases, as Everactive spells them.
"""

import ipaddress
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from sensorhook.providers.common import UNIX_SECONDS_MAX

_CAMEL_TOLERANT = ConfigDict(
    extra="allow", alias_generator=to_camel, populate_by_name=True, frozen=True
)
_MAX_ERROR_TEXT = 200  # of a non-JSON error body: enough to diagnose, never a whole page


class ApiFlavor(StrEnum):
    DATA_SERVICES = "data-services"
    V2020_07 = "v2020-07"


class SortDirection(StrEnum):
    ASC = "asc"
    DESC = "desc"


class WebhookEventType(StrEnum):
    """The event types the seeds name; `Webhook.event_type` stays a str for ones added later."""

    SENSOR_READING = "sensor_reading"
    GATEWAY_STATUS = "gateway_status"


class ClientCredentials(BaseModel):
    """The Secrets Manager JSON of an API credentials secret."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(min_length=1)


class AccessToken(BaseModel):
    """The token endpoint's answer (`token.json`); unwrapped if a `data` wrapper is present."""

    model_config = ConfigDict(frozen=True, extra="allow")

    access_token: SecretStr = Field(min_length=1)
    expires_in: float = Field(default=3600, ge=0)  # RFC 6749 makes it optional
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a credential


class PaginationInfo(BaseModel):
    model_config = _CAMEL_TOLERANT

    page: int = 1
    page_size: int | None = None
    total_items: int | None = None
    total_pages: int = 1


class FieldError(BaseModel):
    """One per-field entry of an error body, e.g. `sensor.macAddress` and why it is wrong."""

    model_config = ConfigDict(frozen=True, extra="allow")

    code: str | None = None
    field: str | None = None
    message: str | None = None

    def __str__(self) -> str:
        return f"{self.field or '<request>'}: {self.message or self.code or 'invalid'}"


class ApiError(Exception):
    """A call the provider refused or could not answer, after any retries.

    `status` is None when no HTTP answer came back (connection failure, timeout).
    """

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        errors: list[FieldError] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []
        details = "; ".join(str(error) for error in self.errors)
        super().__init__(
            f"{status if status is not None else 'no response'} {code or 'error'}: {message}"
            + (f" ({details})" if details else "")
        )


class AuthenticationFailed(ApiError):
    """The token endpoint refused the credentials, or a fresh token was refused too."""


class NotFound(ApiError):
    """404: the resource (a webhook, a sensor) does not exist in the provider."""


class RateLimited(ApiError):
    """Still 429 after every attempt."""


class ProviderUnavailable(ApiError):
    """Still 5xx, or no answer at all, after every attempt."""


class PageLimitExceeded(ApiError):
    """A listing claimed more pages than the client's hard cap: never walk forever."""


class InvalidWebhookSpec(ValueError):
    """A webhook body the provider would refuse, caught before calling it."""


def api_error_from_response(status: int, body: bytes) -> ApiError:
    """The seeds' error format `{"code","message","errors":[{"code","field","message"}]}`.

    Tolerates an `error` wrapper, OAuth2's `{"error","error_description"}` and non-JSON bodies
    (a proxy's HTML page), whose text is shortened into the message.
    """
    document: Any = None
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        document = document["error"]
    code: str | None = None
    message = ""
    errors: list[FieldError] = []
    if isinstance(document, dict):
        code = document.get("code") if isinstance(document.get("code"), str) else None
        raw_message = document.get("message")
        message = raw_message if isinstance(raw_message, str) else ""
        if code is None and isinstance(document.get("error"), str):  # OAuth2 (RFC 6749 5.2)
            code = document["error"]
            description = document.get("error_description")
            message = message or (description if isinstance(description, str) else "")
        for entry in document.get("errors") or []:
            if isinstance(entry, dict):
                try:
                    errors.append(FieldError.model_validate(entry))
                except ValidationError:
                    errors.append(FieldError(message=str(entry)[:_MAX_ERROR_TEXT]))
            elif isinstance(entry, str):
                errors.append(FieldError(message=entry[:_MAX_ERROR_TEXT]))
    elif body:
        message = body.decode("utf-8", errors="replace").strip()[:_MAX_ERROR_TEXT]
    error_type: type[ApiError] = {
        401: AuthenticationFailed,
        403: AuthenticationFailed,
        404: NotFound,
        429: RateLimited,
    }.get(status, ProviderUnavailable if status >= 500 else ApiError)
    return error_type(status, code, message or f"HTTP {status}", errors)


def _utc_or_none(value: Any) -> datetime | None:
    """Unix seconds (or milliseconds), ISO 8601, or a reading object with `timestamp`/
    `readingDate`; anything unreadable is None rather than a failed poll."""
    if isinstance(value, dict):
        value = value.get("timestamp", value.get("readingDate"))
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, int | float):
            seconds = value / 1000 if value > UNIX_SECONDS_MAX else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str) and value:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


TolerantTimestamp = Annotated[datetime | None, BeforeValidator(_utc_or_none)]


class Health(BaseModel):
    """`/health` (the sample is not wrapped in `data`)."""

    model_config = _CAMEL_TOLERANT

    ok: bool = False
    version: str | None = None


class Gateway(BaseModel):
    """An Evergateway. The seeds give no schema for its last contact, so both spellings seen
    in Everactive's APIs are read, as unix seconds or ISO 8601."""

    model_config = _CAMEL_TOLERANT

    serial_number: str = Field(
        validation_alias=AliasChoices("serialNumber", "serial_number", "serial")
    )
    id: str | None = None
    name: str | None = None
    location: str | None = None
    status: str | None = None
    last_reading: TolerantTimestamp = None
    last_seen: TolerantTimestamp = Field(
        default=None, validation_alias=AliasChoices("lastSeen", "last_seen", "lastSeenAt")
    )

    @property
    def last_contact(self) -> datetime | None:
        """The latest sign of life the provider reports, whichever field carried it."""
        moments = [moment for moment in (self.last_reading, self.last_seen) if moment]
        return max(moments, default=None)


class Sensor(BaseModel):
    """An Eversensor as `/eversensors` lists it (`eversensors-list.json`)."""

    model_config = _CAMEL_TOLERANT

    mac_address: str
    type: str | None = None
    last_reading: dict[str, Any] | None = None

    @property
    def last_reading_at(self) -> datetime | None:
        return _utc_or_none(self.last_reading)

    @property
    def gateway_serial_number(self) -> str | None:
        reading = self.last_reading or {}
        serial = reading.get("gatewaySerialNumber")
        return serial if isinstance(serial, str) else None


class WebhookHeader(BaseModel):
    """One forwarded header. The seed says "key-value pairs" without the JSON shape; this is
    our reading. The value often is a shared secret, so it is a SecretStr (equality compares
    the values, so drift detection still works)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    key: str = Field(min_length=1)
    value: SecretStr


class WebhookSpec(BaseModel):
    """The body of a create or update: what a subscription should be."""

    model_config = _CAMEL_TOLERANT

    callback_url: str
    event_type: str
    enabled: bool = True
    headers: list[WebhookHeader] = Field(default_factory=list)

    @field_validator("headers")
    @classmethod
    def _unique_header_names(cls, headers: list[WebhookHeader]) -> list[WebhookHeader]:
        names = [header.key.lower() for header in headers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"header names must be unique ignoring case: {', '.join(duplicates)}")
        return headers

    @field_validator("callback_url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("callback URL must be an absolute http(s) URL")
        return url

    def body(self) -> dict[str, Any]:
        """The JSON body, header values revealed (they are the point of sending it)."""
        return {
            "callbackUrl": self.callback_url,
            "eventType": self.event_type,
            "enabled": self.enabled,
            "headers": [
                {"key": header.key, "value": header.value.get_secret_value()}
                for header in self.headers
            ],
        }

    def check_callback(self, *, allow_http_loopback: bool) -> None:
        """HTTPS, as both seeds require; plain http only to a loopback host, when the local
        mode says so explicitly. Raises InvalidWebhookSpec."""
        parts = urlsplit(self.callback_url)
        if parts.scheme == "https":
            return
        if allow_http_loopback and _is_loopback(parts.hostname or ""):
            return
        raise InvalidWebhookSpec("callback URL must use HTTPS")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Webhook(BaseModel):
    """A subscription as the provider returns it. `secret` is generated by v2020-07."""

    model_config = _CAMEL_TOLERANT

    id: str
    callback_url: str | None = None
    event_type: str | None = None
    enabled: bool = True
    headers: list[WebhookHeader] = Field(default_factory=list)
    secret: SecretStr | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _null_is_empty(cls, headers: Any) -> Any:
        return [] if headers is None else headers
