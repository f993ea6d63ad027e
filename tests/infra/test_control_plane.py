"""The control plane in the synthesized stack (docs/subscriptions.md, docs/control-plane.md), and
the synth-time validation of declared subscriptions."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from infra import constants
from infra.app import cdk_json_context
from infra.config import ConfigError, load_stage_config
from infra.constants import FUNCTION_RUNTIME_ENVIRONMENT, Output
from sensorhook.core.settings import (
    DesiredSubscription,
    GatewayHealthSettings,
    SubscriptionsSettings,
)
from sensorhook.dal.health_store import HealthStore
from tests.infra.cfn import Synth, function_id, one_logical_id, render, role_grants

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    *FUNCTION_RUNTIME_ENVIRONMENT,
}
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RECOVERY_EXECUTIONS_ARN = (
    "arn:AWS::Partition:states:AWS::Region:AWS::AccountId:execution:sensorhook-dev-recovery:*"
)
RECOVERY_MACHINE_ARN = (
    "arn:AWS::Partition:states:AWS::Region:AWS::AccountId:stateMachine:sensorhook-dev-recovery"
)


def _properties(synth: Synth, logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = synth.resources[logical_id]["Properties"]
    return properties


def _subscriptions(synth: Synth) -> str:
    return function_id(synth.resources, constants.SUBSCRIPTIONS_HANDLER)


def _health(synth: Synth) -> str:
    return function_id(synth.resources, constants.GATEWAY_HEALTH_HANDLER)


def _environment(synth: Synth, function: str) -> dict[str, Any]:
    variables: dict[str, Any] = _properties(synth, function)["Environment"]["Variables"]
    return variables


def _table(synth: Synth, name: str) -> str:
    return one_logical_id(
        synth.resources, "AWS::DynamoDB::Table", TableName=constants.resource_name("dev", name)
    )


def _secret(synth: Synth, name: str) -> str:
    return one_logical_id(
        synth.resources, "AWS::SecretsManager::Secret", Name=constants.secret_name("dev", name)
    )


def _role_of(synth: Synth, function: str) -> str:
    return str(_properties(synth, function)["Role"]["Fn::GetAtt"][0])


def _own_grants(synth: Synth, function: str) -> set[tuple[str, str]]:
    """The role's grants minus what every function has (its logs, X-Ray)."""
    return {
        (action, resource)
        for action, resource in role_grants(synth.resources, _role_of(synth, function))
        if not action.startswith(("logs:", "xray:"))
    }


# --- schedules and the run after deploy -------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "function", "rate"),
    [
        (constants.SUBSCRIPTIONS_SCHEDULE_RULE_ID, _subscriptions, "rate(15 minutes)"),
        (constants.GATEWAY_HEALTH_SCHEDULE_RULE_ID, _health, "rate(5 minutes)"),
    ],
)
def test_each_control_plane_function_runs_on_a_plain_schedule_rule(
    dev: Synth, rule_id: str, function: Any, rate: str
) -> None:
    # a plain rule with a ScheduleExpression and a Lambda target: the local runtime fires it
    rule = dev.resources[rule_id]

    assert rule["Type"] == "AWS::Events::Rule"
    assert rule["Properties"]["ScheduleExpression"] == rate
    assert rule["Properties"]["State"] == "ENABLED"
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function(dev), "Arn"]}
    permission = one_logical_id(
        dev.resources,
        "AWS::Lambda::Permission",
        SourceArn={"Fn::GetAtt": [rule_id, "Arn"]},
    )
    assert _properties(dev, permission)["Principal"] == "events.amazonaws.com"


def test_the_reconcile_runs_after_deploy_asynchronously_once_the_api_exists(dev: Synth) -> None:
    trigger_id = one_logical_id(dev.resources, "Custom::Trigger")
    trigger = dev.resources[trigger_id]
    version = render(trigger["Properties"]["HandlerArn"])

    assert dev.resources[version]["Type"] == "AWS::Lambda::Version"
    assert dev.resources[version]["Properties"]["FunctionName"] == {"Ref": _subscriptions(dev)}
    # Event: CloudFormation never waits for (or fails on) the provider
    assert trigger["Properties"]["InvocationType"] == "Event"
    http_api = one_logical_id(dev.resources, "AWS::ApiGatewayV2::Api")
    receiver = function_id(dev.resources, constants.RECEIVER_HANDLER)
    assert {http_api, receiver, _table(dev, "subscriptions")} <= set(trigger["DependsOn"])


