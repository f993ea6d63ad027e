"""`sensorhook status`, help, and what every command does when something is wrong."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from typer.main import get_command

from cli.commands import status as status_command
from cli.main import app
from infra.constants import Output
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.archive import Archive, quarantine_key
from sensorhook.dal.health_store import GatewayHealth, HealthStore
from sensorhook.dal.subscriptions_store import (
    SubscriptionsStore,
    SubscriptionState,
    SubscriptionStatus,
)
from tests.cli.conftest import BUCKET, STACK, Stack


def _seed_installation(stack: Stack) -> None:
    now = datetime.now(UTC)  # status shows times relative to when it runs
    subscriptions = SubscriptionsStore(stack.table(Output.SUBSCRIPTIONS_TABLE), stack.dynamodb)
    subscriptions.put(
        SubscriptionState(
            name="ds-sensor-readings",
            provider="everactive-ds",
            event_type="sensor_reading",
            callback_url="https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/x",
            status=SubscriptionStatus.ACTIVE,
            provider_id="wh-1",
            last_reconciled_at=now,
            last_event_at=now - timedelta(minutes=3),
        )
    )
    subscriptions.put(
        SubscriptionState(
            name="v2020-steam-traps",
            provider="everactive-v2020-07",
            event_type="steam_trap_state_change",
            callback_url="https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/y",
            status=SubscriptionStatus.ERROR,
            last_reconciled_at=now,
            last_error="401 from the provider API: check the API credentials secret",
        )
    )
    health = HealthStore(
        stack.table(Output.GATEWAYS_TABLE), stack.table(Output.SENSOR_STATE_TABLE), stack.dynamodb
    )
    for gateway, state in (
        ("GW-ONLINE-1", GatewayHealth.ONLINE),
        ("GW-DOWN-2", GatewayHealth.OFFLINE),
    ):
        health.record_api_contact("everactive", gateway, now - timedelta(hours=2))
        health.change_gateway_health(
            "everactive", gateway, expected=None, health=state, changed_at=now - timedelta(hours=1)
        )
    for sensor, silent in (("00:11:22:33:44:55", True), ("00:11:22:33:44:66", False)):
        stack.dynamodb.put_item(
            TableName=stack.table(Output.SENSOR_STATE_TABLE),
            Item={
                "series": {"S": f"everactive#{sensor}"},
                "metric_channel": {"S": "temperature#1"},
                "provider": {"S": "everactive"},
                "sensor_id": {"S": sensor},
                "measured_at": {"S": (now - timedelta(hours=5)).isoformat()},
            },
        )
        if silent:
            health.change_sensor_silence(
                "everactive",
                sensor,
                silent=True,
                changed_at=now,
                last_measured_at=now - timedelta(hours=5),
            )
    stack.sqs.send_message(QueueUrl=stack.outputs[Output.DLQ_URL], MessageBody="{}")
    envelope = IngestEnvelope(
        flavor=Flavor.EFENTO_MEASUREMENTS,
        event_id="efento:abc",
        received_at=now,
        request_id="r-1",
        body="{}",
    )
    Archive(BUCKET, stack.s3).put_quarantine(quarantine_key(envelope), envelope, "bad body")


def test_status_shows_the_installation_on_one_screen(stack: Stack, sensorhook) -> None:
    # Given an installation with a failing subscription, an offline gateway, a silent sensor,
    # a dead letter and a quarantined delivery
    _seed_installation(stack)

    # When the operator asks for the status
    result = sensorhook("status")

    # Then each of them is on the screen, and what the stack lacks reads "not deployed"
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("ds-sensor-readings" in line and "active" in line and "3m" in line for line in lines)
    assert any(
        "v2020-steam-traps" in line and "error" in line and "401 from the provider" in line
        for line in lines
    )
    assert any("GW-DOWN-2" in line and "offline" in line and "1h" in line for line in lines)
    assert any("GW-ONLINE-1" in line and "online" in line for line in lines)
    assert "Silent sensors (1 of 2)" in result.stdout
    assert any("00:11:22:33:44:55" in line for line in lines)
    assert not any("00:11:22:33:44:66" in line for line in lines)
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if "│" in line]
    assert ["dead-letter", "1", "0", "-"] in rows
    [quarantine] = [row for row in rows if row[0] == "quarantine (S3)"]
    assert quarantine[1:3] == ["1", "-"] and quarantine[3].endswith("s ago")
    assert "Forwarding endpoints: not deployed" in result.stdout
    assert "Open incidents: not deployed" in result.stdout
    assert "Needs attention:" in result.stdout
    assert STACK in lines[0]


def test_status_json_is_for_scripts(stack: Stack, sensorhook) -> None:
    _seed_installation(stack)

    result = sensorhook("status", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stack"]["name"] == STACK and report["stack"]["mode"] == "deployed"
    assert {s["name"]: s["status"] for s in report["subscriptions"]} == {
        "ds-sensor-readings": "active",
        "v2020-steam-traps": "error",
    }
    assert {g["gateway_id"]: g["health"] for g in report["gateways"]} == {
        "GW-DOWN-2": "offline",
        "GW-ONLINE-1": "online",
    }
    assert [s["sensor_id"] for s in report["sensors"]["silent"]] == ["00:11:22:33:44:55"]
    assert report["queues"]["dead-letter"]["waiting"] == 1
    assert report["queues"]["ingest"] == {
        "queue": "sensorhook-dev-ingest",
        "waiting": 0,
        "in_flight": 0,
        "oldest_age_s": None,
    }
    assert report["quarantine"]["count"] == 1
    assert report["forwarding_endpoints"] == report["incidents"] == "not deployed"
    assert "1 gateway(s) offline: GW-DOWN-2" in report["attention"]


def test_every_command_has_help_with_an_example() -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    root = get_command(app)
    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        subcommands = getattr(command, "commands", {})
        if not subcommands:
            paths.append(path)
        for name, sub in subcommands.items():
            walk(sub, [*path, name])

    walk(root, [])
    assert len(paths) >= 11
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.stdout, path
        assert "--json" in result.stdout, path


def test_shell_completion_is_offered() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in result.stdout


def test_a_missing_stack_is_one_line_and_exit_1(stack: Stack, sensorhook) -> None:
    result = sensorhook("status", stack="sensorhook-nope")

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: no stack sensorhook-nope in us-east-1: pick another with --stack/--stage/--region"
    ]
    assert "Traceback" not in result.output


def test_a_declared_stage_not_deployed_says_how_to_deploy_it(stack: Stack, sensorhook) -> None:
    result = sensorhook("--stage", "prod", "status", stack=None)

    assert result.exit_code == 1
    assert "no stack sensorhook-prod in us-east-1: deploy it (`make deploy STAGE=prod`)" in (
        result.stderr
    )


def test_a_stage_cdk_json_does_not_declare_is_refused(stack: Stack, sensorhook) -> None:
    result = sensorhook("--stage", "staging", "status", stack=None)

    assert result.exit_code == 1
    assert "stage 'staging' is not in cdk.json (its stages: dev, prod)" in result.stderr


def test_the_default_is_the_stack_of_cdk_jsons_stage(stack: Stack, sensorhook, tmp_path) -> None:
    # no local stack file: the dev stage's stack, sensorhook-dev
    result = sensorhook("--endpoints", str(tmp_path / "none.json"), "status", "--json", stack=None)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stack"]["name"] == STACK


def test_no_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, sensorhook, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    result = sensorhook("status")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: no AWS credentials: set AWS_PROFILE")
    assert "Traceback" not in result.output


def test_throttling_is_one_line_exit_75_and_debug_shows_the_traceback(
    stack: Stack, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given AWS answering the status's reads with throttling
    def throttled(found):
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Scan"
        )

    monkeypatch.setattr(status_command, "gather", throttled)

    # Then the operator reads one line and a temporary-failure status
    result = sensorhook("status")
    assert result.exit_code == 75
    assert result.stderr.strip() == (
        "error: AWS is throttling Scan (ThrottlingException): wait a moment and run it again"
    )
    # and --debug lets the exception through, traceback and all
    debug = sensorhook("--debug", "status")
    assert isinstance(debug.exception, ClientError)


def test_a_local_stack_that_is_not_running_is_one_line(sensorhook, tmp_path) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(
        json.dumps({"aws_endpoint": "http://127.0.0.1:9", "api_url": "http://127.0.0.1:9/"})
    )

    result = sensorhook("--endpoints", str(endpoints), "status", stack=None)

    assert result.exit_code == 1
    assert "the local stack is not running at http://127.0.0.1:9" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["backfill", "00:11:22:33:44:55", "--from", "2026-05-01", "--to", "2026-05-02"],
        ["endpoints", "list"],
        ["endpoints", "enable", "warehouse-erp"],
        ["endpoints", "disable", "warehouse-erp", "--yes"],
    ],
)
def test_features_of_other_issues_say_they_are_not_deployed(
    stack: Stack, sensorhook, args: list[str]
) -> None:
    result = sensorhook(*args)

    assert result.exit_code == 1
    assert "is not deployed in this stack" in result.stderr
    assert "Traceback" not in result.output


def test_a_stack_with_the_feature_is_told_apart_from_one_without(stack: Stack, sensorhook) -> None:
    # Given a stack that publishes the forwarding endpoints' output (its table still empty)
    stack.dynamodb.create_table(
        TableName="sensorhook-dev-endpoints",
        KeySchema=[
            {"AttributeName": "endpoint", "KeyType": "HASH"},
            {"AttributeName": "entry", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "endpoint", "AttributeType": "S"},
            {"AttributeName": "entry", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    stack.add_outputs({"ForwardingEndpointsTable": "sensorhook-dev-endpoints"})

    result = sensorhook("endpoints", "list")
    status = json.loads(sensorhook("status", "--json").stdout)

    # (the commands are wired now: tests/cli/test_cli_endpoints.py drives them)
    assert result.exit_code == 0, result.output
    assert "No forwarding endpoints are configured." in result.stdout
    assert status["forwarding_endpoints"] == []
    assert status["incidents"] == "not deployed"
