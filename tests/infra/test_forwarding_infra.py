"""The forwarding resources as synthesized for the dev stage (two local endpoints in cdk.json)."""

import json
from typing import Any

from infra import constants
from infra.constants import FUNCTION_RUNTIME_ENVIRONMENT, Output
from sensorhook.core.settings import EndpointPolicySettings, ForwarderSettings
from tests.infra.cfn import Synth, function_id, logical_ids, one_logical_id, render, role_grants

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    *FUNCTION_RUNTIME_ENVIRONMENT,
}


def _properties(synth: Synth, logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = synth.resources[logical_id]["Properties"]
    return properties


def _role_of(synth: Synth, function_logical_id: str) -> str:
    return str(_properties(synth, function_logical_id)["Role"]["Fn::GetAtt"][0])


def _queue(synth: Synth, endpoint: str) -> str:
    return one_logical_id(
        synth.resources,
        "AWS::SQS::Queue",
        QueueName=constants.forwarding_queue_name("dev", endpoint),
    )


def test_each_endpoint_has_a_rule_a_durable_queue_and_its_own_mapping(dev: Synth) -> None:
    forwarder = function_id(dev.resources, constants.FORWARDER_HANDLER)
    endpoints = dev.stack.config.forwarding_endpoints
    assert [e.name for e in endpoints] == ["local-receiver", "local-everactive"]
    for endpoint in endpoints:
        queue_id = _queue(dev, endpoint.name)
        queue = _properties(dev, queue_id)
        assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
        assert queue["RedrivePolicy"]["maxReceiveCount"] >= 100
        assert queue["VisibilityTimeout"] >= 6 * dev.stack.config.forwarder_timeout_seconds
        [rule] = [
            r["Properties"]
            for r in dev.resources.values()
            if r["Type"] == "AWS::Events::Rule"
            and any(
                render(t["Arn"]) == f"{queue_id}.Arn" for t in r["Properties"].get("Targets", [])
            )
        ]
        pattern = rule["EventPattern"]
        assert pattern["source"] == ["sensorhook"]
        expected = [{"prefix": p[:-1]} if p.endswith("*") else p for p in endpoint.detail_types]
        assert pattern["detail-type"] == expected
        [mapping] = [
            m["Properties"]
            for m in dev.resources.values()
            if m["Type"] == "AWS::Lambda::EventSourceMapping"
            and render(m["Properties"]["EventSourceArn"]) == f"{queue_id}.Arn"
        ]
        assert render(mapping["FunctionName"]) == forwarder
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        # isolation: one endpoint holds at most this many forwarder invocations
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}


def test_prefix_and_exact_detail_types_render_as_eventbridge_patterns(dev: Synth) -> None:
    patterns = [
        r["Properties"]["EventPattern"]["detail-type"]
        for r in dev.resources.values()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    ]
    assert [{"prefix": "steam_trap."}] in patterns  # local-receiver: steam_trap.*
    assert ["steam_trap.state_changed"] in patterns  # local-everactive: exact


def test_the_policy_is_one_standard_state_machine_with_configured_waits(dev: Synth) -> None:
    machine = _properties(dev, constants.ENDPOINT_POLICY_STATE_MACHINE_ID)
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    definition = json.loads(
        "".join(
            part if isinstance(part, str) else "ARN"
            for part in machine["DefinitionString"]["Fn::Join"][1]
        )
    )
    states = definition["States"]
    waits = {name for name, state in states.items() if state["Type"] == "Wait"}
    assert waits == {"Watch", "Hold", "Backoff"}
    # every wait's length comes from the policy (configuration), never from the definition
    assert all(states[name]["SecondsPath"] == "$.decision.wait_seconds" for name in waits)
    # no per-event fan-out: the machine works on one endpoint, never on a list of events
    assert not [s for s in states.values() if s["Type"] in ("Map", "Parallel")]
    tasks = {name for name, state in states.items() if state["Type"] == "Task"}
    assert tasks == {
        "Evaluate",
        "ReEnable",
        "Drain",
        "OperatorEnable",
        "OperatorDisable",
        "ReleaseAfterFailure",
    }
    for name in tasks - {"ReleaseAfterFailure"}:
        assert states[name]["Catch"][0]["Next"] == "ReleaseAfterFailure"


