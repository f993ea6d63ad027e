"""The endpoint policy (docs/forwarding.md): one Standard state machine and its task function.

The machine owns every status transition of a forwarding endpoint and the long waits (the
six-hour hold, the thirty-hour clock, the backoff between backlog attempts); the forwarder only
starts it when a transition or a backlog is due. One execution lives through one incident of
one endpoint (or one operator action), never one per event: Standard workflows bill per state
transition, and a healthy endpoint runs none.

    Action? ──enable──▶ OperatorEnable ─────────────────────────────┐
       │ └──disable──▶ OperatorDisable ──┐                          ▼
       └──────────────────────────────▶ Evaluate ◀──────────────── Drain ◀── Backoff (wait)
                                          │ next?                    ▲            ▲
                  done ◀──────────────────┤                          │            │
                  watch ─▶ Watch (wait) ──┘ (evaluate again)         │            │
                  hold ──▶ Hold (wait) ─▶ ReEnable ──────────────────┘            │
                  drain ─────────────────────────────────────────────────────────┘

A task that still fails after its retries releases the endpoint's lock (a DynamoDB task,
no Lambda needed), so the next delivery attempt starts a fresh execution.
"""

from aws_cdk import CfnElement, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import StageConfig
from infra.constants import (
    ENDPOINT_POLICY_HANDLER,
    ENDPOINT_POLICY_STATE_MACHINE_ID,
    ENDPOINTS_PARTITION_KEY,
    ENDPOINTS_SORT_KEY,
    resource_name,
)
from infra.constructs.function import SensorhookFunction, settings_environment
from infra.nag import acknowledge, acknowledge_prefix_wildcard
from sensorhook.core.settings import EndpointPolicySettings
from sensorhook.dal.backlog import BACKLOG_PREFIX
from sensorhook.dal.endpoints_store import STATE_ENTRY

_TASK_RETRY = {"interval": Duration.seconds(2), "max_attempts": 5, "backoff_rate": 2.0}


