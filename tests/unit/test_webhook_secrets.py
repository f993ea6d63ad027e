"""The webhook secrets cache: one GetSecretValue per secret per max age, failures told by kind."""

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from pydantic import BaseModel

from sensorhook.dal import webhook_secrets
from sensorhook.dal.webhook_secrets import SecretUnavailable, WebhookSecrets

SECRET_ID = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ds-headers"


class Headers(BaseModel):
    api_key: str


class SecretsManager:
    """GetSecretValue answering the current document, or raising `failure`; counts the calls."""

    def __init__(self, document: str) -> None:
        self.document = document
        self.failure: Exception | None = None
        self.reads = 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        return {"ARN": SecretId, "SecretString": self.document}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(webhook_secrets.time, "monotonic", lambda: now[0])
    return now


def test_a_secret_is_read_once_per_max_age_and_a_rotation_is_seen_after_it(
    clock: list[float],
) -> None:
    # Given a secret read once by a cache of 60 s
    manager = SecretsManager(json.dumps({"api_key": "old"}))
    secrets = WebhookSecrets(max_age_seconds=60, client=manager)
    first = secrets.read(SECRET_ID, Headers)

    # When it rotates, and it is read again within and after the max age
    manager.document = json.dumps({"api_key": "new"})
    clock[0] += 60
    within = secrets.read(SECRET_ID, Headers)
    clock[0] += 0.001
    after = secrets.read(SECRET_ID, Headers)

    # Then the read within the max age is the cached (same) model, the one after it the rotation
    assert within is first
    assert (within.api_key, after.api_key) == ("old", "new")
    assert manager.reads == 2


def test_a_fresh_read_goes_past_the_cache_at_most_once_per_refresh_interval(
    clock: list[float],
) -> None:
    # Given a cached secret that rotated since
    manager = SecretsManager(json.dumps({"api_key": "old"}))
    secrets = WebhookSecrets(max_age_seconds=300, client=manager)
    secrets.read(SECRET_ID, Headers)
    manager.document = json.dumps({"api_key": "new"})

    # When two fresh reads come within the refresh interval
    forced = secrets.read(SECRET_ID, Headers, fresh=True)
    manager.document = json.dumps({"api_key": "newer"})
    clock[0] += webhook_secrets.FORCED_REFRESH_SECONDS / 2
    second = secrets.read(SECRET_ID, Headers, fresh=True)

    # Then only the first went to Secrets Manager
    assert (forced.api_key, second.api_key, manager.reads) == ("new", "new", 2)


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (
            ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetSecretValue"),
            "ClientError",
        ),
        (EndpointConnectionError(endpoint_url="https://secretsmanager"), "EndpointConnectionError"),
    ],
)
def test_a_failed_read_is_unavailable_and_read_again_next_time(
    clock: list[float], failure: Exception, kind: str
) -> None:
    # Given Secrets Manager failing
    manager = SecretsManager(json.dumps({"api_key": "k"}))
    manager.failure = failure
    secrets = WebhookSecrets(max_age_seconds=300, client=manager)

    # When the secret is read, then the failure is told by its kind
    with pytest.raises(SecretUnavailable, match=f"^{SECRET_ID}: {kind}$"):
        secrets.read(SECRET_ID, Headers)

    # and nothing was cached: once it answers, the next read has the secret
    manager.failure = None
    assert secrets.read(SECRET_ID, Headers).api_key == "k"


@pytest.mark.parametrize("document", ["not json {api_key: hunter2}", '{"api_key": 42}'])
def test_a_secret_that_is_not_the_documented_json_is_unavailable_without_echoing_it(
    clock: list[float], document: str
) -> None:
    secrets = WebhookSecrets(max_age_seconds=300, client=SecretsManager(document))

    with pytest.raises(SecretUnavailable) as raised:
        secrets.read(SECRET_ID, Headers)

    assert str(raised.value).startswith(f"{SECRET_ID}: ")
    assert "hunter2" not in str(raised.value)
    assert "42" not in str(raised.value)
