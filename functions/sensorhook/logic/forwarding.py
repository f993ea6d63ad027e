"""Forwarding sensorhook's events to the user's endpoints (docs/forwarding.md).

The forwarder takes one endpoint's queue batch: it delivers in order of arrival while the
endpoint may receive, stops at the first failure (the rest of the batch waits with it, so a
dead endpoint costs one timeout per batch, not ten), asks SQS to hand failed messages back
after an exponential, jittered delay (a 429/503 `Retry-After` as its floor), and keeps every
event in the S3 backlog when the endpoint is not enabled or older events already wait there.
It never changes a status: it records attempts and wakes the policy machine when `decide`
says a transition or a backlog is due.
"""

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sensorhook.core.forwarding import (
    EndpointSecret,
    ForwardingEndpoint,
    ForwardingPolicy,
    SignatureScheme,
)
from sensorhook.dal.backlog import Backlog
from sensorhook.dal.endpoint_http import HttpAnswer
from sensorhook.dal.endpoints_store import AttemptSummary, EndpointsStore
from sensorhook.logic.endpoint_policy import (
    RETRY_AFTER_STATUSES,
    EndpointRecord,
    Outcome,
    classify,
    may_deliver,
    needs_policy,
    retry_delay,
)
from sensorhook.observability import logger, metrics
from sensorhook.providers.everactive_v2020 import signing as v2020
from sensorhook.providers.standard_webhooks import signing as standard_webhooks

DELIVERY_ID_HEADER = "webhook-id"  # the stable delivery id, in both schemes


class Poster(Protocol):
    def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> HttpAnswer: ...


class Starter(Protocol):
    def start(self, execution_name: str, endpoint: str, action: str = "evaluate") -> str: ...


@dataclass(frozen=True)
class QueuedEvent:
    """One bus event as the endpoint's queue holds it."""

    message_id: str
    receipt_handle: str
    body: str  # the EventBridge event, JSON
    arrived_at_ms: int  # SQS SentTimestamp: the order of arrival
    receive_count: int  # attempts so far, this one included

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class BatchOutcome:
    delivered: int = 0
    kept: int = 0  # written to the backlog
    retry_after_s: dict[str, int] = field(default_factory=dict)  # message id -> delay


