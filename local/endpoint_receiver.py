"""A forwarding endpoint on 127.0.0.1 (port 0) for the demo and the tests.

It answers the way it is told (`mode`): 200, 500, 410, 429/503 with `Retry-After`, hang past
the sender's timeout, or close the connection without an answer. It verifies every delivery
with an independent library, never with sensorhook's own code: `standardwebhooks` (PyPI) for
the Standard Webhooks scheme, `httpsig` for the Everactive v2020-07 (cavage) scheme, plus the
body's `Digest`. Each request is recorded with whether it verified.
"""

import base64
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from httpsig.verify import HeaderVerifier
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# what the v2020-07 scheme signs (as Everactive does)
V2020_SIGNED = ["(request-target)", "date", "digest", "host", "content-length"]


class Mode(StrEnum):
    OK = "200"
    ERROR = "500"
    GONE = "410"
    BUSY = "429"  # with Retry-After: `retry_after` seconds
    UNAVAILABLE = "503"  # with Retry-After too
    HANG = "hang"  # answer nothing for `hang_s`
    CLOSE = "close"  # close the connection without an answer


@dataclass(frozen=True)
class Delivery:
    at: float  # time.monotonic() on arrival
    path: str
    headers: dict[str, str]
    body: bytes
    answered: str  # the mode it met
    verified: bool

    @property
    def delivery_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def verify_standard_webhooks(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError):
        return False
    return True


def verify_v2020(secret: str, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
    lowered = {name.lower(): value for name, value in headers.items()}
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    if lowered.get("digest") != digest:
        return False
    if lowered.get("content-length") != str(len(body)):
        return False
    return bool(
        HeaderVerifier(
            lowered,
            secret,
            required_headers=V2020_SIGNED,
            method=method,
            path=path,
            sign_header="signature",
        ).verify()
    )


@dataclass
class EndpointReceiver:
    """`scheme` is "standard-webhooks" or "everactive-v2020-07"; `secret` the signing secret
    (as stored in Secrets Manager: the `secret` field)."""

    scheme: str = "standard-webhooks"
    secret: str = ""
    mode: Mode = Mode.OK
    hang_s: float = 2.0
    retry_after: int = 2
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def verify(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        if not self.secret:
            return False
        if self.scheme == "everactive-v2020-07":
            return verify_v2020(self.secret, method, path, headers, body)
        return verify_standard_webhooks(self.secret, headers, body)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/sensorhook"

    def ok_deliveries(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.answered == Mode.OK.value]

    def start(self) -> "EndpointReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                mode = receiver.mode
                verified = receiver.verify("POST", self.path, headers, body)
                with receiver._lock:
                    receiver.deliveries.append(
                        Delivery(time.monotonic(), self.path, headers, body, mode.value, verified)
                    )
                if mode is Mode.HANG:
                    time.sleep(receiver.hang_s)
                    self.close_connection = True
                    return
                if mode is Mode.CLOSE:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                status = int(mode.value)
                self.send_response(status)
                if mode in (Mode.BUSY, Mode.UNAVAILABLE):
                    self.send_header("Retry-After", str(receiver.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
