"""The recovery machine's decisions, one function per step (docs/recovery.md).

- `recovered`: after the re-enabling reconcile, is the subscription right in the provider?
- `confirm_deliveries`: has a delivery of the subscription's kind arrived since?
- `finish`: the incident record (start, end, cause, readings per sensor, windows, API calls),
  the open incident closed, `subscription.recovered` published;
- `give_up`: the subscription marked `disabled`, the record, `subscription.disabled`, and the
  operator's notification (the machine sends it to the SNS topic).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from sensorhook.core.timestamps import UtcDatetime
from sensorhook.dal.events import OutboundEvent
from sensorhook.dal.subscriptions_store import (
    ProviderContacts,
    SubscriptionState,
    SubscriptionStatus,
)
from sensorhook.logic.backfill import SensorBackfill
from sensorhook.logic.domain_events import SUBSCRIPTION_DISABLED, SUBSCRIPTION_RECOVERED
from sensorhook.logic.incidents import RecoveryInput
from sensorhook.observability import logger

# The gateways table's provider names, and which contact proves a delivery of the event type.
_CONTACT_PROVIDER = {"everactive-ds": "everactive", "efento": "efento"}
# Statuses a re-enabling reconcile leaves a subscription that is right in the provider: a
# silent one is enabled and waits for its first delivery (which `confirm_deliveries` checks).
_RIGHT_IN_PROVIDER = {
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.RE_ENABLED,
    SubscriptionStatus.SILENT,
}


class SubscriptionNotRecovered(Exception):
    """The provider could not be made right this attempt; the machine's Retry tries again."""


class StatesReader(Protocol):
    def all(self) -> dict[str, SubscriptionState]: ...


class Publisher(Protocol):
    def publish(self, events: Sequence[OutboundEvent]) -> int: ...


class ReEnabled(BaseModel):
    subscription: str
    status: SubscriptionStatus
    provider_id: str | None
    at: UtcDatetime  # when the provider was right again: deliveries are expected after it
    api_calls: int


class Confirmation(BaseModel):
    confirmed: bool | None  # None: the event type has no periodic delivery to wait for
    checks: int
    done: bool  # confirmed, or the bounded wait is over
    last_delivery_at: UtcDatetime | None = None


class IncidentRecord(BaseModel):
    """The incident as the incidents table keeps it (part "summary") and the events carry it."""

    subscription: str
    provider: str
    event_type: str
    incident_id: str
    execution: str
    cause: str
    outcome: str  # recovered, gave_up
    started_at: UtcDatetime
    ended_at: UtcDatetime
    duration_s: float
    deliveries_confirmed: bool | None = None
    last_delivery_at: UtcDatetime | None = None
    sensors: int = 0
    readings_recovered: int = 0
    readings_recovered_per_sensor: dict[str, int] = {}
    windows_read: int = 0
    api_calls: int = 0
    failed_sensors: list[str] = []
    deferred_sensors: int = 0
    not_recoverable: str | None = None
    error: str | None = None


def recovered(
    states: StatesReader, subscription: str, incident_id: str, *, api_calls: int
) -> ReEnabled:
    state = states.all().get(subscription)
    if state is None or state.status not in _RIGHT_IN_PROVIDER:
        reason = (state.last_error or state.status.value) if state else "no stored state"
        logger.warning(
            "subscription not recovered yet",
            extra={"subscription": subscription, "incident": incident_id, "reason": reason},
        )
        raise SubscriptionNotRecovered(f"{subscription}: {reason}")
    return ReEnabled(
        subscription=subscription,
        status=state.status,
        provider_id=state.provider_id,
        at=state.last_reconciled_at,
        api_calls=api_calls,
    )


def confirm_deliveries(
    contacts: Mapping[str, ProviderContacts],
    recovery: RecoveryInput,
    *,
    since: datetime,
    checks: int,
    max_checks: int,
) -> Confirmation:
    """The first delivery after `since` confirms; after `max_checks` checks the bounded wait is
    over (the backfill then reads up to that moment all the same). Steam-trap state changes
    are rare by nature: nothing to wait for."""
    provider = _CONTACT_PROVIDER.get(recovery.provider)
    if provider is None:
        return Confirmation(confirmed=None, checks=checks, done=True)
    known = contacts.get(provider, ProviderContacts())
    last = (
        known.last_status_at if recovery.event_type == "gateway_status" else known.last_reading_at
    )
    confirmed = last is not None and last > since
    return Confirmation(
        confirmed=confirmed,
        checks=checks + 1,
        done=confirmed or checks + 1 >= max_checks,
        last_delivery_at=last,
    )


