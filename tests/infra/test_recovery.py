"""The recovery state machine's definition as synthesized (docs/recovery.md): Retry with
backoff and jitter on every provider-API task, a bounded Map, Catch paths to giving up, the
roles granted only what the steps do, and its configuration validated at synth."""

import json
from typing import Any

import pytest

from infra.app import cdk_json_context
from infra.config import ConfigError, StageConfig, load_stage_config
from infra.constants import FUNCTION_RUNTIME_ENVIRONMENT, RECOVERY_HANDLER, Output
from sensorhook.core.settings import RecoverySettings
from tests.infra.cfn import Synth, function_id, one_logical_id, render, role_grants

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    *FUNCTION_RUNTIME_ENVIRONMENT,
}


def _machine_id(synth: Synth) -> str:
    return one_logical_id(
        synth.resources,
        "AWS::StepFunctions::StateMachine",
        StateMachineName=f"{synth.stack.stack_name}-recovery",
    )


def _definition(synth: Synth) -> dict[str, Any]:
    """The definition with each function's ARN rendered as `<logical id>.Arn`."""
    body = synth.resources[_machine_id(synth)]["Properties"]["DefinitionString"]
    return dict(json.loads(render(body)))


def _states(synth: Synth) -> dict[str, Any]:
    definition = _definition(synth)
    states = dict(definition["States"])
    states |= definition["States"]["Backfill"]["ItemProcessor"]["States"]
    return states


def _config(**values: Any) -> StageConfig:
    context = cdk_json_context()["sensorhook"]
    context["stages"]["dev"] = {**context["stages"]["dev"], **values}
    return load_stage_config(context, "dev")


def test_a_standard_machine_logging_everything_with_tracing(dev: Synth) -> None:
    properties = dev.resources[_machine_id(dev)]["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["StateMachineName"] == "sensorhook-dev-recovery"
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert properties["TracingConfiguration"] == {"Enabled": True}


def test_re_enabling_is_retried_with_exponential_backoff_and_jitter_then_gives_up(
    dev: Synth,
) -> None:
    config = load_stage_config(cdk_json_context()["sensorhook"], "dev")
    re_enable = _states(dev)["ReEnable"]
    # it calls the subscriptions function (one reconcile at a time), not a copy of its logic
    subscriptions = function_id(dev.resources, "sensorhook.handlers.subscriptions.handler")
    assert re_enable["Resource"] == f"{subscriptions}.Arn"
    [retry] = re_enable["Retry"]
    # SubscriptionNotRecovered, provider errors, Lambda throttling: every failure is retried
    assert retry["ErrorEquals"] == ["States.ALL"]
    assert retry["MaxAttempts"] == config.recovery_attempts - 1
    assert retry["IntervalSeconds"] == config.recovery_backoff_seconds
    assert retry["BackoffRate"] == config.recovery_backoff_rate
    assert retry["MaxDelaySeconds"] == config.recovery_backoff_max_seconds
    assert retry["JitterStrategy"] == "FULL"
    assert re_enable["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "GiveUp"}
    ]


def test_giving_up_notifies_the_topic_and_fails_the_execution(dev: Synth) -> None:
    states = _states(dev)
    assert states["GiveUp"]["Next"] == "NotifyOperator"
    topic = one_logical_id(dev.resources, "AWS::SNS::Topic", TopicName="sensorhook-dev-recovery")
    notify = states["NotifyOperator"]
    assert notify["Resource"].endswith(":states:::sns:publish")
    assert notify["Parameters"]["TopicArn"] == topic
    assert notify["Next"] == "SubscriptionDisabled"
    assert states["SubscriptionDisabled"]["Type"] == "Fail"


def test_each_sensor_backfill_is_retried_on_provider_errors_in_a_bounded_map(dev: Synth) -> None:
    config = load_stage_config(cdk_json_context()["sensorhook"], "dev")
    backfill = _states(dev)["Backfill"]
    assert backfill["Type"] == "Map"
    assert backfill["MaxConcurrency"] == config.recovery_map_concurrency
    assert backfill["ItemsPath"] == "$.plan.items"
    # results stay in the incidents table: the state does not grow with the sensors
    assert backfill["ResultPath"] is None
    sensor = _states(dev)["BackfillSensor"]
    [retry] = sensor["Retry"]
    assert {"ProviderUnavailable", "RateLimited", "TransportError"} <= set(retry["ErrorEquals"])
    assert retry["MaxAttempts"] == config.recovery_backfill_attempts - 1
    assert retry["JitterStrategy"] == "FULL"
    # a sensor that still fails is recorded and the others go on; the Map itself ends in Finish
    assert sensor["Catch"][0]["Next"] == "SensorNotBackfilled"
    assert backfill["Catch"][0]["Next"] == "Finish"


def test_every_task_retries_lambda_service_errors(dev: Synth) -> None:
    for name, state in _states(dev).items():
        if state["Type"] == "Task":
            errors = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
            assert errors & {"Lambda.ServiceException", "States.ALL"}, name


def test_a_backfill_can_be_started_on_its_own(dev: Synth) -> None:
    definition = _definition(dev)
    start = definition["States"][definition["StartAt"]]
    assert start["Type"] == "Choice"
    assert start["Choices"] == [
        {"Variable": "$.cause", "StringEquals": "operator_backfill", "Next": "PlanBackfill"}
    ]
    assert start["Default"] == "ReEnable"


def test_the_confirm_loop_is_bounded_by_the_configured_wait(dev: Synth) -> None:
    config = load_stage_config(cdk_json_context()["sensorhook"], "dev")
    states = _states(dev)
    assert states["ConfirmDeliveries"]["Parameters"]["max_checks"] == -(
        -config.recovery_confirm_wait_seconds // config.recovery_confirm_poll_seconds
    )
    assert states["WaitForFirstDelivery"]["Seconds"] == config.recovery_confirm_poll_seconds


def test_the_machine_role_invokes_its_two_functions_and_publishes_to_its_topic(
    dev: Synth,
) -> None:
    role = render(dev.resources[_machine_id(dev)]["Properties"]["RoleArn"]).removesuffix(".Arn")
    recovery = function_id(dev.resources, RECOVERY_HANDLER)
    subscriptions = function_id(dev.resources, "sensorhook.handlers.subscriptions.handler")
    topic = one_logical_id(dev.resources, "AWS::SNS::Topic", TopicName="sensorhook-dev-recovery")
    grants = role_grants(dev.resources, role)
    invoked = {resource for action, resource in grants if action == "lambda:InvokeFunction"}
    assert invoked == {
        f"{recovery}.Arn",
        f"{recovery}.Arn:*",
        f"{subscriptions}.Arn",
        f"{subscriptions}.Arn:*",
    }
    assert ("sns:Publish", topic) in grants
    # nothing else names a resource but what logs and tracing require (no resource-level ARN)
    others = {
        (action, resource)
        for action, resource in grants
        if action not in ("lambda:InvokeFunction", "sns:Publish")
    }
    assert {resource for _, resource in others} == {"*"}
    assert {action.split(":")[0] for action, _ in others} == {"logs", "xray"}


def test_the_recovery_function_role_is_what_its_steps_do(dev: Synth) -> None:
    function = function_id(dev.resources, RECOVERY_HANDLER)
    role = render(dev.resources[function]["Properties"]["Role"]).removesuffix(".Arn")
    grants = role_grants(dev.resources, role)
    incidents = one_logical_id(
        dev.resources, "AWS::DynamoDB::Table", TableName="sensorhook-dev-recovery-incidents"
    )
    subscriptions = one_logical_id(
        dev.resources, "AWS::DynamoDB::Table", TableName="sensorhook-dev-subscriptions"
    )
    queue = one_logical_id(dev.resources, "AWS::SQS::Queue", QueueName="sensorhook-dev-ingest")
    own = {(a, r) for a, r in grants if not a.startswith(("logs:", "xray:"))}
    assert ("sqs:SendMessage", f"{queue}.Arn") in own
    assert ("dynamodb:UpdateItem", f"{subscriptions}.Arn") in own
    assert {a for a, r in own if r == f"{incidents}.Arn"} == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
    }
    # never the readings, the bucket or a delete
    assert not [a for a, _ in own if a.startswith("s3:") or a.endswith("DeleteItem")]
    assert not [a for a, _ in own if a in ("dynamodb:PutItem",) and "Readings" in _]


