"""Processor Lambda: SQS ingest batch -> raw archive -> each delivery stored once.

Reports partial batch failures, so only the deliveries that failed are retried by SQS.
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    from datetime import timedelta
    from functools import cache
    from typing import Any

    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import ValidationError

    from sensorhook.core.envelope import IngestEnvelope
    from sensorhook.core.settings import processor_settings
    from sensorhook.dal.archive import Archive
    from sensorhook.dal.delivery_progress import DeliveryProgress
    from sensorhook.dal.events import EventPublisher
    from sensorhook.dal.gateway_history import GatewayHistoryStore
    from sensorhook.dal.gateways_store import GatewaysStore
    from sensorhook.dal.idempotency import persistence_layer
    from sensorhook.dal.readings_store import ReadingsStore
    from sensorhook.dal.sensor_state_store import SensorStateStore, SilenceSchedule
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.process import (
        DeliveryProcessor,
        DeliverySummary,
        ProcessingLimits,
        ProcessorStores,
        archive_batch,
    )
    from sensorhook.observability import logger, metrics

_batch_processor = BatchProcessor(event_type=EventType.SQS)


class UnprocessableRecord(RuntimeError):
    """A record that could not be archived, so it must not be acknowledged."""


@cache
def delivery_processor() -> DeliveryProcessor:
    """Settings validated and clients created once per execution environment."""
    settings = processor_settings()
    stores = ProcessorStores(
        readings=ReadingsStore(settings.readings_table, writers=settings.readings_writers),
        sensor_state=SensorStateStore(
            settings.sensor_state_table,
            schedule=SilenceSchedule(
                settings.sensor_silent_after_periods, settings.default_sensor_period_seconds
            ),
        ),
        gateways=GatewaysStore(
            settings.gateways_table,
            contact_every=timedelta(seconds=settings.gateway_contact_every_seconds),
        ),
        archive=Archive(settings.bucket_name),
        events=EventPublisher(settings.event_bus_name),
        gateway_history=GatewayHistoryStore(settings.readings_table),
        progress=DeliveryProgress(
            settings.idempotency_table, ttl_seconds=settings.idempotency_ttl_seconds
        ),
    )
    limits = ProcessingLimits(
        reading_ttl_days=settings.reading_ttl_days,
        future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
        chunk_readings=settings.chunk_readings,
        chunk_time_guard_ms=settings.chunk_time_guard_seconds * 1000,
    )
    return DeliveryProcessor(
        stores,
        limits=limits,
        persistence_layer=persistence_layer(settings.idempotency_table),
        idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
    )


def _parse_envelopes(records: list[dict[str, Any]]) -> dict[str, IngestEnvelope]:
    envelopes: dict[str, IngestEnvelope] = {}
    for record in records:
        try:
            envelopes[record["messageId"]] = IngestEnvelope.model_validate_json(record["body"])
        except ValidationError as error:
            # left out of the archive: the record fails below and ends in the DLQ, intact
            logger.error(
                "message is not an ingest envelope",
                extra={
                    "message_id": record["messageId"],
                    "errors": error.errors(include_input=False)[:5],
                },
            )
    return envelopes


@parts_built_first(delivery_processor)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    processor = delivery_processor()
    processor.idempotency_config.register_lambda_context(context)
    records = event["Records"]
    try:
        batch = archive_batch(_parse_envelopes(records), processor.stores.archive)
    except Exception:
        logger.exception(
            "raw archive failed; failing the whole batch", extra={"size": len(records)}
        )
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
    for message_id, inbox_key in batch.missing_bodies.items():
        logger.error(
            "claim-checked body missing", extra={"message_id": message_id, "key": inbox_key}
        )
    for message_id, why in batch.unreadable_bodies.items():
        logger.error(
            "claim-checked body unreadable; the record is retried",
            extra={"message_id": message_id, "error": why},
        )

    def process_record(record: SQSRecord) -> DeliverySummary:
        envelope = batch.envelopes.get(record.message_id)
        if envelope is None:
            raise UnprocessableRecord(record.message_id)
        return processor.process(envelope, context.get_remaining_time_in_millis)

    try:
        return process_partial_response(
            event=event, record_handler=process_record, processor=_batch_processor, context=context
        )
    finally:
        processor.publish_readings_by_provider()
