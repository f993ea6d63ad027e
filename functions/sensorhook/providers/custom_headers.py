"""Custom-header authentication, as Everactive Data Services and Efento webhooks use it.

Both providers forward the key/value headers configured on the webhook with every request (an API
key, a Basic authorization, ...). A request is authentic when every configured header is present
with an equal value: names are case-insensitive (both providers say so), values are compared in
constant time. During a rotation the previous set stays valid until `previous_valid_until`.
"""

import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from sensorhook.core.timestamps import UtcDatetime

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP field name (RFC 9110 token)


class HeadersRejected(Exception):
    """The request lacks a configured header or carries a wrong value; `check` is safe to log."""

    def __init__(self, check: str) -> None:
        super().__init__(check)
        self.check = check


def _lowercase_unique_names(headers: Mapping[str, SecretStr]) -> dict[str, bytes]:
    lowered = {name.lower(): value.get_secret_value().encode() for name, value in headers.items()}
    if len(lowered) != len(headers):
        raise ValueError("header names are case-insensitive: a name is configured twice")
    if not all(_TOKEN.fullmatch(name) for name in lowered):
        raise ValueError("a configured header name is not a valid HTTP field name")
    if not all(lowered.values()):
        raise ValueError("a configured header value is empty")
    return lowered


class HeaderSecret(BaseModel):
    """The header secret document: the current header set and, during a rotation, the previous."""

    # Unknown fields are ignored: the stack creates the document with a generated `placeholder`.
    # No headers at all would authenticate everyone, so that document is refused (fail closed).
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    headers: dict[str, SecretStr] = Field(min_length=1)
    previous_headers: dict[str, SecretStr] = Field(default_factory=dict)
    previous_valid_until: UtcDatetime | None = None

    @model_validator(mode="after")
    def _previous_headers_need_an_end(self) -> Self:
        if self.previous_headers and self.previous_valid_until is None:
            raise ValueError("previous_headers needs previous_valid_until")
        self._header_sets  # noqa: B018 - refuse bad names and values when the document is read
        return self

    @cached_property
    def _header_sets(self) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """Lowercased names and encoded values, computed once per secret version."""
        return _lowercase_unique_names(self.headers), _lowercase_unique_names(self.previous_headers)

    def header_sets(self, now: datetime) -> list[dict[str, bytes]]:
        """The header sets a request may match now (lowercased names, values as bytes)."""
        current, previous = self._header_sets
        if previous and self.previous_valid_until and now < self.previous_valid_until:
            return [current, previous]
        return [current]


def verify_headers(headers: Mapping[str, str], secret: HeaderSecret, now: datetime) -> None:
    """Raise HeadersRejected unless the request carries every header of an allowed set.

    `headers` must have lowercased names (as API Gateway HTTP APIs deliver them). The check
    named on failure is the current set's.
    """
    first_failure: str | None = None
    for expected in secret.header_sets(now):
        failure = _mismatch(headers, expected)
        if failure is None:
            return
        first_failure = first_failure or failure
    raise HeadersRejected(first_failure or "header_missing")


def _mismatch(headers: Mapping[str, str], expected: Mapping[str, bytes]) -> str | None:
    """None when every expected header matches, else the name of the failing check.

    Every expected header is compared, so the time taken does not tell which one was wrong.
    """
    missing = wrong = False
    for name, value in expected.items():
        received = headers.get(name)
        if received is None:
            missing = True
        elif not hmac.compare_digest(received.strip().encode(errors="surrogatepass"), value):
            wrong = True
    if missing:
        return "header_missing"
    return "header_value_mismatch" if wrong else None
