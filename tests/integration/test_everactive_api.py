"""The provider API client over real HTTP on 127.0.0.1 (urllib3, no fakes in between).

Two servers: the emulator's provider API (`local.emulator.api.ProviderApi`) for the protocol
(tokens, pages, errors, webhooks, injected 429/500 bursts, tokens expiring mid-run), and a few
lines of `http.server` for what a well-behaved emulator never does (hang, close the port,
answer with a proxy's HTML page). Backoff sleeps are recorded, never slept.
"""

import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.emulator import Installation
from local.emulator.api import DEMO_API_CREDENTIALS, ProviderApi
from sensorhook.providers.everactive_api import (
    ApiError,
    ApiFlavor,
    AuthenticationFailed,
    ClientCredentials,
    EveractiveApi,
    NotFound,
    ProviderUnavailable,
    WebhookHeader,
    WebhookSpec,
)
from tests.builders import SettableClock

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the simulated installation's start
DS_CLIENT = "demo-ds-client"
V2020_CLIENT = "demo-v2020-client"


@dataclass
class Emulated:
    provider: ProviderApi
    clock: SettableClock
    sleeps: list[float] = field(default_factory=list)

    def client(self, flavor: ApiFlavor = ApiFlavor.DATA_SERVICES, **options: Any) -> EveractiveApi:
        ds = flavor is ApiFlavor.DATA_SERVICES
        client_id = DS_CLIENT if ds else V2020_CLIENT
        secret = options.pop("client_secret", DEMO_API_CREDENTIALS[client_id])
        defaults: dict[str, Any] = {
            "flavor": flavor,
            "base_url": self.provider.ds_api_base_url if ds else self.provider.v2020_api_base_url,
            "token_url": self.provider.ds_token_url if ds else None,
            "credentials": lambda: ClientCredentials(
                client_id=client_id,
                client_secret=secret,
            ),
            "sleep": self.sleeps.append,
            "rng": random.Random(3),  # noqa: S311 - jitter
            "timeout_s": 5.0,
            "allow_http_loopback_callbacks": True,
        }
        return EveractiveApi(**{**defaults, **options})

    def calls(self, path_suffix: str) -> list[tuple[str, int]]:
        return [(m, s) for m, p, s in self.provider.requests if p.endswith(path_suffix)]


def _emulator(sensors: int, *, running_for: timedelta) -> Iterator[Emulated]:
    clock = SettableClock(T0 + running_for)
    installation = Installation.create(seed=11, sensors=sensors, gateways=2, start=T0)
    with ProviderApi(installation, clock=clock) as provider:
        yield Emulated(provider, clock)


@pytest.fixture
def emulated() -> Iterator[Emulated]:
    yield from _emulator(6, running_for=timedelta(minutes=30))


@pytest.fixture
def running_a_day() -> Iterator[Emulated]:
    """One sensor 25 hours in: a day of readings without simulating six sensors' worth."""
    yield from _emulator(1, running_for=timedelta(hours=25))


# -- against the emulator --------------------------------------------------------------------


def test_health_gateways_and_sensors_walk_every_page(emulated: Emulated):
    # Given a Data Services client paging by two over six sensors and two gateways
    api = emulated.client(page_size=2)

    # When health, gateways and sensors are read
    health = api.health()
    gateways = list(api.gateways())
    sensors = list(api.sensors())

    # Then every item came once, across three sensor pages, with last contacts parsed
    assert health.ok is True
    assert len(gateways) == 2
    assert all(g.last_contact is not None for g in gateways)
    assert len({s.mac_address for s in sensors}) == 6
    assert emulated.calls("/eversensors") == [("GET", 200)] * 3
    assert emulated.calls("/auth/token") == [("POST", 200)]  # one token for the whole run


def test_v2020_gateways_with_form_token_filters_and_sorting(emulated: Emulated):
    # Given a v2020-07 client (token URL defaulted to <base>/auth/token)
    api = emulated.client(ApiFlavor.V2020_07, page_size=1)
    serials = sorted(g.serial_number for g in api.gateways())

    # When gateways are filtered by serial number and sorted descending
    one = list(api.gateways(serialNumber=serials[0]))
    descending = [g.serial_number for g in api.gateways(sort_by="serialNumber", sort_dir="desc")]  # type: ignore[arg-type]

    # Then the filter and sort were honoured, across pages of one
    assert [g.serial_number for g in one] == [serials[0]]
    assert descending == sorted(serials, reverse=True)
    assert emulated.calls("/v2020-07/auth/token") == [("POST", 200)]


