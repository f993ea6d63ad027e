"""Scheduled compaction of the lake (docs/athena.md, "Files sized for Athena"): once a day the
compactor rewrites the last days' partitions of readings/ and gateway_status/ into a few large
objects, then deletes exactly the small object versions it read."""

from aws_cdk import CfnResource, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import StageConfig
from infra.constants import (
    GATEWAY_STATUS_PREFIX,
    LAKE_COMPACTION_SCHEDULE_RULE_ID,
    LAKE_COMPACTOR_HANDLER,
    READINGS_PREFIX,
    resource_name,
)
from infra.constructs.function import (
    SensorhookFunction,
    region_layer_arn,
    settings_environment,
)
from infra.nag import acknowledge, acknowledge_prefix_wildcard
from sensorhook.core.settings import LakeCompactorSettings

_COMPACTED_PREFIXES = (READINGS_PREFIX, GATEWAY_STATUS_PREFIX)


class LakeCompaction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        config: StageConfig,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.compactor = SensorhookFunction(
            self,
            "LakeCompactor",
            stage=stage,
            name="lake-compactor",
            handler=LAKE_COMPACTOR_HANDLER,
            description="Compacts the lake's small Parquet objects into a few per day",
            environment=settings_environment(
                LakeCompactorSettings,
                {
                    "bucket_name": bucket.bucket_name,
                    "compaction_days_back": config.lake_compaction_days_back,
                    "compaction_max_rows": config.lake_compaction_max_rows,
                },
            ),
            timeout=Duration.seconds(config.lake_compactor_timeout_seconds),
            memory_mb=config.lake_compactor_memory_mb,
            config=config,
            extra_layer_arns=[region_layer_arn(self, config.aws_sdk_pandas_layer_arn)],
        )
        # one run at a time: two runs on one partition would each rewrite the other's output
        self.compactor.function.node.default_child.add_property_override(  # type: ignore[union-attr]
            "ReservedConcurrentExecutions", 1
        )
        role = self.compactor.role
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListLakePartitions",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in _COMPACTED_PREFIXES]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RewriteLakeObjects",
                actions=[
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                ],
                resources=[bucket.arn_for_objects(f"{p}*") for p in _COMPACTED_PREFIXES],
            )
        )
        for prefix in _COMPACTED_PREFIXES:
            acknowledge_prefix_wildcard(
                role,
                bucket,
                prefix,
                f"The compactor rewrites every partition under {prefix}; the wildcard stays in "
                "that prefix.",
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing support has no resource-level permissions.",
        )
        self.schedule = events.Rule(
            self,
            LAKE_COMPACTION_SCHEDULE_RULE_ID,
            rule_name=resource_name(stage, "lake-compaction"),
            description=f"Compact the lake daily at {config.lake_compaction_hour_utc:02d}:15 UTC",
            schedule=events.Schedule.cron(minute="15", hour=str(config.lake_compaction_hour_utc)),
            targets=[targets.LambdaFunction(self.compactor.function, retry_attempts=2)],
        )
        cfn_rule = self.schedule.node.default_child
        if isinstance(cfn_rule, CfnResource):
            cfn_rule.override_logical_id(LAKE_COMPACTION_SCHEDULE_RULE_ID)
