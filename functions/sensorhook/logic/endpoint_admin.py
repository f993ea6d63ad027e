"""What an operator does with forwarding endpoints: list them, enable, disable.

Callable with plain boto3 clients (the operator CLI wires them): the status, last attempt and
last response code of every endpoint come from the endpoints table; enable and disable go
through the policy machine, which owns every status change, so they are stored, timestamped
and published like any other transition.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sensorhook.core.forwarding import EndpointStatus
from sensorhook.dal.backlog import Backlog
from sensorhook.dal.endpoints_store import EndpointsStore, Transition
from sensorhook.dal.policy_machine import PolicyMachine

ACTIONS = ("enable", "disable")


@dataclass(frozen=True)
class EndpointView:
    """One row of Efento's webhook list, plus what sensorhook adds."""

    name: str
    status: EndpointStatus
    status_since: datetime | None
    last_attempt_at: datetime | None
    last_response_code: int | None
    consecutive_no_responses: int
    failing_since: datetime | None
    backlog_events: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "status_since": _iso(self.status_since),
            "last_attempt_at": _iso(self.last_attempt_at),
            "last_response_code": self.last_response_code,
            "consecutive_no_responses": self.consecutive_no_responses,
            "failing_since": _iso(self.failing_since),
            "backlog_events": self.backlog_events,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def list_endpoints(
    store: EndpointsStore, configured: list[str], backlog: Backlog | None = None
) -> list[EndpointView]:
    """Every configured endpoint (New if never triggered) and any other the table knows."""
    records = {record.name: record for record in store.list_states()}
    names = sorted(set(configured) | set(records))
    views = []
    for name in names:
        record = records.get(name) or store.get(name)
        views.append(
            EndpointView(
                name=name,
                status=record.status,
                status_since=record.status_since,
                last_attempt_at=record.last_attempt_at,
                last_response_code=record.last_response_code,
                consecutive_no_responses=record.consecutive_no_responses,
                failing_since=record.failing_since,
                backlog_events=backlog.count(name) if backlog is not None else None,
            )
        )
    return views


def history(store: EndpointsStore, name: str) -> list[Transition]:
    return store.history(name)


def request_action(
    store: EndpointsStore,
    machine: PolicyMachine,
    name: str,
    action: str,
    now: datetime | None = None,
) -> str:
    """Start the policy machine with the operator's action; returns the execution name.

    A running execution of the endpoint (e.g. waiting out a temporary disable) is stopped
    first, so the operator's word is the last one.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    moment = now or datetime.now(UTC)
    execution = f"{name}-{action}-{moment:%Y%m%dT%H%M%S%f}"[:80]
    running = store.get(name).policy_execution
    if running is not None:
        machine.stop(running, f"operator {action}")
    store.replace_policy_lock(name, execution)
    machine.start(execution, name, action)
    return execution
