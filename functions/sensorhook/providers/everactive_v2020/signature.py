"""HTTP Signatures (draft-cavage-http-signatures-12) as Everactive API v2020-07 signs webhooks.

Everactive signs each POST with the subscription's generated secret (`hmac-sha256`, keyId = the
subscription id) over `(request-target) date digest host content-length`, and sends the body
hash in `Digest: SHA-256=<base64>`. Decisions where the seed leaves room:

- Digest. The seed says the body is "hashed using an SHA-256 algorithm with the webhook secret as
  the key", which reads as HMAC-SHA256(secret, body), while RFC 3230 (which the draft uses)
  means a plain SHA-256(body). Both are accepted; the HMAC reading is checked with the secret
  that verified the signature, so neither reading lets a forged body through.
- Signed headers. `(request-target)`, `date` and `digest` must always be signed; `host` and
  `content-length` must be signed whenever the request carries them (the seed's list). A body or
  target change is then always covered by the signature, and nothing is signed "optionally".
- Signing string. The seed renders the first line as `(request-target) post /`; the draft and
  every implementation (httpsig among them) write `(request-target): post /`. The draft's form is
  verified first and, only when it does not match, the seed's: both are HMACs under the same
  secret, so accepting either lets nothing unsigned through.
- Algorithm. Only `hmac-sha256`. `hs2019` is rejected: in draft-12 it means "whatever the key's
  metadata says", recommending HMAC-SHA512 for symmetric keys, and Everactive never sends it;
  a missing `algorithm` is rejected too, because Everactive always sends it.
- `Date` must be within `max_skew_seconds` (seed: 300) of now, in either direction.
- The signature may come in the `Signature` header (Everactive) or as `Authorization: Signature`
  (the draft's other form); parameters may be separated by whitespace and newlines.

Every failure raises SignatureRejected naming the check; the caller answers 401 whatever it was.
"""

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from sensorhook.core.timestamps import UtcDatetime

ALGORITHM = "hmac-sha256"
REQUEST_TARGET = "(request-target)"
ALWAYS_SIGNED = (REQUEST_TARGET, "date", "digest")
SIGNED_WHEN_PRESENT = ("host", "content-length")
DEFAULT_MAX_SKEW_SECONDS = 300
# What follows `(request-target)` in the signing string: the draft's colon, the seed's space.
DRAFT_TARGET_SEPARATOR = ": "
SEED_TARGET_SEPARATOR = " "

