"""One HTTP POST to a forwarding endpoint, with a hard timeout, reported as data.

urllib3 (botocore's own HTTP client, so already in every Lambda) with no retries and no
redirects: retries are the policy's, and a redirect could carry a signed body elsewhere.
A timeout, a refused or reset connection, or a connection closed without an answer is "no
response" (status None); any HTTP answer is its status code.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import urllib3

USER_AGENT = "sensorhook-forwarder/1"


@dataclass(frozen=True)
class HttpAnswer:
    status: int | None  # None: no response
    retry_after_s: float | None
    elapsed_s: float
    error: str | None = None  # the kind of failure, for the logs (never the body)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


class EndpointHttp:
    def __init__(self, pool: urllib3.PoolManager | None = None) -> None:
        self._pool = pool or urllib3.PoolManager(num_pools=32, maxsize=4, retries=False)

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpAnswer:
        started = time.monotonic()
        try:
            response = self._pool.request(
                "POST",
                url,
                body=body,
                headers=headers,
                # total: the whole exchange, however the receiver trickles its answer
                timeout=urllib3.Timeout(total=timeout_s),
                retries=False,
                redirect=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as error:
            return HttpAnswer(None, None, time.monotonic() - started, type(error).__name__)
        try:
            status = response.status
            retry_after = retry_after_seconds(
                response.headers.get("retry-after"), datetime.now(UTC)
            )
            response.drain_conn()
        except urllib3.exceptions.HTTPError:
            pass  # the status arrived; a body cut short does not change the answer
        finally:
            response.release_conn()
        return HttpAnswer(status, retry_after, time.monotonic() - started)
