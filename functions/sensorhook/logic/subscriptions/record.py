"""After a run, one state per declared subscription in the subscriptions table: its webhook,
status, newest event and whether it is silent; a status that calls for a recovery opens or
continues its incident (logic/incidents.py). Rows of subscriptions no longer declared go."""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sensorhook.core.settings import DesiredSubscription
from sensorhook.dal.subscriptions_store import (
    ProviderContacts,
    SubscriptionState,
    SubscriptionStatus,
)
from sensorhook.logic.incidents import RecoveryStarter, reconciled_incident
from sensorhook.logic.subscriptions.plan import DS, EFENTO, V2020, Action, ActionKind, action_key
from sensorhook.logic.subscriptions.result import ReconcileResult
from sensorhook.observability import logger

# The gateways table's provider names (core.flavors.Flavor.provider).
_GATEWAYS_PROVIDER = {DS: "everactive", V2020: "everactive", EFENTO: "efento"}
# Steam-trap state changes are rare by nature: their absence says nothing about the subscription.
_NEVER_SILENT = {V2020}


class StateStore(Protocol):
    def all(self) -> dict[str, SubscriptionState]: ...
    def put(self, state: SubscriptionState) -> None: ...
    def delete(self, name: str) -> None: ...


class ContactsSource(Protocol):
    def by_provider(self) -> dict[str, ProviderContacts]: ...


def record_states(
    result: ReconcileResult,
    states: Mapping[str, SubscriptionState],
    *,
    desired: Sequence[DesiredSubscription],
    webhook_base_url: str,
    store: StateStore,
    gateway_contacts: ContactsSource,
    silent_after: timedelta,
    now: datetime,
    recoveries: RecoveryStarter | None,  # None: detect and record only
) -> int:
    """Store each declared subscription's state (`states`: those read before the run's plan);
    returns how many are silent."""
    silent = 0
    contacts = gateway_contacts.by_provider()
    failed = {action_key(action): error for action, error in result.failed}
    # a replace whose old webhook could not be deleted: its new webhook is the one to keep
    replaced = {
        action.subscription: action.webhook_id
        for action, _ in result.failed
        if action.subscription and action.replaced_webhook_id
    }
    done = {action.subscription: action for action in result.applied if action.subscription}
    for subscription in desired:
        previous = states.get(subscription.name)
        action = done.get(subscription.name)
        error = result.plan.errors.get(subscription.name) or failed.get(subscription.name)
        if action is not None:
            provider_id = action.webhook_id
        elif subscription.name in result.plan.unchanged:
            provider_id = result.plan.unchanged[subscription.name]
        elif subscription.name in replaced:
            provider_id = replaced[subscription.name]
        else:
            provider_id = previous.provider_id if previous else None
        last_event_at = _last_event(subscription, contacts)
        active_since = (
            previous.active_since
            if previous is not None and previous.provider_id == provider_id
            else None
        ) or now
        status = _status(subscription, action, error)
        if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.MANUAL) and _silent(
            subscription, contacts, last_event_at or active_since, now, silent_after
        ):
            status = SubscriptionStatus.SILENT
            silent += 1
            logger.warning(
                "subscription silent",
                extra={"subscription": subscription.name, "last_event_at": last_event_at},
            )
        incident = reconciled_incident(
            subscription,
            status,
            recreated=action is not None
            and action.kind is ActionKind.CREATE
            and previous is not None
            and previous.provider_id is not None,
            previous=previous,
            now=now,
        )
        store.put(
            SubscriptionState(
                name=subscription.name,
                provider=subscription.provider,
                event_type=subscription.event_type,
                callback_url=subscription.callback_url(webhook_base_url),
                provider_id=provider_id,
                last_reconciled_at=now,
                active_since=active_since,
                last_event_at=last_event_at,
                last_error=error,
                status=incident.status,
            )
        )
        if incident.recovery is not None and recoveries is not None:
            if incident.new:
                recoveries.open_and_start(incident.recovery)
            else:
                recoveries.start(incident.recovery)
    declared = {subscription.name for subscription in desired}
    for name, state in states.items():
        # kept while its provider could not be reached: the row remembers the webhook id
        if name not in declared and state.provider not in result.plan.errors:
            store.delete(name)
    return silent


def _status(
    subscription: DesiredSubscription, action: Action | None, error: str | None
) -> SubscriptionStatus:
    if subscription.provider == EFENTO:
        return SubscriptionStatus.MANUAL
    if error is not None:
        return SubscriptionStatus.ERROR
    if not subscription.enabled:
        return SubscriptionStatus.DISABLED
    if action is not None and action.kind is ActionKind.ENABLE:
        return SubscriptionStatus.RE_ENABLED
    return SubscriptionStatus.ACTIVE


def _last_event(
    subscription: DesiredSubscription, contacts: Mapping[str, ProviderContacts]
) -> datetime | None:
    """Newest event of the subscription's kind, from the gateways table (the processor keeps
    `last_reading_at` per gateway and `reported_at` per status report)."""
    known = contacts.get(_GATEWAYS_PROVIDER[subscription.provider])
    if known is None or subscription.provider == V2020:
        return None
    if subscription.event_type == "gateway_status":
        return known.last_status_at
    return known.last_reading_at


def _silent(
    subscription: DesiredSubscription,
    contacts: Mapping[str, ProviderContacts],
    since: datetime,
    now: datetime,
    silent_after: timedelta,
) -> bool:
    """No event for `silent_after` while the provider's gateways are online: the provider is
    not sending, although there is something to send."""
    if subscription.provider in _NEVER_SILENT or not subscription.enabled:
        return False
    known = contacts.get(_GATEWAYS_PROVIDER[subscription.provider])
    return known is not None and known.gateways_online > 0 and now - since > silent_after
