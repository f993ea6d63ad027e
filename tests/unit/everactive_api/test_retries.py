"""Bounded retries: backoff with full jitter, Retry-After, typed errors, logs and metrics."""

import json
import random
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime

import pytest

from sensorhook.providers.everactive_api import (
    HttpResponse,
    NotFound,
    ProviderUnavailable,
    RateLimited,
    TransportError,
    WebhookSpec,
)
from sensorhook.providers.everactive_api.transport import RetryPolicy, retry_after_s
from tests.fixtures.loader import sample_json
from tests.unit.everactive_api.fakes import NOW, Sent, answer, harness

HEALTH = sample_json("everactive-ds/api/health.json")
BUSY = {"code": "error_throttled", "message": "Too many requests."}
BROKEN = {"code": "error_internal", "message": "Internal error."}
SPEC = WebhookSpec(callback_url="https://hooks.example.test/ds", event_type="sensor_reading")


def test_429_with_retry_after_seconds_waits_that_long_then_succeeds():
    # Given the provider throttles once, asking for 7 seconds
    h = harness()
    h.transport.script("GET", "/ds/v1/health", answer(BUSY, 429, retry_after="7"), answer(HEALTH))

    # When the client calls
    health = h.api.health()

    # Then it slept exactly the asked 7 s (no jitter on an explicit request) and succeeded
    assert health.ok is True
    assert h.sleeps == [7.0]


def test_429_with_retry_after_as_an_http_date_waits_until_that_moment():
    # Given the provider asks to come back 12 s from now, as an HTTP date
    h = harness()
    later = format_datetime(NOW + timedelta(seconds=12), usegmt=True)
    h.transport.script("GET", "/ds/v1/health", answer(BUSY, 429, retry_after=later), answer(HEALTH))

    # When the client calls
    h.api.health()

    # Then it slept the 12 s between now and that date
    assert h.sleeps == [12.0]


