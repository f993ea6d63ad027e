"""Standard Webhooks v1 signatures: `webhook-id`, `webhook-timestamp`, `webhook-signature`.

signature = base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), sent as `v1,<signature>`;
several space-separated signatures during a secret rotation, one per secret, so a receiver
holding either the old or the new secret verifies. The key is the secret with its optional
`whsec_` prefix removed, base64-decoded (what the `standardwebhooks` libraries do).
"""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of the format, not a secret


class InvalidSecret(ValueError):
    """The secret is not base64 (after an optional `whsec_` prefix)."""


def secret_key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret(
            "a Standard Webhooks secret must be base64 (optionally whsec_…)"
        ) from None
    if not key:
        raise InvalidSecret("a Standard Webhooks secret must not be empty")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.digest(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac).decode("ascii")


def signed_headers(
    *, message_id: str, body: bytes, secrets: Sequence[str], at: datetime
) -> dict[str, str]:
    """The three headers for one attempt; signed anew per attempt (fresh timestamp), with the
    same `webhook-id` every time so the receiver can dedupe."""
    if not secrets:
        raise InvalidSecret("no signing secret")
    timestamp = int(at.timestamp())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret_key(secret), message_id, timestamp, body) for secret in secrets
        ),
    }
