"""Alarms that tell the operator something is being held back or lost, on one SNS topic."""

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constants import resource_name

_ONE_MINUTE = Duration.minutes(1)
_ABOVE = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        config: StageConfig,
        ingest_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        lake_writer_failures: sqs.IQueue,
        functions: dict[str, lambda_.IFunction],
        lake_writer: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self, "AlarmTopic", topic_name=resource_name(stage, "alarms"), enforce_ssl=True
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        action = cw_actions.SnsAction(self.topic)

        self.alarms: list[cloudwatch.Alarm] = []
        self._alarm(
            "DeadLetterQueueNotEmpty",
            "Deliveries failed processing repeatedly and wait in the ingest DLQ; fix the cause, "
            "then redrive the DLQ.",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=_ONE_MINUTE, statistic="Maximum"
            ),
            threshold=0,
            action=action,
        )
        self._alarm(
            "IngestQueueBacklog",
            "The oldest delivery on the ingest queue is older than expected: the processor is "
            "failing or throttled.",
            ingest_queue.metric_approximate_age_of_oldest_message(
                period=_ONE_MINUTE, statistic="Maximum"
            ),
            threshold=config.ingest_queue_max_age_seconds,
            action=action,
        )
        self._alarm(
            "LakeWriterFailures",
            "Readings stream records exhausted their retries: their batch metadata is in the "
            "lake writer failures queue and the readings are missing from Parquet "
            "(re-export: docs/operations.md).",
            lake_writer_failures.metric_approximate_number_of_messages_visible(
                period=_ONE_MINUTE, statistic="Maximum"
            ),
            threshold=0,
            action=action,
        )
        self._alarm(
            "LakeWriterIteratorAge",
            "The lake writer is behind on the readings stream.",
            lake_writer.metric("IteratorAge", period=_ONE_MINUTE, statistic="Maximum"),
            threshold=config.lake_writer_max_iterator_age_seconds * 1000,
            action=action,
        )
        for name, function in functions.items():
            self._alarm(
                f"{name}Errors",
                f"The {name} function raised errors.",
                function.metric_errors(period=_ONE_MINUTE, statistic="Sum"),
                threshold=config.function_errors_threshold,
                action=action,
            )

    def _alarm(
        self,
        construct_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        action: cloudwatch.IAlarmAction,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=_ABOVE,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)
