"""Gateway-health Lambda: on its schedule, judge every gateway and sensor, publish the changes.

The scheduled event carries nothing the run needs; the report is returned for the logs and
for whoever invokes it by hand. A readings subscription found silent (the provider's API holds
readings it never delivered, a gateway online) gets a recovery started (logic/incidents.py).
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    from datetime import timedelta
    from functools import cache
    from typing import Any

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sensorhook.core.settings import gateway_health_settings
    from sensorhook.dal.api_credentials import ApiCredentials
    from sensorhook.dal.events import EventPublisher
    from sensorhook.dal.health_store import HealthStore
    from sensorhook.dal.recovery_executions import RecoveryExecutions
    from sensorhook.dal.subscriptions_store import SubscriptionsStore
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.health import HealthMonitor, HealthThresholds
    from sensorhook.logic.incidents import DESIRED_SUBSCRIPTIONS, RecoveryStarter, SilenceRecoveries
    from sensorhook.observability import logger, metrics
    from sensorhook.providers.everactive_api import ApiFlavor, EveractiveApi


@cache
def health_monitor() -> HealthMonitor:
    """Settings validated and clients created once per execution environment."""
    settings = gateway_health_settings()
    api = EveractiveApi(
        flavor=ApiFlavor.DATA_SERVICES,
        base_url=settings.ds_api_base_url,
        token_url=settings.ds_api_token_url,
        credentials=ApiCredentials(settings.ds_api_credentials_secret_arn),
        timeout_s=settings.api_timeout_seconds,
        max_attempts=settings.api_max_attempts,
    )
    return HealthMonitor(
        api,
        HealthStore(settings.gateways_table, settings.sensor_state_table),
        EventPublisher(settings.event_bus_name),
        HealthThresholds(
            gateway_offline_after=timedelta(seconds=settings.gateway_offline_after_seconds),
            sensor_silent_after_periods=settings.sensor_silent_after_periods,
            default_sensor_period_s=settings.default_sensor_period_seconds,
        ),
        silent_providers=SilenceRecoveries(
            DESIRED_SUBSCRIPTIONS.validate_json(settings.desired_subscriptions),
            RecoveryStarter(
                RecoveryExecutions(settings.recovery_state_machine_arn),
                SubscriptionsStore(settings.subscriptions_table),
            ),
        )
        if settings.recovery_state_machine_arn
        else None,
    )


@parts_built_first(health_monitor)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return health_monitor().run().model_dump(mode="json")
