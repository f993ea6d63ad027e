"""Make the subscriptions declared in cdk.json true in the provider, and keep them true.

A run observes (the provider's webhooks, the receiver's secrets, the stored states), plans
(`plan_webhooks`, a pure function of what was observed), applies the plan and records one state
per declared subscription. The plan's rules:

- a declared subscription matches a provider webhook with the same callback URL and event type
  (for v2020-07, only one whose signing secret the receiver holds: a webhook it cannot verify
  is useless); failing that, the webhook it was matched to last time (URL or event type drift);
- the match is updated when its URL, event type, headers or enabled flag drifted (a re-enable
  alone is `enable`); no match is `create`. v2020-07 documents no update, so there an update or
  enable replaces the webhook: a new one is created and its generated secret stored where the
  receiver reads it, then the old one is deleted and its secret dropped (no gap in deliveries);
- every other webhook whose callback points at this deployment is stale and deleted, including
  extra copies of a matched one; webhooks pointing anywhere else are left alone;
- so a second run right after the first plans nothing, and nothing is ever created twice.

Efento has no API for webhooks: its subscriptions are reported as manual, with the URL and the
header names to configure in Efento Cloud (never the values).

A create or update body carries the header secrets, and a provider's error may echo the body
(the seed's example repeats the rejected value in its per-field message): such an error is kept
(logs, summary, `last_error`) as its status, code and field names only (`error_text`).
"""

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, SecretStr

from sensorhook.core.settings import DesiredSubscription
from sensorhook.dal.provider_secrets import ProviderSecretUnavailable
from sensorhook.dal.subscriptions_store import (
    ProviderContacts,
    SubscriptionState,
    SubscriptionStatus,
)
from sensorhook.dal.webhook_secrets import SecretUnavailable
from sensorhook.logic.incidents import RecoveryStarter, reconciled_incident
from sensorhook.observability import logger, metrics
from sensorhook.providers.everactive_api.models import (
    ApiError,
    NotFound,
    Webhook,
    WebhookHeader,
    WebhookSpec,
)

DS = "everactive-ds"
V2020 = "everactive-v2020-07"
EFENTO = "efento"
# The gateways table's provider names (core.flavors.Flavor.provider).
_GATEWAYS_PROVIDER = {DS: "everactive", V2020: "everactive", EFENTO: "efento"}
# Steam-trap state changes are rare by nature: their absence says nothing about the subscription.
_NEVER_SILENT = {V2020}
# APIs that document no webhook update: a drifted webhook is replaced (create, then delete).
_REPLACED_NOT_UPDATED = {V2020}


class WebhookApi(Protocol):
    """The part of `sensorhook.providers.everactive_api.EveractiveApi` the reconciler uses."""

    def list_webhooks(self) -> list[Webhook]: ...
    def get_webhook(self, webhook_id: str) -> Webhook: ...
    def create_webhook(self, spec: WebhookSpec) -> Webhook: ...
    def update_webhook(self, webhook_id: str, spec: WebhookSpec) -> Webhook: ...
    def delete_webhook(self, webhook_id: str) -> None: ...


class HeaderSource(Protocol):
    def current_headers(self) -> dict[str, SecretStr]: ...


class SigningKeys(Protocol):
    def key_ids(self) -> set[str]: ...
    def store(self, subscription_id: str, secret: SecretStr) -> None: ...
    def drop(self, subscription_id: str) -> None: ...


class StateStore(Protocol):
    def all(self) -> dict[str, SubscriptionState]: ...
    def put(self, state: SubscriptionState) -> None: ...
    def delete(self, name: str) -> None: ...


class ContactsSource(Protocol):
    def by_provider(self) -> dict[str, ProviderContacts]: ...


class ActionKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ENABLE = "enable"
    DELETE = "delete"


