"""The endpoint policy: Efento's statuses and thresholds, decided from an endpoint's record.

Pure decisions, shared by both sides so they always agree:

- the forwarder records each attempt and asks `decide` whether the endpoint may still receive
  (a 5th no-response stops deliveries at once) and whether the policy machine must look;
- the policy machine (Step Functions, `infra/constructs/endpoint_policy.py`) applies the
  transition `decide` names, stores and publishes it, and `next_step` tells it what to do next:
  end, poll again later, hold a temporary disable, or deliver the backlog.
"""

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sensorhook.core.forwarding import EndpointStatus, ForwardingPolicy


class Outcome(StrEnum):
    """What one delivery attempt got."""

    OK = "ok"  # 2xx
    ERROR = "error"  # any other status
    NO_RESPONSE = "no_response"  # timeout, connection refused or closed without an answer
    GONE = "gone"  # 410: the receiver says the endpoint is gone (Standard Webhooks: disable)


OUTCOME_STATUS = {
    Outcome.OK: EndpointStatus.OK,
    Outcome.ERROR: EndpointStatus.ERROR,
    Outcome.NO_RESPONSE: EndpointStatus.NO_RESPONSE,
}
GONE = 410
# Statuses whose answer means "later": their Retry-After is honoured.
RETRY_AFTER_STATUSES = (429, 503)


def classify(status_code: int | None) -> Outcome:
    if status_code is None:
        return Outcome.NO_RESPONSE
    if 200 <= status_code < 300:
        return Outcome.OK
    if status_code == GONE:
        return Outcome.GONE
    return Outcome.ERROR


@dataclass(frozen=True)
class EndpointRecord:
    """An endpoint's stored state (dal.endpoints_store); absent = never triggered."""

    name: str
    status: EndpointStatus = EndpointStatus.NEW
    status_since: datetime | None = None
    last_attempt_at: datetime | None = None
    last_response_code: int | None = None
    last_outcome: Outcome | None = None
    consecutive_no_responses: int = 0
    failing_since: datetime | None = None  # first failure since the last success or enable
    last_success_at: datetime | None = None
    backlog: bool = False  # events wait in the S3 backlog: deliver those first, in order
    backlog_version: int = 0
    version: int = 0  # bumped by every write of the forwarder
    policy_execution: str | None = None  # the running policy execution, if any


def decide(record: EndpointRecord, now: datetime, policy: ForwardingPolicy) -> EndpointStatus:
    """The status the endpoint should have now.

    A disable is left only by the machine (after the hold) or an operator, never by an attempt.
    Disabled wins over Temporarily disabled: thirty hours without success is final.
    """
    if not record.status.enabled:
        return record.status
    if record.last_outcome is None:
        return EndpointStatus.NEW
    if record.last_outcome is Outcome.GONE:
        return EndpointStatus.DISABLED
    if record.failing_since is not None and now - record.failing_since >= timedelta(
        seconds=policy.disable_after_seconds
    ):
        return EndpointStatus.DISABLED
    if record.consecutive_no_responses >= policy.no_response_limit:
        return EndpointStatus.TEMPORARILY_DISABLED
    return OUTCOME_STATUS[record.last_outcome]


def needs_policy(record: EndpointRecord, now: datetime, policy: ForwardingPolicy) -> bool:
    """The machine has work: a transition to make, or a backlog to deliver."""
    target = decide(record, now, policy)
    return target != record.status or (record.backlog and target.enabled)


def may_deliver(record: EndpointRecord, now: datetime, policy: ForwardingPolicy) -> bool:
    """New events go out directly only to an enabled endpoint with nothing older waiting."""
    return decide(record, now, policy).enabled and not record.backlog


class Next(StrEnum):
    """The machine's next step after an evaluation (the Choice state reads it)."""

    DONE = "done"  # healthy or Disabled: the execution ends
    WATCH = "watch"  # failing: wait, then evaluate again (the 30-hour clock runs)
    HOLD = "hold"  # temporarily disabled: wait out the hold, then enable again
    DRAIN = "drain"  # deliver the backlog (after `wait_seconds`)
    EVALUATE = "evaluate"  # something changed while deciding: evaluate again at once


@dataclass(frozen=True)
class Step:
    next: Next
    wait_seconds: int = 0


def next_step(
    record: EndpointRecord, now: datetime, policy: ForwardingPolicy, check_seconds: int
) -> Step:
    """What the machine does after it made `record.status` current."""
    status = record.status
    if status is EndpointStatus.DISABLED:
        return Step(Next.DONE)
    if status is EndpointStatus.TEMPORARILY_DISABLED:
        since = record.status_since or now
        left = policy.temporary_disable_seconds - (now - since).total_seconds()
        return Step(Next.HOLD, _seconds(left))
    if record.backlog:
        failing = record.last_outcome not in (None, Outcome.OK)
        delay = (
            policy.retry_delay_ceiling(max(1, record.consecutive_no_responses)) if failing else 0
        )
        return Step(Next.DRAIN, _seconds(min(delay, check_seconds)) if failing else 0)
    if status in (EndpointStatus.ERROR, EndpointStatus.NO_RESPONSE):
        # Every check_seconds, not at the 30-hour mark: the Wait is the machine's clock (which
        # the local mode compresses), the mark is wall time; a Disabled comes at most one check
        # late, or at once on the next failed attempt.
        return Step(Next.WATCH, _seconds(check_seconds))
    return Step(Next.DONE)


def _seconds(value: float) -> int:
    """Wait states take whole seconds; at least one, so a loop never spins."""
    return max(1, math.ceil(value))


def retry_delay(
    policy: ForwardingPolicy,
    attempt: int,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> int:
    """Seconds before the next attempt of a message that failed `attempt` times.

    Exponential backoff with "equal jitter" (half fixed, half random) so retries from many
    messages spread out; a Retry-After the receiver sent on 429/503 is a floor. Capped by the
    policy's maximum (itself at most SQS's 12-hour visibility limit).
    """
    ceiling = policy.retry_delay_ceiling(attempt)
    chooser = rng or random.SystemRandom()
    delay = ceiling / 2 + chooser.uniform(0, ceiling / 2)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return max(1, min(math.ceil(delay), ForwardingPolicy.MAX_RETRY_DELAY_SECONDS))
