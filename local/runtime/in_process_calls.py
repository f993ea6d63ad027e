"""boto3 calls to the embedded AWS from this process, answered in the calling thread.

Every function's AWS call used to travel over loopback HTTP to moto's server: the client thread
wrote the request and blocked, a server thread took the GIL to parse and answer it, and the
client thread took it back. On one GIL each of those hand-overs waits for whichever thread
holds it (up to the 5 ms switch interval), so a function making a hundred calls while others
ran spent most of its time waiting, not working; urllib3 and the HTTP server cost CPU besides.

The runtime hooks botocore's ``before-send`` (through moto's own stubber, which every boto3
session of the process already has) and hands a request for the embedded endpoint to the same
WSGI application the server runs, in the calling thread. The request and the answer are the
bytes they would be on the wire, so botocore serializes, signs and parses as before; only the
socket is gone. Other processes (the AWS CLI, scripts) still reach the server.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import EnvironBuilder, run_wsgi_app


class InProcessCalls:
    """Answers requests for the server's `port` on loopback with moto's WSGI application."""

    def __init__(self, port: int) -> None:
        # Step Functions' interpreter reaches the server as localhost (MOTO_PORT)
        self.endpoints = (f"http://127.0.0.1:{port}", f"http://localhost:{port}")
        self._app = DomainDispatcherApplication(create_backend_app)
        self.answered = 0

    def handles(self, url: str) -> bool:
        return any(url == e or url.startswith(e + "/") for e in self.endpoints)

    def answer(self, request: AWSPreparedRequest) -> AWSResponse:
        parts = urlsplit(request.url)
        body = request.body
        if body is not None and not isinstance(body, bytes | str):
            body = body.read()  # a file-like body: what urllib3 would have sent
        environ = EnvironBuilder(
            path=parts.path or "/",
            base_url=f"{parts.scheme}://{parts.netloc}",
            query_string=parts.query,
            method=request.method,
            headers=[
                (name, value.decode() if isinstance(value, bytes) else value)
                for name, value in request.headers.items()
            ],
            data=body or b"",
        ).get_environ()
        app_iter, status, headers = run_wsgi_app(self._app, environ, buffered=True)
        content = b"".join(app_iter)
        self.answered += 1
        return AWSResponse(
            request.url,
            int(status.split(" ", 1)[0]),
            dict(headers.items()),
            MockRawResponse(content),
        )


def calls_stay_in_process(port: int) -> tuple[InProcessCalls, Callable[[], None]]:
    """Answer this process's calls to the server on `port` in the calling thread; returns the
    handler and the undo."""
    calls = InProcessCalls(port)
    original = BotocoreStubber.__call__

    def __call__(
        self: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any
    ) -> AWSResponse | None:
        if calls.handles(request.url):
            return calls.answer(request)
        return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = __call__  # type: ignore[method-assign]

    def undo() -> None:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]

    return calls, undo
