"""HTTP Signatures (draft-cavage-12, hmac-sha256) the way Everactive v2020-07 signs webhooks.

The signer lives with the receiver's verifier in `sensorhook.providers.everactive_v2020` (the
forwarder signs with it too); the emulator uses it as is. The tests check it against the
`httpsig` library's HeaderSigner for the same inputs.
"""

from collections.abc import Mapping, Sequence

from sensorhook.providers.everactive_v2020.signature import signing_string as _signing_string
from sensorhook.providers.everactive_v2020.signing import (
    SIGNED_HEADERS,
    DigestMode,
    body_digest,
    http_date,
    sign,
    signed_headers,
)

__all__ = [
    "SIGNED_HEADERS",
    "DigestMode",
    "body_digest",
    "http_date",
    "signature",
    "signed_headers",
    "signing_string",
]


def signing_string(
    method: str,
    path: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str] = SIGNED_HEADERS,
) -> str:
    """The lines the signature covers, in `signed_headers` order, joined by `\\n`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return _signing_string(method, path, "", lowered, tuple(signed_headers))


def signature(secret: str, text: str) -> str:
    return sign(secret, text)
