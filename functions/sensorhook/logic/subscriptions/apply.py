"""Carry out a plan in the provider APIs, and keep the receiver's v2020-07 signing secrets
in step with the webhooks it creates and deletes.

Creates and updates go first, deletes last. v2020-07 documents no update, so there an update or
enable replaces the webhook: a new one is created and its generated secret stored where the
receiver reads it, then the old one is deleted and its secret dropped (no gap in deliveries).

A create or update body carries the header secrets, and a provider's error may echo the body
(the seed's example repeats the rejected value in its per-field message): such an error is kept
(logs, summary, `last_error`) as its status, code and field names only (`error_text`).
"""

from collections.abc import Mapping
from contextlib import suppress
from typing import Protocol

from pydantic import SecretStr

from sensorhook.dal.provider_secrets import ProviderSecretUnavailable
from sensorhook.dal.webhook_secrets import SecretUnavailable
from sensorhook.logic.subscriptions.plan import (
    V2020,
    Action,
    ActionKind,
    Plan,
    SubscriptionSpecError,
)
from sensorhook.observability import logger
from sensorhook.providers.everactive_api.models import ApiError, NotFound, Webhook, WebhookSpec


class WebhookApi(Protocol):
    """The part of `sensorhook.providers.everactive_api.EveractiveApi` the reconciler uses."""

    def list_webhooks(self) -> list[Webhook]: ...
    def get_webhook(self, webhook_id: str) -> Webhook: ...
    def create_webhook(self, spec: WebhookSpec) -> Webhook: ...
    def update_webhook(self, webhook_id: str, spec: WebhookSpec) -> Webhook: ...
    def delete_webhook(self, webhook_id: str) -> None: ...


class SigningKeys(Protocol):
    def key_ids(self) -> set[str]: ...
    def store(self, subscription_id: str, secret: SecretStr) -> None: ...
    def drop(self, subscription_id: str) -> None: ...


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


def apply_plan(
    plan: Plan,
    apis: Mapping[str, WebhookApi],  # by provider: everactive-ds, everactive-v2020-07
    signing_keys: SigningKeys,
) -> tuple[tuple[Action, ...], tuple[tuple[Action, str], ...]]:
    """Creates and updates first, deletes last, so a replaced webhook leaves no gap.

    Returns the actions done (a create or replace carries the new webhook id) and those
    that failed, with what may be said about why (`error_text`).
    """
    applied: list[Action] = []
    failed: list[tuple[Action, str]] = []
    ordered = sorted(plan.actions, key=lambda action: action.kind is ActionKind.DELETE)
    for action in ordered:
        try:
            done = _apply(action, apis, signing_keys)
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


def _apply(action: Action, apis: Mapping[str, WebhookApi], signing_keys: SigningKeys) -> Action:
    api = apis[action.provider]
    if action.kind is ActionKind.CREATE:
        return action.model_copy(update={"webhook_id": _create(api, action, signing_keys)})
    if action.webhook_id is None:
        raise SubscriptionSpecError(f"{action.kind} without a webhook id")
    if action.kind is ActionKind.DELETE:
        _delete(api, action.provider, action.webhook_id, signing_keys)
        return action
    if action.replace:
        done = action.model_copy(
            update={
                "webhook_id": _create(api, action, signing_keys),
                "replaced_webhook_id": action.webhook_id,
            }
        )
        try:
            _delete(api, action.provider, action.webhook_id, signing_keys)
        except (ApiError, ProviderSecretUnavailable) as error:  # a delete has no body
            raise ReplacedButNotDeleted(done, str(error)) from error
        return done
    if action.spec is None:
        raise SubscriptionSpecError(f"{action.kind} without a spec")
    api.update_webhook(action.webhook_id, action.spec)
    return action


def _create(api: WebhookApi, action: Action, signing_keys: SigningKeys) -> str:
    """The new webhook's id; for v2020-07 its generated secret is stored first."""
    if action.spec is None:
        raise SubscriptionSpecError(f"{action.kind} without a spec")
    created = api.create_webhook(action.spec)
    if action.provider == V2020:
        if created.secret is None:
            raise SubscriptionSpecError(
                f"the provider returned no signing secret for webhook {created.id}"
            )
        signing_keys.store(created.id, created.secret)
    return created.id


def _delete(api: WebhookApi, provider: str, webhook_id: str, signing_keys: SigningKeys) -> None:
    with suppress(NotFound):  # already gone: the goal is reached
        api.delete_webhook(webhook_id)
    if provider == V2020:
        signing_keys.drop(webhook_id)
