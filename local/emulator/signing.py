"""HTTP Signatures (draft-cavage-12, hmac-sha256) the way Everactive v2020-07 signs webhooks.

Written by hand rather than with a library so the emulator states every byte it signs; the
tests check it against the `httpsig` library's HeaderSigner for the same inputs.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import StrEnum

SIGNED_HEADERS: tuple[str, ...] = ("(request-target)", "date", "digest", "host", "content-length")


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


def signing_string(
    method: str,
    path: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str] = SIGNED_HEADERS,
) -> str:
    """The lines the signature covers, in `signed_headers` order, joined by `\\n`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    lines = []
    for name in signed_headers:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {path}")
        else:
            lines.append(f"{name}: {lowered[name]}")
    return "\n".join(lines)


def signature(secret: str, text: str) -> str:
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
    """Date, Digest, Host, Content-Length and Signature for one request, Everactive style."""
    headers = {
        "Date": http_date(date),
        "Digest": body_digest(body, mode=digest_mode, secret=secret),
        "Host": host,
        "Content-Length": str(len(body)),
    }
    text = signing_string(method, path, headers)
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="hmac-sha256",'
        f'headers="{" ".join(SIGNED_HEADERS)}",signature="{signature(secret, text)}"'
    )
    return headers