def test_a_token_expiring_mid_run_is_refreshed_once_and_the_walk_continues(emulated: Emulated):
    # Given a sensor walk that has read its first page
    api = emulated.client(page_size=2)
    walk = api.sensors()
    first = next(walk)

    # When the provider expires every issued token, and the walk goes on
    emulated.provider.expire_tokens()
    rest = list(walk)

    # Then the next page was refused once, a new token fetched, and all sensors came
    assert len({first.mac_address, *(s.mac_address for s in rest)}) == 6
    assert emulated.calls("/eversensors") == [
        ("GET", 200),
        ("GET", 401),
        ("GET", 200),
        ("GET", 200),
    ]
    assert emulated.calls("/auth/token") == [("POST", 200), ("POST", 200)]


def test_429_with_retry_after_is_waited_out(emulated: Emulated):
    # Given the provider throttles the next two calls, asking for 3 s
    api = emulated.client()
    api.health()
    emulated.provider.fail_next(429, 2, retry_after_s=3)

    # When the client lists webhooks
    webhooks = api.list_webhooks()

    # Then it waited 3 s twice and got its answer on the third attempt
    assert webhooks == []
    assert emulated.sleeps == [3.0, 3.0]
    assert emulated.calls("/webhooks") == [("GET", 429), ("GET", 429), ("GET", 200)]


def test_a_burst_of_500s_is_ridden_out_and_a_longer_one_is_provider_unavailable(
    emulated: Emulated,
):
    # Given a client with 4 attempts and a burst of three 500s
    api = emulated.client(max_attempts=4)
    emulated.provider.fail_next(500, 3)

    # When it calls, then meets a burst of four 503s
    health = api.health()
    emulated.provider.fail_next(503, 4)
    with pytest.raises(ProviderUnavailable) as raised:
        api.health()

    # Then the first call succeeded after 3 jittered backoffs; the second failed, typed
    assert health.ok is True
    assert len(emulated.sleeps) == 6
    assert all(0 <= s <= 20 for s in emulated.sleeps)
    assert (raised.value.status, raised.value.code) == (503, "error_503")


def test_wrong_credentials_fail_at_the_token_endpoint_without_retries(emulated: Emulated):
    # Given a client with a wrong secret
    api = emulated.client(client_secret="not-the-secret")

    # When it calls / Then the token endpoint's 401 is AuthenticationFailed, asked once
    with pytest.raises(AuthenticationFailed) as raised:
        api.health()
    assert raised.value.errors[0].code == "err_invalid_client"
    assert emulated.calls("/auth/token") == [("POST", 401)]
    assert emulated.sleeps == []


def test_readings_over_25_hours_come_in_order_once_each_across_two_windows(
    running_a_day: Emulated,
):
    # Given an installation running for 25 hours, reading once a minute
    emulated = running_a_day
    api = emulated.client(page_size=50)
    mac = next(iter(api.sensors())).mac_address

    # When the whole 25 hours of one sensor are read
    readings = list(api.readings(mac, T0, emulated.clock.now))

    # Then they match the provider's own record, oldest first, without duplicates
    expected = [
        r["timestamp"]
        for r in emulated.provider.cloud.readings(mac)
        if T0.timestamp() <= r["timestamp"] < emulated.clock.now.timestamp()
    ]
    stamps = [r["timestamp"] for r in readings]
    assert stamps == sorted(expected)
    assert len(set(stamps)) == len(stamps) > 24 * 60  # more than one window's worth
    assert stamps[0] < T0.timestamp() + 3600 and stamps[-1] > emulated.clock.now.timestamp() - 3600
    assert not any(status >= 400 for _, _, status in emulated.provider.requests)


def test_data_services_webhook_crud_round_trip(emulated: Emulated):
    # Given a webhook spec with a header, to a loopback callback (local mode)
    api = emulated.client()
    spec = WebhookSpec(
        callback_url="http://127.0.0.1:9/webhooks/everactive/ds/sensor-readings",
        event_type="sensor_reading",
        headers=[WebhookHeader(key="X-Api-Key", value="local-key")],
    )

    # When it is created, listed, read, disabled, and deleted
    created = api.create_webhook(spec)
    listed = api.list_webhooks()
    fetched = api.get_webhook(created.id)
    disabled = api.update_webhook(created.id, spec.model_copy(update={"enabled": False}))
    api.delete_webhook(created.id)

    # Then the provider held what was sent at each step, and it is gone at the end
    assert [w.id for w in listed] == [created.id]
    assert fetched.headers == spec.headers
    assert fetched.callback_url == spec.callback_url
    assert disabled.enabled is False
    assert emulated.provider.webhooks == {}
    with pytest.raises(NotFound):
        api.get_webhook(created.id)


