"""Shared test builders: API Gateway HTTP API (payload v2) events, a Lambda context, and
Everactive v2020-07 signed headers made by the independent `httpsig` implementation, and a
settable clock."""

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpsig
from aws_lambda_powertools.utilities.typing import LambdaContext

from sensorhook.core.reading import Reading

REGION = "us-east-1"
ACCOUNT = "123456789012"
API_HOST = f"abc123.execute-api.{REGION}.amazonaws.com"
SIGNED_HEADERS = ["(request-target)", "date", "digest", "host", "content-length"]


class _CountdownContext(LambdaContext):
    """Reports the time left as Lambda does: from a deadline, counting down in real time.

    Powertools dates an in-progress idempotency record's expiry by it, and the processor
    decides by it whether a chunk may start: a context with no time left would make every
    in-progress record already expired, and every delivery be handed back.
    """

    def __init__(self, remaining_ms: int) -> None:
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]  # a deadline per context
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_context(
    function_name: str = "sensorhook-test", *, remaining_ms: int = 60_000
) -> LambdaContext:
    """A Lambda context with the attributes Powertools and our handlers read, and
    `remaining_ms` left from now (the processor's default timeout)."""
    context = _CountdownContext(remaining_ms)
    context._function_name = function_name
    context._function_version = "$LATEST"
    context._invoked_function_arn = (
        f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    )
    context._memory_limit_in_mb = 256
    context._aws_request_id = str(uuid.uuid4())
    context._log_group_name = f"/aws/lambda/{function_name}"
    context._log_stream_name = "2024/01/01/[$LATEST]0123456789abcdef"
    return context


def http_api_event(
    *,
    path: str,
    body: bytes | str | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    query: str = "",
    base64_encoded: bool = False,
    stage: str = "$default",
    route_key: str | None = None,
    source_ip: str = "203.0.113.7",
    base_path: str = "",
    domain: str = API_HOST,
) -> dict[str, Any]:
    """An HTTP API payload format 2.0 event, shaped as API Gateway delivers it.

    Header names are lowercased as API Gateway does, and a body that is not UTF-8 text is
    base64-encoded as it does. With a named stage, `rawPath` carries the stage prefix.
    `route_key` defaults to "<method> <path>" (pass "$default" for the catch-all route).
    A request through a custom domain (`domain`) whose API mapping has a base path
    (`base_path="sensorhook"`) keeps that base path in `rawPath` and `http.path`, as API
    Gateway does; the route key never has it.
    """
    raw_body = body.encode() if isinstance(body, str) else body
    prefix = f"/{base_path}" if base_path else ""
    raw_path = prefix + (path if stage == "$default" else f"/{stage}{path}")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {name.lower(): value for name, value in (headers or {}).items()},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "domainName": domain,
            "domainPrefix": domain.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": (headers or {}).get("user-agent", "test-agent"),
            },
            "requestId": f"req-{uuid.uuid4().hex[:16]}",
            "routeKey": route_key or f"{method} {path}",
            "stage": stage,
            "time": format_datetime(datetime.now(UTC), usegmt=True),
            "timeEpoch": int(datetime.now(UTC).timestamp() * 1000),
        },
        "isBase64Encoded": base64_encoded,
    }
    if query:
        event["queryStringParameters"] = dict(
            part.partition("=")[::2] for part in query.split("&") if part
        )
    if raw_body is not None:
        try:
            event["body"] = raw_body.decode() if not base64_encoded else None
        except UnicodeDecodeError:  # API Gateway base64-encodes what is not text
            base64_encoded = event["isBase64Encoded"] = True
        if base64_encoded:
            event["body"] = base64.b64encode(raw_body).decode()
    return event


def sha256_digest(body: bytes) -> str:
    """`Digest` header value, the RFC 3230 reading: SHA-256 of the body."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def hmac_digest(body: bytes, secret: str) -> str:
    """`Digest` header value, the seed's literal reading: HMAC-SHA256(secret, body)."""
    mac = hmac.digest(secret.encode(), body, "sha256")
    return "SHA-256=" + base64.b64encode(mac).decode()


def signed_v2020_headers(
    body: bytes,
    *,
    key_id: str,
    secret: str,
    path: str,
    method: str = "POST",
    date: datetime | None = None,
    digest: str | None = None,
    host: str = API_HOST,
    signed: list[str] | None = None,
    algorithm: str = "hmac-sha256",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Headers of an Everactive v2020-07 webhook, signed by `httpsig` (not by our code).

    `path` is the request target as the sender addresses it (with `?query` when there is one).
    """
    headers = {
        "Content-Type": "application/json",
        "Date": format_datetime(date or datetime.now(UTC), usegmt=True),
        "Digest": digest if digest is not None else sha256_digest(body),
        "Host": host,
        "Content-Length": str(len(body)),
        **(extra or {}),
    }
    signer = httpsig.HeaderSigner(
        key_id,
        secret,
        algorithm=algorithm,
        headers=signed or SIGNED_HEADERS,
        sign_header="signature",
    )
    signed_headers = signer.sign(headers, host=host, method=method, path=path)
    return dict(signed_headers)


class SettableClock:
    """A `clock()` callable that tests move by hand, for code that takes its time injected."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def largest_efento_batch(
    *, channels: int = 6, points: int = 16_666, period_s: int = 60
) -> dict[str, Any]:
    """The largest Efento delivery sensorhook accepts, about 1 KB: `channels` channels at a
    `period_s` period for `points` periods (6 x 16,666 at one minute: 11.6 days) plus four
    device readings (battery, signal, name, serial) = 100,000 readings."""
    first = datetime(2024, 3, 1, tzinfo=UTC)
    last = first + timedelta(seconds=period_s * (points - 1))
    types = ["TEMPERATURE", "HUMIDITY", "ATMOSPHERIC_PRESSURE", "CO2_GAS", "PM_2_5", "PM_10_0"]
    return {
        "measurementPointId": 4242,
        "measurementPointName": "Cold store 7",
        "serialNumber": "282C02411D21",
        "firstMeasurementTimestamp": first.isoformat(),
        "lastMeasurementTimestamp": last.isoformat(),
        "measurementsReceivedAt": (last + timedelta(seconds=5)).isoformat(),
        "signalStrength": -91,
        "batteryStatus": "OK",
        "measurementsEvents": [
            {
                "channelNumber": number + 1,
                "channelType": types[number % len(types)],
                "events": [
                    {"timestamp": first.isoformat(), "value": 20.0 + number, "period": period_s},
                    {
                        "timestamp": (first + (last - first) / 2).isoformat(),
                        "value": 21.5 + number,
                        "period": period_s,
                    },
                ],
            }
            for number in range(channels)
        ],
    }


def efento_temperature_reading(
    sensor_id: str, metric: str, at: datetime, value: float, *, received_at: datetime, event_id: str
) -> Reading:
    """One Efento channel-1 reading, in Cel with a one-minute period, for state-store tests."""
    return Reading(
        provider="efento",
        sensor_id=sensor_id,
        sensor_family="efento",
        metric=metric,
        channel="1",
        unit="Cel",
        status="OK",
        value=value,
        measured_at=at,
        received_at=received_at,
        event_id=event_id,
        gateway_id=None,
        period_s=60,
    )
