"""A tiny webhook receiver on 127.0.0.1 that records every request and answers the way
docs/architecture.md says sensorhook answers (202 / 400 / 401), checking authentication
independently of the emulator: signatures with the `httpsig` library, the Digest and the Date
window by hand, custom headers by comparison."""

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from httpsig.verify import HeaderVerifier

from local.emulator import Secrets
from sensorhook.core.flavors import FLAVOR_BY_ROUTE, Flavor

MAX_SKEW_S = 300


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class StubReceiver:
    secrets: Secrets
    silent_paths: frozenset[str] = frozenset()  # never answer (sleep) on these routes
    silence_s: float = 1.0
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, path: str, headers: dict[str, str], body: bytes) -> int:
        flavor = FLAVOR_BY_ROUTE.get(path)
        if flavor is None:
            return 404
        if not self._authentic(flavor, path, headers, body):
            return 401
        try:
            json.loads(body)
        except ValueError:
            return 400
        return 202

    def _authentic(self, flavor: Flavor, path: str, headers: dict[str, str], body: bytes) -> bool:
        lowered = {k.lower(): v for k, v in headers.items()}
        if flavor is not Flavor.EVERACTIVE_V2020_STEAM_TRAP:
            wanted = self.secrets.headers_for(flavor)
            return all(lowered.get(name.lower()) == value for name, value in wanted.items())
        key_id, secret = self.secrets.v2020_key
        digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        date = parsedate_to_datetime(lowered.get("date", "Thu, 01 Jan 1970 00:00:00 GMT"))
        if lowered.get("digest") != digest:
            return False
        if abs((datetime.now(UTC) - date).total_seconds()) > MAX_SKEW_S:
            return False
        if f'keyId="{key_id}"' not in lowered.get("signature", ""):
            return False
        verifier = HeaderVerifier(
            headers,
            secret,
            required_headers=["(request-target)", "date", "digest", "host", "content-length"],
            method="POST",
            path=path,
            sign_header="signature",
        )
        return bool(verifier.verify())


def _handler(stub: StubReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            if self.path in stub.silent_paths:
                time.sleep(stub.silence_s)
                self.close_connection = True
                return
            status = stub.decide(self.path, headers, body)
            with stub.lock:
                stub.requests.append(Recorded(self.path, headers, body, status))
            answer = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test asserts on the recorded requests instead."""

    return Handler


@contextmanager
def running(stub: StubReceiver) -> Iterator[str]:
    """Serve `stub` on an ephemeral loopback port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