def _record(
    recovery: RecoveryInput,
    execution: str,
    *,
    outcome: str,
    now: datetime,
    results: Sequence[SensorBackfill],
    re_enable_calls: int,
    confirmation: Confirmation | None,
    deferred_sensors: int,
    not_recoverable: str | None,
    error: str | None,
) -> IncidentRecord:
    return IncidentRecord(
        subscription=recovery.subscription,
        provider=recovery.provider,
        event_type=recovery.event_type,
        incident_id=recovery.incident_id,
        execution=execution,
        cause=recovery.cause.value,
        outcome=outcome,
        started_at=recovery.detected_at,
        ended_at=now,
        duration_s=round((now - recovery.detected_at).total_seconds(), 3),
        deliveries_confirmed=confirmation.confirmed if confirmation else None,
        last_delivery_at=confirmation.last_delivery_at if confirmation else None,
        sensors=len(results),
        readings_recovered=sum(result.readings for result in results),
        readings_recovered_per_sensor={result.sensor_id: result.readings for result in results},
        windows_read=sum(result.windows for result in results),
        api_calls=re_enable_calls + sum(result.api_calls for result in results),
        failed_sensors=sorted(result.sensor_id for result in results if result.error),
        deferred_sensors=deferred_sensors,
        not_recoverable=not_recoverable,
        error=error,
    )


def finish(
    recovery: RecoveryInput,
    execution: str,
    *,
    now: datetime,
    results: Sequence[SensorBackfill],
    re_enable_calls: int,
    confirmation: Confirmation | None,
    deferred_sensors: int,
    not_recoverable: str | None,
) -> tuple[IncidentRecord, OutboundEvent]:
    record = _record(
        recovery,
        execution,
        outcome="recovered",
        now=now,
        results=results,
        re_enable_calls=re_enable_calls,
        confirmation=confirmation,
        deferred_sensors=deferred_sensors,
        not_recoverable=not_recoverable,
        error=None,
    )
    return record, OutboundEvent(SUBSCRIPTION_RECOVERED, _event_detail(record))


def give_up(
    recovery: RecoveryInput,
    execution: str,
    *,
    now: datetime,
    error: str,
    re_enable_calls: int,
) -> tuple[IncidentRecord, OutboundEvent]:
    record = _record(
        recovery,
        execution,
        outcome="gave_up",
        now=now,
        results=(),
        re_enable_calls=re_enable_calls,
        confirmation=None,
        deferred_sensors=0,
        not_recoverable=None,
        error=error,
    )
    return record, OutboundEvent(SUBSCRIPTION_DISABLED, _event_detail(record))


def operator_message(record: IncidentRecord) -> dict[str, str]:
    """The SNS notification (subject at most 100 characters, as SNS requires)."""
    subject = f"sensorhook: subscription {record.subscription} disabled, needs an operator"
    message = (
        f"Recovery of subscription {record.subscription} ({record.provider} "
        f"{record.event_type}) gave up after its retries.\n"
        f"Incident {record.incident_id} (cause {record.cause}), started {record.started_at}.\n"
        f"Last error: {record.error}\n"
        "The subscription is marked disabled until an operator clears gave_up_at on its row "
        'in the subscriptions table (docs/recovery.md, "After giving up").'
    )
    return {"subject": subject[:100], "message": message}


def _event_detail(record: IncidentRecord) -> str:
    """The event carries the record without the per-sensor map (kept in the incidents table),
    so its size does not grow with the installation."""
    return record.model_dump_json(exclude={"readings_recovered_per_sensor"})


def results_from_parts(items: Sequence[Mapping[str, Any]]) -> list[SensorBackfill]:
    return [SensorBackfill.model_validate(item) for item in items]
