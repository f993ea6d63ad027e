"""Recovery Lambda: the recovery state machine's tasks (docs/recovery.md), one per `task`.

Every task gets `{"task", "execution", "state"}` (the execution's name and its state so far)
or, in the backfill Map, `{"task": "backfill", "execution", "gap"}`; it returns the step's
result, which the machine keeps under its own path. Errors are raised for the machine's Retry
and Catch: `ProviderUnavailable`, `RateLimited`, `TransportError`… by their class names.
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    from dataclasses import dataclass
    from datetime import UTC, datetime
    from functools import cache
    from typing import Any, Literal

    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import BaseModel, ConfigDict

    from sensorhook.core.settings import RecoverySettings, recovery_settings
    from sensorhook.dal.api_credentials import ApiCredentials
    from sensorhook.dal.aws_clients import sqs_client
    from sensorhook.dal.events import EventPublisher
    from sensorhook.dal.health_store import HealthStore
    from sensorhook.dal.incidents_store import SENSOR_PART_PREFIX, SUMMARY_PART, IncidentsStore
    from sensorhook.dal.queue import IngestQueue
    from sensorhook.dal.readings_store import ReadingsStore
    from sensorhook.dal.subscriptions_store import GatewayContacts, SubscriptionsStore
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.backfill import (
        DS_PROVIDER,
        BackfillPlan,
        SensorBackfill,
        SensorGap,
        backfill_sensor,
        plan_backfill,
    )
    from sensorhook.logic.incidents import RecoveryInput
    from sensorhook.logic.recovery import (
        Confirmation,
        ReEnabled,
        confirm_deliveries,
        finish,
        give_up,
        operator_message,
        results_from_parts,
    )
    from sensorhook.observability import logger, metrics
    from sensorhook.providers.everactive_api import ApiFlavor, EveractiveApi
    from sensorhook.providers.everactive_api.models import ApiError
    from sensorhook.providers.everactive_api.transport import (
        CountingTransport,
        TransportError,
        default_transport,
    )


class MachineState(RecoveryInput):
    """The execution's state: its input and what the steps so far added."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    reenabled: ReEnabled | None = None
    confirmation: Confirmation | None = None
    plan: BackfillPlan | None = None
    error: dict[str, Any] | None = None  # a Catch's {"Error", "Cause"}


class TaskRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Literal["confirm", "plan", "backfill", "finish", "give_up"]
    execution: str
    state: MachineState | None = None
    gap: SensorGap | None = None
    max_checks: int = 1


@dataclass(frozen=True)
class Recovery:
    settings: RecoverySettings
    incidents: IncidentsStore
    subscriptions: SubscriptionsStore
    contacts: GatewayContacts
    health: HealthStore
    readings: ReadingsStore
    queue: IngestQueue
    events: EventPublisher
    api: EveractiveApi
    api_calls: CountingTransport


@cache
def recovery() -> Recovery:
    settings = recovery_settings()
    calls = CountingTransport(default_transport())
    return Recovery(
        settings=settings,
        incidents=IncidentsStore(settings.incidents_table),
        subscriptions=SubscriptionsStore(settings.subscriptions_table),
        contacts=GatewayContacts(settings.gateways_table),
        health=HealthStore(settings.gateways_table, settings.sensor_state_table),
        readings=ReadingsStore(settings.readings_table),
        queue=IngestQueue(settings.ingest_queue_url, client=sqs_client()),
        events=EventPublisher(settings.event_bus_name),
        api=EveractiveApi(
            flavor=ApiFlavor.DATA_SERVICES,
            base_url=settings.ds_api_base_url,
            token_url=settings.ds_api_token_url,
            credentials=ApiCredentials(settings.ds_api_credentials_secret_arn),
            timeout_s=settings.api_timeout_seconds,
            max_attempts=settings.api_max_attempts,
            transport=calls,
        ),
        api_calls=calls,
    )


def _state(request: TaskRequest) -> MachineState:
    if request.state is None:
        raise ValueError(f"task {request.task} needs the execution state")
    return request.state


