"""Recovery incidents: when a subscription is broken, one recovery execution per incident.

Only the control plane starts recoveries: the reconciler (`logic/subscriptions/record.py`) for a
subscription disabled by the provider, missing, failing to be reconciled or silent, and gateway
health (`logic/health.py`) for a readings subscription whose sensors all went silent while their
gateways are online. The incident id is the moment it was detected (stored on the subscription's
row while it is open, so every later sighting names the same incident), and the execution name
is `<subscription>-<incident id>`: a second start of the same incident is a no-op, and a new
incident opens only once the machine closed the previous one, so two recoveries of one
subscription never run at once (docs/recovery.md).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, Self

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, TypeAdapter, model_validator

from sensorhook.core.settings import DesiredSubscription
from sensorhook.core.timestamps import UtcDatetime
from sensorhook.dal.subscriptions_store import SubscriptionState, SubscriptionStatus
from sensorhook.observability import logger, metrics

DESIRED_SUBSCRIPTIONS: TypeAdapter[list[DesiredSubscription]] = TypeAdapter(
    list[DesiredSubscription]
)
RECOVERIES_STARTED_METRIC = "RecoveriesStarted"
RECOVERY_START_ERRORS_METRIC = "RecoveryStartErrors"
# Step Functions execution names: at most 80 characters of [A-Za-z0-9_-].
_EXECUTION_NAME_MAX = 80


class IncidentCause(StrEnum):
    DISABLED_BY_PROVIDER = "disabled_by_provider"
    MISSING = "missing"
    RECONCILE_FAILED = "reconcile_failed"
    SILENT = "silent"
    OPERATOR_BACKFILL = "operator_backfill"  # a backfill started on its own (operator CLI)


class BackfillRequest(BaseModel):
    """A backfill started on its own: these sensors (None: every known one) over [start, end)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensors: tuple[str, ...] | None = None
    start: UtcDatetime
    end: UtcDatetime


class RecoveryInput(BaseModel):
    """The recovery machine's execution input (docs/recovery.md, "Starting it")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subscription: str
    provider: str
    event_type: str
    incident_id: str
    cause: IncidentCause
    detected_at: UtcDatetime
    backfill: BackfillRequest | None = None  # only for a backfill started on its own

    @model_validator(mode="after")
    def _backfill_iff_operator(self) -> Self:
        if (self.cause is IncidentCause.OPERATOR_BACKFILL) != (self.backfill is not None):
            raise ValueError("a backfill range goes with cause operator_backfill, and only")
        return self


class Executions(Protocol):
    def start(self, name: str, input_json: str) -> bool: ...
    def ended(self, name: str) -> bool: ...


class IncidentRows(Protocol):
    """The subscriptions table's incident attributes (dal/subscriptions_store.py)."""

    def open_incident(self, name: str, incident_id: str, cause: str, at: datetime) -> bool: ...
    def close_incident(
        self, name: str, incident_id: str, *, gave_up_at: datetime | None
    ) -> bool: ...


