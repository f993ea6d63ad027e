"""`ProviderApi`: the Everactive API as the control plane sees it, over loopback HTTP.

Both token endpoints, the Data Services API under `/ds/v1` and the v2020-07 API under
`/v2020-07`, drawing gateways, sensors and readings from the same `Installation` that sends the
webhooks, plus the fault controls a test needs to reach every branch of a client. Standard
library only (`ThreadingHTTPServer`).
"""

import hmac
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.emulator.api import resources
from local.emulator.api.cloud import DEFAULT_HISTORY, Evercloud
from local.emulator.api.pagination import (
    DATA_SERVICES_NAMES,
    V2020_NAMES,
    QueryNames,
    Sorting,
    page_of,
    parse_page_request,
)
from local.emulator.api.problems import (
    ApiProblem,
    FieldError,
    injected,
    invalid,
    not_found,
    unauthorized,
    validation_failed,
)
from local.emulator.api.tokens import TokenIssuer
from local.emulator.api.webhooks import (
    DS_EVENT_TYPES,
    V2020_EVENT_TYPE,
    Target,
    new_secret,
    new_webhook_id,
    targets,
    validated_spec,
)
from local.emulator.deliveries import (
    Delivery,
    DeliveryFactory,
    Fault,
    Intent,
    Secrets,
    encode,
    utc_now,
)
from local.emulator.installation import Installation, Payload
from local.emulator.sender import Sender, SendReport
from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import Flavor

DS_PREFIX = "/ds/v1"
V2020_PREFIX = "/v2020-07"
DS_TOKEN_PATH = "/auth/token"  # noqa: S105 (a path, not a secret)
V2020_TOKEN_PATH = f"{V2020_PREFIX}/auth/token"
MAX_READINGS_WINDOW_S = 24 * 3600  # the provider answers at most 24 hours per call
HEALTH_VERSION = "89accb09"  # the sample's

DEMO_API_CREDENTIALS: dict[str, str] = {  # local only, documented in docs/control-plane.md
    "demo-ds-client": "demo-ds-client-secret",
    "demo-v2020-client": "demo-v2020-client-secret",
}

Json = dict[str, Any]
Query = Mapping[str, str]


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None  # JSON-encoded unless None (204)
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: Query
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise invalid("body", "err_invalid_json", "the body is not valid JSON") from None


Handler = Callable[[_Request, re.Match[str]], Answer]


def _by(name: str) -> Callable[[Json], Any]:
    return lambda item: item.get(name)


_GATEWAY_SORTING = Sorting(
    {name: _by(name) for name in ("serialNumber", "lastSeen", "name", "location")},
    default_by="serialNumber",
)
_V2020_GATEWAY_SORTING = Sorting(
    {name: _by(name) for name in ("id", "lastReading", "location", "name", "serialNumber")}
    | {"customer.name": lambda item: item["customer"]["name"]},
    # the seed: "returned with a descending sort order on the lastReading timestamp"
    default_by="lastReading",
    default_dir="desc",
)
_SENSOR_SORTING = Sorting(
    {
        "macAddress": _by("macAddress"),
        "type": _by("type"),
        "lastReading": lambda item: (item["lastReading"] or {}).get("timestamp"),
    },
    default_by="macAddress",
)
_READING_SORTING = Sorting({"timestamp": _by("timestamp")}, "timestamp", "desc")  # newest first
_WEBHOOK_SORTING = Sorting(
    {name: _by(name) for name in ("id", "callbackUrl", "eventType", "enabled")}
)  # unsorted: creation order
_GATEWAY_FILTERS = ("location", "name", "serialNumber")  # LIKE: case-insensitive substring


