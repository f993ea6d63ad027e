"""Everything after the queue: the processor (SQS -> DynamoDB, S3 archive, events) and the lake
writer (readings table stream -> Parquet under readings/)."""

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constants import (
    DLQ_RETENTION_DAYS,
    GATEWAY_STATUS_PREFIX,
    INBOX_PREFIX,
    LAKE_WRITER_HANDLER,
    PROCESSOR_HANDLER,
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    READINGS_PREFIX,
    resource_name,
)
from infra.constructs.function import SensorhookFunction, region_layer_arn, settings_environment
from infra.nag import acknowledge, acknowledge_prefix_wildcard
from sensorhook.core.settings import LakeWriterSettings, ProcessorSettings

# Readings are put unconditionally (BatchWriteItem: the same reading again overwrites its item);
# sensor state and gateways are conditional writes that only move forward in time.
_STORE_WRITE_ACTIONS = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"]
# What Powertools idempotency's DynamoDB persistence layer calls.
_IDEMPOTENCY_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
]


def _seconds_or_none(seconds: int) -> Duration | None:
    return Duration.seconds(seconds) if seconds else None


class Processing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        config: StageConfig,
        ingest_queue: sqs.IQueue,
        bucket: s3.IBucket,
        readings_table: dynamodb.ITable,
        sensor_state_table: dynamodb.ITable,
        gateways_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)

        self.processor = SensorhookFunction(
            self,
            "Processor",
            stage=stage,
            name="processor",
            handler=PROCESSOR_HANDLER,
            description="Archives, validates, normalizes, stores and publishes each delivery once",
            environment=settings_environment(
                ProcessorSettings,
                {
                    "readings_table": readings_table.table_name,
                    "sensor_state_table": sensor_state_table.table_name,
                    "gateways_table": gateways_table.table_name,
                    "idempotency_table": idempotency_table.table_name,
                    "bucket_name": bucket.bucket_name,
                    "event_bus_name": bus.event_bus_name,
                    "reading_ttl_days": config.reading_ttl_days,
                    "idempotency_ttl_seconds": config.idempotency_ttl_seconds,
                    "future_tolerance_seconds": config.future_tolerance_seconds,
                    "chunk_readings": config.chunk_readings,
                    "chunk_time_guard_seconds": config.chunk_time_guard_seconds,
                    "sensor_silent_after_periods": str(config.sensor_silent_after_periods),
                    "default_sensor_period_seconds": config.default_sensor_period_seconds,
                    "gateway_contact_every_seconds": config.gateway_contact_every_seconds,
                    "readings_writers": config.readings_writers,
                },
            ),
            timeout=Duration.seconds(config.processor_timeout_seconds),
            memory_mb=config.processor_memory_mb,
            config=config,
        )
        self.processor.function.add_event_source(
            sources.SqsEventSource(
                ingest_queue,
                batch_size=config.processor_batch_size,
                max_batching_window=_seconds_or_none(config.processor_batching_window_seconds),
                report_batch_item_failures=True,
                # A backlog or a DLQ redrive scales the processor up to this and no further, so
                # it cannot take the account's concurrency (the receiver has its reservation).
                max_concurrency=config.processor_max_concurrency,
            )
        )
        self._grant_processor(
            bucket,
            [readings_table, sensor_state_table, gateways_table],
            idempotency_table,
            bus,
        )

        self.lake_writer_failures = sqs.Queue(
            self,
            "LakeWriterFailures",
            queue_name=resource_name(stage, "lake-writer-failures"),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
        )
        acknowledge(
            self.lake_writer_failures,
            "AwsSolutions-SQS3",
            "This queue is the lake writer's on-failure destination: it receives the metadata "
            "(shard, sequence number range) of stream batches that exhausted their retries, "
            "for an operator to re-export from the readings table; nothing consumes it "
            "automatically.",
        )
        self.lake_writer = SensorhookFunction(
            self,
            "LakeWriter",
            stage=stage,
            name="lake-writer",
            handler=LAKE_WRITER_HANDLER,
            description=(
                "Writes each reading and gateway status new to the readings table to Parquet "
                "under readings/ and gateway_status/"
            ),
            environment=settings_environment(
                LakeWriterSettings, {"bucket_name": bucket.bucket_name}
            ),
            timeout=Duration.seconds(config.lake_writer_timeout_seconds),
            memory_mb=config.lake_writer_memory_mb,
            config=config,
            extra_layer_arns=[region_layer_arn(self, config.aws_sdk_pandas_layer_arn)],
        )
        self.lake_writer.function.add_event_source(
            sources.DynamoEventSource(
                readings_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=config.lake_writer_batch_size,
                max_batching_window=_seconds_or_none(config.lake_writer_batching_window_seconds),
                # A reading's first write is a new row: an item's INSERT, or a MODIFY adding
                # readings to it (docs/readings.md); TTL deletions (REMOVE) are not.
                filters=[
                    lambda_.FilterCriteria.filter(
                        {"eventName": lambda_.FilterRule.or_("INSERT", "MODIFY")}
                    )
                ],
                report_batch_item_failures=True,
                # No bisecting: lake objects are named by the batch's first record, so a batch
                # must always be retried from its start (see sensorhook.logic.lake).
                bisect_batch_on_error=False,
                retry_attempts=config.lake_writer_retry_attempts,
                on_failure=sources.SqsDlq(self.lake_writer_failures),
            )
        )
        self.lake_writer.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteParquetReadings",
                actions=["s3:PutObject"],
                resources=[
                    bucket.arn_for_objects(f"{READINGS_PREFIX}*"),
                    bucket.arn_for_objects(f"{GATEWAY_STATUS_PREFIX}*"),
                ],
            )
        )
        for prefix in (READINGS_PREFIX, GATEWAY_STATUS_PREFIX):
            acknowledge_prefix_wildcard(
                self.lake_writer.role,
                bucket,
                prefix,
                f"The lake writer adds Parquet files under {prefix}date=…/provider=…/; the "
                "wildcard stays inside that prefix.",
            )
        acknowledge(
            self.lake_writer.role,
            "AwsSolutions-IAM5[Resource::*]",
            "dynamodb:ListStreams (added by the stream event source) and X-Ray tracing "
            "support no resource-level permissions.",
        )

    def _grant_processor(
        self,
        bucket: s3.IBucket,
        stores: list[dynamodb.ITable],
        idempotency_table: dynamodb.ITable,
        bus: events.IEventBus,
    ) -> None:
        role = self.processor.role
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteReadingsStateGateways",
                actions=_STORE_WRITE_ACTIONS,
                resources=[table.table_arn for table in stores],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="IdempotencyRecords",
                actions=_IDEMPOTENCY_ACTIONS,
                resources=[idempotency_table.table_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ArchiveAndQuarantine",
                actions=["s3:PutObject"],
                resources=[
                    bucket.arn_for_objects(f"{RAW_PREFIX}*"),
                    bucket.arn_for_objects(f"{QUARANTINE_PREFIX}*"),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadClaimCheckedBodies",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{INBOX_PREFIX}*")],
            )
        )
        # Without s3:ListBucket, S3 answers a GET of a missing key with 403, like a refusal:
        # with it (on the inbox prefix only), a body that is gone is a 404 the processor can
        # tell from access denied (docs/operations.md).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TellMissingInboxBodiesFromDenied",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{INBOX_PREFIX}*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishDomainEvents",
                actions=["events:PutEvents"],
                resources=[bus.event_bus_arn],
            )
        )
        for prefix, why in (
            (RAW_PREFIX, "archives each batch as raw/provider=…/flavor=…/date=…/hour=…/*"),
            (QUARANTINE_PREFIX, "quarantines invalid deliveries as quarantine/…/<event id>.json"),
            (INBOX_PREFIX, "reads claim-checked bodies the receiver put under inbox/"),
        ):
            acknowledge_prefix_wildcard(
                role, bucket, prefix, f"The processor {why}; the wildcard stays in that prefix."
            )
