"""Sending deliveries over HTTP at a steady rate from a small thread pool, and what came back.

Standard library HTTP (http.client) with one keep-alive connection per worker thread. The
timeout is Efento's 10 s deadline: no answer within it counts as "No response".
"""

import http.client
import itertools
import math
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

from local.emulator.deliveries import Clock, Delivery, Intent, utc_now
from local.emulator.efento_webhook import EfentoWebhooks, WebhookStatus
from local.emulator.samples import Sample

NO_RESPONSE = "no response"
NOT_SENT = "not sent (webhook disabled)"
_IDLE_RECONNECT_S = 2.0  # reopen rather than risk a keep-alive the server already closed


@dataclass(frozen=True)
class SendResult:
    seq: int
    delivery: Delivery
    sent_at: datetime | None
    status: int | None  # None: no response in time, connection failure, or not sent
    latency_s: float | None
    error: str | None = None
    skipped: bool = False  # an Efento point whose webhook is (temporarily) disabled
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: bytes = b""

    @property
    def outcome(self) -> str:
        if self.skipped:
            return NOT_SENT
        return NO_RESPONSE if self.status is None else str(self.status)

    @property
    def as_expected(self) -> bool:
        return self.skipped or self.status == self.delivery.expected_status


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class SendReport:
    results: list[SendResult]
    elapsed_s: float
    efento_webhooks: dict[int, WebhookStatus] = field(default_factory=dict)

    @property
    def sent(self) -> list[SendResult]:
        return [r for r in self.results if not r.skipped]

    def delivered(self) -> list[SendResult]:
        """Requests sensorhook answered 2xx and meant to keep (first copies and duplicates)."""
        return [
            r
            for r in self.sent
            if r.status is not None
            and 200 <= r.status < 300
            and r.delivery.intent in (Intent.ACCEPTED, Intent.DUPLICATE)
        ]

    def expected_event_ids(self) -> set[str]:
        """The deliveries sensorhook must have stored exactly once each."""
        return {r.delivery.event_id for r in self.delivered() if r.delivery.event_id}

    def expected_samples(self) -> dict[tuple[str, str, str, datetime], Sample]:
        """Every distinct measured value sensorhook must hold, keyed by `Sample.key`."""
        return {s.key: s for r in self.delivered() for s in r.delivery.payload.samples}

    def unexpected(self) -> list[SendResult]:
        return [r for r in self.results if not r.as_expected]

    def summary(self) -> dict[str, Any]:
        sent = self.sent
        latencies_ms = [r.latency_s * 1000 for r in sent if r.latency_s is not None]
        p50, p99 = _percentile(latencies_ms, 0.50), _percentile(latencies_ms, 0.99)
        return {
            "sent": len(sent),
            "not_sent_webhook_disabled": len(self.results) - len(sent),
            "elapsed_s": round(self.elapsed_s, 3),
            "rate_per_s": round(len(sent) / self.elapsed_s, 1) if self.elapsed_s else None,
            "by_flavor": dict(Counter(r.delivery.flavor.value for r in sent)),
            "by_intent": dict(Counter(r.delivery.intent.value for r in sent)),
            "by_fault": dict(Counter(r.delivery.fault.value for r in sent)),
            "responses_by_status": dict(Counter(r.outcome for r in sent)),
            "unexpected_responses": len(self.unexpected()),
            "latency_ms": {
                "p50": None if p50 is None else round(p50, 2),
                "p99": None if p99 is None else round(p99, 2),
            },
            "expected_unique_deliveries": len(self.expected_event_ids()),
            "expected_unique_samples": len(self.expected_samples()),
            "efento_webhooks": {str(k): v.value for k, v in self.efento_webhooks.items()},
        }


@dataclass(eq=False)
class _Connection:
    http: http.client.HTTPConnection
    last_used: float