class ProviderApi:
    """The provider's API on 127.0.0.1; see docs/emulator.md "API side"."""

    def __init__(
        self,
        installation: Installation,
        *,
        credentials: dict[str, str] = DEMO_API_CREDENTIALS,
        token_ttl_s: int = 86400,
        page_size_max: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_http_loopback_callbacks: bool = True,
        clock: Callable[[], datetime] = utc_now,
        history: timedelta = DEFAULT_HISTORY,
        request_log_limit: int = 10_000,
    ) -> None:
        """`history`: how far back the readings API serves (a longer outage needs more);
        `request_log_limit`: how many of the newest requests `requests` keeps (`make local`
        runs for hours, and its control plane calls the API every few seconds)."""
        self.installation = installation
        self.credentials = dict(credentials)
        self.token_ttl_s = token_ttl_s
        self.page_size_max = page_size_max
        self.host = host
        self.port = port
        self.allow_http_loopback_callbacks = allow_http_loopback_callbacks
        self.clock = clock
        self.tokens = TokenIssuer(ttl_s=token_ttl_s, clock=clock)
        self.cloud = Evercloud(installation, clock=clock, wants=self._wanted, history=history)
        self.webhooks: dict[str, Json] = {}  # Data Services: id -> the webhook as served
        self.v2020_subscriptions: dict[str, Json] = {}  # id -> subscription incl. its secret
        self.requests: list[tuple[str, str, int]] = []
        self.request_log_limit = request_log_limit
        self.base_url = ""
        self._lock = self.cloud.lock  # one lock for the registry and the simulated devices
        self._failures: deque[tuple[int, float | None]] = deque()
        self._tokens_expire_in: int | None = None  # resource requests until tokens lapse
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(re.escape(DS_TOKEN_PATH)), self._ds_token),
            ("POST", re.compile(re.escape(V2020_TOKEN_PATH)), self._v2020_token),
            ("GET", _path(DS_PREFIX, "/health"), self._health),
            ("GET", _path(DS_PREFIX, "/evergateways"), self._ds_gateways),
            ("GET", _path(DS_PREFIX, "/eversensors"), self._sensors),
            ("GET", _path(DS_PREFIX, "/eversensors/(?P<mac>[^/]+)/readings/last"), self._last),
            ("GET", _path(DS_PREFIX, "/eversensors/(?P<mac>[^/]+)/readings"), self._readings),
            ("POST", _path(DS_PREFIX, "/webhooks"), self._create_ds_webhook),
            ("GET", _path(DS_PREFIX, "/webhooks"), self._list_ds_webhooks),
            ("GET", _path(DS_PREFIX, "/webhook/(?P<id>[^/]+)"), self._get_ds_webhook),
            ("PUT", _path(DS_PREFIX, "/webhook/(?P<id>[^/]+)"), self._update_ds_webhook),
            ("DELETE", _path(DS_PREFIX, "/webhook/(?P<id>[^/]+)"), self._delete_ds_webhook),
            ("GET", _path(V2020_PREFIX, "/gateways"), self._v2020_gateways),
            ("POST", _path(V2020_PREFIX, "/webhooks"), self._create_subscription),
            ("GET", _path(V2020_PREFIX, "/webhooks"), self._list_subscriptions),
            ("GET", _path(V2020_PREFIX, "/webhooks/(?P<id>[^/]+)"), self._get_subscription),
            ("PUT", _path(V2020_PREFIX, "/webhooks/(?P<id>[^/]+)"), self._update_subscription),
            ("DELETE", _path(V2020_PREFIX, "/webhooks/(?P<id>[^/]+)"), self._delete_subscription),
        ]

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def ds_api_base_url(self) -> str:
        return f"{self.base_url}{DS_PREFIX}"

    @property
    def ds_token_url(self) -> str:
        return f"{self.base_url}{DS_TOKEN_PATH}"

    @property
    def v2020_api_base_url(self) -> str:
        return f"{self.base_url}{V2020_PREFIX}"

    @property
    def v2020_token_url(self) -> str:
        return f"{self.base_url}{V2020_TOKEN_PATH}"

    def start(self) -> str:
        """Serve in a background thread; returns the base URL."""
        server = _Server((self.host, self.port), _RequestHandler)
        server.api = self
        self._server = server
        self.port = server.server_address[1]
        self.base_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns quickly
            name="provider-api",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> "ProviderApi":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- fault controls --------------------------------------------------------------------

    def disable_webhook(self, webhook_id: str) -> None:
        """What the provider does to a subscription whose deliveries keep failing."""
        with self._lock:
            registry = self.webhooks if webhook_id in self.webhooks else self.v2020_subscriptions
            if webhook_id not in registry:
                raise KeyError(f"no webhook {webhook_id}")
            registry[webhook_id]["enabled"] = False

    def disable_subscription(self, event_type: str) -> str:
        """Disable the (first) enabled Data Services webhook of `event_type`, as the provider
        does after failed deliveries; returns its id. The installation keeps measuring: the
        readings API serves what the webhook no longer delivers, until something re-enables
        it through the API."""
        with self._lock:
            for webhook_id, webhook in self.webhooks.items():
                if webhook["eventType"] == event_type and webhook["enabled"]:
                    webhook["enabled"] = False
                    return webhook_id
        raise KeyError(f"no enabled Data Services webhook for {event_type}")

    def take_gateway_offline(self, serial: str) -> None:
        """Its last contact stops advancing; neither it nor its sensors report any more."""
        self.cloud.take_gateway_offline(serial)

    def bring_gateway_online(self, serial: str) -> None:
        self.cloud.bring_gateway_online(serial)

    def silence_sensor(self, mac: str) -> None:
        """The sensor stops reading (its gateway stays online)."""
        self.cloud.silence_sensor(mac)

    def resume_sensor(self, mac: str) -> None:
        self.cloud.resume_sensor(mac)

    def fail_next(self, status: int, count: int, retry_after_s: float | None = None) -> None:
        """The next `count` resource requests (not token requests) answer `status`."""
        if not 400 <= status <= 599 or count < 1:
            raise ValueError("status must be 4xx/5xx and count at least 1")
        with self._lock:
            self._failures.extend([(status, retry_after_s)] * count)

    def clear_failures(self) -> None:
        """Forget the failures `fail_next` queued and not yet answered."""
        with self._lock:
            self._failures.clear()

    def expire_tokens_after(self, requests: int) -> None:
        """Every token issued so far lapses once `requests` more resource requests arrived
        (the last of them is already refused): a token expiring in the middle of a run."""
        if requests < 1:
            raise ValueError("requests must be at least 1")
        with self._lock:
            self._tokens_expire_in = requests

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (401); new ones work."""
        self.tokens.revoke_all()

    # -- webhook deliveries ----------------------------------------------------------------

    def registered_targets(self) -> list[Target]:
        """Enabled subscriptions, as the emulator will post to them."""
        with self._lock:
            return targets(self.webhooks, self.v2020_subscriptions)

    def pending_deliveries(self) -> list[Delivery]:
        """Requests for every payload the installation produced since the last call, one per
        enabled subscription of its event type (none from an offline gateway)."""
        self.cloud.advance()
        payloads = self.cloud.drain()
        by_flavor: dict[Flavor, list[Target]] = {}
        for target in self.registered_targets():
            by_flavor.setdefault(target.flavor, []).append(target)
        return [
            _delivery(payload, target)
            for payload in payloads
            for target in by_flavor.get(payload.flavor, [])
        ]

    def deliver(self, sender: Sender | None = None) -> SendReport:
        """Post the pending deliveries now (see `pending_deliveries`)."""
        deliveries = self.pending_deliveries()
        return (sender or Sender(concurrency=4)).run(deliveries, count=len(deliveries))

    def _wanted(self, flavor: Flavor) -> bool:
        return any(target.flavor is flavor for target in self.registered_targets())

    # -- request handling ------------------------------------------------------------------

    def answer(self, request: _Request) -> Answer:
        try:
            handler, match = self._route(request)
            if handler not in (self._ds_token, self._v2020_token):
                self._before_resource(request)
            return handler(request, match)
        except ApiProblem as problem:
            return Answer(problem.status, problem.body(), problem.headers)

    def _route(self, request: _Request) -> tuple[Handler, re.Match[str]]:
        allowed = []
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method == request.method:
                return handler, match
            allowed.append(method)
        if allowed:
            raise ApiProblem(
                405,
                "error_method_not_allowed",
                "Method not allowed.",
                headers={"Allow": ", ".join(allowed)},
            )
        raise not_found("path", request.path)

    def _before_resource(self, request: _Request) -> None:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
            if self._tokens_expire_in is not None:
                self._tokens_expire_in -= 1
                if self._tokens_expire_in <= 0:
                    self._tokens_expire_in = None
                    self.tokens.revoke_all()
        if failure is not None:
            raise injected(*failure)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("err_missing_token", "Authorization", "a Bearer token is required")
        if not self.tokens.is_valid(token.strip()):
            raise unauthorized(
                "err_invalid_token", "Authorization", "the token is invalid or expired"
            )
        self.cloud.advance()

    def _ds_token(self, request: _Request, _match: re.Match[str]) -> Answer:
        """Data Services: the credentials as a JSON object (the seed's format)."""
        body = request.json()
        if not isinstance(body, dict):
            raise invalid("body", "err_invalid_body", "the body must be a JSON object")
        return self._token({k: v for k, v in body.items() if isinstance(v, str)})

    def _v2020_token(self, request: _Request, _match: re.Match[str]) -> Answer:
        """v2020-07: "OAuth2 Authentication endpoints require a form for the body"."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise invalid(
                "Content-Type",
                "err_invalid_content_type",
                "the body must be application/x-www-form-urlencoded",
            )
        return self._token(dict(parse_qsl(request.body.decode("utf-8", "replace"))))

    def _token(self, fields: dict[str, str]) -> Answer:
        if fields.get("grant_type") != "client_credentials":
            raise unauthorized(
                "err_unsupported_grant_type", "grant_type", "only client_credentials is supported"
            )
        expected = self.credentials.get(fields.get("client_id", ""))
        given = fields.get("client_secret", "")
        if expected is None or not hmac.compare_digest(expected.encode(), given.encode()):
            raise unauthorized("err_invalid_client", "client_id", "invalid client credentials")
        return Answer(
            200,
            {
                "access_token": self.tokens.issue(),
                "expires_in": self.token_ttl_s,
                "token_type": "Bearer",
            },
            {"Cache-Control": "no-store"},
        )

    def _health(self, _request: _Request, _match: re.Match[str]) -> Answer:
        return Answer(200, {"ok": True, "version": HEALTH_VERSION})  # unwrapped, as the sample

    def _ds_gateways(self, request: _Request, _match: re.Match[str]) -> Answer:
        with self._lock:
            items = [
                resources.data_services_gateway(self.installation, gateway, state)
                for gateway, state in resources.gateway_views(self.cloud)
            ]
        return self._page(
            request, _filtered(items, request.query), DATA_SERVICES_NAMES, _GATEWAY_SORTING
        )

    def _v2020_gateways(self, request: _Request, _match: re.Match[str]) -> Answer:
        with self._lock:
            items = [
                resources.v2020_gateway(self.installation, gateway, state)
                for gateway, state in resources.gateway_views(self.cloud)
            ]
        wanted_id = request.query.get("id")
        if wanted_id is not None:
            items = [item for item in items if item["id"] == wanted_id]
        return self._page(
            request, _filtered(items, request.query), V2020_NAMES, _V2020_GATEWAY_SORTING
        )

    def _sensors(self, request: _Request, _match: re.Match[str]) -> Answer:
        with self._lock:
            items = []
            for sensor in self.installation.eversensors:
                readings = self.cloud.readings(sensor.mac)
                last = readings[-1] if readings else None
                items.append(resources.sensor(self.installation, sensor, last))
        return self._page(request, items, DATA_SERVICES_NAMES, _SENSOR_SORTING)

    def _last(self, _request: _Request, match: re.Match[str]) -> Answer:
        readings = self._sensor_readings(match["mac"])
        return Answer(200, {"data": readings[-1] if readings else None})

    def _readings(self, request: _Request, match: re.Match[str]) -> Answer:
        readings = self._sensor_readings(match["mac"])
        start, end = _time_window(request.query)
        in_window = [r for r in readings if start <= r["timestamp"] <= end]
        return self._page(request, in_window, DATA_SERVICES_NAMES, _READING_SORTING)

    def _sensor_readings(self, mac: str) -> list[Json]:
        try:
            return self.cloud.readings(mac.lower())
        except KeyError:
            raise not_found("macAddress", mac) from None

    def _create_ds_webhook(self, request: _Request, _match: re.Match[str]) -> Answer:
        spec = self._ds_spec(request, current=None)
        with self._lock:
            webhook = {"id": new_webhook_id()} | spec
            self.webhooks[webhook["id"]] = webhook
            return Answer(201, {"data": dict(webhook)})

    def _list_ds_webhooks(self, request: _Request, _match: re.Match[str]) -> Answer:
        with self._lock:
            items = [dict(webhook) for webhook in self.webhooks.values()]
        return self._page(request, items, DATA_SERVICES_NAMES, _WEBHOOK_SORTING)

    def _get_ds_webhook(self, _request: _Request, match: re.Match[str]) -> Answer:
        with self._lock:
            return Answer(200, {"data": dict(self._ds_webhook(match["id"]))})

    def _update_ds_webhook(self, request: _Request, match: re.Match[str]) -> Answer:
        with self._lock:
            webhook = self._ds_webhook(match["id"])
            webhook.update(self._ds_spec(request, current=webhook))
            return Answer(200, {"data": dict(webhook)})

    def _delete_ds_webhook(self, _request: _Request, match: re.Match[str]) -> Answer:
        with self._lock:
            self._ds_webhook(match["id"])
            del self.webhooks[match["id"]]
        return Answer(204)

    def _ds_webhook(self, webhook_id: str) -> Json:
        try:
            return self.webhooks[webhook_id]
        except KeyError:
            raise not_found("webhookId", webhook_id) from None

    def _ds_spec(self, request: _Request, *, current: Json | None) -> Json:
        return validated_spec(
            request.json(),
            current=current,
            event_types=frozenset(DS_EVENT_TYPES),
            default_event_type=None,
            allow_http_loopback=self.allow_http_loopback_callbacks,
        )

    def _create_subscription(self, request: _Request, _match: re.Match[str]) -> Answer:
        """The generated secret is in this response only: the subscriber must store it."""
        spec = self._v2020_spec(request, current=None)
        with self._lock:
            subscription = {"id": new_webhook_id()} | spec | {"secret": new_secret()}
            self.v2020_subscriptions[subscription["id"]] = subscription
            return Answer(201, {"data": dict(subscription)})

    def _list_subscriptions(self, request: _Request, _match: re.Match[str]) -> Answer:
        with self._lock:
            items = [_without_secret(s) for s in self.v2020_subscriptions.values()]
        return self._page(request, items, V2020_NAMES, _WEBHOOK_SORTING)

    def _get_subscription(self, _request: _Request, match: re.Match[str]) -> Answer:
        with self._lock:
            return Answer(200, {"data": _without_secret(self._subscription(match["id"]))})

    def _update_subscription(self, request: _Request, match: re.Match[str]) -> Answer:
        """Same rules as Data Services' PUT; the secret stays what it was."""
        with self._lock:
            subscription = self._subscription(match["id"])
            subscription.update(self._v2020_spec(request, current=subscription))
            return Answer(200, {"data": _without_secret(subscription)})

    def _v2020_spec(self, request: _Request, *, current: Json | None) -> Json:
        return validated_spec(
            request.json(),
            current=current,
            event_types=frozenset({V2020_EVENT_TYPE}),
            default_event_type=V2020_EVENT_TYPE,
            allow_http_loopback=self.allow_http_loopback_callbacks,
        )

    def _delete_subscription(self, _request: _Request, match: re.Match[str]) -> Answer:
        with self._lock:
            self._subscription(match["id"])
            del self.v2020_subscriptions[match["id"]]
        return Answer(204)

    def _subscription(self, subscription_id: str) -> Json:
        try:
            return self.v2020_subscriptions[subscription_id]
        except KeyError:
            raise not_found("webhookId", subscription_id) from None

    def _page(
        self, request: _Request, items: list[Json], names: QueryNames, sorting: Sorting
    ) -> Answer:
        page_request = parse_page_request(request.query, names, sorting, self.page_size_max)
        return Answer(200, page_of(items, page_request, sorting))

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))
            del self.requests[: -self.request_log_limit]  # a list still: tests compare it


