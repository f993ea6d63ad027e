"""The control plane (docs/control-plane.md, docs/subscriptions.md): the subscriptions function
with its schedule, its run after every deploy and its table; the gateway-health function with
its schedule; the provider API credentials secrets; the alarms on their EMF metrics.

After a deploy the reconcile is started by a CDK trigger with the asynchronous (`Event`)
invocation type: CloudFormation only waits for Lambda to accept the event, so a provider that
is down, slow or refusing the credentials never fails or stalls a deploy. The outcome shows in
the function's logs, its ReconcileErrors metric and alarm, and the next scheduled run retries.
The trigger runs when the function's code or configuration changed (the handler's version is
the trigger's input), which covers every deploy that changes the declared subscriptions, the
API URL or the code; a deploy that changes none of these has nothing to reconcile that the
schedule would not.
"""

import json
from collections.abc import Sequence

from aws_cdk import ArnFormat, CfnResource, Duration, RemovalPolicy, Stack, triggers
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import StageConfig
from infra.constants import (
    GATEWAY_HEALTH_HANDLER,
    GATEWAY_HEALTH_SCHEDULE_RULE_ID,
    METRICS_NAMESPACE,
    SENSOR_STATE_PARTITION_KEY,
    SENSOR_STATE_SORT_KEY,
    SERVICE_NAME,
    SUBSCRIPTIONS_HANDLER,
    SUBSCRIPTIONS_PARTITION_KEY,
    SUBSCRIPTIONS_SCHEDULE_RULE_ID,
    resource_name,
    secret_name,
    state_machine_name,
)
from infra.constructs.function import SensorhookFunction, settings_environment
from infra.constructs.provider_secret import provider_issued_secret
from infra.nag import acknowledge
from sensorhook.core.settings import GatewayHealthSettings, SubscriptionsSettings
from sensorhook.dal.health_store import SILENCE_ATTRIBUTES
from sensorhook.dal.sensor_state_store import DUE_INDEX

# The API credentials secrets' documented shape, empty until the operator puts real values;
# Secrets Manager adds one generated value (`placeholder`), so no literal reaches the template.
_CREDENTIALS_SHAPE = {"client_id": "", "client_secret": ""}

# Powertools adds the `service` dimension (POWERTOOLS_SERVICE_NAME) to every EMF metric.
_METRIC_DIMENSIONS = {"service": SERVICE_NAME}
_ABOVE = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
_TABLE_READ = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"]


