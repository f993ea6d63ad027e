"""What the forwarder signs verifies with independent libraries (standardwebhooks, httpsig),
and one tampered byte does not."""

from datetime import UTC, datetime, timedelta

from local.endpoint_receiver import verify_standard_webhooks, verify_v2020
from sensorhook.core.forwarding import EndpointSecret, ForwardingEndpoint
from sensorhook.logic.forwarding import delivery_body, request_headers

SECRET = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 32 base64 characters, as the stack generates
OLD = "A2xtWTRtbnF1b2RiN1h6cG9hYnNkZWxr"
EVENT = {
    "id": "7f1c2d3e-0000-4000-8000-000000000001",
    "detail-type": "steam_trap.state_changed",
    "time": "2026-11-29T20:00:00Z",
    "source": "sensorhook",
    "detail": {"trap_id": "t-1", "state": "Blowthrough", "note": "€ ok"},
}


def _endpoint(**overrides: object) -> ForwardingEndpoint:
    return ForwardingEndpoint.model_validate(
        {
            "name": "partner",
            "url": "https://partner.example.com/hooks/in?x=1",
            "detail_types": ["steam_trap.*"],
            "headers": {"X-Customer": "acme"},
            **overrides,
        }
    )


def _tampered(body: bytes) -> bytes:
    return body[:10] + bytes([body[10] ^ 0x01]) + body[11:]


def test_standard_webhooks_verifies_with_the_standardwebhooks_library():
    body = delivery_body(EVENT)
    headers = request_headers(
        _endpoint(), EVENT["id"], body, EndpointSecret(secret=SECRET), datetime.now(UTC)
    )
    assert headers["webhook-id"] == EVENT["id"]
    assert headers["X-Customer"] == "acme"
    assert verify_standard_webhooks(SECRET, headers, body)
    assert verify_standard_webhooks("whsec_" + SECRET, headers, body)
    assert not verify_standard_webhooks(SECRET, headers, _tampered(body))
    assert not verify_standard_webhooks(OLD, headers, body)


def test_during_a_rotation_both_secrets_verify():
    now = datetime.now(UTC)
    secret = EndpointSecret(
        secret=SECRET, previous_secret=OLD, previous_valid_until=now + timedelta(hours=1)
    )
    body = delivery_body(EVENT)
    headers = request_headers(_endpoint(), EVENT["id"], body, secret, now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify_standard_webhooks(SECRET, headers, body)
    assert verify_standard_webhooks(OLD, headers, body)
    # once the overlap ends only the new secret signs
    later = request_headers(_endpoint(), EVENT["id"], body, secret, now + timedelta(hours=2))
    assert len(later["webhook-signature"].split(" ")) == 1


def test_everactive_v2020_verifies_with_httpsig_and_the_digest():
    endpoint = _endpoint(signature_scheme="everactive-v2020-07", key_id="acme-sub-1")
    body = delivery_body(EVENT)
    headers = request_headers(
        endpoint, EVENT["id"], body, EndpointSecret(secret=SECRET), datetime.now(UTC)
    )
    assert 'keyId="acme-sub-1"' in headers["Signature"]
    assert verify_v2020(SECRET, "POST", "/hooks/in?x=1", headers, body)
    assert not verify_v2020(SECRET, "POST", "/hooks/in?x=1", headers, _tampered(body))
    assert not verify_v2020("wrong-secret", "POST", "/hooks/in?x=1", headers, body)
    assert not verify_v2020(SECRET, "POST", "/hooks/other", headers, body)


def test_sensorhooks_own_receiver_accepts_what_the_forwarder_signs_v2020():
    """The forwarder and the receiver share one definition of the v2020 scheme."""
    from sensorhook.providers.everactive_v2020.signature import SigningSecret, verify_signed_request

    endpoint = _endpoint(signature_scheme="everactive-v2020-07", key_id="acme-sub-1")
    body = delivery_body(EVENT)
    now = datetime.now(UTC)
    headers = request_headers(endpoint, EVENT["id"], body, EndpointSecret(secret=SECRET), now)
    key_id = verify_signed_request(
        method="POST",
        path="/hooks/in",
        query="x=1",
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        secret=SigningSecret.model_validate({"keys": {"acme-sub-1": SECRET}}),
        now=now,
    )
    assert key_id == "acme-sub-1"


def test_the_body_carries_the_delivery_id_type_and_data():
    import json

    payload = json.loads(delivery_body(EVENT))
    assert payload == {
        "id": EVENT["id"],
        "type": "steam_trap.state_changed",
        "timestamp": "2026-11-29T20:00:00Z",
        "source": "sensorhook",
        "data": EVENT["detail"],
    }
