"""A local stand-in for API Gateway HTTP APIs, built from the template's routes.

moto's CloudFormation skips ``AWS::ApiGatewayV2::*``, so the runtime reads each HTTP API's
routes and Lambda proxy integrations from the synthesized template and serves them on
127.0.0.1, turning requests into payload format 2.0 events and Lambda results into responses
the way API Gateway does (including its own 404 for an unmatched route and 413 over 10 MB).

Bursts: the listening socket's backlog holds `LISTEN_BACKLOG` connections the kernel completes
before the server accepts them (the standard library's default, 5, makes a burst of
simultaneous connections wait for SYN retransmits or fail), every connection gets a thread,
and at most `invocation_slots` invocations run at once while the others wait their turn. On a
laptop's few cores a few hundred receivers running at once would each take long enough for
their AWS calls to time out; in line, every request is answered, promptly. This is a local
bound only: Lambda would run them side by side, up to the function's reserved concurrency.

An API mapping with a base path (a custom domain's `https://hooks.example.com/<base>/...`) is
emulated with `base_path`: requests under it are matched without it, and the event keeps it in
`rawPath` and `requestContext.http.path` while `routeKey` is the route, as API Gateway does.
"""

import base64
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.runtime.front_priority import FrontPriority
from local.runtime.lambda_runner import Invocation

log = logging.getLogger(__name__)

# API Gateway HTTP APIs reject larger request bodies themselves, before any integration runs.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|xml|javascript|[\w.+-]+\+json|[\w.+-]+\+xml))$"
)

InvokeFunction = Callable[[str, dict[str, Any]], Invocation]

# Connections the kernel completes and queues before the server accepts them (capped by the
# kernel's net.core.somaxconn, 4096 on current Linux).
LISTEN_BACKLOG = 1024
DEFAULT_INVOCATION_SLOTS = 8


class _BurstServer(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


@dataclass(frozen=True)
class Route:
    """One route: its key, the function behind it, and how to match a request path."""

    route_key: str  # "POST /webhooks/x", "ANY /items/{id}", "$default"
    function_logical_id: str
    method: str | None  # None for $default; "ANY" matches every method
    pattern: re.Pattern[str] | None
    specificity: tuple[int, int, int]  # sort key: literal routes before templated, $default last

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.pattern is None:
            return {}
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        return None if found is None else found.groupdict()


def _route(route_key: str, function_logical_id: str) -> Route:
    if route_key == "$default":
        return Route(route_key, function_logical_id, None, None, (2, 0, 0))
    method, path = route_key.split(" ", 1)
    regex, parameters, greedy = "", 0, 0
    for segment in path.strip("/").split("/") if path != "/" else []:
        if segment.startswith("{") and segment.endswith("+}"):
            regex += f"/(?P<{segment[1:-2]}>.+)"
            greedy += 1
        elif segment.startswith("{") and segment.endswith("}"):
            regex += f"/(?P<{segment[1:-1]}>[^/]+)"
            parameters += 1
        else:
            regex += "/" + re.escape(segment)
        # A literal route outranks a templated one; a specific method outranks ANY.
    return Route(
        route_key,
        function_logical_id,
        method,
        re.compile(regex or "/"),
        (greedy, parameters, 1 if method == "ANY" else 0),
    )


def _target_logical_id(reference: Any) -> str | None:
    """The logical id a Ref / Fn::GetAtt / "integrations/" + Ref expression points at."""
    if isinstance(reference, dict):
        if "Ref" in reference:
            return str(reference["Ref"])
        if "Fn::GetAtt" in reference:
            target = reference["Fn::GetAtt"]
            return str(target.split(".")[0] if isinstance(target, str) else target[0])
        if "Fn::Join" in reference:
            for part in reference["Fn::Join"][1]:
                found = _target_logical_id(part)
                if found:
                    return found
    return None


@dataclass(frozen=True)
class HttpApiSpec:
    logical_id: str
    stage_prefix: str  # "" for the $default stage, else "/<stage name>"
    routes: tuple[Route, ...]


def http_apis(template: Mapping[str, Any]) -> list[HttpApiSpec]:
    """Every HTTP API of the template with its Lambda proxy routes, most specific first."""
    resources: Mapping[str, Any] = template.get("Resources", {})

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in resources.items()
            if resource["Type"] == kind
        }

    integrations = of_type("AWS::ApiGatewayV2::Integration")
    specs = []
    for api_id, api in of_type("AWS::ApiGatewayV2::Api").items():
        if api.get("ProtocolType") != "HTTP":
            continue
        routes = []
        for properties in of_type("AWS::ApiGatewayV2::Route").values():
            if _target_logical_id(properties.get("ApiId")) != api_id:
                continue
            integration = integrations.get(_target_logical_id(properties.get("Target")) or "")
            if not integration or integration.get("IntegrationType") != "AWS_PROXY":
                continue
            function_id = _target_logical_id(integration.get("IntegrationUri"))
            if function_id:
                routes.append(_route(properties["RouteKey"], function_id))
        stage_names = [
            stage.get("StageName", "$default")
            for stage in of_type("AWS::ApiGatewayV2::Stage").values()
            if _target_logical_id(stage.get("ApiId")) == api_id
        ]
        prefix = "" if not stage_names or "$default" in stage_names else f"/{stage_names[0]}"
        routes.sort(key=lambda route: route.specificity)
        specs.append(HttpApiSpec(api_id, prefix, tuple(routes)))
    return specs


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    return bool(_TEXT_TYPES.match(content_type.split(";")[0].strip().lower()))


