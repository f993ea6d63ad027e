"""`sensorhook backfill`: the input it starts the recovery machine with (validated by the
machine's own model), the follow through the incidents table, the record printed at the end;
and status's open incidents. Step Functions is a stubbed client; the tables are moto's."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from infra.constants import Output
from sensorhook.dal.incidents_store import IncidentsStore
from sensorhook.dal.subscriptions_store import (
    SubscriptionsStore,
    SubscriptionState,
    SubscriptionStatus,
)
from sensorhook.logic.backfill import SensorBackfill
from sensorhook.logic.incidents import IncidentCause, RecoveryInput
from tests.cli.conftest import Stack
from tests.cli.stubs import stubbed

TABLE = "sensorhook-dev-incidents"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:sensorhook-dev-recovery"
EXECUTION = "ds-sensor-readings-backfill-0123456789abcdef"
EXECUTION_ARN = MACHINE.replace(":stateMachine:", ":execution:") + ":" + EXECUTION
SENSOR = "bc:5e:a1:ff:fe:3a:62:ce"
ARGS = ("backfill", SENSOR, "--from", "2026-11-28", "--to", "2026-11-29T00:00:00Z", "--poll", "0")


@pytest.fixture
def recovery(stack: Stack) -> IncidentsStore:
    stack.dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "incident", "KeyType": "HASH"},
            {"AttributeName": "part", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "incident", "AttributeType": "S"},
            {"AttributeName": "part", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    stack.add_outputs({Output.RECOVERY_STATE_MACHINE_ARN: MACHINE, Output.INCIDENTS_TABLE: TABLE})
    return IncidentsStore(TABLE, stack.dynamodb)


def _incident(outcome: str = "recovered") -> dict[str, Any]:
    return {
        "subscription": "ds-sensor-readings",
        "provider": "everactive-ds",
        "event_type": "sensor_reading",
        "incident_id": "backfill-0123456789abcdef",
        "execution": EXECUTION,
        "cause": "operator_backfill",
        "outcome": outcome,
        "started_at": "2026-11-29T21:00:00Z",
        "ended_at": "2026-11-29T21:00:12Z",
        "duration_s": 12.4,
        "sensors": 1,
        "readings_recovered": 1440,
        "readings_recovered_per_sensor": {SENSOR: 1440},
        "windows_read": 24,
        "api_calls": 25,
        "failed_sensors": [],
    }


def _queue_execution(states: Stubber, status: str, incident: dict[str, Any] | None) -> None:
    """StartExecution, one RUNNING look, then the end with the incident record as output."""
    states.add_response(
        "start_execution",
        {"executionArn": EXECUTION_ARN, "startDate": datetime.now(UTC)},
        {"stateMachineArn": MACHINE, "name": ANY, "input": ANY},
    )
    base = {
        "executionArn": EXECUTION_ARN,
        "stateMachineArn": MACHINE,
        "startDate": datetime.now(UTC),
    }
    states.add_response(
        "describe_execution", {**base, "status": "RUNNING"}, {"executionArn": EXECUTION_ARN}
    )
    ended: dict[str, Any] = {**base, "status": status, "stopDate": datetime.now(UTC)}
    if incident is not None:
        ended["output"] = json.dumps({"incident": incident})
    else:
        ended["error"], ended["cause"] = "States.TaskFailed", "the provider API refused the key"
    states.add_response("describe_execution", ended, {"executionArn": EXECUTION_ARN})


def _sent_inputs(states: Stubber) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    states.client.meta.events.register(
        "before-parameter-build.sfn.StartExecution",
        lambda params, **_: sent.append(dict(params)),
    )
    return sent


def test_backfill_sends_the_documented_input_and_prints_the_record(
    recovery: IncidentsStore, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a sensor's progress as the machine's Map records it
    recovery.record_sensor(
        EXECUTION,
        f"sensor#{SENSOR}",
        SensorBackfill(
            sensor_id=SENSOR,
            start=datetime(2026, 11, 28, tzinfo=UTC),
            end=datetime(2026, 11, 29, tzinfo=UTC),
            readings=1440,
            windows=24,
        ),
        api_calls=25,
    )
    with stubbed(monkeypatch, "stepfunctions") as states:
        sent = _sent_inputs(states)
        _queue_execution(states, "SUCCEEDED", _incident())
        result = sensorhook(*ARGS, "--yes")

    assert result.exit_code == 0, result.output
    (request,) = sent
    document = RecoveryInput.model_validate_json(request["input"])  # the machine's own model
    assert document.cause is IncidentCause.OPERATOR_BACKFILL
    assert document.subscription == "ds-sensor-readings" and document.provider == "everactive-ds"
    assert document.backfill is not None and document.backfill.sensors == (SENSOR,)
    assert document.backfill.start == datetime(2026, 11, 28, tzinfo=UTC)
    assert document.backfill.end == datetime(2026, 11, 29, tzinfo=UTC)
    # named <subscription>-<incident_id>, so the same command again is the same execution
    assert request["name"] == f"{document.subscription}-{document.incident_id}"
    assert f"{SENSOR}: 1440 readings" in result.stderr  # the progress, per sensor
    lines = result.stdout.splitlines()
    assert any("readings recovered" in line and "1440" in line for line in lines)
    assert any("windows read" in line and "24" in line for line in lines)
    assert any("recovered" in line and "outcome" in line for line in lines)


def test_the_same_backfill_twice_is_the_same_execution(
    recovery: IncidentsStore, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = []
    for _ in range(2):
        with stubbed(monkeypatch, "stepfunctions") as states:
            sent = _sent_inputs(states)
            _queue_execution(states, "SUCCEEDED", _incident())
            assert sensorhook(*ARGS, "--yes", "--json").exit_code == 0
            names.append(sent[0]["name"])

    assert names[0] == names[1]


def test_backfill_json_is_the_incident_record(
    recovery: IncidentsStore, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stubbed(monkeypatch, "stepfunctions") as states:
        _queue_execution(states, "SUCCEEDED", _incident())
        result = sensorhook(*ARGS, "--yes", "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["execution_arn"] == EXECUTION_ARN
    assert answer["incident"]["readings_recovered"] == 1440


def test_a_failed_execution_is_one_line_with_its_cause(
    recovery: IncidentsStore, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stubbed(monkeypatch, "stepfunctions") as states:
        _queue_execution(states, "FAILED", None)
        result = sensorhook(*ARGS, "--yes")

    assert result.exit_code == 1
    assert "ended FAILED: the provider API refused the key" in result.stderr
    assert "Traceback" not in result.output


def test_backfill_asks_first(recovery: IncidentsStore, sensorhook, monkeypatch) -> None:
    with stubbed(monkeypatch, "stepfunctions"):  # nothing queued: a start would fail the test
        result = sensorhook(*ARGS, input="n\n")

    assert result.exit_code == 1
    assert f"backfill {SENSOR} from 2026-11-28 00:00 to 2026-11-29 00:00 UTC?" in result.stdout
    assert "not confirmed" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("backfill", "--from", "2026-11-28", "--to", "2026-11-29"), "give one SENSOR or --all"),
        (("backfill", SENSOR, "--all", "--from", "2026-11-28", "--to", "2026-11-29"), "give one"),
        (("backfill", SENSOR, "--from", "2026-11-29", "--to", "2026-11-28"), "must be before"),
        (("backfill", SENSOR, "--from", "yesterday", "--to", "2026-11-28"), "give a date"),
        (("backfill", "--all", "--to", "2026-11-28"), "both --from and --to"),
    ],
)
def test_bad_ranges_are_usage_errors(
    recovery, sensorhook, args: tuple[str, ...], message: str
) -> None:
    result = sensorhook(*args, "--yes")

    assert result.exit_code == 2
    assert message in result.output


def test_all_sends_no_sensor_list(recovery, sensorhook, monkeypatch) -> None:
    with stubbed(monkeypatch, "stepfunctions") as states:
        sent = _sent_inputs(states)
        _queue_execution(states, "SUCCEEDED", _incident())
        result = sensorhook(
            "backfill",
            "--all",
            "--from",
            "2026-11-28",
            "--to",
            "2026-11-29",
            "--poll",
            "0",
            "--yes",
        )

    assert result.exit_code == 0, result.output
    assert json.loads(sent[0]["input"])["backfill"]["sensors"] is None


def test_status_lists_open_incidents(recovery, stack: Stack, sensorhook) -> None:
    store = SubscriptionsStore(stack.table(Output.SUBSCRIPTIONS_TABLE), stack.dynamodb)
    store.put(
        SubscriptionState(
            name="ds-sensor-readings",
            provider="everactive-ds",
            event_type="sensor_reading",
            callback_url="https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/x",
            status=SubscriptionStatus.SILENT,
            last_reconciled_at=datetime.now(UTC),
        )
    )
    store.open_incident(
        "ds-sensor-readings",
        "silent-20261129T2100Z",
        "silent",
        datetime.now(UTC) - timedelta(minutes=5),
    )

    report = json.loads(sensorhook("status", "--json").stdout)
    screen = sensorhook("status").stdout

    assert report["incidents"] == [
        {
            "subscription": "ds-sensor-readings",
            "incident_id": "silent-20261129T2100Z",
            "cause": "silent",
            "started_at": report["incidents"][0]["started_at"],
        }
    ]
    assert "1 open incident(s)" in report["attention"]
    assert "Open incidents" in screen and "silent-20261129T2100Z" in screen