# One `name="value"` (or draft-12's bare integers for created/expires) and its separator.
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"\\]*)"|([0-9]+))\s*(?:,|\Z)')
_AUTHORIZATION_SCHEME = re.compile(r"\s*signature\s+", re.IGNORECASE)
# The IMF-fixdate every HTTP client sends ("Sun, 27 Sep 2020 10:25:56 GMT"), read without the
# general RFC 5322 parser, which costs more than the HMAC; other spellings fall back to it.
_IMF_FIXDATE = re.compile(r"[A-Z][a-z]{2}, (\d\d) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


class SignatureRejected(Exception):
    """The request is not authentically signed; `check` names the failing check (safe to log)."""

    def __init__(self, check: str) -> None:
        super().__init__(check)
        self.check = check


class SigningSecret(BaseModel):
    """The v2020-07 signing secret document: subscription id -> secret, plus a rotation overlap."""

    # Unknown fields are ignored: the stack creates the document with a generated `placeholder`
    # beside `keys`. No keys yet (no subscription) is valid: every keyId is then unknown, a 401.
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    keys: dict[str, SecretStr] = Field(default_factory=dict)
    previous_keys: dict[str, SecretStr] = Field(default_factory=dict)
    previous_valid_until: UtcDatetime | None = None

    @model_validator(mode="after")
    def _previous_keys_need_an_end(self) -> Self:
        if self.previous_keys and self.previous_valid_until is None:
            raise ValueError("previous_keys needs previous_valid_until")
        self._encoded_keys  # noqa: B018 - refuse empty secrets when the document is read
        return self

    @cached_property
    def _encoded_keys(self) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """Encoded once per secret version rather than on every request."""
        return _encoded(self.keys), _encoded(self.previous_keys)

    def secrets_for(self, key_id: str, now: datetime) -> list[bytes]:
        """The secrets that may have signed for `key_id` now: current first, then previous."""
        current, previous = self._encoded_keys
        found = [current[key_id]] if key_id in current else []
        if key_id in previous and self.previous_valid_until and now < self.previous_valid_until:
            found.append(previous[key_id])
        return found


def _encoded(keys: Mapping[str, SecretStr]) -> dict[str, bytes]:
    encoded = {key_id: secret.get_secret_value().encode() for key_id, secret in keys.items()}
    if not all(encoded.values()):
        raise ValueError("a signing secret is empty")
    return encoded


class SignatureParams(NamedTuple):
    """The parameters of a `Signature` header."""

    key_id: str
    algorithm: str | None
    headers: tuple[str, ...]
    signature: bytes  # decoded from base64


def parse_signature_header(value: str) -> SignatureParams:
    """Parse `keyId="…",algorithm="…",headers="…",signature="…"` (whitespace tolerated)."""
    params: dict[str, str] = {}
    position, end = 0, len(value)
    while position < end:
        match = _PARAM.match(value, position)
        if match is None:
            raise SignatureRejected("malformed_signature")
        name = match.group(1)
        if name in params:
            raise SignatureRejected("malformed_signature")
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        position = match.end()
    key_id, encoded_signature = params.get("keyId"), params.get("signature")
    if not key_id or not encoded_signature:
        raise SignatureRejected("malformed_signature")
    try:
        signature = base64.b64decode(encoded_signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRejected("malformed_signature") from None
    # draft-12 §2.1.6: without `headers`, only `(created)` is signed.
    headers = params.get("headers", "(created)").lower().split()
    return SignatureParams(
        key_id=key_id,
        algorithm=params.get("algorithm"),
        headers=tuple(headers),
        signature=signature,
    )


def signing_string(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed: tuple[str, ...],
    *,
    target_separator: str = DRAFT_TARGET_SEPARATOR,
) -> str:
    """The draft's signing string (the seed's with SEED_TARGET_SEPARATOR); `headers` must have
    lowercased names."""
    lines = []
    for name in signed:
        if name == REQUEST_TARGET:
            target = f"{path}?{query}" if query else path
            lines.append(f"{REQUEST_TARGET}{target_separator}{method.lower()} {target}")
        elif name in headers:
            lines.append(f"{name}: {headers[name].strip()}")
        else:
            # Also `(created)`/`(expires)`: the draft forbids them with hmac-* algorithms.
            raise SignatureRejected("signed_header_missing")
    return "\n".join(lines)


def verify_signed_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    secret: SigningSecret,
    now: datetime,
    max_skew_seconds: int = DEFAULT_MAX_SKEW_SECONDS,
) -> str:
    """Check the signature, Date and Digest of a request; return the keyId that signed it.

    `headers` must have lowercased names (as API Gateway HTTP APIs deliver them); `now` must be
    timezone-aware. Raises SignatureRejected.
    """
    params = parse_signature_header(_signature_header(headers))
    if params.algorithm is None or params.algorithm.lower() != ALGORITHM:
        raise SignatureRejected("unsupported_algorithm")
    required = ALWAYS_SIGNED + tuple(name for name in SIGNED_WHEN_PRESENT if name in headers)
    if not set(required).issubset(params.headers):
        raise SignatureRejected("required_header_not_signed")
    digest_header = headers.get("digest")
    if not digest_header:
        raise SignatureRejected("digest_missing")
    _check_date(headers.get("date", ""), now, max_skew_seconds)
    candidates = secret.secrets_for(params.key_id, now)
    if not candidates:
        raise SignatureRejected("unknown_key_id")
    for separator in (DRAFT_TARGET_SEPARATOR, SEED_TARGET_SEPARATOR):
        # surrogatepass: a header no real client can send must fail the compare, not raise.
        message = signing_string(
            method, path, query, headers, params.headers, target_separator=separator
        ).encode(errors="surrogatepass")
        for key in candidates:
            if hmac.compare_digest(hmac.digest(key, message, "sha256"), params.signature):
                _check_digest(digest_header, body, key)
                return params.key_id
    raise SignatureRejected("bad_signature")


def _signature_header(headers: Mapping[str, str]) -> str:
    value = headers.get("signature")
    if value:
        return value
    authorization = headers.get("authorization", "")
    scheme = _AUTHORIZATION_SCHEME.match(authorization)
    if scheme is None:
        raise SignatureRejected("signature_missing")
    return authorization[scheme.end() :]


def _parse_date(value: str) -> datetime:
    fixdate = _IMF_FIXDATE.fullmatch(value)
    if fixdate is not None and fixdate.group(2) in _MONTHS:
        day, month, year, hour, minute, second = fixdate.groups()
        return datetime(
            int(year),
            _MONTHS[month],
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=UTC,
        )
    sent_at = parsedate_to_datetime(value)
    # "-0000" or an unknown zone name: RFC 5322 reads it as UTC
    return sent_at if sent_at.tzinfo is not None else sent_at.replace(tzinfo=UTC)


def _check_date(value: str, now: datetime, max_skew_seconds: int) -> None:
    try:
        sent_at = _parse_date(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        raise SignatureRejected("date_invalid") from None
    if abs(now - sent_at) > timedelta(seconds=max_skew_seconds):
        raise SignatureRejected("date_skew")


def _check_digest(value: str, body: bytes, key: bytes) -> None:
    """Accept `SHA-256=` as either reading of the seed (see the module docstring)."""
    for instance in value.split(","):
        algorithm, _, encoded = instance.strip().partition("=")
        if algorithm.lower() != "sha-256":
            continue
        try:
            provided = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureRejected("digest_mismatch") from None
        if hmac.compare_digest(hashlib.sha256(body).digest(), provided) or hmac.compare_digest(
            hmac.digest(key, body, "sha256"), provided
        ):
            return
        raise SignatureRejected("digest_mismatch")
    raise SignatureRejected("digest_unsupported")