class ControlPlane(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        config: StageConfig,
        webhook_base_url: str,
        gateways_table: dynamodb.ITable,
        sensor_state_table: dynamodb.ITable,
        bus: events.IEventBus,
        ds_header_secret: secretsmanager.ISecret,
        v2020_signing_secret: secretsmanager.ISecret,
        reconcile_after: Sequence[Construct],
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        # the recovery machine's ARN from its fixed name: the machine invokes the subscriptions
        # function, so a reference back to the machine would be a cycle (constructs/recovery.py)
        self.recovery_state_machine_arn = Stack.of(self).format_arn(
            service="states",
            resource="stateMachine",
            resource_name=state_machine_name(stage, "recovery"),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # the executions of that machine: whether an incident's execution has ended
        self.recovery_executions_arn = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine_name(stage, 'recovery')}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.desired_subscriptions = json.dumps(
            [s.model_dump(mode="json") for s in config.subscriptions], separators=(",", ":")
        )

        self.subscriptions_table = dynamodb.Table(
            self,
            "SubscriptionsTable",
            table_name=resource_name(stage, "subscriptions"),
            partition_key=dynamodb.Attribute(
                name=SUBSCRIPTIONS_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=config.retain_data,
            removal_policy=removal,
        )
        self.ds_api_credentials = self._credentials_secret(
            "DsApiCredentials",
            secret_name(stage, "everactive-ds-api-credentials"),
            "Everactive Data Services API OAuth2 client credentials",
            removal,
        )
        self.v2020_api_credentials = self._credentials_secret(
            "V2020ApiCredentials",
            secret_name(stage, "everactive-v2020-api-credentials"),
            "Everactive API v2020-07 OAuth2 client credentials",
            removal,
        )

        self.subscriptions = SensorhookFunction(
            self,
            "Subscriptions",
            stage=stage,
            name="subscriptions",
            handler=SUBSCRIPTIONS_HANDLER,
            description="Reconciles the declared webhook subscriptions with the providers'",
            environment=settings_environment(
                SubscriptionsSettings,
                {
                    "ds_api_base_url": config.everactive_ds_api_base_url,
                    "ds_api_token_url": config.everactive_ds_api_token_url,
                    "ds_api_credentials_secret_arn": self.ds_api_credentials.secret_arn,
                    "api_timeout_seconds": str(config.api_timeout_seconds),
                    "api_max_attempts": config.api_max_attempts,
                    "subscriptions_table": self.subscriptions_table.table_name,
                    "gateways_table": gateways_table.table_name,
                    "desired_subscriptions": self.desired_subscriptions,
                    "webhook_base_url": config.webhook_base_url or webhook_base_url,
                    "ds_header_secret_arn": ds_header_secret.secret_arn,
                    "v2020_signing_secret_arn": v2020_signing_secret.secret_arn,
                    "v2020_api_base_url": config.everactive_v2020_api_base_url,
                    "v2020_api_token_url": config.everactive_v2020_api_token_url,
                    "v2020_api_credentials_secret_arn": self.v2020_api_credentials.secret_arn,
                    "subscription_silent_after_seconds": config.subscription_silent_after_seconds,
                    "recovery_state_machine_arn": self.recovery_state_machine_arn,
                },
            ),
            timeout=Duration.seconds(config.subscriptions_timeout_seconds),
            memory_mb=config.control_plane_memory_mb,
            config=config,
        )
        # One run at a time: a scheduled run and the deploy trigger never plan against each
        # other's half-applied changes, and the signing secret has a single writer.
        function = self.subscriptions.function.node.default_child
        if isinstance(function, lambda_.CfnFunction):
            function.reserved_concurrent_executions = 1
        self._grant_subscriptions(gateways_table, ds_header_secret, v2020_signing_secret)
        self.subscriptions_schedule = self._schedule(
            SUBSCRIPTIONS_SCHEDULE_RULE_ID,
            resource_name(stage, "subscriptions"),
            config.subscriptions_schedule_minutes,
            self.subscriptions.function,
            "Reconcile the webhook subscriptions",
        )
        self.reconcile_after_deploy = triggers.Trigger(
            self,
            "ReconcileAfterDeploy",
            handler=self.subscriptions.function,
            invocation_type=triggers.InvocationType.EVENT,
            execute_after=[*reconcile_after, self.subscriptions_table],
            execute_on_handler_change=True,
        )
        self._acknowledge_trigger_provider()

        self.gateway_health = SensorhookFunction(
            self,
            "GatewayHealth",
            stage=stage,
            name="gateway-health",
            handler=GATEWAY_HEALTH_HANDLER,
            description="Judges gateways online or offline and sensors silent, publishes changes",
            environment=settings_environment(
                GatewayHealthSettings,
                {
                    "ds_api_base_url": config.everactive_ds_api_base_url,
                    "ds_api_token_url": config.everactive_ds_api_token_url,
                    "ds_api_credentials_secret_arn": self.ds_api_credentials.secret_arn,
                    "api_timeout_seconds": str(config.api_timeout_seconds),
                    "api_max_attempts": config.api_max_attempts,
                    "gateways_table": gateways_table.table_name,
                    "sensor_state_table": sensor_state_table.table_name,
                    "event_bus_name": bus.event_bus_name,
                    "gateway_offline_after_seconds": config.gateway_offline_after_seconds,
                    "sensor_silent_after_periods": str(config.sensor_silent_after_periods),
                    "default_sensor_period_seconds": config.default_sensor_period_seconds,
                    "subscriptions_table": self.subscriptions_table.table_name,
                    "desired_subscriptions": self.desired_subscriptions,
                    "recovery_state_machine_arn": self.recovery_state_machine_arn,
                },
            ),
            timeout=Duration.seconds(config.gateway_health_timeout_seconds),
            memory_mb=config.control_plane_memory_mb,
            config=config,
        )
        self._grant_gateway_health(gateways_table, sensor_state_table, bus)
        for function in (self.subscriptions, self.gateway_health):
            acknowledge(
                function.role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                "<AWS::AccountId>:execution:"
                f"{state_machine_name(stage, 'recovery')}:*]",
                "DescribeExecution on the executions of the one recovery machine: their names "
                "(one per incident) are not known when the policy is written.",
            )
        self.gateway_health_schedule = self._schedule(
            GATEWAY_HEALTH_SCHEDULE_RULE_ID,
            resource_name(stage, "gateway-health"),
            config.gateway_health_schedule_minutes,
            self.gateway_health.function,
            "Poll the provider's gateway health",
        )

    def _credentials_secret(
        self, construct_id: str, name: str, description: str, removal: RemovalPolicy
    ) -> secretsmanager.Secret:
        return provider_issued_secret(
            self,
            construct_id,
            name=name,
            description=f'{description}: {{"client_id", "client_secret"}}. Put the real values '
            "with put-secret-value (docs/configuration.md).",
            shape=_CREDENTIALS_SHAPE,
            removal=removal,
            why_no_rotation_lambda="Everactive issues these client credentials to the partner; "
            "they are rotated by asking Everactive for new ones and putting them here, which no "
            "rotation Lambda can do.",
        )

    def _schedule(
        self,
        logical_id: str,
        rule_name: str,
        minutes: int,
        function: lambda_.IFunction,
        description: str,
    ) -> events.Rule:
        rule = events.Rule(
            self,
            logical_id,
            rule_name=rule_name,
            description=f"{description} every {minutes} minutes",
            schedule=events.Schedule.rate(Duration.minutes(minutes)),
            targets=[targets.LambdaFunction(function, retry_attempts=2)],
        )
        cfn_rule = rule.node.default_child
        if isinstance(cfn_rule, CfnResource):
            cfn_rule.override_logical_id(logical_id)
        return rule

    def _grant_subscriptions(
        self,
        gateways_table: dynamodb.ITable,
        ds_header_secret: secretsmanager.ISecret,
        v2020_signing_secret: secretsmanager.ISecret,
    ) -> None:
        role = self.subscriptions.role
        for sid, actions, resources in (
            (
                "SubscriptionStates",
                [*_TABLE_READ, "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                [self.subscriptions_table.table_arn],
            ),
            (
                "StartRecoveries",
                ["states:StartExecution"],
                [self.recovery_state_machine_arn],
            ),
            ("SeeRecoveries", ["states:DescribeExecution"], [self.recovery_executions_arn]),
            ("ReadGatewayContacts", ["dynamodb:Scan"], [gateways_table.table_arn]),
            (
                "ReadHeadersAndCredentials",
                ["secretsmanager:GetSecretValue"],
                [
                    ds_header_secret.secret_arn,
                    self.ds_api_credentials.secret_arn,
                    self.v2020_api_credentials.secret_arn,
                ],
            ),
            (
                "StoreGeneratedSigningSecrets",
                ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                [v2020_signing_secret.secret_arn],
            ),
        ):
            role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))

    def _grant_gateway_health(
        self,
        gateways_table: dynamodb.ITable,
        sensor_state_table: dynamodb.ITable,
        bus: events.IEventBus,
    ) -> None:
        role = self.gateway_health.role
        # sensor_state is the processor's: this role writes only the silence item's attributes
        # (one `#silence` item per sensor), and an UpdateItem cannot hand back whole items
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SensorSilence",
                actions=["dynamodb:UpdateItem"],
                resources=[sensor_state_table.table_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "dynamodb:Attributes": [
                            SENSOR_STATE_PARTITION_KEY,
                            SENSOR_STATE_SORT_KEY,
                            *SILENCE_ATTRIBUTES,
                        ]
                    },
                    "StringEqualsIfExists": {
                        "dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]
                    },
                },
            )
        )
        for sid, actions, resources in (
            (
                "GatewayHealth",
                [*_TABLE_READ, "dynamodb:UpdateItem"],
                [gateways_table.table_arn],
            ),
            # what is due, from the due index; a silent sensor heard again, by its key
            (
                "QueryDueSensors",
                ["dynamodb:Query"],
                [f"{sensor_state_table.table_arn}/index/{DUE_INDEX}"],
            ),
            ("ReadDueSensors", ["dynamodb:BatchGetItem"], [sensor_state_table.table_arn]),
            ("PublishHealthEvents", ["events:PutEvents"], [bus.event_bus_arn]),
            # a silent readings subscription: its incident opened on its row, then started
            ("OpenIncidents", ["dynamodb:UpdateItem"], [self.subscriptions_table.table_arn]),
            ("StartRecoveries", ["states:StartExecution"], [self.recovery_state_machine_arn]),
            ("SeeRecoveries", ["states:DescribeExecution"], [self.recovery_executions_arn]),
            (
                "ReadApiCredentials",
                ["secretsmanager:GetSecretValue"],
                [self.ds_api_credentials.secret_arn],
            ),
        ):
            role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))

    def _acknowledge_trigger_provider(self) -> None:
        """The trigger's provider is a CDK singleton at stack level (Node.js, AWS-managed)."""
        stack = Stack.of(self)
        for child in stack.node.children:
            if child.node.id.startswith("AWSCDK.TriggerCustomResourceProvider"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AWSLambdaBasicExecutionRole]",
                    "The CDK triggers provider is a CDK-managed singleton whose role carries "
                    "only the basic execution policy (its own logs); it invokes one function.",
                )

    def add_alarms(self, topic: sns.ITopic, config: StageConfig) -> list[cloudwatch.Alarm]:
        """Alarms on the control plane's EMF metrics, to the operator's topic."""
        health_period = Duration.minutes(config.gateway_health_schedule_minutes)
        api_errors = {
            # the API client dimensions its metrics by API flavor as well
            flavor.replace("-", "").replace(".", ""): _metric(
                "ProviderApiErrors", "Sum", health_period, flavor=flavor
            )
            for flavor in ("data-services", "v2020-07")
        }
        action = cw_actions.SnsAction(topic)
        alarms = []
        for construct_id, metric, description in (
            (
                "GatewaysOfflineAlarm",
                _metric("GatewaysOffline", "Maximum", health_period),
                "At least one gateway has not been heard from within the offline threshold.",
            ),
            (
                "ProviderApiErrorsAlarm",
                cloudwatch.MathExpression(
                    expression=" + ".join(f"FILL({name}, 0)" for name in api_errors),
                    using_metrics=dict(api_errors),
                    period=health_period,
                    label="ProviderApiErrors",
                ),
                "Calls to the provider's API failed after their retries.",
            ),
            (
                "ReconcileErrorsAlarm",
                _metric(
                    "ReconcileErrors",
                    "Sum",
                    Duration.minutes(config.subscriptions_schedule_minutes),
                ),
                "The subscriptions reconciler could not plan or apply a subscription; see "
                "last_error in the subscriptions table.",
            ),
        ):
            alarm = cloudwatch.Alarm(
                self,
                construct_id,
                alarm_description=description,
                metric=metric,
                threshold=0,
                comparison_operator=_ABOVE,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarms.append(alarm)
        return alarms


def _metric(name: str, statistic: str, period: Duration, **dimensions: str) -> cloudwatch.Metric:
    """An EMF metric as Powertools emits it: namespace sensorhook, `service` dimension."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={**_METRIC_DIMENSIONS, **dimensions},
        statistic=statistic,
        period=period,
    )
