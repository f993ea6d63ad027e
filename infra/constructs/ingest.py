"""The hot path: HTTP API -> receiver Lambda -> SQS ingest queue (+ DLQ), and the webhook secrets.

The receiver only authenticates, bounds and enqueues, so its role can do nothing else: send to
the ingest queue, read the three webhook secrets, and put claim-checked bodies under inbox/.
"""

import json

import jsii
from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra.config import StageConfig
from infra.constants import (
    DLQ_RETENTION_DAYS,
    INBOX_PREFIX,
    RECEIVER_HANDLER,
    resource_name,
    secret_name,
)
from infra.constructs.function import SensorhookFunction, settings_environment
from infra.constructs.provider_secret import provider_issued_secret
from infra.nag import acknowledge, acknowledge_prefix_wildcard
from sensorhook.core.flavors import ROUTES
from sensorhook.core.receiver_settings import ReceiverSettings

# Secrets are created in their documented shape (docs/architecture.md) with no credential in
# it: an empty key or header set authenticates nothing until the operator puts real values.
# Secrets Manager adds one generated value (`placeholder`), so no literal reaches the template.
_SIGNING_KEYS_SHAPE: dict[str, dict[str, str]] = {"keys": {}, "previous_keys": {}}
_HEADERS_SHAPE: dict[str, dict[str, str]] = {"headers": {}, "previous_headers": {}}

# One JSON line per request; no header or body values, so no credential reaches the logs.
_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}


