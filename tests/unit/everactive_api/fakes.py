"""A scripted fake Transport and the client wired to it with a fake clock and sleep."""

import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from sensorhook.providers.everactive_api import (
    ApiFlavor,
    ClientCredentials,
    EveractiveApi,
    HttpResponse,
    TransportError,
)
from tests.fixtures.loader import sample_json

DS_BASE = "https://api.example.test/ds/v1"
DS_TOKEN_URL = "https://auth.example.test/oauth/token"
V2020_BASE = "https://api.example.test/v2020-07"
V2020_TOKEN_URL = f"{V2020_BASE}/auth/token"
CLIENT_SECRET = "s3cr3t-client-value"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout_s: float

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs((self.body or b"").decode())


Answer = HttpResponse | TransportError | Callable[[Sent], HttpResponse]


def answer(document: Any, status: int = 200, **headers: str) -> HttpResponse:
    return HttpResponse(
        status=status,
        body=json.dumps(document).encode(),
        headers={name.replace("_", "-").lower(): value for name, value in headers.items()},
    )


def page(items: list[Any], number: int, total_pages: int, page_size: int = 2) -> HttpResponse:
    return answer(
        {
            "data": items,
            "paginationInfo": {
                "page": number,
                "pageSize": page_size,
                "totalItems": total_pages * page_size,
                "totalPages": total_pages,
            },
        }
    )


class FakeTransport:
    """Answers each (method, path) from its script in order, then from its handler; the token
    endpoint, once its script is used up, issues `token-1`, `token-2`, … shaped like
    `token.json`."""

    def __init__(self, token_url: str) -> None:
        self.token_url = token_url
        self.sent: list[Sent] = []
        self.tokens_issued = 0
        self.token_lifetime_s = 86400
        self._scripts: dict[tuple[str, str], list[Answer]] = defaultdict(list)
        self._handlers: dict[tuple[str, str], Callable[[Sent], HttpResponse]] = {}

    def script(self, method: str, path: str, *answers: Answer) -> None:
        self._scripts[(method, path)].extend(answers)

    def serve(self, method: str, path: str, handler: Callable[[Sent], HttpResponse]) -> None:
        """Answer every request to (method, path) not scripted otherwise with `handler`."""
        self._handlers[(method, path)] = handler

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Any,
        body: bytes | None,
        timeout_s: float,
    ) -> HttpResponse:
        sent = Sent(method, url, dict(headers), body, timeout_s)
        self.sent.append(sent)
        queue = self._scripts.get((method, sent.path))
        if queue:
            scripted = queue.pop(0)
            if isinstance(scripted, TransportError):
                raise scripted
            return scripted(sent) if callable(scripted) else scripted
        handler = self._handlers.get((method, sent.path))
        if handler is not None:
            return handler(sent)
        if url == self.token_url:
            self.tokens_issued += 1
            token = {
                **sample_json("everactive-ds/api/token.json"),
                "access_token": f"token-{self.tokens_issued}",
                "expires_in": self.token_lifetime_s,
            }
            return answer(token)
        raise AssertionError(f"unscripted request {method} {url}")

    def to(self, path: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.path == path]

    def resource_calls(self) -> list[Sent]:
        return [sent for sent in self.sent if sent.url != self.token_url]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """The client under test and what it touched."""

    api: EveractiveApi
    transport: FakeTransport
    clock: FakeClock
    sleeps: list[float] = field(default_factory=list)
    credential_reads: list[int] = field(default_factory=list)


def harness(flavor: ApiFlavor = ApiFlavor.DATA_SERVICES, **options: Any) -> Harness:
    base = DS_BASE if flavor is ApiFlavor.DATA_SERVICES else V2020_BASE
    token_url = DS_TOKEN_URL if flavor is ApiFlavor.DATA_SERVICES else V2020_TOKEN_URL
    transport = FakeTransport(token_url)
    clock = FakeClock()
    sleeps: list[float] = []
    reads: list[int] = []

    def credentials() -> ClientCredentials:
        reads.append(1)
        return ClientCredentials(client_id="client-a", client_secret=CLIENT_SECRET)

    defaults: dict[str, Any] = {
        "flavor": flavor,
        "base_url": base,
        "token_url": token_url if flavor is ApiFlavor.DATA_SERVICES else None,
        "credentials": credentials,
        "transport": transport,
        "clock": clock,
        "sleep": sleeps.append,
        "rng": random.Random(7),  # noqa: S311 - jitter
        "utc_now": lambda: NOW,
        "page_size": 2,
    }
    api = EveractiveApi(**{**defaults, **options})
    return Harness(api, transport, clock, sleeps, reads)