def test_reconciles_never_overlap(dev: Synth) -> None:
    assert _properties(dev, _subscriptions(dev))["ReservedConcurrentExecutions"] == 1


# --- environments ---------------------------------------------------------------------------


def test_environments_are_exactly_the_settings_models(dev: Synth) -> None:
    for function, model in (
        (_subscriptions(dev), SubscriptionsSettings),
        (_health(dev), GatewayHealthSettings),
    ):
        expected = {name.upper() for name in model.model_fields} | POWERTOOLS_ENV
        assert set(_environment(dev, function)) == expected, model.__name__


def test_the_declared_subscriptions_reach_the_function_validated(dev: Synth) -> None:
    environment = _environment(dev, _subscriptions(dev))
    declared = cdk_json_context()["sensorhook"]["stages"]["dev"]["subscriptions"]

    rendered = [
        DesiredSubscription.model_validate(entry)
        for entry in json.loads(environment["DESIRED_SUBSCRIPTIONS"])
    ]

    assert [s.name for s in rendered] == [entry["name"] for entry in declared]
    assert rendered == [DesiredSubscription.model_validate(entry) for entry in declared]
    http_api = one_logical_id(dev.resources, "AWS::ApiGatewayV2::Api")
    assert http_api in render(environment["WEBHOOK_BASE_URL"])
    assert render(environment["WEBHOOK_BASE_URL"]).startswith("https://")
    assert environment["DS_API_BASE_URL"] == "https://api.data.everactive.com/ds/v1"
    assert environment["V2020_API_TOKEN_URL"] == (
        "https://api.data.everactive.com/v2020-07/auth/token"
    )
    assert environment["SUBSCRIPTIONS_TABLE"] == {"Ref": _table(dev, "subscriptions")}


def test_prod_declares_no_subscriptions(prod: Synth) -> None:
    environment = _environment(prod, _subscriptions(prod))

    assert environment["DESIRED_SUBSCRIPTIONS"] == "[]"


# --- the table and the secrets --------------------------------------------------------------


