"""Make the subscriptions declared in cdk.json true in the provider, and keep them true.

A run observes (the provider's webhooks, the receiver's secrets, the stored states), plans
(plan.py, a pure function of what was observed), applies the plan (apply.py) and records one
state per declared subscription (record.py); what it did is its result (result.py).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import SecretStr

from sensorhook.core.settings import DesiredSubscription
from sensorhook.dal.provider_secrets import ProviderSecretUnavailable
from sensorhook.dal.subscriptions_store import SubscriptionState
from sensorhook.dal.webhook_secrets import SecretUnavailable
from sensorhook.logic.incidents import RecoveryStarter
from sensorhook.logic.subscriptions.apply import SigningKeys, WebhookApi, apply_plan
from sensorhook.logic.subscriptions.callbacks import points_at
from sensorhook.logic.subscriptions.plan import (
    DS,
    EFENTO,
    V2020,
    Action,
    ActionKind,
    ManualSubscription,
    Plan,
    SubscriptionSpecError,
    plan_webhooks,
    webhook_spec,
)
from sensorhook.logic.subscriptions.record import ContactsSource, StateStore, record_states
from sensorhook.logic.subscriptions.result import ReconcileResult
from sensorhook.observability import logger, metrics
from sensorhook.providers.everactive_api.models import ApiError, NotFound, Webhook, WebhookSpec

# APIs that document no webhook update: a drifted webhook is replaced (create, then delete).
_REPLACED_NOT_UPDATED = {V2020}


class HeaderSource(Protocol):
    def current_headers(self) -> dict[str, SecretStr]: ...


# EMF metrics (namespace sensorhook): actions applied per run by kind, and errors per run.
ACTION_METRICS = {
    ActionKind.CREATE: "SubscriptionsCreated",
    ActionKind.UPDATE: "SubscriptionsUpdated",
    ActionKind.ENABLE: "SubscriptionsReEnabled",
    ActionKind.DELETE: "SubscriptionsDeleted",
}
RECONCILE_ERRORS_METRIC = "ReconcileErrors"


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
        applied, failed = apply_plan(plan, self.apis, self.signing_keys)
        result = ReconcileResult(dry_run=False, plan=plan, applied=applied, failed=failed)
        silent = record_states(
            result,
            states,
            desired=self.desired,
            webhook_base_url=self.webhook_base_url,
            store=self.states,
            gateway_contacts=self.contacts,
            silent_after=self.silent_after,
            now=self.clock(),
            recoveries=self.recoveries,
        )
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


def _any(webhook: Webhook) -> bool:
    return True


def _holds_key(key_ids: set[str]) -> Callable[[Webhook], bool]:
    """v2020-07: a webhook is usable only if the receiver holds its signing secret."""
    return lambda webhook: webhook.id in key_ids
