"""Subscriptions Lambda: on its schedule and once after each deploy, reconcile the declared
webhook subscriptions with the providers'.

Event: anything (a scheduled event, the deploy trigger's empty event); `{"dry_run": true}` plans
without acting. Provider failures are reported in the result, the logs and the ReconcileErrors
metric, not raised: the schedule retries soon enough, and a deploy never fails on them.

`{"recover": {"subscription": ..., "incident_id": ...}}` is the recovery machine's re-enable
step (docs/recovery.md): the same reconcile (this function runs one at a time, so it never
races a scheduled run), then that subscription's outcome; `SubscriptionNotRecovered` is raised
when the provider could not be made right, for the machine's Retry to try again later.
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    import json
    from datetime import timedelta
    from functools import cache
    from typing import Any

    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import BaseModel, ConfigDict

    from sensorhook.core.settings import SubscriptionsSettings, subscriptions_settings
    from sensorhook.dal.api_credentials import ApiCredentials
    from sensorhook.dal.provider_secrets import DsHeaderSecret, V2020SigningKeys
    from sensorhook.dal.recovery_executions import RecoveryExecutions
    from sensorhook.dal.subscriptions_store import GatewayContacts, SubscriptionsStore
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.incidents import DESIRED_SUBSCRIPTIONS, RecoveryStarter
    from sensorhook.logic.subscriptions.callbacks import is_http_loopback
    from sensorhook.logic.subscriptions.plan import DS, V2020
    from sensorhook.logic.subscriptions.reconciler import Reconciler
    from sensorhook.observability import logger, metrics
    from sensorhook.providers.everactive_api import ApiFlavor, EveractiveApi
    from sensorhook.providers.everactive_api.transport import CountingTransport, default_transport


class RecoverRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    subscription: str
    incident_id: str


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    dry_run: bool = False
    recover: RecoverRequest | None = None


def build_reconciler(
    settings: SubscriptionsSettings, transport: CountingTransport | None = None
) -> Reconciler:
    """The reconciler as the Lambda and the dry-run CLI both run it (the CLI starts no
    recoveries)."""
    loopback = is_http_loopback(settings.webhook_base_url)
    states = SubscriptionsStore(settings.subscriptions_table)

    def api(flavor: ApiFlavor, base_url: str, token_url: str, secret_arn: str) -> EveractiveApi:
        return EveractiveApi(
            flavor=flavor,
            base_url=base_url,
            token_url=token_url,
            credentials=ApiCredentials(secret_arn),
            timeout_s=settings.api_timeout_seconds,
            max_attempts=settings.api_max_attempts,
            allow_http_loopback_callbacks=loopback,
            transport=transport,
        )

    return Reconciler(
        desired=DESIRED_SUBSCRIPTIONS.validate_python(json.loads(settings.desired_subscriptions)),
        webhook_base_url=settings.webhook_base_url,
        apis={
            DS: api(
                ApiFlavor.DATA_SERVICES,
                settings.ds_api_base_url,
                settings.ds_api_token_url,
                settings.ds_api_credentials_secret_arn,
            ),
            V2020: api(
                ApiFlavor.V2020_07,
                settings.v2020_api_base_url,
                settings.v2020_api_token_url,
                settings.v2020_api_credentials_secret_arn,
            ),
        },
        ds_headers=DsHeaderSecret(settings.ds_header_secret_arn),
        signing_keys=V2020SigningKeys(settings.v2020_signing_secret_arn),
        states=states,
        contacts=GatewayContacts(settings.gateways_table),
        silent_after=timedelta(seconds=settings.subscription_silent_after_seconds),
        recoveries=RecoveryStarter(RecoveryExecutions(settings.recovery_state_machine_arn), states)
        if transport is not None and settings.recovery_state_machine_arn
        else None,
    )


@cache
def api_calls() -> CountingTransport:
    return CountingTransport(default_transport())


@cache
def reconciler() -> Reconciler:
    """Settings validated and clients created once per execution environment."""
    return build_reconciler(subscriptions_settings(), api_calls())


@parts_built_first(reconciler)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ReconcileRequest.model_validate(event if isinstance(event, dict) else {})
    calls_before = api_calls().requests
    result = reconciler().run(dry_run=request.dry_run)
    summary = result.summary()
    logger.info("subscriptions reconciled", extra={"summary": summary})
    if request.recover is None:
        return summary
    # the recovery machine's step only, not the scheduled runs: the recovery logic imports
    # backfill and the readings, state and gateway stores, ~30 ms of this function's cold start
    from sensorhook.logic.recovery import recovered  # noqa: PLC0415

    outcome = recovered(
        reconciler().states,
        request.recover.subscription,
        request.recover.incident_id,
        api_calls=api_calls().requests - calls_before,
    )
    return outcome.model_dump(mode="json")
