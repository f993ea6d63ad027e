"""OAuth2 client_credentials: both flavors' token requests, caching, expiry, refresh-once."""

import json
from collections.abc import Callable

import pytest

from sensorhook.providers.everactive_api import (
    ApiError,
    ApiFlavor,
    AuthenticationFailed,
    EveractiveApi,
)
from sensorhook.providers.everactive_api.transport import TransportError
from tests.fixtures.loader import sample_json
from tests.unit.everactive_api.fakes import (
    CLIENT_SECRET,
    DS_BASE,
    DS_TOKEN_URL,
    V2020_TOKEN_URL,
    answer,
    harness,
)

HEALTH = sample_json("everactive-ds/api/health.json")


def test_data_services_posts_json_credentials_to_the_configured_token_url():
    # Given a Data Services client
    h = harness(ApiFlavor.DATA_SERVICES)
    h.transport.script("GET", "/ds/v1/health", answer(HEALTH))

    # When it makes its first call
    h.api.health()

    # Then it first posted the JSON grant to the token URL, then used the bearer token
    token_request, health_request = h.transport.sent
    assert (token_request.method, token_request.url) == ("POST", DS_TOKEN_URL)
    assert token_request.headers["Content-Type"] == "application/json"
    assert token_request.json() == {
        "grant_type": "client_credentials",
        "client_id": "client-a",
        "client_secret": CLIENT_SECRET,
    }
    assert health_request.headers["Authorization"] == "Bearer token-1"


def test_v2020_posts_a_form_to_auth_token_under_its_base_url():
    # Given a v2020-07 client without a token URL
    h = harness(ApiFlavor.V2020_07)
    h.transport.script("GET", "/v2020-07/health", answer(HEALTH))

    # When it makes its first call
    h.api.health()

    # Then the grant went as a form to <base>/auth/token
    token_request = h.transport.sent[0]
    assert token_request.url == V2020_TOKEN_URL
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_request.form() == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-a"],
        "client_secret": [CLIENT_SECRET],
    }


def test_data_services_without_a_token_url_is_refused_at_construction():
    # Given / When / Then: Data Services has no conventional token path to default to
    with pytest.raises(ValueError, match="token_url"):
        EveractiveApi(
            flavor=ApiFlavor.DATA_SERVICES,
            base_url=DS_BASE,
            credentials=lambda: None,  # type: ignore[arg-type,return-value]
        )


def test_the_token_is_reused_until_the_refresh_margin_before_expiry():
    # Given a token valid 86400 s and the default 60 s margin
    h = harness()
    h.transport.script("GET", "/ds/v1/health", *[answer(HEALTH)] * 3)
    h.api.health()

    # When calls happen just before and at the margin
    h.clock.now += 86400 - 61
    h.api.health()
    fetched_before_margin = h.transport.tokens_issued
    h.clock.now += 1
    h.api.health()

    # Then the first reuse did not fetch, the call at the margin did, with the new token
    assert fetched_before_margin == 1
    assert h.transport.tokens_issued == 2
    assert h.transport.resource_calls()[-1].headers["Authorization"] == "Bearer token-2"
    assert len(h.credential_reads) == 2  # the secret is read per fetch: rotations are seen


def test_a_short_lived_token_is_kept_for_half_its_life_not_refetched_per_call():
    # Given tokens valid 60 s (no longer than the 60 s margin)
    h = harness()
    h.transport.token_lifetime_s = 60
    h.transport.script("GET", "/ds/v1/health", *[answer(HEALTH)] * 3)

    # When calls come at 0 s, 29 s and 30 s
    h.api.health()
    h.clock.now += 29
    h.api.health()
    h.clock.now += 1
    h.api.health()

    # Then one token served the first two, a new one the third
    assert h.transport.tokens_issued == 2


def test_a_401_from_a_resource_refreshes_the_token_once_and_retries():
    # Given the provider refuses the cached token (expired early on its side)
    h = harness()
    h.transport.script(
        "GET",
        "/ds/v1/health",
        answer({"code": "unauthorized", "message": "token expired"}, 401),
        answer(HEALTH),
    )

    # When the client calls
    health = h.api.health()

    # Then it fetched a second token and the retry with it succeeded
    assert health.ok is True
    assert [s.headers["Authorization"] for s in h.transport.to("/ds/v1/health")] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert h.sleeps == []


def test_a_401_with_the_fresh_token_too_stands_as_authentication_failed():
    # Given the provider refuses every token
    h = harness()
    refused = answer({"code": "unauthorized", "message": "no"}, 401)
    h.transport.script("GET", "/ds/v1/health", refused, refused, refused)

    # When the client calls
    with pytest.raises(AuthenticationFailed) as raised:
        h.api.health()

    # Then exactly one refresh was tried: two tokens, two resource calls, no retry storm
    assert raised.value.status == 401
    assert h.transport.tokens_issued == 2
    assert len(h.transport.resource_calls()) == 2


def test_a_401_from_the_token_endpoint_fails_at_once_without_retries():
    # Given the token endpoint refuses the credentials (OAuth2 error body)
    h = harness()
    h.transport.script(
        "POST",
        "/oauth/token",
        answer({"error": "invalid_client", "error_description": "bad credentials"}, 401),
    )

    # When the client calls
    with pytest.raises(AuthenticationFailed) as raised:
        h.api.health()

    # Then one token request, no resource call, no backoff; the OAuth2 error is kept
    assert len(h.transport.sent) == 1
    assert h.sleeps == []
    assert (raised.value.code, raised.value.message) == ("invalid_client", "bad credentials")
    assert CLIENT_SECRET not in str(raised.value)


def test_a_token_endpoint_outage_is_retried_like_any_call():
    # Given the token endpoint answers 503 once, then drops the connection once
    h = harness()
    h.transport.script(
        "POST",
        "/oauth/token",
        answer({"message": "busy"}, 503),
        TransportError("NewConnectionError", request_sent=False),
    )
    h.transport.script("GET", "/ds/v1/health", answer(HEALTH))

    # When the client calls
    health = h.api.health()

    # Then the third token request succeeded after two backoffs
    assert health.ok is True
    assert len(h.transport.to("/oauth/token")) == 3
    assert len(h.sleeps) == 2


def test_an_unreadable_token_answer_is_an_api_error_that_does_not_echo_it():
    # Given the token endpoint answers 200 without an access token
    h = harness()
    h.transport.script("POST", "/oauth/token", answer({"token": "leaky-value"}))

    # When the client calls
    with pytest.raises(ApiError) as raised:
        h.api.health()

    # Then the error names the problem, not the body
    assert raised.value.code == "invalid_token_response"
    assert "leaky-value" not in str(raised.value)


def test_neither_the_client_secret_nor_tokens_reach_the_logs(
    logged: Callable[[], list[dict[str, object]]],
):
    # Given a run with a token refresh and a refused call
    h = harness()
    h.transport.script(
        "GET",
        "/ds/v1/health",
        answer({"code": "unauthorized"}, 401),
        answer({"code": "unauthorized"}, 401),
    )

    # When it fails
    with pytest.raises(AuthenticationFailed):
        h.api.health()

    # Then every call is logged by its path template, and no secret or token appears
    records = logged()
    assert [(r["method"], r["path"], r["status"]) for r in records if "attempt" in r] == [
        ("POST", "/oauth/token", 200),
        ("GET", "/health", 401),
        ("POST", "/oauth/token", 200),
        ("GET", "/health", 401),
    ]
    text = json.dumps(records)
    for secret in (CLIENT_SECRET, "token-1", "token-2"):
        assert secret not in text