class Sender:
    """Posts deliveries; `run` paces them at `rate` requests per second."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        concurrency: int = 8,
        efento_webhooks: EfentoWebhooks | None = None,
        clock: Clock = utc_now,
        keep_response_bytes: int = 4096,
    ) -> None:
        if concurrency < 1 or timeout_s <= 0:
            raise ValueError("concurrency must be >= 1 and timeout_s > 0")
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.efento_webhooks = efento_webhooks
        self.clock = clock
        self.keep_response_bytes = keep_response_bytes
        self._local = threading.local()
        self._opened: list[_Connection] = []
        self._opened_lock = threading.Lock()

    def close(self) -> None:
        """Close every connection the workers opened."""
        with self._opened_lock:
            for connection in self._opened:
                connection.http.close()
            self._opened.clear()

    def send(self, delivery: Delivery, seq: int = 0) -> SendResult:
        """One request, in the calling thread; honours the Efento webhook status."""
        webhooks = self.efento_webhooks
        point_id = None if webhooks is None else delivery.payload.efento_point_id
        if webhooks is not None and point_id is not None and not webhooks.can_send(point_id):
            return SendResult(seq, delivery, None, None, None, skipped=True)
        result = self._post(seq, delivery)
        if webhooks is not None and point_id is not None:
            webhooks.record(point_id, result.status)
        return result

    def run(
        self,
        deliveries: Iterable[Delivery],
        *,
        count: int | None = None,
        duration_s: float | None = None,
        rate: float | None = None,
    ) -> SendReport:
        """Send until `count` requests or `duration_s` seconds, whichever comes first.

        Request i is released at start + i / rate (absolute schedule, so sleep jitter does not
        accumulate); at most 2 x concurrency requests wait for a worker, so a slow receiver
        lowers the achieved rate instead of growing a queue.
        """
        if count is None and duration_s is None:
            raise ValueError("give a count or a duration")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        source = iter(deliveries)
        slots = threading.BoundedSemaphore(self.concurrency * 2)
        futures: list[Future[SendResult]] = []
        started = time.monotonic()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="emulator") as pool:
            seq = 0
            while count is None or seq < count:
                if rate is not None:
                    time.sleep(max(0.0, started + seq / rate - time.monotonic()))
                if duration_s is not None and time.monotonic() - started >= duration_s:
                    break
                delivery = next(source, None)
                if delivery is None:
                    break
                slots.acquire()
                futures.append(pool.submit(self._send_releasing, seq, delivery, slots))
                seq += 1
            results = [future.result() for future in futures]
        elapsed = time.monotonic() - started
        self.close()
        statuses = self.efento_webhooks.statuses() if self.efento_webhooks else {}
        return SendReport(results, elapsed, statuses)

    def _send_releasing(
        self, seq: int, delivery: Delivery, slots: threading.BoundedSemaphore
    ) -> SendResult:
        try:
            return self.send(delivery, seq)
        finally:
            slots.release()

    def _post(self, seq: int, delivery: Delivery) -> SendResult:
        split = urlsplit(delivery.url)
        path = (split.path or "/") + (f"?{split.query}" if split.query else "")
        connection = self._connection(split)
        sent_at = self.clock()
        started = time.perf_counter()
        try:
            connection.http.request("POST", path, body=delivery.body, headers=delivery.headers)
            response = connection.http.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.http.close()
            return SendResult(seq, delivery, sent_at, None, None, type(error).__name__)
        finally:
            connection.last_used = time.monotonic()
        return SendResult(
            seq,
            delivery,
            sent_at,
            response.status,
            time.perf_counter() - started,
            response_headers=tuple(response.getheaders()),
            response_body=body[: self.keep_response_bytes],
        )

    def _connection(self, split: SplitResult) -> _Connection:
        connections: dict[tuple[str, str], _Connection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        key = (split.scheme, split.netloc)
        existing = connections.get(key)
        if existing is not None and time.monotonic() - existing.last_used < _IDLE_RECONNECT_S:
            return existing
        if existing is not None:
            existing.http.close()
            with self._opened_lock:
                if existing in self._opened:
                    self._opened.remove(existing)
        factory = (
            http.client.HTTPSConnection if split.scheme == "https" else http.client.HTTPConnection
        )
        fresh = _Connection(factory(split.netloc, timeout=self.timeout_s), time.monotonic())
        connections[key] = fresh
        with self._opened_lock:
            self._opened.append(fresh)
        return fresh


@dataclass(frozen=True)
class _WireRequest:
    """What the sending process gets of a delivery: the request alone. The delivery stays in
    the caller's process, where it may hold classes of a module set of the caller's own (an
    embedded stack's functions share `sys.modules` with it), which pickling would not find.
    It is sent by a Sender without Efento webhooks, which reads nothing else of it."""

    url: str
    body: bytes
    headers: dict[str, str]


def run_in_own_process(
    deliveries: Iterable[Delivery], *, count: int, rate: float | None = None
) -> SendReport:
    """`Sender().run(deliveries, count=count, rate=rate)` with the requests sent from a process
    of its own: a provider's cloud is another machine, so its HTTP client does not take the
    interpreter lock the local stack's functions share (local/throughput.py). The first `count`
    deliveries are built here first, then only their requests cross to the sending process."""
    ready = list(itertools.islice(deliveries, count))
    wire = [_WireRequest(d.url, d.body, d.headers) for d in ready]
    spawned = multiprocessing.get_context("spawn")  # no copy of the stack's threads and locks
    with ProcessPoolExecutor(max_workers=1, mp_context=spawned) as pool:
        sent = pool.submit(_send_wire, wire, rate).result()
    # each answer paired with the delivery whose request it was
    results = [replace(result, delivery=ready[result.seq]) for result in sent.results]
    return SendReport(results, sent.elapsed_s)


def _send_wire(wire: list[_WireRequest], rate: float | None) -> SendReport:
    return Sender().run(wire, count=len(wire), rate=rate)  # type: ignore[arg-type]