def test_the_recovery_function_environment_is_its_settings_model(dev: Synth) -> None:
    function = function_id(dev.resources, RECOVERY_HANDLER)
    environment = dev.resources[function]["Properties"]["Environment"]["Variables"]
    assert set(environment) == {name.upper() for name in RecoverySettings.model_fields} | (
        POWERTOOLS_ENV
    )


def test_recovery_outputs_have_fixed_ids(dev: Synth) -> None:
    for output in (
        Output.RECOVERY_STATE_MACHINE_ARN,
        Output.RECOVERY_TOPIC_ARN,
        Output.INCIDENTS_TABLE,
        Output.RECOVERY_FUNCTION_NAME,
    ):
        assert output in dev.outputs


def test_an_operator_email_subscribes_to_the_recovery_topic(prod: Synth) -> None:
    config = _config(recovery_email="ops@example.com")
    assert config.recovery_email == "ops@example.com"
    # prod declares none: no subscription is created
    assert not [
        r
        for r in prod.resources.values()
        if r["Type"] == "AWS::SNS::Subscription" and "recovery" in json.dumps(r)
    ]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"recovery_attempts": 0}, "recovery_attempts"),
        ({"recovery_window_hours": 25}, "recovery_window_hours"),
        ({"recovery_map_concurrency": 0}, "recovery_map_concurrency"),
        ({"recovery_map_max_sensors": 3000}, "recovery_map_max_sensors"),
        ({"recovery_backoff_rate": 0.5}, "recovery_backoff_rate"),
        ({"recovery_email": "not-an-address"}, "recovery_email"),
        (
            {"recovery_backoff_seconds": 600, "recovery_backoff_max_seconds": 60},
            "recovery_backoff_max_seconds",
        ),
    ],
)
def test_bad_recovery_values_stop_the_synth_naming_the_key(
    values: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        _config(**values)
    assert named in str(raised.value)


def test_defaults_are_the_documented_ones() -> None:
    config = StageConfig()
    assert (
        config.recovery_attempts,
        config.recovery_backoff_seconds,
        config.recovery_backoff_rate,
        config.recovery_confirm_wait_seconds,
        config.recovery_map_concurrency,
        config.recovery_window_hours,
    ) == (6, 60, 2.0, 900, 4, 24)
    assert config.recovery_confirm_checks == 15
