"""HTTP for the provider API: one pooled urllib3 client, timeouts, and the retry loop.

urllib3 ships with botocore, so it is in every Lambda runtime without a dependency of ours.
Its own retries are off: the loop here owns them, so that backoff, `Retry-After`, logging and
metrics see every attempt. `Transport` is a small Protocol so tests inject a fake.
"""

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Protocol

import urllib3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from urllib3.exceptions import ConnectTimeoutError, HTTPError

from sensorhook.observability import logger, metrics
from sensorhook.providers.everactive_api.models import ApiFlavor, ProviderUnavailable

LATENCY_METRIC = "ProviderApiLatency"
ERRORS_METRIC = "ProviderApiErrors"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-cased


class TransportError(Exception):
    """No HTTP answer. `request_sent` is False when the connection was never made, so even a
    request that is not idempotent can be sent again safely."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class Transport(Protocol):
    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpResponse: ...


class Urllib3Transport:
    def __init__(self, pool: urllib3.PoolManager) -> None:
        self._pool = pool

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpResponse:
        try:
            response = self._pool.request(
                method,
                url,
                headers=dict(headers),
                body=body,
                timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
                retries=False,
                redirect=False,  # a redirect would carry the bearer token elsewhere
            )
        except ConnectTimeoutError as error:  # also refused / unresolvable (its subclasses)
            raise TransportError(type(error).__name__, request_sent=False) from error
        except HTTPError as error:  # read timeout, reset, protocol error
            raise TransportError(type(error).__name__, request_sent=True) from error
        return HttpResponse(
            status=response.status,
            body=response.data,
            headers={name.lower(): value for name, value in response.headers.items()},
        )


@cache
def default_transport() -> Urllib3Transport:
    """One connection pool per execution environment: warm calls reuse TLS connections."""
    return Urllib3Transport(urllib3.PoolManager(retries=False, maxsize=4))


@dataclass(frozen=True)
class ApiRequest:
    method: str
    url: str
    path_template: str  # what logs and metrics name, e.g. "/webhook/{id}"
    headers: Mapping[str, str]
    body: bytes | None = None
    idempotent: bool = True


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 20.0
    retry_after_cap_s: float = 20.0  # a provider asking for an hour must not hold a Lambda

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(n-1))]."""
        return rng.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1)))


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            moment = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - now).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _is_retryable(response: HttpResponse, request: ApiRequest) -> bool:
    """429 means the provider did nothing, so it is always retried; a 5xx may come after the
    provider acted, so only idempotent requests are sent again."""
    return response.status == 429 or (response.status >= 500 and request.idempotent)


class RetryingSender:
    """Sends one request with bounded retries; logs and times every attempt.

    Returns the last response whatever its status (the client turns it into a typed result or
    error); raises ProviderUnavailable only when no attempt got an HTTP answer.
    """

    def __init__(
        self,
        transport: Transport,
        policy: RetryPolicy,
        *,
        flavor: ApiFlavor,
        timeout_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: random.Random,
        utc_now: Callable[[], datetime],
    ) -> None:
        self._transport = transport
        self._policy = policy
        self._flavor = flavor
        self._timeout_s = timeout_s
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._utc_now = utc_now

    def send(self, request: ApiRequest) -> HttpResponse:
        attempt = 0
        while True:
            attempt += 1
            started = self._clock()
            try:
                response = self._transport.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    body=request.body,
                    timeout_s=self._timeout_s,
                )
            except TransportError as error:
                self._record(request, attempt, started, status=None, error=str(error))
                if attempt >= self._policy.max_attempts or (
                    error.request_sent and not request.idempotent
                ):
                    raise ProviderUnavailable(
                        None, "connection_error", f"{request.path_template}: {error}"
                    ) from error
                self._sleep(self._policy.backoff_s(attempt, self._rng))
                continue
            self._record(request, attempt, started, status=response.status)
            if attempt >= self._policy.max_attempts or not _is_retryable(response, request):
                return response
            asked = retry_after_s(response.headers.get("retry-after"), self._utc_now())
            self._sleep(
                min(asked, self._policy.retry_after_cap_s)
                if asked is not None
                else self._policy.backoff_s(attempt, self._rng)
            )

    def _record(
        self,
        request: ApiRequest,
        attempt: int,
        started: float,
        *,
        status: int | None,
        error: str | None = None,
    ) -> None:
        latency_ms = round((self._clock() - started) * 1000, 1)
        logger.info(
            "provider api call",
            extra={
                "api_flavor": self._flavor.value,
                "method": request.method,
                "path": request.path_template,
                "status": status,
                "attempt": attempt,
                "latency_ms": latency_ms,
                **({"error": error} if error else {}),
            },
        )
        record_metric(LATENCY_METRIC, MetricUnit.Milliseconds, latency_ms, self._flavor)


def record_metric(name: str, unit: MetricUnit, value: float, flavor: ApiFlavor) -> None:
    """One EMF line per observation, dimensioned by flavor (and Powertools' service):
    the shared Metrics object has one dimension set per flush, and one subscriptions run calls
    both flavors."""
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=metrics.namespace,
        default_dimensions={"flavor": flavor.value},
    ):
        pass  # the metric is the context's own value; it is written when the block exits


class CountingTransport:
    """A transport that counts the HTTP requests it sends (token requests and retries
    included): what an incident record reports as the API calls a recovery made."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self.requests = 0

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpResponse:
        self.requests += 1
        return self._inner.request(method, url, headers=headers, body=body, timeout_s=timeout_s)
