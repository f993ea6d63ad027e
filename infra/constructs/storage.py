"""Where sensorhook keeps data: one bucket (raw archive, Parquet readings, quarantine, inbox) and
the DynamoDB tables of docs/architecture.md ("Stores")."""

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import StageConfig
from infra.constants import (
    GATEWAYS_PARTITION_KEY,
    IDEMPOTENCY_PARTITION_KEY,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    INBOX_PREFIX,
    RAW_PREFIX,
    READINGS_PARTITION_KEY,
    READINGS_SORT_KEY,
    READINGS_TTL_ATTRIBUTE,
    SENSOR_STATE_PARTITION_KEY,
    SENSOR_STATE_SORT_KEY,
    resource_name,
)
from sensorhook.dal.sensor_state_store import DUE_INDEX

_STRING = dynamodb.AttributeType.STRING


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, config: StageConfig):
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY

        self.access_log_bucket = self._access_log_bucket(config, removal)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.KMS_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="sensorhook/",
            lifecycle_rules=self._lifecycle_rules(config),
            removal_policy=removal,
        )

        self.readings_table = data_table(
            self,
            "ReadingsTable",
            resource_name(stage, "readings"),
            config,
            partition_key=READINGS_PARTITION_KEY,
            sort_key=READINGS_SORT_KEY,
            ttl_attribute=READINGS_TTL_ATTRIBUTE,
            # The lake writer turns each reading new to an item into a Parquet row: all of an
            # INSERT's, and those a MODIFY's new image holds and its old image did not.
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
        )
        self.sensor_state_table = data_table(
            self,
            "SensorStateTable",
            resource_name(stage, "sensor-state"),
            config,
            partition_key=SENSOR_STATE_PARTITION_KEY,
            sort_key=SENSOR_STATE_SORT_KEY,
        )
        # Sparse: only `#latest` items and silence items of silent sensors carry its keys, so
        # gateway health Queries what is due instead of scanning every sensor. Keys only: a
        # write that leaves due_at alone then costs the index nothing (dal/health_store.py,
        # docs/architecture.md "Sensor state").
        self.sensor_state_table.add_global_secondary_index(
            index_name=DUE_INDEX,
            partition_key=dynamodb.Attribute(name="due_shard", type=_STRING),
            sort_key=dynamodb.Attribute(name="due_at", type=_STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        self.gateways_table = data_table(
            self,
            "GatewaysTable",
            resource_name(stage, "gateways"),
            config,
            partition_key=GATEWAYS_PARTITION_KEY,
        )
        self.idempotency_table = data_table(
            self,
            "IdempotencyTable",
            resource_name(stage, "idempotency"),
            config,
            partition_key=IDEMPOTENCY_PARTITION_KEY,
            ttl_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
        )

    def _access_log_bucket(self, config: StageConfig, removal: RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # S3 server access logging can only deliver to SSE-S3 encrypted buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(config.access_log_expiration_days),
                )
            ],
            removal_policy=removal,
        )
        return bucket

    @staticmethod
    def _lifecycle_rules(config: StageConfig) -> list[s3.LifecycleRule]:
        raw_transitions = (
            [
                s3.Transition(
                    storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                    transition_after=Duration.days(config.raw_archive_transition_ia_days),
                )
            ]
            if config.raw_archive_transition_ia_days is not None
            else None
        )
        raw_expiration = (
            Duration.days(config.raw_archive_expiration_days)
            if config.raw_archive_expiration_days is not None
            else None
        )
        rules = [
            s3.LifecycleRule(
                id="inbox-expire",
                prefix=INBOX_PREFIX,
                # Outlives the DLQ's retention, so a redriven message still finds its body.
                expiration=Duration.days(config.inbox_expiration_days),
            ),
            s3.LifecycleRule(
                id="noncurrent-versions-expire",
                noncurrent_version_expiration=Duration.days(
                    config.noncurrent_version_expiration_days
                ),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            ),
        ]
        if raw_transitions or raw_expiration:
            rules.insert(
                0,
                s3.LifecycleRule(
                    id="raw-archive",
                    prefix=RAW_PREFIX,
                    transitions=raw_transitions,
                    expiration=raw_expiration,
                ),
            )
        return rules


def data_table(
    scope: Construct,
    construct_id: str,
    table_name: str,
    config: StageConfig,
    *,
    partition_key: str,
    sort_key: str | None = None,
    ttl_attribute: str | None = None,
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    """A table the way every sensorhook table is made: string keys, on demand, PITR, AWS-managed
    encryption, kept (and protected from deletion) on a stage that retains its data."""
    return dynamodb.Table(
        scope,
        construct_id,
        table_name=table_name,
        partition_key=dynamodb.Attribute(name=partition_key, type=_STRING),
        sort_key=dynamodb.Attribute(name=sort_key, type=_STRING) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        time_to_live_attribute=ttl_attribute,
        stream=stream,
        deletion_protection=config.retain_data,
        removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
    )