def test_function_environments_are_exactly_their_settings_models(dev: Synth) -> None:
    for handler, model in (
        (constants.FORWARDER_HANDLER, ForwarderSettings),
        (constants.ENDPOINT_POLICY_HANDLER, EndpointPolicySettings),
    ):
        variables = _properties(dev, function_id(dev.resources, handler))["Environment"][
            "Variables"
        ]
        assert set(variables) == {name.upper() for name in model.model_fields} | POWERTOOLS_ENV
    forwarder = _properties(dev, function_id(dev.resources, constants.FORWARDER_HANDLER))
    variables = forwarder["Environment"]["Variables"]
    assert render(variables["STATE_MACHINE_ARN"]) == constants.ENDPOINT_POLICY_STATE_MACHINE_ID
    assert json.loads(variables["FORWARDING_POLICY"])["no_response_limit"] == 5


def test_forwarder_may_only_read_state_keep_backlog_start_the_policy_and_retry(dev: Synth) -> None:
    forwarder = function_id(dev.resources, constants.FORWARDER_HANDLER)
    grants = role_grants(dev.resources, _role_of(dev, forwarder))
    actions = {action for action, _ in grants}
    assert (
        actions
        - {
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "s3:PutObject",
            "states:StartExecution",
            "secretsmanager:GetSecretValue",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            # the event source mappings' own
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        }
        == set()
    )
    assert ("states:StartExecution", constants.ENDPOINT_POLICY_STATE_MACHINE_ID) in grants
    assert not [g for g in grants if g[0] == "events:PutEvents"]  # only the policy publishes
    assert [r for a, r in grants if a == "s3:PutObject"] == [
        next(r for a, r in grants if a == "s3:PutObject" and r.endswith("/forwarding-backlog/*"))
    ]


def test_policy_publishes_status_changes_and_delivers_the_backlog(dev: Synth) -> None:
    policy = function_id(dev.resources, constants.ENDPOINT_POLICY_HANDLER)
    grants = role_grants(dev.resources, _role_of(dev, policy))
    bus = one_logical_id(dev.resources, "AWS::Events::EventBus")
    assert ("events:PutEvents", f"{bus}.Arn") in grants
    deletes = [r for a, r in grants if a == "s3:DeleteObject"]
    assert deletes and all(r.endswith("/forwarding-backlog/*") for r in deletes)
    assert not [g for g in grants if g[0] == "states:StartExecution"]


def test_outputs_name_the_table_machine_and_endpoints(dev: Synth) -> None:
    assert dev.outputs[Output.FORWARDING_ENDPOINTS]["Value"] == "local-receiver,local-everactive"
    assert render(dev.outputs[Output.ENDPOINT_POLICY_STATE_MACHINE_ARN]["Value"]) == (
        constants.ENDPOINT_POLICY_STATE_MACHINE_ID
    )
    table = render(dev.outputs[Output.ENDPOINTS_TABLE]["Value"])
    key_schema = _properties(dev, table)["KeySchema"]
    assert key_schema == [
        {"AttributeName": "endpoint", "KeyType": "HASH"},
        {"AttributeName": "entry", "KeyType": "RANGE"},
    ]


def test_prod_declares_no_endpoint_and_still_synthesizes_the_policy(prod: Synth) -> None:
    assert prod.stack.config.forwarding_endpoints == ()
    assert not [
        q
        for q in logical_ids(prod.resources, "AWS::SQS::Queue")
        if "-forward-" in str(_properties(prod, q).get("QueueName", "")).replace("forward-dlq", "")
    ]
    assert constants.ENDPOINT_POLICY_STATE_MACHINE_ID in prod.resources
