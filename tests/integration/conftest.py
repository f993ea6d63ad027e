"""An in-process moto AWS with the processor's and lake writer's resources.

Tables use the key schemas of docs/architecture.md; the event bus has a rule sending every
sensorhook event to an SQS queue, so tests can read back what was published.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.runtime.moto_fixes import stream_records_are_numbered_atomically
from sensorhook.core import settings
from sensorhook.dal.aws_clients import clear_cached_clients
from sensorhook.dal.sensor_state_store import DUE_INDEX
from sensorhook.handlers import processor
from tests.schema_validation import validate_event

REGION = "us-east-1"
BUCKET = "sensorhook-test-bucket"
BUS = "sensorhook-test-bus"
TABLES = {
    "READINGS_TABLE": ("sensorhook-readings", [("series", "HASH"), ("point", "RANGE")]),
    "SENSOR_STATE_TABLE": (
        "sensorhook-sensor-state",
        [("series", "HASH"), ("metric_channel", "RANGE")],
    ),
    "GATEWAYS_TABLE": ("sensorhook-gateways", [("gateway", "HASH")]),
    "IDEMPOTENCY_TABLE": ("sensorhook-idempotency", [("id", "HASH")]),
}


def due_index() -> dict[str, Any]:
    """sensor_state's due index as infra/constructs/storage.py declares it."""
    return {
        "IndexName": DUE_INDEX,
        "KeySchema": [
            {"AttributeName": "due_shard", "KeyType": "HASH"},
            {"AttributeName": "due_at", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


@dataclass
class Aws:
    """Clients and resource names of one mocked account."""

    dynamodb: Any
    s3: Any
    sqs: Any
    events: Any
    ingest_queue_url: str
    events_queue_url: str

    def published_events(self) -> list[dict[str, Any]]:
        """Every event the bus routed to the test queue so far (drains the queue)."""
        events: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=self.events_queue_url, MaxNumberOfMessages=10
            )
            messages = response.get("Messages", [])
            if not messages:
                return events
            for message in messages:
                event = json.loads(message["Body"])
                validate_event(event)  # every event a test reads back matches its schema
                events.append(event)
                self.sqs.delete_message(
                    QueueUrl=self.events_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def object_keys(self, prefix: str) -> list[str]:
        response = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [entry["Key"] for entry in response.get("Contents", [])]

    def object_bytes(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body


@pytest.fixture
def stream_records_numbered_once() -> Iterator[None]:
    """Each DynamoDB stream record gets its own sequence number, as in AWS.

    The processor writes readings items from several threads, and moto numbers a record by the
    shard's length before appending it, with no lock: two writes could share a number, and a
    shard iterator then returned the same record for ever (a reader never reached the end).
    The local runtime's correction applies here too.
    """
    undo = stream_records_are_numbered_atomically()
    yield
    undo()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, stream_records_numbered_once: None) -> Iterator[Aws]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "sensorhook-test",
        "POWERTOOLS_METRICS_NAMESPACE": "sensorhook",
        "BUCKET_NAME": BUCKET,
        "EVENT_BUS_NAME": BUS,
        **{variable: table for variable, (table, _) in TABLES.items()},
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clear_cached_clients()
        for factory in (settings.processor_settings, settings.lake_writer_settings):
            factory.cache_clear()
        # a warm processor keeps the clients of the test that built it: every test starts cold
        processor.delivery_processor.cache_clear()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for variable, (table, keys) in TABLES.items():
            # the readings table feeds the lake writer through its stream, as in infra
            stream = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            # sensor_state's due index, as in infra (gateway health Queries it)
            indexed = variable == "SENSOR_STATE_TABLE"
            index_keys = [("due_shard", "HASH"), ("due_at", "RANGE")] if indexed else []
            dynamodb.create_table(
                **({"StreamSpecification": stream} if variable == "READINGS_TABLE" else {}),
                **({"GlobalSecondaryIndexes": [due_index()]} if indexed else {}),
                TableName=table,
                KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys],
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"} for name, _ in keys + index_keys
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs", region_name=REGION)
        ingest_queue_url = sqs.create_queue(QueueName="sensorhook-ingest")["QueueUrl"]
        events_queue_url = sqs.create_queue(QueueName="sensorhook-events-tap")["QueueUrl"]
        events_queue_arn = sqs.get_queue_attributes(
            QueueUrl=events_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=BUS)
        events.put_rule(
            Name="tap", EventBusName=BUS, EventPattern=json.dumps({"source": ["sensorhook"]})
        )
        events.put_targets(
            Rule="tap", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": events_queue_arn}]
        )
        yield Aws(
            dynamodb=dynamodb,
            s3=s3,
            sqs=sqs,
            events=events,
            ingest_queue_url=ingest_queue_url,
            events_queue_url=events_queue_url,
        )
        clear_cached_clients()
