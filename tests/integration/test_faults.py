"""The fault injector (local/faults) on moto: each kind of fault reaches the client as AWS's own
would (and botocore retries it), and the processor under faults stores and publishes once."""

import json
import time
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore import endpoint
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from moto import mock_aws

from local.faults import FaultInjector
from local.faults.drill import publication_key
from sensorhook.core.dedupe import event_id_for
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.aws_clients import clear_cached_clients
from sensorhook.handlers import processor
from tests.builders import lambda_context
from tests.fixtures.loader import fixture_text, sample_text
from tests.integration.conftest import TABLES, Aws

REGION = "us-east-1"
ATTEMPTS = 3
# (service id, client, a harmless call)
SERVICES = {
    "dynamodb": ("dynamodb", lambda c: c.list_tables()),
    "s3": ("s3", lambda c: c.list_buckets()),
    "sqs": ("sqs", lambda c: c.list_queues()),
    "eventbridge": ("events", lambda c: c.list_event_buses()),
    "secrets-manager": ("secretsmanager", lambda c: c.list_secrets()),
}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retry delays (seconds for throttling) without the waiting."""
    monkeypatch.setattr(endpoint, "time", SimpleNamespace(sleep=lambda _: None, time=time.time))


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def _client(session: boto3.Session, name: str) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": ATTEMPTS})
    return session.client(name, config=config)


@pytest.mark.parametrize("service", list(SERVICES))
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("throttle", ("SlowDown", "ThrottlingException")),
        ("server_error", ("InternalError", "InternalFailure")),
        ("timeout", ReadTimeoutError),
        ("connection_reset", ConnectionClosedError),
    ],
)
def test_every_kind_of_fault_reaches_the_client_as_aws_would_and_is_retried(
    session: boto3.Session, service: str, kind: str, expected: Any
) -> None:
    # Given every request to one service failing with one kind of fault
    injector = FaultInjector(share=1.0, kinds=(kind,), services=(service,), applies=lambda: True)
    uninstall = injector.install(session)
    name, call = SERVICES[service]
    client = _client(session, name)
    # When a call is made
    with pytest.raises((ClientError, ReadTimeoutError, ConnectionClosedError)) as raised:
        call(client)
    uninstall()
    # Then the client saw the fault AWS would send, after botocore retried it every time (it
    # took it for throttling or a transient error, as it takes AWS's)
    if isinstance(expected, tuple):
        assert isinstance(raised.value, ClientError)
        code = raised.value.response["Error"]["Code"]
        assert code == (expected[0] if service == "s3" else expected[1])
    else:
        assert isinstance(raised.value, expected)
    assert injector.requests[service] == ATTEMPTS
    assert injector.injected == Counter({(service, kind): ATTEMPTS})


def test_other_services_and_calls_outside_a_function_are_left_alone(
    session: boto3.Session,
) -> None:
    # Given faults on DynamoDB only, and on calls inside a Lambda invocation only (the default)
    dynamodb_only = FaultInjector(share=1.0, services=("dynamodb",), applies=lambda: True)
    outside = FaultInjector(share=1.0)  # AWS_LAMBDA_FUNCTION_NAME is not set here
    undo = [dynamodb_only.install(session), outside.install(session)]
    # Then S3 answers, and so would DynamoDB if only the second injector were installed
    _client(session, "s3").list_buckets()
    assert outside.total_injected == 0
    for uninstall in undo:
        uninstall()
    _client(session, "dynamodb").list_tables()


def test_a_lost_response_means_the_service_acted_each_time(session: boto3.Session) -> None:
    # Given SQS answers lost after SendMessage was applied
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName="lost")["QueueUrl"]
    injector = FaultInjector(
        share=1.0, kinds=("lost_response",), services=("sqs",), applies=lambda: True
    )
    uninstall = injector.install(session)
    # When a message is sent, and a few attempts' answers are lost before one gets through
    _client(session, "sqs").send_message(QueueUrl=queue_url, MessageBody="once?")
    uninstall()
    # Then every attempt was applied: at-least-once, as lost answers from AWS would make it
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert injector.requests["sqs"] > 1
    assert int(attributes["ApproximateNumberOfMessages"]) == injector.requests["sqs"]


def test_every_attempt_mode_fails_a_chosen_call_through_all_its_retries(
    session: boto3.Session,
) -> None:
    injector = FaultInjector(
        share=0.5, kinds=("server_error",), every_attempt=True, applies=lambda: True, seed=3
    )
    uninstall = injector.install(session)
    client = _client(session, "dynamodb")
    outcomes = []
    for _ in range(40):
        try:
            client.list_tables()
            outcomes.append("ok")
        except ClientError:
            outcomes.append("failed")
    uninstall()
    # a call either went through at its first attempt or failed all of them
    failed = outcomes.count("failed")
    assert 0 < failed < 40
    assert injector.requests["dynamodb"] == (40 - failed) + failed * ATTEMPTS


# --- the processor under faults -------------------------------------------------------------

DELIVERIES = [
    (Flavor.EVERACTIVE_DS_SENSOR_READING, sample_text("everactive-ds/sensor-reading-mhm.json")),
    (
        Flavor.EVERACTIVE_DS_SENSOR_READING,
        sample_text("everactive-ds/sensor-reading-environmental.json"),
    ),
    (Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text("everactive-ds/gateway-status-v3.json")),
    (Flavor.EFENTO_MEASUREMENTS, fixture_text("efento/multi-channel-batch.json")),
    (
        Flavor.EVERACTIVE_V2020_STEAM_TRAP,
        fixture_text("everactive-v2020/steam-trap-state-change.json"),
    ),
]


def _record(message_id: str, flavor: Flavor, body: str) -> dict[str, Any]:
    envelope = IngestEnvelope(
        flavor=flavor,
        event_id=event_id_for(flavor, json.loads(body)),
        received_at="2026-11-29T20:00:00Z",
        request_id=f"req-{message_id}",
        body=body,
    )
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": envelope.model_dump_json(exclude_none=True),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sensorhook-ingest",
        "awsRegion": REGION,
    }


@pytest.mark.parametrize("every_attempt", [False, True], ids=["each-attempt", "whole-calls"])
def test_the_processor_under_faults_stores_and_publishes_each_delivery_once(
    aws: Aws, every_attempt: bool
) -> None:
    # Given a fault on a share of every AWS request the processor makes (its clients are
    # created after the injector is installed), and each delivery sent twice, as providers do
    injector = FaultInjector(share=0.15, every_attempt=every_attempt, applies=lambda: True)
    uninstall = injector.install()
    clear_cached_clients()
    processor.delivery_processor.cache_clear()
    pending = {
        f"m{n}-{copy}": (flavor, body)
        for n, (flavor, body) in enumerate(DELIVERIES)
        for copy in range(2)
    }
    rounds = 0
    try:
        # When SQS hands the failed messages back until none fails (a redrive, at worst)
        while pending and rounds < 30:
            rounds += 1
            records = [_record(m, flavor, body) for m, (flavor, body) in pending.items()]
            try:
                response = processor.handler({"Records": records}, lambda_context())
                failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
            except Exception:  # the whole batch failed (e.g. its raw archive): all retried
                failed = set(pending)
            pending = {m: pending[m] for m in failed}
    finally:
        uninstall()
        clear_cached_clients()
        processor.delivery_processor.cache_clear()
    # Then faults were injected and overcome, every reading is stored once, and every event
    # was published once per publication (dedupe id)
    assert injector.total_injected > 0
    assert pending == {}
    published = aws.published_events()
    keys = Counter(publication_key(event) for event in published)
    assert [key for key, n in keys.items() if n > 1] == []
    assert {event["detail"]["event_id"] for event in published} == {
        event_id_for(flavor, json.loads(body))
        for flavor, body in DELIVERIES
        if flavor is not Flavor.EVERACTIVE_DS_GATEWAY_STATUS
    }
    readings = aws.dynamodb.scan(TableName=TABLES["READINGS_TABLE"][0], Select="COUNT")["Count"]
    assert readings > 0
