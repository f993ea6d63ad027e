"""Subscription recovery (docs/recovery.md): a Standard state machine that re-enables a broken
subscription through the provider API, confirms deliveries resume, backfills the gap through
the readings API into the ingest queue, and records the incident, or gives up, marks the
subscription disabled and tells an operator on its own SNS topic.

Only the control plane starts it (the reconciler and gateway health), by name per incident.
The re-enable step invokes the subscriptions function itself, whose reserved concurrency of one
keeps it from racing a scheduled reconcile; a throttled invocation is retried like any other
failure of that step. Every other step is a task of the recovery function.
"""

from aws_cdk import CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import StageConfig
from infra.constants import (
    INCIDENTS_PARTITION_KEY,
    INCIDENTS_SORT_KEY,
    RECOVERY_HANDLER,
    resource_name,
    state_machine_name,
)
from infra.constructs.function import SensorhookFunction, settings_environment
from infra.constructs.storage import data_table
from infra.nag import acknowledge
from sensorhook.core.settings import RecoverySettings

RECOVERY_MACHINE = "recovery"
# Errors a provider API call may end in that are worth another attempt later (their class names,
# as Lambda reports them), and the Lambda service's own transient failures.
PROVIDER_TRANSIENT_ERRORS = ["ProviderUnavailable", "RateLimited", "TransportError"]
LAMBDA_TRANSIENT_ERRORS = [
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
]


