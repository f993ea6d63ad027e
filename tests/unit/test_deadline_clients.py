"""The receiver's AWS calls fit inside the provider's deadline (Efento: 10 s) and its own 6 s."""

import pytest

from sensorhook.dal import aws_clients
from sensorhook.dal.inbox import Inbox
from sensorhook.dal.queue import IngestQueue
from sensorhook.dal.webhook_secrets import WebhookSecrets

RECEIVER_TIMEOUT_S = 6


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws_clients.clear_cached_clients()
    yield
    aws_clients.clear_cached_clients()


@pytest.mark.parametrize(
    "client_of",
    [
        lambda: IngestQueue("https://sqs.eu-west-1.amazonaws.com/1/ingest")._client,
        lambda: Inbox("bucket")._client,
        lambda: WebhookSecrets(max_age_seconds=60)._client,
    ],
    ids=["enqueue", "claim-check", "secret-read"],
)
def test_the_receivers_calls_give_up_in_time_to_answer(client_of) -> None:
    # Given the client the receiver's enqueue or claim check uses by default
    config = client_of().meta.config
    # When every attempt takes as long as its timeouts allow
    attempts = config.retries["total_max_attempts"]
    worst_case_s = attempts * (config.connect_timeout + config.read_timeout)
    # Then the receiver still has time to answer 503 before its own timeout
    assert worst_case_s < RECEIVER_TIMEOUT_S - 1
    assert attempts >= 2  # one transient failure is still ridden out