class HttpFront:
    """Serves one HTTP API on 127.0.0.1; ``url`` is known once constructed (port bound)."""

    def __init__(
        self,
        spec: HttpApiSpec,
        invoke: InvokeFunction,
        function_arns: Mapping[str, str],
        account_id: str,
        port: int = 0,
        *,
        base_path: str = "",
        invocation_slots: int = DEFAULT_INVOCATION_SLOTS,
        priority: FrontPriority | None = None,
    ) -> None:
        self.spec = spec
        # the pollers hold their batches while this front answers (front_priority.py)
        self._priority = priority or FrontPriority()
        # a custom domain's API mapping serves the API's $default stage under /<base_path>
        self.path_prefix = f"/{base_path.strip('/')}" if base_path.strip("/") else spec.stage_prefix
        self._slots = threading.BoundedSemaphore(invocation_slots)
        self.api_id = secrets.token_hex(5)
        self._invoke = invoke
        self._function_arns = function_arns
        self._account_id = account_id
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Nagle + delayed ACK would hold each keep-alive response's body ~40 ms
            disable_nagle_algorithm = True

            def do_request(self) -> None:
                with front._priority.answering():
                    front._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_request

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http front: " + format, *args)

        self._server = _BurstServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"http-front:{spec.logical_id}", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path_prefix}"

    @property
    def endpoint(self) -> str:
        """What the stack's `ApiEndpoint` resolves to: the URL without a stage prefix, or the
        custom domain's mapping (base path included) when the front emulates one."""
        return self.url.removesuffix(self.spec.stage_prefix)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            request.close_connection = True  # the body is not read, so the connection is spent
            self._reply(
                request,
                413,
                {"content-type": "application/json"},
                b'{"message":"Request Entity Too Large"}',
            )
            return
        body = request.rfile.read(length) if length else b""
        split = urlsplit(request.path)
        path = split.path
        if self.path_prefix:
            if path != self.path_prefix and not path.startswith(self.path_prefix + "/"):
                self._reply(
                    request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'
                )
                return
            path = path[len(self.path_prefix) :] or "/"
        for route in self.spec.routes:
            parameters = route.match(request.command, path)
            if parameters is not None:
                break
        else:
            self._reply(
                request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'
            )
            return
        event = self._event(
            request, route, path=path, query=split.query, path_parameters=parameters, body=body
        )
        with self._slots:
            outcome = self._invoke(self._function_arns[route.function_logical_id], event)
        status, headers, payload = self._response(outcome)
        headers.setdefault("apigw-requestid", event["requestContext"]["requestId"])
        self._reply(request, status, headers, payload)

    def _event(
        self,
        request: BaseHTTPRequestHandler,
        route: Route,
        *,
        path: str,
        query: str,
        path_parameters: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name in request.headers:
            key = name.lower()
            if key not in headers:
                headers[key] = ",".join(request.headers.get_all(name) or [])
        cookies = [part.strip() for part in headers.pop("cookie", "").split(";") if part.strip()]
        source_ip = request.client_address[0]
        headers.setdefault("x-forwarded-for", source_ip)
        headers.setdefault("x-forwarded-proto", "http")
        headers.setdefault("x-forwarded-port", str(self._server.server_address[1]))
        headers.setdefault(
            "x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        )
        now = datetime.now(UTC)
        domain = headers.get("host", "127.0.0.1")
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": self.path_prefix + path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": self._account_id,
                "apiId": self.api_id,
                "domainName": domain,
                "domainPrefix": domain.split(".")[0],
                "http": {
                    "method": request.command,
                    "path": self.path_prefix + path,
                    "protocol": request.request_version,
                    "sourceIp": source_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route.route_key,
                "stage": self.spec.stage_prefix.lstrip("/") or "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": False,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            parameters: dict[str, str] = {}
            for key, value in parse_qsl(query, keep_blank_values=True):
                parameters[key] = f"{parameters[key]},{value}" if key in parameters else value
            event["queryStringParameters"] = parameters
        if path_parameters:
            event["pathParameters"] = path_parameters
        if body:
            if _is_text(headers.get("content-type")):
                try:
                    event["body"] = body.decode("utf-8")
                except UnicodeDecodeError:
                    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
            else:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        return event

    @staticmethod
    def _response(outcome: Invocation) -> tuple[int, dict[str, str], bytes]:
        error = (500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
        if outcome.errored:
            return error
        result = outcome.result()
        if not (isinstance(result, dict) and "statusCode" in result):
            # Payload 2.0 infers a response from any JSON the function returned.
            return 200, {"content-type": "application/json"}, outcome.payload.encode()
        try:
            headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
            body = result.get("body") or ""
            payload = (
                base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
            )
            if result.get("cookies"):
                headers["set-cookie"] = ", ".join(result["cookies"])
            return int(result["statusCode"]), headers, payload
        except (TypeError, ValueError):
            return error

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name not in ("content-length", "connection"):
                request.send_header(name, value)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


def to_json(spec: HttpApiSpec) -> dict[str, Any]:
    """A summary for .local/endpoints.json: which route reaches which function."""
    return {
        "logical_id": spec.logical_id,
        "routes": {route.route_key: route.function_logical_id for route in spec.routes},
    }
