"""What a run will change in the providers: a pure function of what the run observed.

The rules (`plan_webhooks`, one provider API at a time):

- a declared subscription matches a provider webhook with the same callback URL and event type
  (for v2020-07, only one whose signing secret the receiver holds: a webhook it cannot verify
  is useless); failing that, the webhook it was matched to last time (URL or event type drift);
- the match is updated when its URL, event type, headers or enabled flag drifted (a re-enable
  alone is `enable`); no match is `create`. v2020-07 documents no update, so there an update or
  enable is planned as a replacement (`replace`, carried out in apply.py);
- every other webhook whose callback points at this deployment is stale and deleted, including
  extra copies of a matched one; webhooks pointing anywhere else are left alone;
- so a second run right after the first plans nothing, and nothing is ever created twice.

Efento has no API for webhooks: its subscriptions are reported as manual, with the URL and the
header names to configure in Efento Cloud (never the values).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from sensorhook.core.settings import DesiredSubscription
from sensorhook.logic.subscriptions.callbacks import normalized_url, points_at
from sensorhook.providers.everactive_api.models import Webhook, WebhookHeader, WebhookSpec

DS = "everactive-ds"
V2020 = "everactive-v2020-07"
EFENTO = "efento"


class ActionKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ENABLE = "enable"
    DELETE = "delete"


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


class SubscriptionSpecError(ValueError):
    """A declared subscription cannot be turned into a webhook body (e.g. headers missing)."""


def action_key(action: Action) -> str:
    """What an action's outcome is reported under: its subscription, else the stale webhook."""
    return action.subscription or f"{action.provider}:{action.webhook_id}"


def _header_map(headers: Sequence[WebhookHeader]) -> dict[str, str]:
    return {header.key.lower(): header.value.get_secret_value() for header in headers}


def drift(webhook: Webhook, spec: WebhookSpec) -> tuple[str, ...]:
    """What differs between a provider webhook and what it should be."""
    changes = []
    if normalized_url(webhook.callback_url) != normalized_url(spec.callback_url):
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
            and normalized_url(webhook.callback_url) == normalized_url(callback_url)
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