# EMF metrics (namespace sensorhook): actions applied per run by kind, and errors per run.
ACTION_METRICS = {
    ActionKind.CREATE: "SubscriptionsCreated",
    ActionKind.UPDATE: "SubscriptionsUpdated",
    ActionKind.ENABLE: "SubscriptionsReEnabled",
    ActionKind.DELETE: "SubscriptionsDeleted",
}
RECONCILE_ERRORS_METRIC = "ReconcileErrors"


class Action(BaseModel):
    """One change to make in the provider. `subscription` is None for a stale webhook."""

    model_config = ConfigDict(frozen=True)

    kind: ActionKind
    provider: str
    subscription: str | None = None
    webhook_id: str | None = None  # None only for create
    spec: WebhookSpec | None = None  # None only for delete
    changes: tuple[str, ...] = ()  # what drifted: callback_url, event_type, headers, enabled
    callback_url: str | None = None
    replace: bool = False  # update or enable done as create + delete (v2020-07)
    replaced_webhook_id: str | None = None  # once a replace is applied: the webhook it replaced

    def describe(self) -> dict[str, Any]:
        """The action for logs and the dry-run printout: header names, never their values."""
        described: dict[str, Any] = {"kind": self.kind.value, "provider": self.provider}
        if self.subscription:
            described["subscription"] = self.subscription
        if self.webhook_id:
            described["webhook_id"] = self.webhook_id
        if self.spec is not None:
            described |= {
                "callback_url": self.spec.callback_url,
                "event_type": self.spec.event_type,
                "enabled": self.spec.enabled,
                "header_names": [header.key for header in self.spec.headers],
            }
        elif self.callback_url:
            described["callback_url"] = self.callback_url
        if self.changes:
            described["changes"] = list(self.changes)
        if self.replace:
            described["replace"] = True
        if self.replaced_webhook_id:
            described["replaced_webhook_id"] = self.replaced_webhook_id
        return described


class ManualSubscription(BaseModel):
    """What an operator configures by hand (Efento Cloud: Settings -> Webhooks)."""

    model_config = ConfigDict(frozen=True)

    subscription: str
    callback_url: str
    header_names: tuple[str, ...]


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    actions: tuple[Action, ...] = ()
    unchanged: dict[str, str] = {}  # subscription -> webhook id
    left_alone: tuple[str, ...] = ()  # ids of webhooks that do not point at this deployment
    manual: tuple[ManualSubscription, ...] = ()
    errors: dict[str, str] = {}  # subscription (or provider) -> why it could not be planned

    def describe(self) -> dict[str, Any]:
        return {
            "actions": [action.describe() for action in self.actions],
            "unchanged": self.unchanged,
            "left_alone": list(self.left_alone),
            "manual": [entry.model_dump(mode="json") for entry in self.manual],
            "errors": self.errors,
        }


class ReconcileResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    dry_run: bool
    plan: Plan
    applied: tuple[Action, ...] = ()
    failed: tuple[tuple[Action, str], ...] = ()

    @property
    def error_count(self) -> int:
        return len(self.plan.errors) + len(self.failed)

    def summary(self) -> dict[str, Any]:
        """Counts by action kind, and what went wrong (no secret ever reaches these strings)."""
        done = self.plan.actions if self.dry_run else self.applied
        return {
            "dry_run": self.dry_run,
            "planned": {
                kind.value: sum(a.kind is kind for a in self.plan.actions) for kind in ActionKind
            },
            "applied": {kind.value: sum(a.kind is kind for a in done) for kind in ActionKind}
            if not self.dry_run
            else {},
            "unchanged": len(self.plan.unchanged),
            "manual": len(self.plan.manual),
            "errors": {
                **self.plan.errors,
                **{_action_key(action): error for action, error in self.failed},
            },
            "plan": self.plan.describe(),
        }


class SubscriptionSpecError(ValueError):
    """A declared subscription cannot be turned into a webhook body (e.g. headers missing)."""


