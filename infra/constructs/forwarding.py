"""Forwarding to the user's endpoints (docs/forwarding.md): per endpoint a bus rule, a durable
queue and a signing secret; one forwarder function reading every queue through its own event
source mapping; the endpoints table; the endpoint policy machine (its own construct).

Isolation: each endpoint's queue has its own mapping with a concurrency ceiling
(`forwarding_max_concurrency`), so an endpoint that hangs holds at most that many forwarder
invocations, and every other endpoint's mapping keeps its own.
"""

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constants import (
    DLQ_RETENTION_DAYS,
    ENDPOINTS_PARTITION_KEY,
    ENDPOINTS_SORT_KEY,
    EVENT_SOURCE,
    FORWARDER_HANDLER,
    forwarding_queue_name,
    forwarding_secret_name,
    resource_name,
)
from infra.constructs.endpoint_policy import EndpointPolicy
from infra.constructs.function import SensorhookFunction, settings_environment
from infra.constructs.storage import data_table
from infra.nag import acknowledge, acknowledge_prefix_wildcard
from sensorhook.core.forwarding import render_endpoints
from sensorhook.core.settings import ForwarderSettings
from sensorhook.dal.backlog import BACKLOG_PREFIX

# SQS keeps a message at most 14 days; the forwarder moves anything that must wait longer
# (a not-enabled endpoint) into the S3 backlog long before.
_QUEUE_RETENTION = Duration.days(14)
# Receives of one message before SQS gives up on it: far above the retry schedule (a failing
# endpoint is Disabled after 30 h, and its messages then go to the backlog), so only a message
# the forwarder itself keeps crashing on lands in the dead-letter queue.
_MAX_RECEIVES = 100