def test_subscriptions_table_is_keyed_by_name_on_demand_and_recoverable(dev: Synth) -> None:
    table = _properties(dev, _table(dev, "subscriptions"))

    assert table["KeySchema"] == [{"AttributeName": "name", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_api_credentials_secrets_are_placeholders_in_the_documented_shape(dev: Synth) -> None:
    for name in ("everactive-ds-api-credentials", "everactive-v2020-api-credentials"):
        secret = _properties(dev, _secret(dev, name))
        template = json.loads(secret["GenerateSecretString"]["SecretStringTemplate"])

        assert template == {"client_id": "", "client_secret": ""}
        assert "SecretString" not in secret


# --- least privilege ------------------------------------------------------------------------


def test_subscriptions_role_is_its_table_gateway_reads_and_its_secrets(dev: Synth) -> None:
    table = f"{_table(dev, 'subscriptions')}.Arn"
    gateways = f"{_table(dev, 'gateways')}.Arn"
    ds_headers = _secret(dev, "everactive-ds-webhook-headers")
    signing = _secret(dev, "everactive-v2020-signing-keys")
    credentials = [
        _secret(dev, "everactive-ds-api-credentials"),
        _secret(dev, "everactive-v2020-api-credentials"),
    ]

    assert _own_grants(dev, _subscriptions(dev)) == {
        *(
            (f"dynamodb:{action}", table)
            # rows are written with UpdateItem so a run never overwrites an incident's attributes
            for action in ("GetItem", "Query", "Scan", "UpdateItem", "DeleteItem")
        ),
        ("states:StartExecution", RECOVERY_MACHINE_ARN),
        ("states:DescribeExecution", RECOVERY_EXECUTIONS_ARN),
        ("dynamodb:Scan", gateways),
        ("secretsmanager:GetSecretValue", ds_headers),
        *(("secretsmanager:GetSecretValue", secret) for secret in credentials),
        ("secretsmanager:GetSecretValue", signing),
        ("secretsmanager:PutSecretValue", signing),
    }


def test_gateway_health_role_reads_and_judges_gateways_and_publishes(dev: Synth) -> None:
    gateways = f"{_table(dev, 'gateways')}.Arn"
    sensor_state = f"{_table(dev, 'sensor-state')}.Arn"
    bus = one_logical_id(dev.resources, "AWS::Events::EventBus")

    assert _own_grants(dev, _health(dev)) == {
        *(
            (f"dynamodb:{action}", gateways)
            for action in ("GetItem", "Query", "Scan", "UpdateItem")
        ),
        # what is due, from the keys-only due index, then those sensors' state items by key:
        # no Scan of the whole table (changed on purpose: docs/architecture.md "Sensor state")
        ("dynamodb:Query", f"{sensor_state}/index/due"),
        ("dynamodb:BatchGetItem", sensor_state),
        ("dynamodb:UpdateItem", sensor_state),
        ("events:PutEvents", f"{bus}.Arn"),
        ("secretsmanager:GetSecretValue", _secret(dev, "everactive-ds-api-credentials")),
        # a silent readings subscription: its incident opened on its row, its recovery started
        ("dynamodb:UpdateItem", f"{_table(dev, 'subscriptions')}.Arn"),
        ("states:StartExecution", RECOVERY_MACHINE_ARN),
        ("states:DescribeExecution", RECOVERY_EXECUTIONS_ARN),
    }


def test_gateway_health_writes_only_the_silence_attributes_of_sensor_state(dev: Synth) -> None:
    # Given the gateway-health role's statement on the processor's sensor_state table
    [statement] = [
        statement
        for resource in dev.resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": _role_of(dev, _health(dev))} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "SensorSilence"
    ]

    # Then it allows UpdateItem of the key and the silence item's attributes only, which are
    # exactly the ones the health store's UpdateItem names
    assert statement["Action"] == "dynamodb:UpdateItem"
    condition = statement["Condition"]
    allowed = condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert allowed == [
        "series",
        "metric_channel",
        "silent",
        "silence_changed_at",
        "last_measured_at",
        # a silent sensor's item enters the due index, and leaves it when heard again
        "due_shard",
        "due_at",
    ]
    for silent in (True, False):
        request = _silence_update_request(silent=silent)
        named = {*request["Key"], *request["ExpressionAttributeNames"].values()}
        assert named <= set(allowed)
        assert "ReturnValues" not in request
    assert condition["StringEqualsIfExists"]["dynamodb:ReturnValues"] == [
        "NONE",
        "UPDATED_OLD",
        "UPDATED_NEW",
    ]


def _silence_update_request(*, silent: bool) -> dict[str, Any]:
    """The UpdateItem request HealthStore sends to flag a sensor silent (or heard again)."""
    requests: list[dict[str, Any]] = []

    class Recording:
        def update_item(self, **request: Any) -> None:
            requests.append(request)

    HealthStore("gateways", "sensor-state", client=Recording()).change_sensor_silence(
        "efento", "282c02424eed", silent=silent, changed_at=NOW, last_measured_at=NOW
    )
    [request] = requests
    return request


def test_neither_control_plane_function_can_touch_the_bucket_or_the_queue(dev: Synth) -> None:
    for function in (_subscriptions(dev), _health(dev)):
        actions = {action for action, _ in _own_grants(dev, function)}
        assert not {a for a in actions if a.startswith(("s3:", "sqs:"))}


# --- alarms and outputs ---------------------------------------------------------------------


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in synth.resources.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


@pytest.mark.parametrize("metric", ["GatewaysOffline", "ReconcileErrors"])
def test_an_alarm_fires_on_any_emf_count_above_zero(dev: Synth, metric: str) -> None:
    [alarm] = [a for a in _alarms(dev).values() if a.get("MetricName") == metric]

    assert alarm["Namespace"] == "sensorhook"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "sensorhook"}]
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    topic = one_logical_id(dev.resources, "AWS::SNS::Topic", TopicName="sensorhook-dev-alarms")
    assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_provider_api_errors_alarm_sums_both_api_flavors(dev: Synth) -> None:
    [alarm] = [
        a
        for a in _alarms(dev).values()
        if any(
            m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "ProviderApiErrors"
            for m in a.get("Metrics", [])
        )
    ]
    flavors = {
        dimension["Value"]
        for m in alarm["Metrics"]
        if "MetricStat" in m
        for dimension in m["MetricStat"]["Metric"]["Dimensions"]
        if dimension["Name"] == "flavor"
    }

    assert flavors == {"data-services", "v2020-07"}
    assert alarm["Threshold"] == 0


