"""Helpers for the provider API tests (no tests here): a fake clock, a started emulator, and
a minimal HTTP client over http.client, so every test talks real HTTP on 127.0.0.1."""

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from local.emulator import Installation
from local.emulator.api import DEMO_API_CREDENTIALS, ProviderApi
from tests.builders import SettableClock

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the installation's start
DS_CLIENT = "demo-ds-client"
V2020_CLIENT = "demo-v2020-client"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lowercased
    body: Any  # parsed JSON, None when empty


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
) -> Response:
    split = urlsplit(base_url)
    connection = http.client.HTTPConnection(split.netloc, timeout=5)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        body = urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    target = path + ("?" + urlencode(query) if query else "")
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return Response(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            json.loads(raw) if raw else None,
        )
    finally:
        connection.close()


def ds_token(api: ProviderApi) -> str:
    response = call(
        api.base_url,
        "POST",
        "/auth/token",
        json_body={
            "client_id": DS_CLIENT,
            "client_secret": DEMO_API_CREDENTIALS[DS_CLIENT],
            "grant_type": "client_credentials",
        },
    )
    assert response.status == 200, response.body
    return str(response.body["access_token"])


def v2020_token(api: ProviderApi) -> str:
    response = call(
        api.base_url,
        "POST",
        "/v2020-07/auth/token",
        form={
            "client_id": V2020_CLIENT,
            "client_secret": DEMO_API_CREDENTIALS[V2020_CLIENT],
            "grant_type": "client_credentials",
        },
    )
    assert response.status == 200, response.body
    return str(response.body["access_token"])


@contextmanager
def running_api(
    *, sensors: int = 6, gateways: int = 2, minutes_in: float = 30, **options: Any
) -> Iterator[tuple[ProviderApi, SettableClock]]:
    """An emulator `minutes_in` minutes after its installation started, on a fake clock."""
    clock = SettableClock(T0 + timedelta(minutes=minutes_in))
    installation = Installation.create(seed=11, sensors=sensors, gateways=gateways, start=T0)
    with ProviderApi(installation, clock=clock, **options) as api:
        yield api, clock


def error_fields(response: Response) -> set[tuple[str, str]]:
    """(code, field) of every entry in an error body, after checking the seeds' format."""
    assert set(response.body) == {"code", "message", "errors"}, response.body
    assert all(set(e) == {"code", "field", "message"} for e in response.body["errors"])
    return {(e["code"], e["field"]) for e in response.body["errors"]}