def test_the_providers_validation_errors_arrive_with_their_fields(emulated: Emulated):
    # Given a spec the client lets through but the provider refuses (event type not available)
    api = emulated.client()
    spec = WebhookSpec(callback_url="https://example.test/hook", event_type="threshold_crossed")

    # When it is created / Then the error body's per-field entries are typed
    with pytest.raises(ApiError) as raised:
        api.create_webhook(spec)
    assert raised.value.status == 400
    assert raised.value.code == "error_validation"
    assert [(e.code, e.field) for e in raised.value.errors] == [
        ("err_event_type_not_available", "eventType")
    ]


def test_v2020_subscription_carries_its_generated_secret(emulated: Emulated):
    # Given a v2020-07 client
    api = emulated.client(ApiFlavor.V2020_07)
    spec = WebhookSpec(
        callback_url="https://example.test/webhooks/everactive/v2020-07/events",
        event_type="steam_trap_state_change",
    )

    # When a subscription is created, read back and deleted
    created = api.create_webhook(spec)
    fetched = api.get_webhook(created.id)
    api.delete_webhook(created.id)

    # Then the secret came with the create only, and the subscription is gone
    assert created.secret is not None and len(created.secret.get_secret_value()) >= 32
    assert fetched.secret is None
    assert emulated.provider.v2020_subscriptions == {}


# -- against a misbehaving server ------------------------------------------------------------


class _Misbehaving(BaseHTTPRequestHandler):
    """Token endpoint, then per-path scripted misbehaviour; records client ports."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK
    script: dict[str, list[tuple[int, bytes, float]]]
    ports: list[int]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(200, b'{"access_token": "loopback-token", "expires_in": 3600}')

    def do_GET(self) -> None:
        self.ports.append(self.client_address[1])
        status, body, delay = self.script[self.path].pop(0)
        time.sleep(delay)
        self._send(status, body)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A timed-out client has gone before the hung answer is written: expected here."""


@pytest.fixture
def misbehaving() -> Iterator[tuple[str, type[_Misbehaving]]]:
    handler = type("Handler", (_Misbehaving,), {"script": {}, "ports": []})
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()
    thread.join()


def _loopback_client(base: str, sleeps: list[float], **options: Any) -> EveractiveApi:
    return EveractiveApi(
        flavor=ApiFlavor.DATA_SERVICES,
        base_url=base,
        token_url=f"{base}/token",
        credentials=lambda: ClientCredentials(client_id="c", client_secret="s"),
        sleep=sleeps.append,
        rng=random.Random(1),  # noqa: S311 - jitter
        **options,
    )


def test_a_read_timeout_is_retried_and_connections_are_pooled(
    misbehaving: tuple[str, type[_Misbehaving]],
):
    # Given a server that hangs past the 0.2 s timeout once, then answers twice
    base, handler = misbehaving
    ok = (200, b'{"ok": true, "version": "v"}', 0.0)
    handler.script["/health"] = [(200, b"{}", 0.6), ok, ok]
    sleeps: list[float] = []
    api = _loopback_client(base, sleeps, timeout_s=0.2)

    # When health is read twice
    started = time.monotonic()
    first, second = api.health(), api.health()
    elapsed = time.monotonic() - started

    # Then the hung attempt was cut at the timeout and retried; the last two calls shared a
    # pooled connection
    assert first.ok and second.ok
    assert len(sleeps) == 1
    assert elapsed < 0.6
    assert handler.ports[1] == handler.ports[2]


def test_a_closed_port_is_provider_unavailable_after_every_attempt():
    # Given a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    api = _loopback_client(f"http://127.0.0.1:{port}", sleeps, max_attempts=3)

    # When the client calls / Then it tried three times and says no answer came
    with pytest.raises(ProviderUnavailable) as raised:
        api.health()
    assert (raised.value.status, raised.value.code) == (None, "connection_error")
    assert len(sleeps) == 2


def test_a_proxys_html_error_page_becomes_a_typed_error(
    misbehaving: tuple[str, type[_Misbehaving]],
):
    # Given a proxy answering 502 with an HTML page, on every attempt
    base, handler = misbehaving
    page = b"<html><head><title>502 Bad Gateway</title></head></html>"
    handler.script["/eversensors?page-size=100"] = [(502, page, 0.0)] * 2
    api = _loopback_client(base, [], max_attempts=2)

    # When sensors are listed / Then the error is typed by status with the page's text
    with pytest.raises(ProviderUnavailable) as raised:
        list(api.sensors())
    assert raised.value.status == 502
    assert raised.value.message.startswith("<html><head><title>502 Bad Gateway")