class Forwarding(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        config: StageConfig,
        bus: events.IEventBus,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        self.table = data_table(
            self,
            "EndpointsTable",
            resource_name(stage, "endpoints"),
            config,
            partition_key=ENDPOINTS_PARTITION_KEY,
            sort_key=ENDPOINTS_SORT_KEY,
        )
        # Only a stage with endpoints has queues that need one (cdk-nag refuses an unused DLQ).
        self.dead_letter_queue = (
            sqs.Queue(
                self,
                "DeadLetterQueue",
                queue_name=resource_name(stage, "forward-dlq"),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(DLQ_RETENTION_DAYS),
            )
            if config.forwarding_endpoints
            else None
        )
        self.secrets: dict[str, secretsmanager.Secret] = {}
        self.queues: dict[str, sqs.Queue] = {}
        self.rules: dict[str, events.Rule] = {}
        # AWS's rule for a Lambda-consumed queue: six function timeouts, so a batch still running
        # is not handed out again (at most 12 h, SQS's limit)
        visibility = Duration.seconds(min(6 * config.forwarder_timeout_seconds, 12 * 3600))
        timeout = Duration.seconds(config.forwarder_timeout_seconds)
        for index, endpoint in enumerate(config.forwarding_endpoints):
            assert self.dead_letter_queue is not None  # noqa: S101 - created above for endpoints
            self.secrets[endpoint.name] = secretsmanager.Secret(
                self,
                f"Secret{index}",
                secret_name=forwarding_secret_name(stage, endpoint.name),
                description=f'Signing secret of forwarding endpoint {endpoint.name}: {{"secret", '
                '"previous_secret", "previous_valid_until"}} (docs/forwarding.md)',
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template="{}",  # noqa: S106 - an empty JSON object
                    generate_string_key="secret",
                    exclude_punctuation=True,
                    password_length=32,  # base64 alphabet: a Standard Webhooks key of 24 bytes
                ),
                removal_policy=removal,
            )
            acknowledge(
                self.secrets[endpoint.name],
                "AwsSolutions-SMG4",
                "The receiving endpoint holds this secret too: rotating it is a coordinated "
                "act (previous_secret keeps signing until previous_valid_until), which no "
                "rotation Lambda can do on the receiver's side.",
            )
            queue = sqs.Queue(
                self,
                f"Queue{index}",
                queue_name=forwarding_queue_name(stage, endpoint.name),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=_QUEUE_RETENTION,
                visibility_timeout=visibility,
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=self.dead_letter_queue, max_receive_count=_MAX_RECEIVES
                ),
            )
            self.queues[endpoint.name] = queue
            self.rules[endpoint.name] = events.Rule(
                self,
                f"Rule{index}",
                rule_name=resource_name(stage, f"forward-{endpoint.name}"),
                description=f"sensorhook events for forwarding endpoint {endpoint.name}",
                event_bus=bus,
                event_pattern=events.EventPattern(
                    source=[EVENT_SOURCE],
                    detail_type=events.Match.any_of(
                        *(
                            events.Match.prefix(pattern[:-1])
                            if pattern.endswith("*")
                            else events.Match.exact_string(pattern)
                            for pattern in endpoint.detail_types
                        )
                    ),
                ),
                targets=[
                    targets.SqsQueue(
                        queue,
                        dead_letter_queue=self.dead_letter_queue,
                        retry_attempts=185,
                        max_event_age=Duration.hours(24),
                    )
                ],
            )

        secret_arns = Stack.of(self).to_json_string(
            {name: secret.secret_arn for name, secret in self.secrets.items()}
        )
        self.queue_name_prefix = forwarding_queue_name(stage, "")
        environment: dict[str, str | int] = {
            "endpoints_table": self.table.table_name,
            "bucket_name": bucket.bucket_name,
            "forwarding_endpoints": render_endpoints(config.forwarding_endpoints),
            "forwarding_policy": json.dumps(
                config.forwarding_policy.model_dump(mode="json"), separators=(",", ":")
            ),
            "endpoint_secret_arns": secret_arns,
            "secret_cache_seconds": config.secret_cache_seconds,
        }
        self.policy = EndpointPolicy(
            self,
            "EndpointPolicy",
            stage=stage,
            config=config,
            forwarding_environment=environment,
            endpoints_table=self.table,
            bucket=bucket,
            secrets=list(self.secrets.values()),
            bus=bus,
        )
        self.forwarder = SensorhookFunction(
            self,
            "Forwarder",
            stage=stage,
            name="forwarder",
            handler=FORWARDER_HANDLER,
            description="Delivers each endpoint's queued events, signed, under the policy",
            environment=settings_environment(
                ForwarderSettings,
                {
                    **environment,
                    "state_machine_arn": self.policy.state_machine.state_machine_arn,
                    "queue_name_prefix": self.queue_name_prefix,
                },
            ),
            timeout=timeout,
            memory_mb=config.forwarding_memory_mb,
            config=config,
        )
        for queue in self.queues.values():
            self.forwarder.function.add_event_source(
                sources.SqsEventSource(
                    queue,
                    batch_size=config.forwarding_batch_size,
                    report_batch_item_failures=True,
                    max_concurrency=config.forwarding_max_concurrency,
                )
            )
        self._grant_forwarder(bucket)

    def _grant_forwarder(self, bucket: s3.IBucket) -> None:
        role = self.forwarder.role
        statements: list[tuple[str, list[str], list[str]]] = [
            (
                "EndpointStates",
                ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                [self.table.table_arn],
            ),
            (
                "KeepBacklog",
                ["s3:PutObject"],
                [bucket.arn_for_objects(f"{BACKLOG_PREFIX}*")],
            ),
            (
                "StartEndpointPolicy",
                ["states:StartExecution"],
                [self.policy.state_machine.state_machine_arn],
            ),
        ]
        if self.secrets:
            statements.append(
                (
                    "ReadSigningSecrets",
                    ["secretsmanager:GetSecretValue"],
                    [secret.secret_arn for secret in self.secrets.values()],
                )
            )
        if self.queues:
            statements.append(
                (
                    "RetryLater",
                    ["sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"],
                    [queue.queue_arn for queue in self.queues.values()],
                )
            )
        for sid, actions, resources in statements:
            role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))
        acknowledge_prefix_wildcard(
            role,
            bucket,
            BACKLOG_PREFIX,
            "The forwarder keeps events for a not-enabled endpoint under "
            "forwarding-backlog/<endpoint>/; the wildcard stays inside that prefix.",
        )
