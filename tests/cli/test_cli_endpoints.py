"""`sensorhook endpoints` and status's endpoints section: the endpoints table on moto, the
policy machine's StartExecution on a stubbed Step Functions client."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import ANY

from infra.constants import ENDPOINTS_PARTITION_KEY, ENDPOINTS_SORT_KEY, Output
from sensorhook.core.forwarding import EndpointStatus
from sensorhook.dal.endpoints_store import AttemptSummary, EndpointsStore
from sensorhook.logic.endpoint_policy import Outcome
from tests.cli.conftest import Stack
from tests.cli.stubs import stubbed

TABLE = "sensorhook-dev-endpoints"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:sensorhook-dev-endpoint-policy"


@pytest.fixture
def endpoints(stack: Stack) -> EndpointsStore:
    """The stack with forwarding deployed: warehouse-erp failing and disabled by the policy,
    data-lake healthy, spare configured but never triggered."""
    stack.dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": ENDPOINTS_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": ENDPOINTS_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": ENDPOINTS_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": ENDPOINTS_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    stack.add_outputs(
        {
            Output.ENDPOINTS_TABLE: TABLE,
            Output.ENDPOINT_POLICY_STATE_MACHINE_ARN: MACHINE,
            Output.FORWARDING_ENDPOINTS: "warehouse-erp,data-lake,spare",
        }
    )
    store = EndpointsStore(TABLE, stack.dynamodb)
    now = datetime.now(UTC)
    store.record_attempts(
        "data-lake", AttemptSummary(now - timedelta(minutes=2), Outcome.OK, 200, now, None)
    )
    store.transition(store.get("data-lake"), EndpointStatus.OK, now, "delivered")
    failed_at = now - timedelta(hours=31)
    store.record_attempts(
        "warehouse-erp", AttemptSummary(failed_at, Outcome.ERROR, 503, None, failed_at)
    )
    store.transition(store.get("warehouse-erp"), EndpointStatus.DISABLED, now, "30 h failing")
    return store


def test_list_shows_efento_statuses_last_attempt_and_response(
    endpoints: EndpointsStore, sensorhook
) -> None:
    result = sensorhook("endpoints", "list")

    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if "│" in line}
    assert "OK" in lines["data-lake"] and "2m" in lines["data-lake"]
    assert "200" in lines["data-lake"]
    assert "Disabled" in lines["warehouse-erp"] and "503" in lines["warehouse-erp"]
    assert "1d 7h ago" in lines["warehouse-erp"]  # the last attempt, 31 hours ago
    assert "New" in lines["spare"]


def test_list_json_carries_every_field(endpoints: EndpointsStore, sensorhook) -> None:
    rows = {
        row["name"]: row for row in json.loads(sensorhook("endpoints", "list", "--json").stdout)
    }

    assert rows["warehouse-erp"]["status"] == "Disabled"
    assert rows["warehouse-erp"]["last_response_code"] == 503
    assert rows["spare"]["status"] == "New" and rows["spare"]["last_attempt_at"] is None
    assert rows["data-lake"]["backlog_events"] == 0


def test_enable_starts_the_policy_machine_with_the_operators_action(
    endpoints: EndpointsStore, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stubbed(monkeypatch, "stepfunctions") as states:
        states.add_response(
            "start_execution",
            {"executionArn": MACHINE + ":x", "startDate": datetime.now(UTC)},
            {
                "stateMachineArn": MACHINE,
                "name": ANY,
                "input": json.dumps({"endpoint": "warehouse-erp", "action": "enable"}),
            },
        )
        result = sensorhook("endpoints", "enable", "warehouse-erp", "--yes", "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["action"] == "enable" and answer["execution"].startswith("warehouse-erp-enable-")
    # the lock names the execution, so the policy's own runs defer to the operator's
    assert endpoints.get("warehouse-erp").policy_execution == answer["execution"]


def test_disable_asks_first_and_a_no_changes_nothing(
    endpoints: EndpointsStore, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stubbed(monkeypatch, "stepfunctions"):  # no response queued: a call would fail
        result = sensorhook("endpoints", "disable", "data-lake", input="n\n")

    assert result.exit_code == 1
    assert "disable forwarding endpoint data-lake (now OK)?" in result.stdout
    assert "not confirmed, nothing changed" in result.stderr
    assert endpoints.get("data-lake").policy_execution is None


def test_an_unknown_endpoint_is_a_usage_error(endpoints: EndpointsStore, sensorhook) -> None:
    result = sensorhook("endpoints", "enable", "nope", "--yes")

    assert result.exit_code == 2
    assert "no endpoint 'nope'" in result.output
    assert "Traceback" not in result.output


def test_status_shows_the_endpoints_and_what_needs_attention(
    endpoints: EndpointsStore, sensorhook
) -> None:
    result = sensorhook("status")
    report = json.loads(sensorhook("status", "--json").stdout)

    assert result.exit_code == 0, result.output
    assert "Forwarding endpoints" in result.stdout and "warehouse-erp" in result.stdout
    assert [row["status"] for row in report["forwarding_endpoints"]] == ["OK", "New", "Disabled"]
    assert "endpoint warehouse-erp: Disabled" in report["attention"]
    assert report["incidents"] == "not deployed"
