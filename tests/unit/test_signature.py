"""Everactive v2020-07 HTTP Signatures: requests signed by `httpsig` against our verifier."""

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from sensorhook.core.flavors import ROUTES, Flavor
from sensorhook.providers.everactive_v2020.signature import (
    SignatureRejected,
    SigningSecret,
    parse_signature_header,
    signing_string,
    verify_signed_request,
)
from tests.builders import SIGNED_HEADERS, hmac_digest, sha256_digest, signed_v2020_headers
from tests.fixtures.loader import fixture_text

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PATH = ROUTES[Flavor.EVERACTIVE_V2020_STEAM_TRAP]
KEY_ID = "subscription-id-1"
SECRET = "generated-webhook-secret"
BODY = fixture_text("everactive-v2020/steam-trap-state-change.json").encode()
SIGNING_SECRET = SigningSecret.model_validate({"keys": {KEY_ID: SECRET}})


def _lowercased(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _verify(
    headers: dict[str, str],
    *,
    body: bytes = BODY,
    secret: SigningSecret = SIGNING_SECRET,
    now: datetime = NOW,
    path: str = PATH,
    query: str = "",
    max_skew_seconds: int = 300,
) -> str:
    return verify_signed_request(
        method="POST",
        path=path,
        query=query,
        headers=_lowercased(headers),
        body=body,
        secret=secret,
        now=now,
        max_skew_seconds=max_skew_seconds,
    )


def _signed(**overrides: object) -> dict[str, str]:
    arguments: dict[str, object] = {"key_id": KEY_ID, "secret": SECRET, "path": PATH, "date": NOW}
    arguments.update(overrides)
    body = arguments.pop("body", BODY)
    assert isinstance(body, bytes)
    return signed_v2020_headers(body, **arguments)  # type: ignore[arg-type]


def _rejected_check(headers: dict[str, str], **kwargs: object) -> str:
    with pytest.raises(SignatureRejected) as rejected:
        _verify(headers, **kwargs)  # type: ignore[arg-type]
    return rejected.value.check


# --- accepted -------------------------------------------------------------------------------


def test_request_signed_by_httpsig_is_accepted_and_names_its_key_id() -> None:
    # Given a webhook signed by httpsig over the seed's header list
    headers = _signed()
    # When it is verified
    key_id = _verify(headers)
    # Then the subscription id that signed it is returned
    assert key_id == KEY_ID


def test_query_string_is_part_of_the_request_target() -> None:
    # Given a request to a URL with a query string, signed with it
    headers = _signed(path=f"{PATH}?tenant=a&x=1")
    # Then it verifies with the query, and not without it
    assert _verify(headers, query="tenant=a&x=1") == KEY_ID
    assert _rejected_check(headers) == "bad_signature"


def test_authorization_signature_form_is_accepted() -> None:
    # Given the draft's other form, `Authorization: Signature <params>`
    headers = _signed()
    headers["authorization"] = "Signature " + headers.pop("signature")
    # Then it verifies the same
    assert _verify(headers) == KEY_ID


@pytest.mark.parametrize("digest_of", [sha256_digest, lambda body: hmac_digest(body, SECRET)])
def test_both_readings_of_the_digest_are_accepted(digest_of: Callable[[bytes], str]) -> None:
    # Given a Digest computed as plain SHA-256 (RFC 3230) or as HMAC-SHA256 with the secret (seed)
    headers = _signed(digest=digest_of(BODY))
    # Then both verify
    assert _verify(headers) == KEY_ID


def test_a_digest_header_with_several_instance_digests_is_accepted() -> None:
    headers = _signed(digest=f"MD5=AAAAAAAAAAAAAAAAAAAAAA==, {sha256_digest(BODY)}")
    assert _verify(headers) == KEY_ID


@pytest.mark.parametrize("offset", [timedelta(seconds=-299), timedelta(seconds=299)])
def test_date_within_the_skew_is_accepted(offset: timedelta) -> None:
    headers = _signed(date=NOW + offset)
    assert _verify(headers) == KEY_ID


def test_previous_secret_is_accepted_within_the_overlap() -> None:
    # Given a rotation: the request is still signed with the previous secret
    rotated = SigningSecret.model_validate(
        {
            "keys": {KEY_ID: "new-secret"},
            "previous_keys": {KEY_ID: SECRET},
            "previous_valid_until": (NOW + timedelta(hours=1)).isoformat(),
        }
    )
    # Then it verifies until previous_valid_until, and the new secret verifies too
    assert _verify(_signed(), secret=rotated) == KEY_ID
    assert _verify(_signed(secret="new-secret"), secret=rotated) == KEY_ID


# --- rejected -------------------------------------------------------------------------------


def test_previous_secret_is_rejected_after_the_overlap() -> None:
    rotated = SigningSecret.model_validate(
        {
            "keys": {KEY_ID: "new-secret"},
            "previous_keys": {KEY_ID: SECRET},
            "previous_valid_until": (NOW - timedelta(seconds=1)).isoformat(),
        }
    )
    assert _rejected_check(_signed(), secret=rotated) == "bad_signature"


def test_one_changed_body_byte_is_rejected() -> None:
    # Given a signed request whose body is changed by one byte in transit
    headers = _signed()
    tampered = BODY.replace(b"Blowthough", b"Blowthougx")
    # Then the digest no longer matches
    assert _rejected_check(headers, body=tampered) == "digest_mismatch"


@pytest.mark.parametrize("header", ["host", "content-length", "digest"])
def test_one_changed_signed_header_is_rejected(header: str) -> None:
    # Given a signed request; one signed header's value changes by one character
    headers = _lowercased(_signed())
    value = headers[header]
    headers[header] = value[:-2] + ("x" if value[-2] != "x" else "y") + value[-1]
    # Then the signature no longer matches
    assert _rejected_check(headers) == "bad_signature"


def test_a_changed_date_is_rejected() -> None:
    headers = _lowercased(_signed())
    headers["date"] = headers["date"].replace(":00:00", ":00:01")
    assert _rejected_check(headers) == "bad_signature"


def test_another_path_is_rejected() -> None:
    headers = _signed()
    assert _rejected_check(headers, path="/webhooks/efento/measurements") == "bad_signature"


@pytest.mark.parametrize("offset", [timedelta(seconds=-301), timedelta(seconds=301)])
def test_date_beyond_the_skew_is_rejected(offset: timedelta) -> None:
    # Given a correctly signed request whose Date is stale or in the future by over 300 s
    headers = _signed(date=NOW + offset)
    # Then it is rejected as a possible replay
    assert _rejected_check(headers) == "date_skew"


def test_skew_is_configurable() -> None:
    headers = _signed(date=NOW - timedelta(seconds=30))
    assert _rejected_check(headers, max_skew_seconds=10) == "date_skew"


def test_unknown_key_id_is_rejected() -> None:
    headers = _signed(key_id="another-subscription")
    assert _rejected_check(headers) == "unknown_key_id"


def test_wrong_secret_is_rejected() -> None:
    headers = _signed(secret="not-the-secret")
    assert _rejected_check(headers) == "bad_signature"


def test_another_algorithm_is_rejected() -> None:
    headers = _signed(algorithm="hmac-sha512")
    assert _rejected_check(headers) == "unsupported_algorithm"


@pytest.mark.parametrize("algorithm", ['algorithm="hs2019",', ""])
def test_hs2019_or_a_missing_algorithm_is_rejected(algorithm: str) -> None:
    # Given a signature that is right for hmac-sha256 but announced as hs2019, or not announced
    headers = _lowercased(_signed())
    headers["signature"] = headers["signature"].replace('algorithm="hmac-sha256",', algorithm)
    # Then it is rejected: we only verify what Everactive documents
    assert _rejected_check(headers) == "unsupported_algorithm"


@pytest.mark.parametrize(
    "left_out", ["(request-target)", "date", "digest", "host", "content-length"]
)
def test_a_required_header_left_out_of_the_signature_is_rejected(left_out: str) -> None:
    # Given a request signed over fewer headers than required (host and content-length are
    # required because the request carries them)
    signed = [name for name in SIGNED_HEADERS if name != left_out]
    headers = _signed(signed=signed)
    # Then it is rejected even though the signature itself is valid
    assert _rejected_check(headers) == "required_header_not_signed"


def test_host_and_content_length_need_signing_only_when_present() -> None:
    # Given a request without Host and Content-Length, signed over the three always required
    headers = _lowercased(_signed(signed=["(request-target)", "date", "digest"]))
    del headers["host"], headers["content-length"]
    # Then it verifies
    assert _verify(headers) == KEY_ID


def test_missing_digest_is_rejected() -> None:
    headers = _lowercased(_signed())
    del headers["digest"]
    assert _rejected_check(headers) == "digest_missing"


def test_digest_with_another_algorithm_only_is_rejected() -> None:
    headers = _signed(digest="SHA-512=" + base64.b64encode(hashlib.sha512(BODY).digest()).decode())
    assert _rejected_check(headers) == "digest_unsupported"


def test_missing_signature_is_rejected() -> None:
    headers = _lowercased(_signed())
    del headers["signature"]
    assert _rejected_check(headers) == "signature_missing"


_ALL_SIGNED = 'headers="(request-target) date digest host content-length"'


@pytest.mark.parametrize(
    ("value", "check"),
    [
        ("", "signature_missing"),
        ("garbage", "malformed_signature"),
        ('keyId="subscription-id-1"', "malformed_signature"),
        ('keyId="a",keyId="b",signature="c2ln"', "malformed_signature"),
        ('keyId="a" algorithm="hmac-sha256"', "malformed_signature"),
        ('keyId=a,signature="c2ln"', "malformed_signature"),
        ('keyId="a",signature="c\\"2ln"', "malformed_signature"),
        (
            f'keyId="{KEY_ID}",algorithm="hmac-sha256",{_ALL_SIGNED},signature="not base64!"',
            "malformed_signature",
        ),
    ],
)
def test_malformed_signature_header_is_rejected(value: str, check: str) -> None:
    headers = _lowercased(_signed())
    headers["signature"] = value
    assert _rejected_check(headers) == check


@pytest.mark.parametrize("date", ["", "yesterday", "Sun, 99 Sep 2020 06:25:56 GMT"])
def test_unparseable_date_is_rejected(date: str) -> None:
    headers = _lowercased(_signed())
    headers["date"] = date
    assert _rejected_check(headers) == "date_invalid"


# --- the seed's own example -----------------------------------------------------------------

# everactive-api-v2020-07.txt, "Signature Verification Details" (its body is omitted there).
SEED_HEADERS = {
    "content-length": "385",
    "date": "Sun, 27 Sep 2020 06:25:56 EDT",
    "digest": "SHA-256=CUqnzEfLL8k73aT7e1R55yCQ6VAM70ZfDg9AMzJvPHM=",
    "host": "localhost:3000",
}
SEED_SIGNATURE_HEADER = (
    'keyId="subscription-id-1",algorithm="hmac-sha256",\n'
    '    headers="(request-target) date digest host content-length"'
)
# The seed's signing string, line for line. The seed prints the first line without the colon
# the draft (and httpsig) put after `(request-target)`; both renderings are accepted.
SEED_SIGNING_LINES = [
    "(request-target) post /",
    "date: Sun, 27 Sep 2020 06:25:56 EDT",
    "digest: SHA-256=CUqnzEfLL8k73aT7e1R55yCQ6VAM70ZfDg9AMzJvPHM=",
    "host: localhost:3000",
    "content-length: 385",
]


def test_seed_example_signature_header_parses_across_lines() -> None:
    # Given the seed's Signature header, with a newline and indentation between parameters,
    # plus the signature value its example leaves out
    params = parse_signature_header(SEED_SIGNATURE_HEADER + ',signature="c2lnbmF0dXJl"')
    # Then every parameter is read
    assert params.key_id == "subscription-id-1"
    assert params.algorithm == "hmac-sha256"
    assert params.headers == ("(request-target)", "date", "digest", "host", "content-length")


def test_seed_example_signing_string_is_rebuilt() -> None:
    # Given the seed's example request (POST /)
    params = parse_signature_header(SEED_SIGNATURE_HEADER + ',signature="c2lnbmF0dXJl"')
    # When the signing string is built from its headers
    built = signing_string("POST", "/", "", SEED_HEADERS, params.headers).split("\n")
    # Then it is the seed's, with the draft's colon after (request-target)
    assert built == ["(request-target): post /", *SEED_SIGNING_LINES[1:]]
    assert built[0].replace(":", "", 1) == SEED_SIGNING_LINES[0]


def _seed_example_check(signing_lines: list[str], signed_with: str, verified_with: str) -> str:
    """Sign the seed's example over `signing_lines`; the check that ends its verification."""
    message = "\n".join(signing_lines).encode()
    signature = base64.b64encode(hmac.digest(signed_with.encode(), message, "sha256")).decode()
    headers = {**SEED_HEADERS, "signature": f'{SEED_SIGNATURE_HEADER},signature="{signature}"'}
    with pytest.raises(SignatureRejected) as rejected:
        verify_signed_request(
            method="POST",
            path="/",
            query="",
            headers=headers,
            body=b"{}",
            secret=SigningSecret.model_validate({"keys": {"subscription-id-1": verified_with}}),
            now=datetime(2020, 9, 27, 10, 25, 56, tzinfo=UTC),  # the seed's 06:25:56 EDT
        )
    return rejected.value.check


@pytest.mark.parametrize(
    "first_line",
    ["(request-target): post /", "(request-target) post /"],
    ids=["draft-colon", "seed-rendering"],
)
def test_seed_example_verifies_in_either_rendering_with_an_edt_date(first_line: str) -> None:
    # Given the seed's headers (Date in EDT), signed over the draft's signing string or over
    # the seed's own rendering of it (no colon after (request-target))
    lines = [first_line, *SEED_SIGNING_LINES[1:]]
    # When verified at the seed's time
    check = _seed_example_check(lines, signed_with="seed-secret", verified_with="seed-secret")
    # Then the signature holds and only the body (which the seed's example omits) differs
    assert check == "digest_mismatch"


def test_seed_rendering_under_another_secret_is_rejected() -> None:
    # Given the seed's rendering signed with a secret other than the subscription's
    check = _seed_example_check(SEED_SIGNING_LINES, signed_with="other", verified_with="seed")
    # Then accepting that rendering let nothing through
    assert check == "bad_signature"


# --- the secret document --------------------------------------------------------------------


def test_the_stacks_document_with_its_placeholder_and_keys_verifies() -> None:
    # Given the document as the stack creates it (a generated `placeholder` field beside empty
    # key sets), once the reconciler has written a subscription's key into it
    document = {"keys": {KEY_ID: SECRET}, "previous_keys": {}, "placeholder": "x7#Qv..."}
    # When it is read and a request signed with that key is verified
    key_id = _verify(_signed(), secret=SigningSecret.model_validate(document))
    # Then the placeholder is ignored and the request verifies
    assert key_id == KEY_ID


def test_a_document_without_keys_yet_rejects_every_key_id() -> None:
    # Given the stack's document before any subscription exists
    secret = SigningSecret.model_validate({"keys": {}, "previous_keys": {}, "placeholder": "p"})
    # Then it is a valid secret that knows no keyId: the request is unauthenticated, not an error
    assert _rejected_check(_signed(), secret=secret) == "unknown_key_id"


def test_previous_keys_without_an_end_are_refused() -> None:
    with pytest.raises(ValueError, match="previous_valid_until"):
        SigningSecret.model_validate({"keys": {"a": "x"}, "previous_keys": {"a": "y"}})


def test_secret_values_do_not_appear_in_the_model_repr() -> None:
    assert SECRET not in repr(SIGNING_SECRET)
