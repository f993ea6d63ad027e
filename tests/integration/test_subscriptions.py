"""The subscriptions Lambda end to end: its handler with its settings from the environment, the
real API client against the provider emulator over loopback HTTP, the subscriptions table,
the gateways table and the receiver's secrets in moto.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from local.emulator.api import DEMO_API_CREDENTIALS, ProviderApi
from local.emulator.installation import Installation
from local.sandbox import provider_api_environment
from sensorhook.core import settings
from sensorhook.handlers import subscriptions
from sensorhook.observability import metrics
from sensorhook.providers.everactive_api import (
    ApiFlavor,
    ClientCredentials,
    EveractiveApi,
    WebhookHeader,
    WebhookSpec,
)
from sensorhook.providers.everactive_v2020.signature import SigningSecret, verify_signed_request
from tests.builders import lambda_context, signed_v2020_headers
from tests.integration.conftest import REGION, TABLES, Aws

# The local mode's HTTP API: plain http on loopback, which the emulator accepts as a callback.
WEBHOOK_BASE_URL = "http://127.0.0.1:8080/"
SUBSCRIPTIONS_TABLE = "sensorhook-subscriptions"
DESIRED = [
    {
        "name": "ds-readings",
        "provider": "everactive-ds",
        "event_type": "sensor_reading",
        "header_names": ["x-api-key"],
    },
    {"name": "ds-status", "provider": "everactive-ds", "event_type": "gateway_status"},
    {"name": "traps", "provider": "everactive-v2020-07", "event_type": "steam_trap_state_change"},
    {"name": "efento", "provider": "efento", "event_type": "measurements"},
]
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DS_READINGS_URL = "http://127.0.0.1:8080/webhooks/everactive/ds/sensor-readings"


@dataclass
class Deployment:
    aws: Aws
    provider: ProviderApi
    secrets: Any
    signing_secret_arn: str
    ds_header_secret_arn: str

    def reconcile(self, **event: Any) -> dict[str, Any]:
        result: dict[str, Any] = subscriptions.handler(event, lambda_context("subscriptions"))
        return result

    def ds_client(self) -> EveractiveApi:
        return EveractiveApi(
            flavor=ApiFlavor.DATA_SERVICES,
            base_url=self.provider.ds_api_base_url,
            token_url=self.provider.ds_token_url,
            credentials=lambda: ClientCredentials.model_validate(
                {
                    "client_id": "demo-ds-client",
                    "client_secret": DEMO_API_CREDENTIALS["demo-ds-client"],
                }
            ),
            allow_http_loopback_callbacks=True,
        )

    def ds_webhooks(self) -> dict[str, dict[str, Any]]:
        return {w["id"]: w for w in self.provider.webhooks.values()}

    def signing_keys(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self.secrets.get_secret_value(SecretId=self.signing_secret_arn)["SecretString"]
        )
        return document

    def states(self) -> dict[str, dict[str, Any]]:
        items = self.aws.dynamodb.scan(TableName=SUBSCRIPTIONS_TABLE)["Items"]
        return {
            item["name"]["S"]: {k: next(iter(v.values())) for k, v in item.items()}
            for item in items
        }

    def mutations(self) -> list[tuple[str, str, int]]:
        return [
            r
            for r in self.provider.requests
            if r[0] in ("POST", "PUT", "DELETE") and "token" not in r[1]
        ]


@pytest.fixture
def deployment(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    aws.dynamodb.create_table(
        TableName=SUBSCRIPTIONS_TABLE,
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    secrets = boto3.client("secretsmanager", region_name=REGION)

    def secret(name: str, document: dict[str, Any]) -> str:
        arn: str = secrets.create_secret(Name=name, SecretString=json.dumps(document))["ARN"]
        return arn

    installation = Installation.create(seed=5, sensors=2, gateways=1, start=START)
    with ProviderApi(installation) as provider:
        deployment = Deployment(
            aws=aws,
            provider=provider,
            secrets=secrets,
            signing_secret_arn=secret(
                "v2020-signing",
                {"keys": {"operator-set": "kept"}, "previous_keys": {}, "placeholder": "x"},
            ),
            ds_header_secret_arn=secret(
                "ds-headers", {"headers": {"x-api-key": "key-1"}, "previous_headers": {}}
            ),
        )
        environment = {
            **provider_api_environment(provider),
            "DS_API_CREDENTIALS_SECRET_ARN": secret(
                "ds-api",
                {
                    "client_id": "demo-ds-client",
                    "client_secret": DEMO_API_CREDENTIALS["demo-ds-client"],
                },
            ),
            "V2020_API_CREDENTIALS_SECRET_ARN": secret(
                "v2020-api",
                {
                    "client_id": "demo-v2020-client",
                    "client_secret": DEMO_API_CREDENTIALS["demo-v2020-client"],
                },
            ),
            "SUBSCRIPTIONS_TABLE": SUBSCRIPTIONS_TABLE,
            "GATEWAYS_TABLE": TABLES["GATEWAYS_TABLE"][0],
            "DESIRED_SUBSCRIPTIONS": json.dumps(DESIRED),
            "WEBHOOK_BASE_URL": WEBHOOK_BASE_URL,
            "DS_HEADER_SECRET_ARN": deployment.ds_header_secret_arn,
            "V2020_SIGNING_SECRET_ARN": deployment.signing_secret_arn,
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        settings.subscriptions_settings.cache_clear()
        subscriptions.reconciler.cache_clear()
        metrics.clear_metrics()
        yield deployment
        subscriptions.reconciler.cache_clear()
        settings.subscriptions_settings.cache_clear()


def test_from_empty_creates_every_subscription_and_stores_the_generated_secret(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a provider with no webhooks
    # When the function runs
    summary = deployment.reconcile()

    # Then both Data Services webhooks exist with the receiver's header, and one v2020 one
    assert summary["applied"] == {"create": 3, "update": 0, "enable": 0, "delete": 0}
    assert summary["errors"] == {}
    webhooks = list(deployment.ds_webhooks().values())
    assert sorted(w["eventType"] for w in webhooks) == ["gateway_status", "sensor_reading"]
    for webhook in webhooks:
        assert webhook["headers"] == [{"key": "x-api-key", "value": "key-1"}]
        assert webhook["enabled"] is True
    [trap] = deployment.provider.v2020_subscriptions.values()
    assert trap["callbackUrl"] == "http://127.0.0.1:8080/webhooks/everactive/v2020-07/events"
    # the provider's generated secret is where the receiver reads it; other keys are kept, and
    # CDK's generated placeholder is dropped (the receiver's SigningSecret forbids it)
    keys = deployment.signing_keys()
    assert keys["keys"] == {"operator-set": "kept", trap["id"]: trap["secret"]}
    assert "placeholder" not in keys
    # one state per declared subscription; Efento is manual
    states = deployment.states()
    assert {name: state["status"] for name, state in states.items()} == {
        "ds-readings": "active",
        "ds-status": "active",
        "traps": "active",
        "efento": "manual",
    }
    assert states["traps"]["provider_id"] == trap["id"]
    # nothing secret in the output: no header value, no generated secret
    output = capsys.readouterr().out
    assert "key-1" not in output and trap["secret"] not in output
    assert '"ReconcileErrors":[0.0]' in output.replace(" ", "")


def test_a_key_stored_in_the_secret_as_cdk_creates_it_verifies_at_the_receiver(
    deployment: Deployment,
) -> None:
    # Given the signing secret as CDK creates it: no key yet, and its generated placeholder
    deployment.secrets.put_secret_value(
        SecretId=deployment.signing_secret_arn,
        SecretString=json.dumps({"keys": {}, "previous_keys": {}, "placeholder": "x"}),
    )

    # When the reconciler creates the v2020-07 subscription and stores its generated secret
    deployment.reconcile()

    # Then the stored document is one the receiver's strict model reads, and a request signed
    # with the generated secret verifies against it
    [trap] = deployment.provider.v2020_subscriptions.values()
    document = deployment.signing_keys()
    assert document == {"keys": {trap["id"]: trap["secret"]}, "previous_keys": {}}
    signing_secret = SigningSecret.model_validate(document)
    body = b'{"eventType":"steam_trap_state_change"}'
    path = "/webhooks/everactive/v2020-07/events"
    headers = signed_v2020_headers(body, key_id=trap["id"], secret=trap["secret"], path=path)
    key_id = verify_signed_request(
        method="POST",
        path=path,
        query="",
        headers={name.lower(): value for name, value in headers.items()},
        body=body,
        secret=signing_secret,
        now=datetime.now(UTC),
    )
    assert key_id == trap["id"]


def test_an_operators_rotation_overlap_survives_a_stored_key(deployment: Deployment) -> None:
    # Given a signing secret mid-rotation (previous keys valid until a moment)
    rotating = {
        "keys": {"operator-set": "new"},
        "previous_keys": {"operator-set": "old"},
        "previous_valid_until": "2030-01-01T00:00:00Z",
    }
    deployment.secrets.put_secret_value(
        SecretId=deployment.signing_secret_arn, SecretString=json.dumps(rotating)
    )

    # When the reconciler stores a generated key
    deployment.reconcile()

    # Then the overlap is written back as it was
    [trap] = deployment.provider.v2020_subscriptions.values()
    document = deployment.signing_keys()
    assert document == rotating | {"keys": {"operator-set": "new", trap["id"]: trap["secret"]}}
    SigningSecret.model_validate(document)


def test_a_v2020_subscription_is_replaced_in_the_provider_never_updated(
    deployment: Deployment,
) -> None:
    # Given a v2020-07 subscription the provider disabled
    deployment.reconcile()
    [old] = [dict(s) for s in deployment.provider.v2020_subscriptions.values()]
    deployment.provider.disable_webhook(old["id"])
    before = len(deployment.mutations())

    # When the function runs
    summary = deployment.reconcile()

    # Then a new subscription was created and the old one deleted, in that order, with no PUT;
    # the receiver holds the new secret only
    assert summary["applied"] == {"create": 0, "update": 0, "enable": 1, "delete": 0}
    [new] = deployment.provider.v2020_subscriptions.values()
    assert new["id"] != old["id"] and new["enabled"] is True
    calls = [(method, path) for method, path, _ in deployment.mutations()[before:]]
    assert calls == [("POST", "/v2020-07/webhooks"), ("DELETE", f"/v2020-07/webhooks/{old['id']}")]
    assert deployment.signing_keys()["keys"] == {"operator-set": "kept", new["id"]: new["secret"]}
    state = deployment.states()["traps"]
    assert (state["provider_id"], state["status"]) == (new["id"], "re-enabled")
    assert deployment.reconcile()["planned"] == {"create": 0, "update": 0, "enable": 0, "delete": 0}


def test_twice_in_a_row_the_second_run_changes_nothing(deployment: Deployment) -> None:
    deployment.reconcile()
    before = len(deployment.mutations())

    summary = deployment.reconcile()

    assert summary["planned"] == {"create": 0, "update": 0, "enable": 0, "delete": 0}
    assert summary["unchanged"] == 3
    assert len(deployment.mutations()) == before


def test_drift_is_corrected_in_place_and_a_disabled_webhook_enabled_again(
    deployment: Deployment,
) -> None:
    deployment.reconcile()
    ids = {name: state.get("provider_id", "") for name, state in deployment.states().items()}
    client = deployment.ds_client()
    client.update_webhook(
        ids["ds-readings"],
        WebhookSpec(
            callback_url=DS_READINGS_URL,
            event_type="sensor_reading",
            headers=[WebhookHeader(key="x-api-key", value="tampered")],
        ),
    )
    deployment.provider.disable_webhook(ids["ds-status"])

    summary = deployment.reconcile()

    assert summary["applied"] == {"create": 0, "update": 1, "enable": 1, "delete": 0}
    webhooks = deployment.ds_webhooks()
    assert set(webhooks) == {ids["ds-readings"], ids["ds-status"]}
    assert webhooks[ids["ds-readings"]]["headers"] == [{"key": "x-api-key", "value": "key-1"}]
    assert webhooks[ids["ds-status"]]["enabled"] is True
    assert deployment.states()["ds-status"]["status"] == "re-enabled"


def test_a_stale_webhook_here_is_deleted_and_a_foreign_one_left_alone(
    deployment: Deployment,
) -> None:
    client = deployment.ds_client()
    stale = client.create_webhook(
        WebhookSpec(
            callback_url=f"{WEBHOOK_BASE_URL}webhooks/old-route", event_type="sensor_reading"
        )
    )
    foreign = client.create_webhook(
        WebhookSpec(callback_url="https://elsewhere.example.com/hook", event_type="sensor_reading")
    )

    summary = deployment.reconcile()

    assert summary["applied"]["delete"] == 1
    assert summary["plan"]["left_alone"] == [foreign.id]
    assert stale.id not in deployment.ds_webhooks()
    assert foreign.id in deployment.ds_webhooks()


def test_a_header_rotation_reaches_the_provider(deployment: Deployment) -> None:
    deployment.reconcile()
    deployment.secrets.put_secret_value(
        SecretId=deployment.ds_header_secret_arn,
        SecretString=json.dumps(
            {
                "headers": {"x-api-key": "key-2"},
                "previous_headers": {"x-api-key": "key-1"},
                "previous_valid_until": "2030-01-01T00:00:00Z",
            }
        ),
    )

    summary = deployment.reconcile()

    assert summary["applied"]["update"] == 2
    for webhook in deployment.ds_webhooks().values():
        assert webhook["headers"] == [{"key": "x-api-key", "value": "key-2"}]


def test_dry_run_prints_the_plan_and_changes_nothing(deployment: Deployment) -> None:
    summary = deployment.reconcile(dry_run=True)

    assert summary["dry_run"] is True
    assert summary["planned"]["create"] == 3
    assert [a["kind"] for a in summary["plan"]["actions"]] == ["create"] * 3
    assert deployment.ds_webhooks() == {}
    assert deployment.provider.v2020_subscriptions == {}
    assert deployment.states() == {}
    assert deployment.signing_keys()["keys"] == {"operator-set": "kept"}
    assert deployment.mutations() == []


def test_provider_down_is_reported_not_raised(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one attempt per call: no backoff to wait through
    monkeypatch.setenv("API_MAX_ATTEMPTS", "1")
    settings.subscriptions_settings.cache_clear()
    subscriptions.reconciler.cache_clear()
    deployment.provider.fail_next(503, count=100)

    summary = deployment.reconcile()

    assert set(summary["errors"]) == {"ds-readings", "ds-status", "traps"}
    assert deployment.states()["traps"]["status"] == "error"
    assert deployment.ds_webhooks() == {}