class EndpointPolicy(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        config: StageConfig,
        forwarding_environment: dict[str, str | int],
        endpoints_table: dynamodb.ITable,
        bucket: s3.IBucket,
        secrets: list[secretsmanager.ISecret],
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = SensorhookFunction(
            self,
            "Function",
            stage=stage,
            name="endpoint-policy",
            handler=ENDPOINT_POLICY_HANDLER,
            description="The endpoint policy machine's steps: transitions, re-enable, backlog",
            environment=settings_environment(
                EndpointPolicySettings,
                {
                    **forwarding_environment,
                    "event_bus_name": bus.event_bus_name,
                    "policy_check_seconds": config.forwarding_policy_check_seconds,
                    "policy_drain_batch": config.forwarding_drain_batch,
                },
            ),
            timeout=Duration.seconds(config.forwarder_timeout_seconds * 5),
            memory_mb=config.forwarding_memory_mb,
            config=config,
        )
        self._grant(endpoints_table, bucket, secrets, bus)
        self.state_machine = self._state_machine(stage, config, endpoints_table)

    def _state_machine(
        self, stage: str, config: StageConfig, table: dynamodb.ITable
    ) -> sfn.StateMachine:
        release = tasks.DynamoUpdateItem(
            self,
            "ReleaseAfterFailure",
            table=table,
            key={
                ENDPOINTS_PARTITION_KEY: tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.string_at("$.endpoint")
                ),
                ENDPOINTS_SORT_KEY: tasks.DynamoAttributeValue.from_string(STATE_ENTRY),
            },
            update_expression="REMOVE policy_execution",
            result_path=sfn.JsonPath.DISCARD,
        ).next(sfn.Fail(self, "Failed", error="EndpointPolicyFailed"))

        def step(
            construct_id: str, payload: dict[str, object], result_path: str
        ) -> tasks.LambdaInvoke:
            """A policy task: the answer lands at `result_path` beside the input (endpoint,
            action); retried, then the lock released if it keeps failing."""
            task = tasks.LambdaInvoke(
                self,
                construct_id,
                lambda_function=self.function.function,
                payload=sfn.TaskInput.from_object(
                    {"endpoint": sfn.JsonPath.string_at("$.endpoint"), **payload}
                ),
                payload_response_only=True,
                retry_on_service_exceptions=False,
                result_path=result_path,
            )
            task.add_retry(errors=["States.ALL"], **_TASK_RETRY)  # type: ignore[arg-type]
            task.add_catch(release, result_path="$.error")
            return task

        execution = sfn.JsonPath.string_at("$$.Execution.Name")
        evaluate = step("Evaluate", {"task": "evaluate", "execution": execution}, "$.decision")
        reenable = step("ReEnable", {"task": "reenable"}, "$.reenabled")
        drain = step("Drain", {"task": "drain"}, "$.drained")
        operator_enable = step(
            "OperatorEnable", {"task": "operator", "action": "enable"}, "$.operator"
        )
        operator_disable = step(
            "OperatorDisable", {"task": "operator", "action": "disable"}, "$.operator"
        )

        wait_for = sfn.WaitTime.seconds_path("$.decision.wait_seconds")
        watch = sfn.Wait(self, "Watch", time=wait_for, comment="failing: look again later")
        hold = sfn.Wait(self, "Hold", time=wait_for, comment="temporarily disabled")
        backoff = sfn.Wait(self, "Backoff", time=wait_for, comment="before the next backlog try")
        done = sfn.Succeed(self, "Done")

        decision = (
            sfn.Choice(self, "Next")
            .when(sfn.Condition.string_equals("$.decision.next", "done"), done)
            .when(sfn.Condition.string_equals("$.decision.next", "watch"), watch)
            .when(sfn.Condition.string_equals("$.decision.next", "hold"), hold)
            .when(sfn.Condition.string_equals("$.decision.next", "drain"), backoff)
            .otherwise(evaluate)
        )
        evaluate.next(decision)
        watch.next(evaluate)
        hold.next(reenable)
        reenable.next(drain)
        backoff.next(drain)
        drain.next(evaluate)
        operator_enable.next(drain)
        operator_disable.next(evaluate)
        start = (
            sfn.Choice(self, "Action")
            .when(sfn.Condition.string_equals("$.action", "enable"), operator_enable)
            .when(sfn.Condition.string_equals("$.action", "disable"), operator_disable)
            .otherwise(evaluate)
        )
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{resource_name(stage, 'endpoint-policy')}",
            retention=logs.RetentionDays[config.log_retention],
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=resource_name(stage, "endpoint-policy"),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(start),
            comment="Efento's endpoint policy for one forwarding endpoint (docs/forwarding.md)",
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
        )
        cfn_machine = machine.node.default_child
        if isinstance(cfn_machine, CfnResource):
            cfn_machine.override_logical_id(ENDPOINT_POLICY_STATE_MACHINE_ID)
        stack = Stack.of(self)
        cfn_function = self.function.function.node.default_child
        if not isinstance(cfn_function, CfnElement):
            raise TypeError("the policy function must be defined in this app")
        function_id = stack.resolve(stack.get_logical_id(cfn_function))
        acknowledge(
            machine,
            f"AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
            "Step Functions invokes the policy function by any version or alias of that one "
            "function; the wildcard is its qualifier only.",
        )
        acknowledge(
            machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions' log delivery and X-Ray actions support no resource-level "
            "permissions (AWS documents them on *).",
        )
        return machine

    def _grant(
        self,
        table: dynamodb.ITable,
        bucket: s3.IBucket,
        secrets: list[secretsmanager.ISecret],
        bus: events.IEventBus,
    ) -> None:
        role = self.function.role
        for sid, actions, resources in (
            (
                "EndpointStates",
                [
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:PutItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                ],
                [table.table_arn],
            ),
            ("ListBacklog", ["s3:ListBucket"], [bucket.bucket_arn]),
            (
                "DeliverBacklog",
                ["s3:GetObject", "s3:DeleteObject"],
                [bucket.arn_for_objects(f"{BACKLOG_PREFIX}*")],
            ),
            ("PublishStatusChanges", ["events:PutEvents"], [bus.event_bus_arn]),
        ):
            role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))
        if secrets:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadSigningSecrets",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[secret.secret_arn for secret in secrets],
                )
            )
        acknowledge_prefix_wildcard(
            role,
            bucket,
            BACKLOG_PREFIX,
            "The policy delivers and deletes the backlog under forwarding-backlog/<endpoint>/; "
            "the wildcard stays inside that prefix.",
        )