def delivery_body(event: dict[str, Any]) -> bytes:
    """What the endpoint receives: the Standard Webhooks payload shape around the event."""
    return json.dumps(
        {
            "id": event["id"],
            "type": event["detail-type"],
            "timestamp": event["time"],
            "source": event.get("source"),
            "data": event.get("detail"),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def request_headers(
    endpoint: ForwardingEndpoint,
    delivery_id: str,
    body: bytes,
    secret: EndpointSecret,
    now: datetime,
) -> dict[str, str]:
    """Custom headers, then the scheme's signature headers (which custom ones cannot replace)."""
    headers = {
        **endpoint.headers,
        "Content-Type": "application/json",
        "User-Agent": "sensorhook-forwarder/1",
        DELIVERY_ID_HEADER: delivery_id,
    }
    secrets = secret.signing_secrets(now)
    if endpoint.signature_scheme is SignatureScheme.EVERACTIVE_V2020:
        target = endpoint.url.split("://", 1)[1]
        host, _, path = target.partition("/")
        headers.update(
            v2020.signed_headers(
                method="POST",
                path="/" + path,
                host=host,
                body=body,
                key_id=endpoint.signing_key_id,
                secret=secrets[0],
                date=now,
            )
        )
    else:
        headers.update(
            standard_webhooks.signed_headers(
                message_id=delivery_id, body=body, secrets=secrets, at=now
            )
        )
    return headers


class Pacer:
    """At most `rate` requests per second to one endpoint from this execution environment."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, endpoint: str, rate: float) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(endpoint, now))
            self._next[endpoint] = slot + 1.0 / rate
        if slot > now:
            time.sleep(slot - now)


class Forwarding:
    def __init__(
        self,
        *,
        endpoints: dict[str, ForwardingEndpoint],
        policy: ForwardingPolicy,
        store: EndpointsStore,
        backlog: Backlog,
        http: Poster,
        secret: Callable[[str], EndpointSecret],
        machine: Starter | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        pacer: Pacer | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.policy = policy
        self.store = store
        self.backlog = backlog
        self._http = http
        self._secret = secret
        self._machine = machine
        self._clock = clock
        self._pacer = pacer or Pacer()

    # -- one attempt -------------------------------------------------------------------------

    def attempt(self, endpoint: ForwardingEndpoint, event: dict[str, Any]) -> HttpAnswer:
        body = delivery_body(event)
        self._pacer.wait(endpoint.name, endpoint.rate_limit_per_second)
        headers = request_headers(
            endpoint, event["id"], body, self._secret(endpoint.name), self._clock()
        )
        answer = self._http.post(endpoint.url, body, headers, endpoint.timeout_seconds)
        metrics.add_metric(name="ForwardingAttempts", unit="Count", value=1)
        logger.info(
            "forwarding attempt",
            extra={
                "endpoint": endpoint.name,
                "delivery_id": event["id"],
                "status": answer.status,
                "error": answer.error,
                "elapsed_ms": round(answer.elapsed_s * 1000, 1),
            },
        )
        return answer

    # -- the queue ---------------------------------------------------------------------------

    def forward_batch(self, endpoint_name: str, queued: Sequence[QueuedEvent]) -> BatchOutcome:
        endpoint = self.endpoints[endpoint_name]
        events = sorted(queued, key=lambda item: (item.arrived_at_ms, item.message_id))
        result = BatchOutcome()
        record = self.store.get(endpoint_name)
        if not may_deliver(record, self._clock(), self.policy):
            self._keep(endpoint_name, events, result)
            return result
        last_success_at: datetime | None = None
        last_code: int | None = None
        failure: tuple[int, HttpAnswer, Outcome] | None = None
        for index, item in enumerate(events):
            answer = self.attempt(endpoint, item.event)
            outcome = classify(answer.status)
            if outcome is Outcome.OK:
                last_success_at, last_code = self._clock(), answer.status
                result.delivered += 1
                continue
            failure = (index, answer, outcome)
            break
        now = self._clock()
        if failure is None:
            if not events:
                return result
            summary = AttemptSummary(now, Outcome.OK, last_code, last_success_at, None)
            record = self.store.record_attempts(endpoint_name, summary)
        else:
            index, answer, outcome = failure
            summary = AttemptSummary(now, outcome, answer.status, last_success_at, now)
            record = self.store.record_attempts(endpoint_name, summary)
            waiting = events[index:]
            if may_deliver(record, now, self.policy):
                retry_after = (
                    answer.retry_after_s if answer.status in RETRY_AFTER_STATUSES else None
                )
                for item in waiting:
                    result.retry_after_s[item.message_id] = retry_delay(
                        self.policy, item.receive_count, retry_after
                    )
            else:  # this failure ended the endpoint's turn: keep what was not delivered
                self._keep(endpoint_name, waiting, result)
                return result
        self.wake_policy(record)
        return result

    def _keep(
        self, endpoint_name: str, events: Sequence[QueuedEvent], result: BatchOutcome
    ) -> None:
        for item in events:
            self.backlog.keep(endpoint_name, item.arrived_at_ms, item.event["id"], item.body)
            result.kept += 1
        if events:
            metrics.add_metric(name="ForwardingKept", unit="Count", value=len(events))
            record = self.store.mark_backlog(endpoint_name)
            self.wake_policy(record)

    # -- the backlog -------------------------------------------------------------------------

    def drain_backlog(self, endpoint_name: str, limit: int) -> dict[str, Any]:
        """Deliver up to `limit` backlog events oldest first, stopping at the first failure;
        clear the backlog flag once it is empty (unless an event was kept meanwhile)."""
        endpoint = self.endpoints[endpoint_name]
        record = self.store.get(endpoint_name)
        seen = record.backlog_version
        if not record.status.enabled:
            return {"delivered": 0, "empty": False}
        delivered = 0
        last_success_at: datetime | None = None
        last_code: int | None = None
        for entry in self.backlog.oldest(endpoint_name, limit):
            answer = self.attempt(endpoint, json.loads(entry.body))
            outcome = classify(answer.status)
            now = self._clock()
            if outcome is Outcome.OK:
                self.backlog.delivered(entry.key)
                delivered += 1
                last_success_at, last_code = now, answer.status
                continue
            self.store.record_attempts(
                endpoint_name, AttemptSummary(now, outcome, answer.status, last_success_at, now)
            )
            return {"delivered": delivered, "empty": False}
        if delivered:
            now = self._clock()
            self.store.record_attempts(
                endpoint_name, AttemptSummary(now, Outcome.OK, last_code, last_success_at, None)
            )
            return {"delivered": delivered, "empty": False}
        return {"delivered": 0, "empty": self.store.clear_backlog(endpoint_name, seen)}

    # -- waking the policy -------------------------------------------------------------------

    def wake_policy(self, record: EndpointRecord) -> None:
        now = self._clock()
        if record.policy_execution or not needs_policy(record, now, self.policy):
            return
        name = f"{record.name}-{now:%Y%m%dT%H%M%S%f}-{record.version}"[:80]
        if self._machine is None:
            return  # the policy machine's own steps: it looks again itself
        if not self.store.take_policy_lock(record.name, name):
            return  # another writer just started one
        try:
            self._machine.start(name, record.name)
        except Exception:
            self.store.drop_policy_lock(record.name, name)
            raise