def test_retry_after_is_capped():
    # Given the provider asks for an hour, and the cap is 20 s
    h = harness(retry_after_cap_s=20.0)
    h.transport.script(
        "GET", "/ds/v1/health", answer(BUSY, 429, retry_after="3600"), answer(HEALTH)
    )

    # When the client calls
    h.api.health()

    # Then it waited only the cap
    assert h.sleeps == [20.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(header: str | None, expected: float | None):
    # Given / When / Then: delta-seconds and HTTP dates are read; the unreadable is None
    assert retry_after_s(header, NOW) == expected


def test_a_burst_of_500s_then_success_backs_off_with_full_jitter():
    # Given three 500s then an answer, with 4 attempts, base 0.5 s and cap 20 s
    h = harness(max_attempts=4, backoff_base_s=0.5, backoff_cap_s=20.0)
    h.transport.script("GET", "/ds/v1/health", *[answer(BROKEN, 500)] * 3, answer(HEALTH))

    # When the client calls
    health = h.api.health()

    # Then it succeeded on the 4th attempt after sleeping uniform draws in [0, 0.5·2^(n-1)]
    assert health.ok is True
    same_rng = random.Random(7)  # noqa: S311 - jitter
    assert h.sleeps == [same_rng.uniform(0, bound) for bound in (0.5, 1.0, 2.0)]
    assert all(0 <= s <= bound for s, bound in zip(h.sleeps, (0.5, 1.0, 2.0), strict=True))


def test_backoff_never_exceeds_the_cap():
    # Given a policy whose exponential bound passes the cap at the 4th attempt
    policy = RetryPolicy(max_attempts=10, backoff_base_s=1.0, backoff_cap_s=5.0)

    # When many backoffs are drawn for late attempts
    draws = [
        policy.backoff_s(attempt, random.Random(seed))  # noqa: S311
        for seed in range(50)
        for attempt in (4, 9)
    ]

    # Then none exceeds the cap, and they spread across it (jitter, not a constant)
    assert max(draws) <= 5.0
    assert min(draws) < 1.0
    assert max(draws) > 4.0


def test_5xx_after_the_last_attempt_is_provider_unavailable_with_the_parsed_error():
    # Given the provider answers 503 to every attempt
    h = harness(max_attempts=3)
    h.transport.script("GET", "/ds/v1/health", *[answer(BROKEN, 503)] * 3)

    # When the client calls
    with pytest.raises(ProviderUnavailable) as raised:
        h.api.health()

    # Then three attempts, two sleeps, and the error carries status, code and message
    assert len(h.transport.resource_calls()) == 3
    assert len(h.sleeps) == 2
    assert (raised.value.status, raised.value.code, raised.value.message) == (
        503,
        "error_internal",
        "Internal error.",
    )


def test_429_after_the_last_attempt_is_rate_limited():
    # Given the provider throttles every attempt
    h = harness(max_attempts=2)
    h.transport.script("GET", "/ds/v1/health", *[answer(BUSY, 429, retry_after="1")] * 2)

    # When the client calls
    with pytest.raises(RateLimited) as raised:
        h.api.health()

    # Then it is typed as throttling, after one wait
    assert raised.value.status == 429
    assert h.sleeps == [1.0]


def test_a_connection_error_is_retried():
    # Given the connection is refused once
    h = harness()
    h.transport.script(
        "GET",
        "/ds/v1/health",
        TransportError("NewConnectionError", request_sent=False),
        answer(HEALTH),
    )

    # When the client calls
    assert h.api.health().ok is True

    # Then it backed off once and tried again
    assert len(h.sleeps) == 1
    assert len(h.transport.resource_calls()) == 2


def test_timeouts_on_every_attempt_are_provider_unavailable_without_a_status():
    # Given every attempt times out reading the answer
    h = harness(max_attempts=3, timeout_s=2.5)
    h.transport.script(
        "GET", "/ds/v1/health", *[TransportError("ReadTimeoutError", request_sent=True)] * 3
    )

    # When the client calls
    with pytest.raises(ProviderUnavailable) as raised:
        h.api.health()

    # Then all attempts ran with the configured timeout, and no status was ever seen
    assert [s.timeout_s for s in h.transport.resource_calls()] == [2.5] * 3
    assert (raised.value.status, raised.value.code) == (None, "connection_error")


def test_a_create_is_not_sent_again_after_a_500_that_may_have_created_it():
    # Given the provider answers 500 to a create
    h = harness()
    h.transport.script(
        "POST", "/ds/v1/webhooks", answer(BROKEN, 500), answer({"data": {"id": "x"}})
    )

    # When the client creates a webhook
    with pytest.raises(ProviderUnavailable):
        h.api.create_webhook(SPEC)

    # Then it did not send the create twice (a duplicate subscription is worse than a failed run)
    assert len(h.transport.to("/ds/v1/webhooks")) == 1


def test_a_create_after_a_lost_answer_is_not_sent_again_but_after_a_refused_connection_it_is():
    # Given a create whose answer is lost (read timeout), and one whose connection is refused
    lost = harness()
    lost.transport.script(
        "POST", "/ds/v1/webhooks", TransportError("ReadTimeoutError", request_sent=True)
    )
    refused = harness()
    refused.transport.script(
        "POST",
        "/ds/v1/webhooks",
        TransportError("NewConnectionError", request_sent=False),
        answer({"data": {"id": "wh-1"}}),
    )

    # When each creates a webhook
    with pytest.raises(ProviderUnavailable):
        lost.api.create_webhook(SPEC)
    created = refused.api.create_webhook(SPEC)

    # Then only the request that never left was sent again
    assert len(lost.transport.to("/ds/v1/webhooks")) == 1
    assert created.id == "wh-1"
    assert len(refused.transport.to("/ds/v1/webhooks")) == 2


def test_a_throttled_create_is_retried():
    # Given the provider throttles a create (it did nothing)
    h = harness()
    h.transport.script(
        "POST",
        "/ds/v1/webhooks",
        answer(BUSY, 429, retry_after="2"),
        answer({"data": {"id": "wh-1"}}),
    )

    # When the client creates a webhook
    created = h.api.create_webhook(SPEC)

    # Then it waited and sent it again
    assert created.id == "wh-1"
    assert h.sleeps == [2.0]


def test_each_attempt_is_logged_and_timed_and_a_final_failure_is_counted(
    logged: Callable[[], list[dict[str, object]]], capsys: pytest.CaptureFixture[str]
):
    # Given a call that takes 250 ms per attempt and fails twice with 503
    h = harness(max_attempts=2)

    def slow(status: int) -> Callable[[Sent], HttpResponse]:
        def respond(_: Sent) -> HttpResponse:
            h.clock.now += 0.25
            return answer(BROKEN, status)

        return respond

    h.transport.script("GET", "/ds/v1/webhook/wh-9", slow(503), slow(503))
    capsys.readouterr()

    # When the client calls
    with pytest.raises(ProviderUnavailable):
        h.api.get_webhook("wh-9")

    # Then each attempt has a log line with method, path template, status, attempt and latency
    calls = [r for r in logged() if r.get("path") == "/webhook/{id}" and "attempt" in r]
    assert [(c["method"], c["status"], c["attempt"], c["latency_ms"]) for c in calls] == [
        ("GET", 503, 1, 250.0),
        ("GET", 503, 2, 250.0),
    ]
    # and EMF carries the latency per attempt and one error, dimensioned by flavor
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    latency = [e["ProviderApiLatency"] for e in emf if "ProviderApiLatency" in e]
    errors = [e for e in emf if "ProviderApiErrors" in e]
    assert latency[-2:] == [[250.0], [250.0]]
    assert len(errors) == 1
    assert errors[0]["flavor"] == "data-services"
    assert errors[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "sensorhook"
    assert errors[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "ProviderApiErrors", "Unit": "Count"}
    ]


def test_not_found_is_an_answer_not_an_error_metric(capsys: pytest.CaptureFixture[str]):
    # Given the webhook does not exist
    h = harness()
    h.transport.script("GET", "/ds/v1/webhook/gone", answer({"code": "not_found"}, 404))
    capsys.readouterr()

    # When the client asks for it
    with pytest.raises(NotFound):
        h.api.get_webhook("gone")

    # Then it was not retried and not counted as a provider error
    assert len(h.transport.resource_calls()) == 1
    assert "ProviderApiErrors" not in capsys.readouterr().out