def _backfill(parts: Recovery, request: TaskRequest) -> dict[str, Any]:
    if request.gap is None:
        raise ValueError("task backfill needs a gap")
    gap = request.gap
    part = SENSOR_PART_PREFIX + gap.sensor_id
    before = parts.api_calls.requests
    try:
        result = backfill_sensor(
            gap,
            parts.api,
            parts.queue,
            window_s=parts.settings.backfill_window_seconds,
            request_id=f"recovery:{request.execution}",
            clock=lambda: datetime.now(UTC),
        )
    except Exception as error:
        # recorded before the machine's Retry: if every attempt fails, the record says why
        parts.incidents.record_sensor(
            request.execution,
            part,
            SensorBackfill(
                sensor_id=gap.sensor_id, start=gap.start, end=gap.end, error=repr(error)
            ),
            api_calls=parts.api_calls.requests - before,
        )
        raise
    parts.incidents.record_sensor(
        request.execution, part, result, api_calls=parts.api_calls.requests - before
    )
    logger.info("sensor backfilled", extra=result.model_dump(mode="json"))
    return {"sensor_id": result.sensor_id, "readings": result.readings}


def _finish(parts: Recovery, request: TaskRequest, *, gave_up: bool) -> dict[str, Any]:
    state = _state(request)
    now = datetime.now(UTC)
    re_enable_calls = state.reenabled.api_calls if state.reenabled else 0
    if gave_up:
        error = state.error or {}
        record, event = give_up(
            state,
            request.execution,
            now=now,
            error=f"{error.get('Error', 'unknown')}: {error.get('Cause', '')}"[:1000],
            re_enable_calls=re_enable_calls,
        )
    else:
        plan = state.plan
        record, event = finish(
            state,
            request.execution,
            now=now,
            results=results_from_parts(
                parts.incidents.parts(request.execution, SENSOR_PART_PREFIX)
            ),
            re_enable_calls=re_enable_calls,
            confirmation=state.confirmation,
            deferred_sensors=plan.deferred_sensors if plan else 0,
            not_recoverable=plan.reason if plan else None,
        )
    parts.incidents.put_part(request.execution, SUMMARY_PART, record)
    parts.subscriptions.close_incident(
        state.subscription, state.incident_id, gave_up_at=now if gave_up else None
    )
    parts.events.publish([event])
    logger.info("recovery incident closed", extra=record.model_dump(mode="json"))
    summary = record.model_dump(mode="json", exclude={"readings_recovered_per_sensor"})
    return {**summary, **operator_message(record)} if gave_up else summary


def _listed_sensors(api: EveractiveApi) -> list[str]:
    """The provider's sensors, for the plan; when the API cannot list them, the plan covers
    the sensors the stores know (logged: a sensor never heard of is then not read back)."""
    try:
        return [sensor.mac_address for sensor in api.sensors()]
    except (ApiError, TransportError) as error:
        logger.warning("provider's sensors not listed for the plan", extra={"error": str(error)})
        return []


def run_task(parts: Recovery, request: TaskRequest) -> dict[str, Any]:
    if request.task == "backfill":
        return _backfill(parts, request)
    state = _state(request)
    if request.task == "confirm":
        # the detecting run may have re-enabled it already (the reconciler does): a delivery
        # since the incident was detected proves deliveries resumed
        since = state.detected_at
        checks = state.confirmation.checks if state.confirmation else 0
        return confirm_deliveries(
            parts.contacts.by_provider(),
            state,
            since=since,
            checks=checks,
            max_checks=request.max_checks,
        ).model_dump(mode="json")
    if request.task == "plan":
        return plan_backfill(
            state.provider,
            state.event_type,
            parts.health.sensors(),
            newest_before=lambda sensor_id: parts.readings.newest_before(
                DS_PROVIDER, sensor_id, state.detected_at
            ),
            now=datetime.now(UTC),
            max_hours=parts.settings.backfill_max_hours,
            max_items=parts.settings.map_max_items,
            request=state.backfill,
            listed_sensors=lambda: _listed_sensors(parts.api),
        ).model_dump(mode="json")
    return _finish(parts, request, gave_up=request.task == "give_up")


@parts_built_first(recovery)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(recovery(), TaskRequest.model_validate(event))
