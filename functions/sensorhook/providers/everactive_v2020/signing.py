"""Signing a request the way Everactive API v2020-07 signs its webhooks (draft-cavage-12).

The other half of `signature.py`: the same signing string, algorithm and header set, so what
sensorhook signs (forwarding with the `everactive-v2020-07` scheme, and the provider emulator)
is exactly what its own receiver, and any receiver that verifies Everactive, accepts.
"""

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import StrEnum
from urllib.parse import urlsplit

from sensorhook.providers.everactive_v2020.signature import (
    ALGORITHM,
    ALWAYS_SIGNED,
    SIGNED_WHEN_PRESENT,
    signing_string,
)

# What Everactive signs: `(request-target) date digest host content-length`.
SIGNED_HEADERS: tuple[str, ...] = (*ALWAYS_SIGNED, *SIGNED_WHEN_PRESENT)


class DigestMode(StrEnum):
    """How the `Digest` header is computed.

    `sha256` is the standard reading (RFC 3230: base64 of the body's SHA-256). The Everactive
    page also says the body "is hashed using an SHA-256 algorithm with the webhook secret as the
    key", i.e. an HMAC; `hmac-sha256` sends that reading so a receiver can be tested against it.
    """

    SHA256 = "sha256"
    HMAC_SHA256 = "hmac-sha256"


def http_date(moment: datetime) -> str:
    """RFC 7231 IMF-fixdate, e.g. `Sun, 27 Sep 2020 10:25:56 GMT`."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def body_digest(body: bytes, *, mode: DigestMode = DigestMode.SHA256, secret: str = "") -> str:
    if mode is DigestMode.HMAC_SHA256:
        raw = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    else:
        raw = hashlib.sha256(body).digest()
    return "SHA-256=" + base64.b64encode(raw).decode("ascii")


def sign(secret: str, text: str) -> str:
    """base64(HMAC-SHA256(secret, signing string))."""
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def signed_headers(
    *,
    method: str,
    path: str,
    host: str,
    body: bytes,
    key_id: str,
    secret: str,
    date: datetime,
    digest_mode: DigestMode = DigestMode.SHA256,
) -> dict[str, str]:
    """Date, Digest, Host, Content-Length and Signature for one request, Everactive style.

    `path` may carry a query string (`/hook?x=1`): the request target is signed whole.
    """
    headers = {
        "Date": http_date(date),
        "Digest": body_digest(body, mode=digest_mode, secret=secret),
        "Host": host,
        "Content-Length": str(len(body)),
    }
    target = urlsplit(path)
    text = signing_string(
        method,
        target.path or "/",
        target.query,
        {name.lower(): value for name, value in headers.items()},
        SIGNED_HEADERS,
    )
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="{ALGORITHM}",'
        f'headers="{" ".join(SIGNED_HEADERS)}",signature="{sign(secret, text)}"'
    )
    return headers
