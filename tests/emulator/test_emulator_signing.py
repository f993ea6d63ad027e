import base64
import hashlib
import hmac
from datetime import UTC, datetime

from httpsig.sign import HeaderSigner
from httpsig.utils import parse_signature_header
from httpsig.verify import HeaderVerifier

from local.emulator.signing import (
    SIGNED_HEADERS,
    DigestMode,
    body_digest,
    http_date,
    signed_headers,
    signing_string,
)

BODY = b'{"eventId":"state-change-event-id-1","eventTimestamp":1600878991}'
MOMENT = datetime(2020, 9, 27, 10, 25, 56, tzinfo=UTC)


def test_signature_matches_httpsig_header_signer_for_the_same_inputs():
    # Given a request signed by the emulator
    headers = signed_headers(
        method="POST",
        path="/webhooks/everactive/v2020-07/events",
        host="localhost:3000",
        body=BODY,
        key_id="subscription-id-1",
        secret="webhook-secret",
        date=MOMENT,
    )
    # When httpsig signs the same headers with the same secret
    reference = HeaderSigner(
        "subscription-id-1",
        "webhook-secret",
        algorithm="hmac-sha256",
        headers=list(SIGNED_HEADERS),
        sign_header="signature",
    ).sign(
        {k: v for k, v in headers.items() if k != "Signature"},
        method="POST",
        path="/webhooks/everactive/v2020-07/events",
    )
    # Then both Signature headers carry the same parameters
    ours = parse_signature_header(headers["Signature"])
    theirs = parse_signature_header(reference["signature"])
    assert dict(ours) == dict(theirs)
    assert headers["Signature"].startswith(
        'keyId="subscription-id-1",algorithm="hmac-sha256",'
        'headers="(request-target) date digest host content-length",signature="'
    )


def test_httpsig_verifier_accepts_the_emulator_signature_and_rejects_a_wrong_secret():
    headers = signed_headers(
        method="POST",
        path="/",
        host="localhost:3000",
        body=BODY,
        key_id="k",
        secret="right",
        date=MOMENT,
    )

    def verifies(secret: str) -> bool:
        return HeaderVerifier(
            headers,
            secret,
            required_headers=list(SIGNED_HEADERS),
            method="POST",
            path="/",
            sign_header="signature",
        ).verify()

    assert verifies("right")
    assert not verifies("wrong")


def test_signing_string_is_the_seed_example_layout():
    # Given the seed's example request headers
    headers = {
        "Content-Length": "385",
        "Date": "Sun, 27 Sep 2020 06:25:56 EDT",
        "Digest": "SHA-256=CUqnzEfLL8k73aT7e1R55yCQ6VAM70ZfDg9AMzJvPHM=",
        "Host": "localhost:3000",
    }
    # When the signing string is built
    text = signing_string("POST", "/", headers)
    # Then it is the seed's five lines, in order
    assert text.split("\n") == [
        "(request-target): post /",
        "date: Sun, 27 Sep 2020 06:25:56 EDT",
        "digest: SHA-256=CUqnzEfLL8k73aT7e1R55yCQ6VAM70ZfDg9AMzJvPHM=",
        "host: localhost:3000",
        "content-length: 385",
    ]


def test_digest_standard_and_hmac_readings():
    assert body_digest(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    keyed = hmac.new(b"secret", BODY, hashlib.sha256).digest()
    assert body_digest(BODY, mode=DigestMode.HMAC_SHA256, secret="secret") == (
        "SHA-256=" + base64.b64encode(keyed).decode()
    )


def test_date_header_is_rfc7231_gmt_and_content_length_counts_bytes():
    headers = signed_headers(
        method="POST",
        path="/",
        host="h",
        body="é".encode(),
        key_id="k",
        secret="s",
        date=MOMENT,
    )
    assert http_date(MOMENT) == "Sun, 27 Sep 2020 10:25:56 GMT"
    assert headers["Date"] == "Sun, 27 Sep 2020 10:25:56 GMT"
    assert headers["Content-Length"] == "2"