class ReplacedButNotDeleted(Exception):
    """A replace created the new webhook (and stored its secret) but could not delete the old
    one: `done` carries the new id, which must be remembered so the next run keeps it."""

    def __init__(self, done: Action, reason: str) -> None:
        super().__init__(reason)
        self.done = done
        self.reason = reason


def error_text(error: Exception, *, body_holds_secrets: bool) -> str:
    """What may be said about a failed call in logs, the summary and the subscriptions table.

    A provider error for a call whose body holds secrets (create, update) keeps only its status,
    code and the names of the fields at fault: its messages may echo the values sent.
    """
    if not body_holds_secrets or not isinstance(error, ApiError):
        return str(error)
    status = error.status if error.status is not None else "no response"
    fields = sorted({entry.field for entry in error.errors if entry.field})
    return f"{status} {error.code or 'error'}" + (
        f" (fields: {', '.join(fields)})" if fields else ""
    )


def _action_key(action: Action) -> str:
    return action.subscription or f"{action.provider}:{action.webhook_id}"


def _normalized_url(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def points_at(url: str | None, webhook_base_url: str) -> bool:
    """Does a callback URL lead to this deployment (its HTTP API, under any route)?"""
    return _normalized_url(url).startswith(_normalized_url(webhook_base_url) + "/")


def _header_map(headers: Sequence[WebhookHeader]) -> dict[str, str]:
    return {header.key.lower(): header.value.get_secret_value() for header in headers}


def drift(webhook: Webhook, spec: WebhookSpec) -> tuple[str, ...]:
    """What differs between a provider webhook and what it should be."""
    changes = []
    if _normalized_url(webhook.callback_url) != _normalized_url(spec.callback_url):
        changes.append("callback_url")
    if webhook.event_type != spec.event_type:
        changes.append("event_type")
    if _header_map(webhook.headers) != _header_map(spec.headers):
        changes.append("headers")
    if webhook.enabled != spec.enabled:
        changes.append("enabled")
    return tuple(changes)


@dataclass(frozen=True)
class WebhookPlan:
    actions: list[Action] = field(default_factory=list)
    unchanged: dict[str, str] = field(default_factory=dict)
    left_alone: list[str] = field(default_factory=list)


def plan_webhooks(
    provider: str,
    desired: Sequence[tuple[DesiredSubscription, WebhookSpec | None]],
    actual: Sequence[Webhook],
    *,
    webhook_base_url: str,
    known_ids: Mapping[str, str],
    usable: Callable[[Webhook], bool] = lambda webhook: True,
    can_update: bool = True,
) -> WebhookPlan:
    """The actions that make one provider API's webhooks what `desired` declares.

    A desired entry whose spec is None (it could not be built this run) plans nothing but still
    claims its webhook, so an unreadable secret never gets a working subscription deleted.
    `known_ids` maps a subscription to the webhook it was matched to last run. Without
    `can_update`, updates and enables are planned as replacements.
    """
    result = WebhookPlan()
    by_id = {webhook.id: webhook for webhook in actual}
    claimed: set[str] = set()
    for subscription, spec in sorted(desired, key=lambda entry: entry[0].name):
        callback_url = subscription.callback_url(webhook_base_url)
        candidates = [
            webhook
            for webhook in actual
            if webhook.id not in claimed
            and _normalized_url(webhook.callback_url) == _normalized_url(callback_url)
            and webhook.event_type == subscription.event_type
            and usable(webhook)
        ]
        previous = by_id.get(known_ids.get(subscription.name, ""))
        if (
            not candidates
            and previous is not None
            and previous.id not in claimed
            and usable(previous)
        ):
            candidates = [previous]
        if spec is None:
            claimed.update(webhook.id for webhook in candidates)
            continue
        if not candidates:
            result.actions.append(
                Action(
                    kind=ActionKind.CREATE,
                    provider=provider,
                    subscription=subscription.name,
                    spec=spec,
                )
            )
            continue
        keep = min(
            candidates,
            key=lambda webhook: (
                webhook.id != (previous.id if previous else None),
                bool(drift(webhook, spec)),
                not webhook.enabled,
                webhook.id,
            ),
        )
        claimed.add(keep.id)
        changes = drift(keep, spec)
        if not changes:
            result.unchanged[subscription.name] = keep.id
            continue
        kind = ActionKind.ENABLE if changes == ("enabled",) and spec.enabled else ActionKind.UPDATE
        result.actions.append(
            Action(
                kind=kind,
                provider=provider,
                subscription=subscription.name,
                webhook_id=keep.id,
                spec=spec,
                changes=changes,
                replace=not can_update,
            )
        )
    for webhook in actual:
        if webhook.id in claimed:
            continue
        if points_at(webhook.callback_url, webhook_base_url):
            result.actions.append(
                Action(
                    kind=ActionKind.DELETE,
                    provider=provider,
                    webhook_id=webhook.id,
                    callback_url=webhook.callback_url,
                )
            )
        else:
            result.left_alone.append(webhook.id)
    return result


def webhook_spec(
    subscription: DesiredSubscription, webhook_base_url: str, headers: Mapping[str, SecretStr]
) -> WebhookSpec:
    """The webhook body a subscription calls for, with the receiver's current header values.

    Raises SubscriptionSpecError when the secret's header names differ from the declared ones.
    """
    if subscription.header_names:
        declared = {name.lower() for name in subscription.header_names}
        held = {name.lower() for name in headers}
        if declared != held:
            raise SubscriptionSpecError(
                f"the header secret holds {sorted(held)}, the subscription declares "
                f"{sorted(declared)}"
            )
    if subscription.provider == DS and not headers:
        raise SubscriptionSpecError("the header secret holds no headers")
    return WebhookSpec(
        callback_url=subscription.callback_url(webhook_base_url),
        event_type=subscription.event_type,
        enabled=subscription.enabled,
        headers=[WebhookHeader(key=name, value=value) for name, value in sorted(headers.items())],
    )


@dataclass
class Reconciler:
    desired: Sequence[DesiredSubscription]
    webhook_base_url: str
    apis: Mapping[str, WebhookApi]  # by provider: everactive-ds, everactive-v2020-07
    ds_headers: HeaderSource
    signing_keys: SigningKeys
    states: StateStore
    contacts: ContactsSource
    silent_after: timedelta
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # starts a recovery per incident (logic/incidents.py); None: detect and record only
    recoveries: RecoveryStarter | None = None

    def run(self, *, dry_run: bool = False) -> ReconcileResult:
        """Plan and, unless `dry_run`, apply and record. A dry run writes nothing anywhere."""
        states = self.states.all()
        plan = self.plan(states)
        if dry_run:
            return ReconcileResult(dry_run=True, plan=plan)
        applied, failed = self.apply(plan)
        result = ReconcileResult(dry_run=False, plan=plan, applied=applied, failed=failed)
        silent = self._record(result, states)
        for kind, metric in ACTION_METRICS.items():
            metrics.add_metric(
                name=metric,
                unit=MetricUnit.Count,
                value=sum(action.kind is kind for action in applied),
            )
        metrics.add_metric(name="SubscriptionsSilent", unit=MetricUnit.Count, value=silent)
        metrics.add_metric(
            name=RECONCILE_ERRORS_METRIC, unit=MetricUnit.Count, value=result.error_count
        )
        return result

    def plan(self, states: Mapping[str, SubscriptionState]) -> Plan:
        actions: list[Action] = []
        unchanged: dict[str, str] = {}
        left_alone: list[str] = []
        errors: dict[str, str] = {}
        known_ids = {name: state.provider_id for name, state in states.items() if state.provider_id}
        # an API is called only when something is or was declared on it
        providers = sorted(
            {s.provider for s in self.desired if s.provider in self.apis}
            | {s.provider for s in states.values() if s.provider in self.apis and s.provider_id}
        )
        for provider in providers:
            subscriptions = [s for s in self.desired if s.provider == provider]
            try:
                specs = self._specs(subscriptions, errors)
                key_ids = self.signing_keys.key_ids() if provider == V2020 else None
                actual = self._observe(self.apis[provider], known_ids)
            except (ApiError, ProviderSecretUnavailable, SecretUnavailable) as error:
                logger.warning(
                    "provider not reconciled", extra={"provider": provider, "error": str(error)}
                )
                for subscription in subscriptions:
                    errors.setdefault(subscription.name, str(error))
                if not subscriptions:
                    errors[provider] = str(error)
                continue
            planned = plan_webhooks(
                provider,
                [(s, specs.get(s.name)) for s in subscriptions],
                actual,
                webhook_base_url=self.webhook_base_url,
                known_ids=known_ids,
                usable=_any if key_ids is None else _holds_key(key_ids),
                can_update=provider not in _REPLACED_NOT_UPDATED,
            )
            actions += planned.actions
            unchanged |= planned.unchanged
            left_alone += planned.left_alone
        manual = tuple(
            ManualSubscription(
                subscription=s.name,
                callback_url=s.callback_url(self.webhook_base_url),
                header_names=s.header_names,
            )
            for s in self.desired
            if s.provider == EFENTO
        )
        return Plan(
            actions=tuple(actions),
            unchanged=unchanged,
            left_alone=tuple(left_alone),
            manual=manual,
            errors=errors,
        )

    def apply(self, plan: Plan) -> tuple[tuple[Action, ...], tuple[tuple[Action, str], ...]]:
        """Creates and updates first, deletes last, so a replaced webhook leaves no gap.

        Returns the actions done (a create or replace carries the new webhook id) and those
        that failed, with what may be said about why (`error_text`).
        """
        applied: list[Action] = []
        failed: list[tuple[Action, str]] = []
        ordered = sorted(plan.actions, key=lambda action: action.kind is ActionKind.DELETE)
        for action in ordered:
            try:
                done = self._apply(action)
            except ReplacedButNotDeleted as partial:
                failure = (partial.done, partial.reason)
            # ValueError: a body the client refuses before sending (InvalidWebhookSpec)
            except (ApiError, ProviderSecretUnavailable, SecretUnavailable, ValueError) as error:
                failure = (
                    action,
                    error_text(error, body_holds_secrets=action.kind is not ActionKind.DELETE),
                )
            else:
                logger.info("subscription action applied", extra={"action": done.describe()})
                applied.append(done)
                continue
            logger.error(
                "subscription action failed",
                extra={"action": failure[0].describe(), "error": failure[1]},
            )
            failed.append(failure)
        return tuple(applied), tuple(failed)

    def _apply(self, action: Action) -> Action:
        api = self.apis[action.provider]
        if action.kind is ActionKind.CREATE:
            return action.model_copy(update={"webhook_id": self._create(api, action)})
        if action.webhook_id is None:
            raise SubscriptionSpecError(f"{action.kind} without a webhook id")
        if action.kind is ActionKind.DELETE:
            self._delete(api, action.provider, action.webhook_id)
            return action
        if action.replace:
            done = action.model_copy(
                update={
                    "webhook_id": self._create(api, action),
                    "replaced_webhook_id": action.webhook_id,
                }
            )
            try:
                self._delete(api, action.provider, action.webhook_id)
            except (ApiError, ProviderSecretUnavailable) as error:  # a delete has no body
                raise ReplacedButNotDeleted(done, str(error)) from error
            return done
        if action.spec is None:
            raise SubscriptionSpecError(f"{action.kind} without a spec")
        api.update_webhook(action.webhook_id, action.spec)
        return action

    def _create(self, api: WebhookApi, action: Action) -> str:
        """The new webhook's id; for v2020-07 its generated secret is stored first."""
        if action.spec is None:
            raise SubscriptionSpecError(f"{action.kind} without a spec")
        created = api.create_webhook(action.spec)
        if action.provider == V2020:
            if created.secret is None:
                raise SubscriptionSpecError(
                    f"the provider returned no signing secret for webhook {created.id}"
                )
            self.signing_keys.store(created.id, created.secret)
        return created.id

    def _delete(self, api: WebhookApi, provider: str, webhook_id: str) -> None:
        with suppress(NotFound):  # already gone: the goal is reached
            api.delete_webhook(webhook_id)
        if provider == V2020:
            self.signing_keys.drop(webhook_id)

    def _specs(
        self, subscriptions: Sequence[DesiredSubscription], errors: dict[str, str]
    ) -> dict[str, WebhookSpec]:
        """Each subscription's webhook body; per-subscription problems go to `errors`."""
        needs_headers = any(s.provider == DS for s in subscriptions)
        headers = self.ds_headers.current_headers() if needs_headers else {}
        specs: dict[str, WebhookSpec] = {}
        for subscription in subscriptions:
            own_headers = headers if subscription.provider == DS else {}
            try:
                specs[subscription.name] = webhook_spec(
                    subscription, self.webhook_base_url, own_headers
                )
            except (SubscriptionSpecError, ValueError) as error:
                errors[subscription.name] = str(error)
        return specs

    def _observe(self, api: WebhookApi, known_ids: Mapping[str, str]) -> list[Webhook]:
        """The provider's webhooks; those that may be ours are read one by one, because the
        Data Services list carries no headers (only `GET /webhook/{id}` does)."""
        known = set(known_ids.values())
        observed: list[Webhook] = []
        for listed in api.list_webhooks():
            if listed.id in known or points_at(listed.callback_url, self.webhook_base_url):
                try:
                    observed.append(api.get_webhook(listed.id))
                except NotFound:
                    continue  # deleted between the list and the read
            else:
                observed.append(listed)
        return observed

    def _record(self, result: ReconcileResult, states: Mapping[str, SubscriptionState]) -> int:
        """Store each declared subscription's state; returns how many are silent."""
        now = self.clock()
        silent = 0
        contacts = self.contacts.by_provider()
        failed = {_action_key(action): error for action, error in result.failed}
        # a replace whose old webhook could not be deleted: its new webhook is the one to keep
        replaced = {
            action.subscription: action.webhook_id
            for action, _ in result.failed
            if action.subscription and action.replaced_webhook_id
        }
        done = {action.subscription: action for action in result.applied if action.subscription}
        for subscription in self.desired:
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
                subscription, contacts, last_event_at or active_since, now, self.silent_after
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
            self.states.put(
                SubscriptionState(
                    name=subscription.name,
                    provider=subscription.provider,
                    event_type=subscription.event_type,
                    callback_url=subscription.callback_url(self.webhook_base_url),
                    provider_id=provider_id,
                    last_reconciled_at=now,
                    active_since=active_since,
                    last_event_at=last_event_at,
                    last_error=error,
                    status=incident.status,
                )
            )
            if incident.recovery is not None and self.recoveries is not None:
                if incident.new:
                    self.recoveries.open_and_start(incident.recovery)
                else:
                    self.recoveries.start(incident.recovery)
        declared = {subscription.name for subscription in self.desired}
        for name, state in states.items():
            # kept while its provider could not be reached: the row remembers the webhook id
            if name not in declared and state.provider not in result.plan.errors:
                self.states.delete(name)
        return silent


def _any(webhook: Webhook) -> bool:
    return True


def _holds_key(key_ids: set[str]) -> Callable[[Webhook], bool]:
    """v2020-07: a webhook is usable only if the receiver holds its signing secret."""
    return lambda webhook: webhook.id in key_ids


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
