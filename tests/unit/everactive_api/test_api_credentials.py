"""API client credentials from Secrets Manager (moto): parsed, cached, never revealed."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sensorhook.dal.api_credentials import ApiCredentials
from sensorhook.dal.webhook_secrets import SecretUnavailable
from tests.unit.everactive_api.fakes import answer, harness

REGION = "us-east-1"
SECRET_NAME = "sensorhook/dev/everactive-ds-api"


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def _store(client: Any, document: dict[str, str]) -> str:
    arn: str = client.create_secret(Name=SECRET_NAME, SecretString=json.dumps(document))["ARN"]
    return arn


def test_the_secret_json_becomes_client_credentials_with_a_hidden_secret(secretsmanager: Any):
    # Given the API credentials secret as infra documents it
    arn = _store(secretsmanager, {"client_id": "ds-client", "client_secret": "ds-secret-value"})

    # When it is read
    credentials = ApiCredentials(arn, client=secretsmanager)()

    # Then the id is plain and the secret is a SecretStr
    assert credentials.client_id == "ds-client"
    assert credentials.client_secret.get_secret_value() == "ds-secret-value"
    assert "ds-secret-value" not in repr(credentials)


def test_reads_are_cached_for_max_age_and_a_rotation_is_seen_after_it(secretsmanager: Any):
    # Given credentials read once, then rotated in Secrets Manager
    arn = _store(secretsmanager, {"client_id": "ds-client", "client_secret": "old"})
    cached = ApiCredentials(arn, max_age_seconds=300, client=secretsmanager)
    uncached = ApiCredentials(arn, max_age_seconds=0, client=secretsmanager)
    cached()
    secretsmanager.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"client_id": "ds-client", "client_secret": "new"})
    )

    # When each reads again
    within_max_age = cached().client_secret.get_secret_value()
    after_max_age = uncached().client_secret.get_secret_value()

    # Then the cached reader still has the old secret, a reader past max_age the new one
    assert (within_max_age, after_max_age) == ("old", "new")


def test_a_secret_without_the_documented_shape_is_unavailable_without_echoing_it(
    secretsmanager: Any,
):
    # Given a secret missing client_secret
    arn = _store(secretsmanager, {"client_id": "ds-client", "clientSecret": "misnamed-value"})

    # When it is read / Then the error names the secret and the model, not the content
    with pytest.raises(SecretUnavailable) as raised:
        ApiCredentials(arn, client=secretsmanager)()
    assert "ClientCredentials" in str(raised.value)
    assert "misnamed-value" not in str(raised.value)


def test_the_client_fetches_its_token_with_the_stored_credentials(secretsmanager: Any):
    # Given an API client whose credentials come from the secret
    arn = _store(secretsmanager, {"client_id": "ds-client", "client_secret": "ds-secret-value"})
    h = harness(credentials=ApiCredentials(arn, client=secretsmanager))
    h.transport.script("GET", "/ds/v1/health", answer({"ok": True}))

    # When it calls the API
    h.api.health()

    # Then the token request carried the stored id and secret
    assert h.transport.sent[0].json()["client_id"] == "ds-client"
    assert h.transport.sent[0].json()["client_secret"] == "ds-secret-value"