def test_control_plane_functions_alarm_on_errors_like_the_others(dev: Synth) -> None:
    dimensions = [
        a.get("Dimensions") for a in _alarms(dev).values() if a.get("MetricName") == "Errors"
    ]

    for function in (_subscriptions(dev), _health(dev)):
        assert [{"Name": "FunctionName", "Value": {"Ref": function}}] in dimensions


def test_control_plane_outputs_have_fixed_ids(dev: Synth) -> None:
    assert dev.outputs[Output.SUBSCRIPTIONS_TABLE]["Value"] == {"Ref": _table(dev, "subscriptions")}
    assert dev.outputs[Output.SUBSCRIPTIONS_FUNCTION_NAME]["Value"] == {"Ref": _subscriptions(dev)}
    assert dev.outputs[Output.GATEWAY_HEALTH_FUNCTION_NAME]["Value"] == {"Ref": _health(dev)}
    assert dev.outputs[Output.DS_API_CREDENTIALS_SECRET_ARN]["Value"] == {
        "Ref": _secret(dev, "everactive-ds-api-credentials")
    }


# --- validation at synth --------------------------------------------------------------------


def _load(**values: Any) -> Any:
    return load_stage_config({"stages": {"dev": values}}, "dev")


def _ds(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "ds-readings",
        "provider": "everactive-ds",
        "event_type": "sensor_reading",
        "header_names": ["x-api-key"],
    } | overrides


def _efento(**overrides: Any) -> dict[str, Any]:
    return {"name": "efento", "provider": "efento", "event_type": "measurements"} | overrides


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"webhook_base_url": "http://hooks.example.com"},
            "webhook_base_url: Value error, must be an https",
        ),
        ({"everactive_ds_api_base_url": "http://api.example.com"}, "everactive_ds_api_base_url"),
        ({"subscriptions": [_ds(header_names=["X-Key", "x-key"])]}, "unique ignoring case"),
        ({"subscriptions": [_ds(header_names=["bad name"])]}, "HTTP field names"),
        ({"subscriptions": [_ds(), _ds(name="again")]}, "deliver every event twice"),
        ({"subscriptions": [_ds(), _ds()]}, "names must be unique"),
        ({"subscriptions": [_ds(route="everactive-ds-gateway-status")]}, "served on route"),
        ({"subscriptions": [_ds(secret="efento-header")]}, "authenticated by ds-header"),
        ({"subscriptions": [_ds(event_type="measurements")]}, "has no event type measurements"),
        ({"subscriptions": [_ds(flavour="typo")]}, "flavour: Extra inputs are not permitted"),
        (
            {
                "subscriptions": [
                    {
                        "name": "traps",
                        "provider": "everactive-v2020-07",
                        "event_type": "steam_trap_state_change",
                        "header_names": ["x-api-key"],
                    }
                ]
            },
            "signed by the provider",
        ),
        (
            {"subscriptions": [_efento(header_names=[f"h{n}" for n in range(6)])]},
            "at most 5 headers",
        ),
        ({"subscriptions": [_efento(header_names=["h" * 513])]}, "at most 512"),
        (
            {
                "webhook_base_url": "https://" + "a" * 480 + ".example.com",
                "subscriptions": [_efento()],
            },
            "at most 500 characters",
        ),
    ],
)
def test_bad_subscription_config_stops_the_synth_naming_the_problem(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(**values)

    assert message in str(raised.value)
    assert str(raised.value).startswith("stage 'dev':")


def test_route_and_secret_follow_from_provider_and_event_type() -> None:
    config = _load(subscriptions=[_efento(header_names=["x-efento-token"])])

    [efento] = config.subscriptions
    assert efento.route == "efento-measurements"
    assert efento.secret == "efento-header"
    assert efento.callback_url("https://api.example.com/") == (
        "https://api.example.com/webhooks/efento/measurements"
    )