class Recovery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        config: StageConfig,
        desired_subscriptions: str,
        subscriptions_function: lambda_.IFunction,
        subscriptions_table: dynamodb.ITable,
        gateways_table: dynamodb.ITable,
        sensor_state_table: dynamodb.ITable,
        readings_table: dynamodb.ITable,
        ingest_queue: sqs.IQueue,
        bus: events.IEventBus,
        ds_api_credentials: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        self.incidents_table = data_table(
            self,
            "IncidentsTable",
            resource_name(stage, "recovery-incidents"),
            config,
            partition_key=INCIDENTS_PARTITION_KEY,
            sort_key=INCIDENTS_SORT_KEY,
        )
        # the operator's "a subscription needs you" topic: a stack output, email from cdk.json
        self.topic = sns.Topic(
            self, "Topic", topic_name=resource_name(stage, "recovery"), enforce_ssl=True
        )
        if config.recovery_email:
            self.topic.add_subscription(sns_subscriptions.EmailSubscription(config.recovery_email))

        self.function = SensorhookFunction(
            self,
            "Function",
            stage=stage,
            name="recovery",
            handler=RECOVERY_HANDLER,
            description="The subscription recovery machine's tasks: confirm, plan, backfill, "
            "finish, give up",
            environment=settings_environment(
                RecoverySettings,
                {
                    "ds_api_base_url": config.everactive_ds_api_base_url,
                    "ds_api_token_url": config.everactive_ds_api_token_url,
                    "ds_api_credentials_secret_arn": ds_api_credentials.secret_arn,
                    "api_timeout_seconds": str(config.api_timeout_seconds),
                    "api_max_attempts": config.api_max_attempts,
                    "subscriptions_table": subscriptions_table.table_name,
                    "incidents_table": self.incidents_table.table_name,
                    "gateways_table": gateways_table.table_name,
                    "sensor_state_table": sensor_state_table.table_name,
                    "readings_table": readings_table.table_name,
                    "ingest_queue_url": ingest_queue.queue_url,
                    "event_bus_name": bus.event_bus_name,
                    "desired_subscriptions": desired_subscriptions,
                    "backfill_window_seconds": config.recovery_window_hours * 3600,
                    "backfill_max_hours": config.recovery_backfill_max_hours,
                    "map_max_items": config.recovery_map_max_sensors,
                },
            ),
            timeout=Duration.seconds(config.recovery_timeout_seconds),
            memory_mb=config.control_plane_memory_mb,
            config=config,
        )
        self._grant_function(
            subscriptions_table=subscriptions_table,
            gateways_table=gateways_table,
            sensor_state_table=sensor_state_table,
            readings_table=readings_table,
            ingest_queue=ingest_queue,
            bus=bus,
            ds_api_credentials=ds_api_credentials,
        )

        self.log_group = logs.LogGroup(
            self,
            "MachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{state_machine_name(stage, RECOVERY_MACHINE)}",
            retention=logs.RetentionDays[config.log_retention],
            removal_policy=removal,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name(stage, RECOVERY_MACHINE),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(
                self._definition(config, subscriptions_function)
            ),
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL),
            tracing_enabled=True,
            comment="Recover a broken webhook subscription and backfill its gap (docs/recovery.md)",
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions' log delivery (CreateLogDelivery and friends) and X-Ray actions "
            "support no resource-level permissions; every other statement names its resource.",
        )
        for function in (subscriptions_function, self.function.function):
            acknowledge(
                self.state_machine,
                f"AwsSolutions-IAM5[Resource::<{_logical_id(function)}.Arn>:*]",
                "CDK grants a Lambda task its function's versions and aliases "
                "(<function arn>:*) besides the function itself: the same one function.",
            )

    def _task(
        self, construct_id: str, payload: dict[str, object], result_path: str | None
    ) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            construct_id,
            lambda_function=self.function.function,
            payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path or sfn.JsonPath.DISCARD,
        )

    def _definition(
        self, config: StageConfig, subscriptions_function: lambda_.IFunction
    ) -> sfn.IChainable:
        execution = sfn.JsonPath.string_at("$$.Execution.Name")
        whole_state = sfn.JsonPath.object_at("$")

        give_up = self._task(
            "GiveUp",
            {"task": "give_up", "execution": execution, "state": whole_state},
            "$.incident",
        )
        self._retry_lambda(give_up)
        notify = tasks.SnsPublish(
            self,
            "NotifyOperator",
            topic=self.topic,
            subject=sfn.JsonPath.string_at("$.incident.subject"),
            message=sfn.TaskInput.from_json_path_at("$.incident.message"),
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry_lambda(notify)  # transient SNS failures: same backoff
        gave_up = give_up.next(notify).next(
            sfn.Fail(
                self,
                "SubscriptionDisabled",
                error="SubscriptionDisabled",
                cause="re-enabling failed after every attempt; an operator must act",
            )
        )

        re_enable = tasks.LambdaInvoke(
            self,
            "ReEnable",
            lambda_function=subscriptions_function,
            payload=sfn.TaskInput.from_object(
                {
                    "recover": {
                        "subscription": sfn.JsonPath.string_at("$.subscription"),
                        "incident_id": sfn.JsonPath.string_at("$.incident_id"),
                    }
                }
            ),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path="$.reenabled",
        )
        if config.recovery_attempts > 1:
            # every failure is worth another attempt later (a provider refusing today may not
            # tomorrow); only the attempts run out
            re_enable.add_retry(
                errors=["States.ALL"],
                interval=Duration.seconds(config.recovery_backoff_seconds),
                backoff_rate=config.recovery_backoff_rate,
                max_attempts=config.recovery_attempts - 1,
                max_delay=Duration.seconds(config.recovery_backoff_max_seconds),
                jitter_strategy=sfn.JitterType.FULL,
            )
        re_enable.add_catch(gave_up, errors=["States.ALL"], result_path="$.error")

        finish = self._task(
            "Finish",
            {"task": "finish", "execution": execution, "state": whole_state},
            "$.incident",
        )
        self._retry_lambda(finish)
        finished = finish.next(sfn.Succeed(self, "Recovered"))

        sensor = tasks.LambdaInvoke(
            self,
            "BackfillSensor",
            lambda_function=self.function.function,
            payload_response_only=True,  # no payload: the iteration's input, as is
            retry_on_service_exceptions=False,
            result_path=sfn.JsonPath.DISCARD,
        )
        sensor.add_retry(
            errors=[*PROVIDER_TRANSIENT_ERRORS, *LAMBDA_TRANSIENT_ERRORS],
            interval=Duration.seconds(config.recovery_backoff_seconds),
            backoff_rate=config.recovery_backoff_rate,
            max_attempts=config.recovery_backfill_attempts - 1,
            max_delay=Duration.seconds(config.recovery_backoff_max_seconds),
            jitter_strategy=sfn.JitterType.FULL,
        )
        # the sensor's record already says why (the task writes it before failing); the other
        # sensors go on, and the incident lists it as not backfilled
        sensor.add_catch(
            sfn.Pass(self, "SensorNotBackfilled"),
            errors=["States.ALL"],
            result_path=sfn.JsonPath.DISCARD,
        )
        backfill = sfn.Map(
            self,
            "Backfill",
            items_path="$.plan.items",
            max_concurrency=config.recovery_map_concurrency,
            item_selector={
                "task": "backfill",
                "execution": execution,
                "gap": sfn.JsonPath.object_at("$$.Map.Item.Value"),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        backfill.item_processor(sensor)
        backfill.add_catch(finished, errors=["States.ALL"], result_path="$.error")

        plan = self._task(
            "PlanBackfill",
            {"task": "plan", "execution": execution, "state": whole_state},
            "$.plan",
        )
        self._retry_lambda(plan)
        plan.next(backfill).next(finished)

        confirm = self._task(
            "ConfirmDeliveries",
            {
                "task": "confirm",
                "execution": execution,
                "state": whole_state,
                "max_checks": config.recovery_confirm_checks,
            },
            "$.confirmation",
        )
        self._retry_lambda(confirm)
        wait = sfn.Wait(
            self,
            "WaitForFirstDelivery",
            time=sfn.WaitTime.duration(Duration.seconds(config.recovery_confirm_poll_seconds)),
        )
        re_enable.next(confirm).next(
            sfn.Choice(self, "DeliveriesResumed")
            .when(sfn.Condition.boolean_equals("$.confirmation.done", True), plan)
            .otherwise(wait.next(confirm))
        )
        return (
            sfn.Choice(self, "StartedFor")
            .when(sfn.Condition.string_equals("$.cause", "operator_backfill"), plan)
            .otherwise(re_enable)
        )

    def _retry_lambda(self, state: sfn.TaskStateBase) -> None:
        state.add_retry(
            errors=[
                *LAMBDA_TRANSIENT_ERRORS,
                "SNS.ThrottledException",
                "SNS.InternalErrorException",
            ]
            if isinstance(state, tasks.SnsPublish)
            else LAMBDA_TRANSIENT_ERRORS,
            interval=Duration.seconds(2),
            backoff_rate=2.0,
            max_attempts=3,
            jitter_strategy=sfn.JitterType.FULL,
        )

    def _grant_function(
        self,
        *,
        subscriptions_table: dynamodb.ITable,
        gateways_table: dynamodb.ITable,
        sensor_state_table: dynamodb.ITable,
        readings_table: dynamodb.ITable,
        ingest_queue: sqs.IQueue,
        bus: events.IEventBus,
        ds_api_credentials: secretsmanager.ISecret,
    ) -> None:
        role = self.function.role
        for sid, actions, resources in (
            (
                "IncidentRecords",
                ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
                [self.incidents_table.table_arn],
            ),
            # only its incident attributes: close (and mark disabled on giving up)
            ("CloseIncidents", ["dynamodb:UpdateItem"], [subscriptions_table.table_arn]),
            ("ReadGatewayContacts", ["dynamodb:Scan"], [gateways_table.table_arn]),
            ("ReadSensors", ["dynamodb:Scan"], [sensor_state_table.table_arn]),
            ("FindWhereGapsStart", ["dynamodb:Query"], [readings_table.table_arn]),
            ("EnqueueBackfilledReadings", ["sqs:SendMessage"], [ingest_queue.queue_arn]),
            ("PublishRecoveryEvents", ["events:PutEvents"], [bus.event_bus_arn]),
            (
                "ReadApiCredentials",
                ["secretsmanager:GetSecretValue"],
                [ds_api_credentials.secret_arn],
            ),
        ):
            role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))


def _logical_id(function: lambda_.IFunction) -> str:
    stack = Stack.of(function)
    element = function.node.default_child
    if not isinstance(element, CfnElement):
        raise TypeError("the function must be defined in this app")
    return str(stack.resolve(stack.get_logical_id(element)))
