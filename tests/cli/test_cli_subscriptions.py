"""`sensorhook subscriptions reconcile`: the subscriptions function's dry run shown as a diff,
then applied after a yes. Lambda is a stub here that answers with the reconciler's own result
models (moto runs no Lambda code in process); the local e2e runs the real function."""

import io
import json
from typing import Any

import pytest

from cli.target import Target
from infra.constants import Output
from sensorhook.logic.subscriptions.plan import Action, ActionKind, ManualSubscription, Plan
from sensorhook.logic.subscriptions.result import ReconcileResult
from sensorhook.providers.everactive_api import WebhookHeader, WebhookSpec
from tests.cli.conftest import FUNCTIONS, Stack

CALLBACK = (
    "https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/everactive/ds/sensor-readings"
)
PLAN = Plan(
    actions=(
        Action(
            kind=ActionKind.CREATE,
            provider="everactive-ds",
            subscription="ds-sensor-readings",
            spec=WebhookSpec(
                callback_url=CALLBACK,
                event_type="sensor_reading",
                headers=[WebhookHeader(key="x-api-key", value="never-shown")],
            ),
        ),
        Action(
            kind=ActionKind.UPDATE,
            provider="everactive-ds",
            subscription="ds-gateway-status",
            webhook_id="wh-7",
            spec=WebhookSpec(callback_url=CALLBACK, event_type="gateway_status"),
            changes=("callback_url",),
        ),
    ),
    unchanged={"v2020-steam-traps": "wh-3"},
    manual=(
        ManualSubscription(
            subscription="efento-measurements",
            callback_url="https://abc123/webhooks/efento/measurements",
            header_names=("x-efento-token",),
        ),
    ),
)


class FakeLambda:
    """Answers Invoke like the subscriptions function: its handler returns summary()."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        self.calls.append((FunctionName, event))
        dry_run = event["dry_run"]
        result = ReconcileResult(
            dry_run=dry_run, plan=self.plan, applied=() if dry_run else self.plan.actions
        )
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result.summary()).encode())}


@pytest.fixture
def lambda_stub(monkeypatch: pytest.MonkeyPatch) -> FakeLambda:
    fake = FakeLambda(PLAN)
    real = Target.client
    monkeypatch.setattr(
        Target, "client", lambda self, service: fake if service == "lambda" else real(self, service)
    )
    return fake


def test_dry_run_shows_the_plan_as_a_diff_and_changes_nothing(
    stack: Stack, lambda_stub: FakeLambda, sensorhook
) -> None:
    result = sensorhook("subscriptions", "reconcile", "--dry-run")

    assert result.exit_code == 0, result.output
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    assert ["+ create", "ds-sensor-readings", "everactive-ds", "(new)", CALLBACK, ""] in rows
    assert ["~ update", "ds-gateway-status", "everactive-ds", "wh-7", CALLBACK, "callback_url"] in (
        rows
    )
    assert ["= unchanged", "v2020-steam-traps", "", "wh-3", "", ""] in rows
    assert any(row[:2] == ["manual", "efento-measurements"] for row in rows)
    assert "never-shown" not in result.stdout
    assert lambda_stub.calls == [(FUNCTIONS[Output.SUBSCRIPTIONS_FUNCTION_NAME], {"dry_run": True})]


def test_reconcile_applies_after_a_yes_and_shows_the_result(
    stack: Stack, lambda_stub: FakeLambda, sensorhook
) -> None:
    result = sensorhook("subscriptions", "reconcile", input="y\n")

    assert result.exit_code == 0, result.output
    assert "Apply these 2 change(s) to the provider?" in result.stdout
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    assert ["create", "1", "1"] in rows and ["update", "1", "1"] in rows
    assert [event for _, event in lambda_stub.calls] == [{"dry_run": True}, {"dry_run": False}]


def test_reconcile_declined_applies_nothing(
    stack: Stack, lambda_stub: FakeLambda, sensorhook
) -> None:
    result = sensorhook("subscriptions", "reconcile", input="n\n")

    assert result.exit_code == 1
    assert [event for _, event in lambda_stub.calls] == [{"dry_run": True}]


def test_reconcile_json_with_yes_is_for_scripts(
    stack: Stack, lambda_stub: FakeLambda, sensorhook
) -> None:
    result = sensorhook("subscriptions", "reconcile", "--yes", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is False
    assert summary["applied"]["create"] == 1


def test_a_plan_with_errors_exits_1(stack: Stack, lambda_stub: FakeLambda, sensorhook) -> None:
    lambda_stub.plan = Plan(errors={"everactive-ds": "401 from the token endpoint"})

    result = sensorhook("subscriptions", "reconcile", "--dry-run")

    assert result.exit_code == 1
    assert "401 from the token endpoint" in result.stdout