class Ingest(Construct):
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
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY

        self.v2020_signing_secret = self._secret(
            "V2020SigningSecret",
            secret_name(stage, "everactive-v2020-signing-keys"),
            "Everactive API v2020-07 webhook signing secrets by subscription id (keyId)",
            _SIGNING_KEYS_SHAPE,
            removal,
        )
        self.ds_header_secret = self._secret(
            "DsHeaderSecret",
            secret_name(stage, "everactive-ds-webhook-headers"),
            "Headers Everactive Data Services webhooks must carry (sensor readings and gateway "
            "status)",
            _HEADERS_SHAPE,
            removal,
        )
        self.efento_header_secret = self._secret(
            "EfentoHeaderSecret",
            secret_name(stage, "efento-webhook-headers"),
            "Headers Efento Cloud measurement webhooks must carry",
            _HEADERS_SHAPE,
            removal,
        )

        self.dead_letter_queue, self.queue = self._queues(stage, config)

        self.receiver = SensorhookFunction(
            self,
            "Receiver",
            stage=stage,
            name="receiver",
            handler=RECEIVER_HANDLER,
            description="Authenticates, bounds and enqueues provider webhooks",
            environment=settings_environment(
                ReceiverSettings,
                {
                    "ingest_queue_url": self.queue.queue_url,
                    "bucket_name": bucket.bucket_name,
                    "v2020_signing_secret_arn": self.v2020_signing_secret.secret_arn,
                    "ds_header_secret_arn": self.ds_header_secret.secret_arn,
                    "efento_header_secret_arn": self.efento_header_secret.secret_arn,
                    "max_body_bytes": config.max_body_bytes,
                    "inline_body_max_bytes": config.inline_body_max_bytes,
                    "signature_max_skew_seconds": config.signature_max_skew_seconds,
                    "secret_cache_seconds": config.secret_cache_seconds,
                },
            ),
            timeout=Duration.seconds(config.receiver_timeout_seconds),
            memory_mb=config.receiver_memory_mb,
            config=config,
        )
        # Its own share of the account's concurrency: a processor backlog, a DLQ redrive or
        # another function's burst can never take the instances Efento's 10 s deadline needs.
        receiver = self.receiver.function.node.default_child
        if isinstance(receiver, lambda_.CfnFunction):
            receiver.reserved_concurrent_executions = config.receiver_reserved_concurrency
        self._grant_receiver(bucket)

        self.api, self.stage = self._http_api(stage, config, removal)

    def _secret(
        self,
        construct_id: str,
        name: str,
        description: str,
        shape: dict[str, dict[str, str]],
        removal: RemovalPolicy,
    ) -> secretsmanager.Secret:
        return provider_issued_secret(
            self,
            construct_id,
            name=name,
            description=f"{description}. Put the real values with put-secret-value "
            "(docs/configuration.md).",
            shape=shape,
            removal=removal,
            why_no_rotation_lambda="These values are issued by the provider (Everactive "
            "generates the v2020 signing secret, the operator sets Data Services and Efento "
            "headers in the provider's UI); rotation happens there, with the previous_* overlap "
            "window in the secret.",
        )

    def _queues(self, stage: str, config: StageConfig) -> tuple[sqs.Queue, sqs.Queue]:
        ingest_queue_name = resource_name(stage, "ingest")
        # Referenced by ARN built from the fixed name: a token reference to the ingest queue
        # would make the two queues depend on each other.
        ingest_queue_arn = Stack.of(self).format_arn(
            service="sqs", resource=ingest_queue_name, arn_format=ArnFormat.NO_RESOURCE_NAME
        )
        dead_letter_queue = sqs.Queue(
            self,
            "IngestDeadLetterQueue",
            queue_name=resource_name(stage, "ingest-dlq"),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[sqs.Queue.from_queue_arn(self, "IngestQueueRef", ingest_queue_arn)],
            ),
        )
        queue = sqs.Queue(
            self,
            "IngestQueue",
            queue_name=ingest_queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(config.ingest_visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letter_queue, max_receive_count=config.dlq_max_receive_count
            ),
        )
        return dead_letter_queue, queue

    def _grant_receiver(self, bucket: s3.IBucket) -> None:
        role = self.receiver.role
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EnqueueDeliveries",
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadWebhookSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[
                    self.v2020_signing_secret.secret_arn,
                    self.ds_header_secret.secret_arn,
                    self.efento_header_secret.secret_arn,
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ClaimCheckLargeBodies",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{INBOX_PREFIX}*")],
            )
        )
        acknowledge_prefix_wildcard(
            role,
            bucket,
            INBOX_PREFIX,
            "The receiver writes claim-checked bodies as inbox/<date>/<event id>.json; the "
            "wildcard stays inside that prefix.",
        )

    def _http_api(
        self, stage: str, config: StageConfig, removal: RemovalPolicy
    ) -> tuple[apigwv2.HttpApi, apigwv2.HttpStage]:
        integration = HttpLambdaIntegration(
            "ReceiverIntegration",
            self.receiver.function,
            payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
        )
        api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=resource_name(stage, "webhooks"),
            description="Sensor-cloud webhooks (Everactive, Efento)",
            create_default_stage=False,
            # `$default` catches every other route and method, so the receiver answers them
            # with its own 404/405 instead of API Gateway's bare "Not Found".
            default_integration=integration,
        )
        for path in ROUTES.values():
            api.add_routes(path=path, methods=[apigwv2.HttpMethod.POST], integration=integration)

        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"/aws/apigateway/{resource_name(stage, 'webhooks')}",
            retention=logs.RetentionDays[config.log_retention],
            removal_policy=removal,
        )
        http_stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api_throttle_rate_limit,
                burst_limit=config.api_throttle_burst_limit,
            ),
            access_log_settings=_AccessLogSettings(access_logs),
        )
        acknowledge(
            api,
            "AwsSolutions-APIG4",
            "Providers cannot present IAM, JWT or Lambda-authorizer credentials; the receiver "
            "authenticates every request itself (HTTP Signatures or the provider's custom "
            "headers) before anything is enqueued.",
        )
        return api, http_stage


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """JSON access logs of the HTTP API stage into `log_group`."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._log_group = log_group

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return apigwv2.LogGroupLogDestination(self._log_group)

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(_ACCESS_LOG_FORMAT))
