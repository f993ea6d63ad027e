"""The endpoint policy machine's tasks: each applies one step of the policy and says what next.

The machine (infra/constructs/endpoint_policy.py) owns the transitions and the waits; these
steps read the endpoint's record, make the transition `decide` names (stored with its time in
the history, then published as `endpoint.status_changed`), and answer the machine's Choice.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sensorhook.core.forwarding import EndpointStatus, ForwardingPolicy
from sensorhook.dal.endpoints_store import EndpointsStore, Transition
from sensorhook.logic.endpoint_policy import (
    OUTCOME_STATUS,
    EndpointRecord,
    Next,
    Outcome,
    decide,
    next_step,
)
from sensorhook.logic.forwarding import Forwarding
from sensorhook.observability import logger, metrics

# Transitions per status change attempt: a concurrent writer can win the conditional write.
_MAX_RACES = 5


def _reason(record: EndpointRecord, target: EndpointStatus, policy: ForwardingPolicy) -> str:
    if target is EndpointStatus.DISABLED:
        if record.last_outcome is Outcome.GONE:
            return "the endpoint answered 410 Gone"
        return f"no successful delivery for {policy.disable_after_seconds} s"
    if target is EndpointStatus.TEMPORARILY_DISABLED:
        return f"{record.consecutive_no_responses} deliveries in a row without a response"
    if target is EndpointStatus.OK:
        return f"the endpoint answered {record.last_response_code}"
    if target is EndpointStatus.ERROR:
        return f"the endpoint answered {record.last_response_code}"
    return "the endpoint did not answer (timeout or connection failure)"


def _changed_at(record: EndpointRecord, target: EndpointStatus, now: datetime) -> datetime:
    """When the status really changed: at the attempt that showed it, or now for a clock."""
    attempt = record.last_attempt_at
    if target is EndpointStatus.DISABLED and record.last_outcome is not Outcome.GONE:
        return now
    if attempt is not None and (record.status_since is None or attempt >= record.status_since):
        return attempt
    return now


class PolicySteps:
    def __init__(
        self,
        forwarding: Forwarding,
        publish: Callable[[Transition], None],
        check_seconds: int,
        drain_batch: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._forwarding = forwarding
        self._store: EndpointsStore = forwarding.store
        self._policy = forwarding.policy
        self._publish = publish
        self._check_seconds = check_seconds
        self._drain_batch = drain_batch
        self._clock = clock

    def _move(
        self,
        record: EndpointRecord,
        target: EndpointStatus,
        at: datetime,
        reason: str,
        enable: str | None = None,
    ) -> bool:
        change = self._store.transition(record, target, at, reason, enable=enable)
        if change is None:
            return False
        logger.info("endpoint status changed", extra=change.as_event_detail())
        metrics.add_metric(name="EndpointTransitions", unit="Count", value=1)
        self._publish(change)
        return True

    def evaluate(self, endpoint: str, execution: str) -> dict[str, Any]:
        for _ in range(_MAX_RACES):
            now = self._clock()
            record = self._store.get(endpoint)
            target = decide(record, now, self._policy)
            if target != record.status and not self._move(
                record,
                target,
                _changed_at(record, target, now),
                _reason(record, target, self._policy),
            ):
                continue  # someone moved it first: look again
            record = self._store.get(endpoint)
            step = next_step(record, now, self._policy, self._check_seconds)
            if step.next is Next.DONE:
                if record.status is EndpointStatus.DISABLED:
                    self._store.drop_policy_lock(endpoint, execution)
                elif not self._store.release_policy_lock(endpoint, execution, record.version):
                    continue  # the forwarder wrote meanwhile: look again before ending
            return {
                "next": step.next.value,
                "wait_seconds": step.wait_seconds,
                "status": record.status.value,
            }
        return {"next": Next.EVALUATE.value, "wait_seconds": 0, "status": record.status.value}

    def reenable(self, endpoint: str) -> dict[str, Any]:
        """The hold is over: enabled again, with the status of the last answer it got."""
        record = self._store.get(endpoint)
        if record.status is EndpointStatus.TEMPORARILY_DISABLED:
            target = OUTCOME_STATUS.get(
                record.last_outcome or Outcome.NO_RESPONSE, EndpointStatus.NO_RESPONSE
            )
            self._move(record, target, self._clock(), "temporary disable over", enable="automatic")
        return {"status": self._store.get(endpoint).status.value}

    def operator(self, endpoint: str, action: str) -> dict[str, Any]:
        """An operator's `enable` (fresh start: New) or `disable` (Disabled until enabled)."""
        record = self._store.get(endpoint)
        if action == "enable" and not record.status.enabled:
            self._move(
                record,
                EndpointStatus.NEW,
                self._clock(),
                "enabled by an operator",
                enable="operator",
            )
        elif action == "disable" and record.status is not EndpointStatus.DISABLED:
            self._move(record, EndpointStatus.DISABLED, self._clock(), "disabled by an operator")
        return {"status": self._store.get(endpoint).status.value}

    def drain(self, endpoint: str) -> dict[str, Any]:
        return self._forwarding.drain_backlog(endpoint, self._drain_batch)
