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
MAX_ROUNDS = 60  # SQS redeliveries allowed before the test calls a delivery lost
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


def _visibility_timeout_passes(aws: Aws) -> None:
    """SQS hands a failed message back only after its visibility timeout, six times the
    function's: by then the in-progress record of an invocation that could not clean it up
    (its delete failed too) has expired with the invocation. Here the rounds follow each other
    at once, so that expiry is applied, and only to in-progress records."""
    table = TABLES["IDEMPOTENCY_TABLE"][0]
    for item in aws.dynamodb.scan(TableName=table)["Items"]:
        if item.get("status", {}).get("S") == "INPROGRESS":
            aws.dynamodb.update_item(
                TableName=table,
                Key={"id": item["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": {"N": "0"}},
            )


@pytest.mark.parametrize("every_attempt", [False, True], ids=["each-attempt", "whole-calls"])
def test_the_processor_under_faults_stores_and_publishes_each_delivery_once(
    aws: Aws, every_attempt: bool
) -> None:
    # Given a fault on a share of every AWS request the processor makes (its clients are
    # created after the injector is installed), and each delivery sent twice, as providers do
    # (a whole-call outage fails its call after botocore's retries, and each delivery makes
    # about twenty calls: 5% of calls keeps a round's success likely enough to finish in time)
    injector = FaultInjector(
        share=0.05 if every_attempt else 0.15, every_attempt=every_attempt, applies=lambda: True
    )
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
        while pending and rounds < MAX_ROUNDS:
            rounds += 1
            records = [_record(m, flavor, body) for m, (flavor, body) in pending.items()]
            try:
                response = processor.handler({"Records": records}, lambda_context())
                failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
            except Exception:  # the whole batch failed (e.g. its raw archive): all retried
                failed = set(pending)
            pending = {m: pending[m] for m in failed}
            _visibility_timeout_passes(aws)
    finally:
        uninstall()
        clear_cached_clients()
        processor.delivery_processor.cache_clear()
    # Then faults were injected and overcome, and every reading is stored once
    assert injector.total_injected > 0
    assert pending == {}
    published = aws.published_events()
    keys = Counter(publication_key(event) for event in published)
    doubled = {key for key, n in keys.items() if n > 1}
    if every_attempt:
        # An outage of one call can fall after PutEvents succeeded and before the idempotency
        # record was completed: the retried delivery publishes again. EventBridge has no
        # idempotency token, so this window cannot close; what holds is that the copy is the
        # same event under the same dedupe id, which consumers dedupe on (docs/events.md).
        for key in doubled:
            copies = {
                json.dumps(e["detail"], sort_keys=True)
                for e in published
                if publication_key(e) == key
            }
            assert len(copies) == 1, key
    else:
        # Blips that botocore's retries absorb publish every event exactly once
        assert doubled == set()
    assert {event["detail"]["event_id"] for event in published} == {
        event_id_for(flavor, json.loads(body))
        for flavor, body in DELIVERIES
        if flavor is not Flavor.EVERACTIVE_DS_GATEWAY_STATUS
    }
    readings = aws.dynamodb.scan(TableName=TABLES["READINGS_TABLE"][0], Select="COUNT")["Count"]
    assert readings > 0