def _path(prefix: str, route: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + route)


def _filtered(items: list[Json], query: Query) -> list[Json]:
    for name in _GATEWAY_FILTERS:
        wanted = query.get(name)
        if wanted is not None:
            items = [item for item in items if wanted.lower() in str(item.get(name, "")).lower()]
    return items


def _time_window(query: Query) -> tuple[int, int]:
    errors: list[FieldError] = []
    bounds = []
    for name in ("start-time", "end-time"):
        text = query.get(name)
        if text is None:
            errors.append(FieldError("err_required", name, f"{name} is required (unix seconds)"))
        elif not text.lstrip("-").isdigit():
            errors.append(FieldError("err_invalid_value", name, f"{text} is not unix seconds"))
        else:
            bounds.append(int(text))
    if errors:
        raise validation_failed(errors)
    start, end = bounds
    if end < start:
        raise invalid("end-time", "err_invalid_time_range", "end-time is before start-time")
    if end - start > MAX_READINGS_WINDOW_S:
        raise invalid(
            "end-time", "err_time_range_too_large", "the time range must not exceed 24 hours"
        )
    return start, end


def _without_secret(subscription: Json) -> Json:
    return {name: value for name, value in subscription.items() if name != "secret"}


def _delivery(payload: Payload, target: Target) -> Delivery:
    if target.secret is not None:
        signer = Secrets.model_validate(
            {"v2020_signing": {"keys": {target.webhook_id: target.secret}}}
        )
        return DeliveryFactory(signer, exact_url=target.url).authentic(payload)
    body = encode(payload.body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"sensorhook-emulator ({payload.flavor.provider})",
        "Content-Length": str(len(body)),
    } | target.headers
    return Delivery(
        payload.flavor,
        target.url,
        body,
        headers,
        Intent.ACCEPTED,
        Fault.NONE,
        payload,
        event_id_for(payload.flavor, payload.body),
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: ProviderApi


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    # Nagle + delayed ACK cost ~40 ms per keep-alive response; 0.6 ms without
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = _Request(
            self.command,
            split.path,
            dict(parse_qsl(split.query)),
            {name.lower(): value for name, value in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        api = self.server.api
        answer = api.answer(request)
        api._log(request.method, request.path, answer.status)
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for name, value in (answer.headers or {}).items():
            self.send_header(name, value)
        if answer.body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `ProviderApi.requests` is the log tests read."""