def incident_id_at(moment: datetime) -> str:
    """`20261129T201500Z`: sortable, 16 characters, a valid execution-name part."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def execution_name(subscription: str, incident_id: str) -> str:
    name = f"{subscription}-{incident_id}"
    if len(name) > _EXECUTION_NAME_MAX:  # subscription names are at most 63 characters
        raise ValueError(f"execution name {name!r} is longer than {_EXECUTION_NAME_MAX}")
    return name


class RecoveryStarter:
    """Starts one execution per incident; a failure to start is logged and counted, never
    raised: the incident stays open on the row and the next run starts it again."""

    def __init__(self, executions: Executions, rows: IncidentRows) -> None:
        self._executions = executions
        self._rows = rows

    def open_and_start(self, recovery: RecoveryInput) -> bool:
        """Record a new incident on its subscription's row, then start it. False when the
        row already has an open incident (that one's recovery runs) or recovery gave up."""
        if not self._rows.open_incident(
            recovery.subscription,
            recovery.incident_id,
            recovery.cause.value,
            recovery.detected_at,
        ):
            return False
        return self.start(recovery)

    def start(self, recovery: RecoveryInput) -> bool:
        """Start the incident's execution; a no-op while it runs. One that ended without
        closing its incident (it failed outside its Catch paths) has the incident closed
        here, so the next run can open a new one instead of starting a dead name forever."""
        name = execution_name(recovery.subscription, recovery.incident_id)
        try:
            started = self._executions.start(name, recovery.model_dump_json(exclude_none=True))
            if not started and self._executions.ended(name):
                self._rows.close_incident(
                    recovery.subscription, recovery.incident_id, gave_up_at=None
                )
                logger.warning(
                    "ended recovery left its incident open; closed", extra={"execution": name}
                )
        except Exception as error:
            logger.error("recovery not started", extra={"execution": name, "error": repr(error)})
            metrics.add_metric(name=RECOVERY_START_ERRORS_METRIC, unit=MetricUnit.Count, value=1)
            return False
        if started:
            logger.warning(
                "recovery started",
                extra={"execution": name, "cause": recovery.cause.value},
            )
            metrics.add_metric(name=RECOVERIES_STARTED_METRIC, unit=MetricUnit.Count, value=1)
        return started


def readings_subscriptions(
    desired: Sequence[DesiredSubscription], provider: str
) -> list[DesiredSubscription]:
    """The enabled subscriptions that carry a provider's periodic readings (the gateways and
    sensor_state tables' provider names: `everactive`, `efento`). Efento's is configured by
    hand: there is nothing an API could re-enable, so it never has a recovery."""
    return [
        subscription
        for subscription in desired
        if subscription.enabled
        and subscription.provider == "everactive-ds"
        and subscription.event_type == "sensor_reading"
        and provider == "everactive"
    ]


_CAUSE_BY_STATUS = {
    SubscriptionStatus.RE_ENABLED: IncidentCause.DISABLED_BY_PROVIDER,
    SubscriptionStatus.ERROR: IncidentCause.RECONCILE_FAILED,
    SubscriptionStatus.SILENT: IncidentCause.SILENT,
}


@dataclass(frozen=True)
class RecordedIncident:
    """A reconcile run's view of a subscription's incident: the status to store, and the
    recovery to start (`new`: the incident is opened by this run)."""

    status: SubscriptionStatus
    recovery: RecoveryInput | None = None
    new: bool = False


def reconciled_incident(
    subscription: DesiredSubscription,
    status: SubscriptionStatus,
    *,
    recreated: bool,
    previous: SubscriptionState | None,
    now: datetime,
) -> RecordedIncident:
    """`recreated`: the run created a webhook for a subscription that had one (it went missing).

    A subscription recovery gave up on stays `disabled` (nothing is started) until an operator
    clears `gave_up_at`; an open incident is started again (a no-op while its execution
    exists); otherwise a broken status opens a new incident.
    """
    if previous is not None and previous.gave_up_at is not None:
        return RecordedIncident(status=SubscriptionStatus.DISABLED)
    if subscription.provider == "efento" or not subscription.enabled:
        return RecordedIncident(status=status)  # no API can re-enable what is not there
    if previous is not None and previous.incident_id is not None:
        return RecordedIncident(
            status=status,
            recovery=RecoveryInput(
                subscription=subscription.name,
                provider=subscription.provider,
                event_type=subscription.event_type,
                incident_id=previous.incident_id,
                cause=IncidentCause(previous.incident_cause or IncidentCause.SILENT),
                detected_at=previous.incident_started_at or now,
            ),
        )
    cause = IncidentCause.MISSING if recreated else _CAUSE_BY_STATUS.get(status)
    if cause is None:
        return RecordedIncident(status=status)
    return RecordedIncident(
        status=status,
        recovery=RecoveryInput(
            subscription=subscription.name,
            provider=subscription.provider,
            event_type=subscription.event_type,
            incident_id=incident_id_at(now),
            cause=cause,
            detected_at=now,
        ),
        new=True,
    )


class SilenceRecoveries:
    """Gateway health's start: a provider whose API holds readings it never delivered while its
    gateways are online has a silent readings subscription; its incident is opened on the
    subscription's row (unless one is open: the reconciler or an earlier poll opened it) and
    started."""

    def __init__(self, desired: Sequence[DesiredSubscription], starter: RecoveryStarter) -> None:
        self._desired = desired
        self._starter = starter

    def provider_silent(self, provider: str, now: datetime) -> None:
        for subscription in readings_subscriptions(self._desired, provider):
            self._starter.open_and_start(
                RecoveryInput(
                    subscription=subscription.name,
                    provider=subscription.provider,
                    event_type=subscription.event_type,
                    incident_id=incident_id_at(now),
                    cause=IncidentCause.SILENT,
                    detected_at=now,
                )
            )
