"""A deployed sensorhook as the CLI sees it, in an in-process moto account.

The stores have the stack's key schemas (infra.constants), the bucket is versioned as in
infra, and a CloudFormation stack named like the dev stage's publishes their names under the
stack's output ids, so the CLI finds everything through `describe-stacks`, as in AWS.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from cli.main import app
from infra.constants import (
    GATEWAYS_PARTITION_KEY,
    IDEMPOTENCY_PARTITION_KEY,
    SENSOR_STATE_PARTITION_KEY,
    SENSOR_STATE_SORT_KEY,
    SUBSCRIPTIONS_PARTITION_KEY,
    Output,
    stack_name,
)
from sensorhook.dal.aws_clients import clear_cached_clients
from sensorhook.observability import logger as product_logger

REGION = "us-east-1"
STACK = stack_name("dev")
BUCKET = "sensorhook-dev-bucket"
BUS = "sensorhook-dev"
TABLES = {
    Output.GATEWAYS_TABLE: ("sensorhook-dev-gateways", [GATEWAYS_PARTITION_KEY]),
    Output.SENSOR_STATE_TABLE: (
        "sensorhook-dev-sensor-state",
        [SENSOR_STATE_PARTITION_KEY, SENSOR_STATE_SORT_KEY],
    ),
    Output.SUBSCRIPTIONS_TABLE: ("sensorhook-dev-subscriptions", [SUBSCRIPTIONS_PARTITION_KEY]),
    Output.IDEMPOTENCY_TABLE: ("sensorhook-dev-idempotency", [IDEMPOTENCY_PARTITION_KEY]),
}
FUNCTIONS = {
    Output.RECEIVER_FUNCTION_NAME: "sensorhook-dev-receiver",
    Output.PROCESSOR_FUNCTION_NAME: "sensorhook-dev-processor",
    Output.SUBSCRIPTIONS_FUNCTION_NAME: "sensorhook-dev-subscriptions",
}


@pytest.fixture(autouse=True)
def _product_logging_restored() -> Iterator[None]:
    """A command quiets the product's logger to warnings on stderr (cli.output); in-process
    runs must hand it back as they found it, or later tests on this worker lose INFO records."""
    handler = product_logger.registered_handler
    level, stream = product_logger.log_level, getattr(handler, "stream", None)
    yield
    product_logger.setLevel(level)
    if stream is not None:
        handler.stream = stream  # type: ignore[attr-defined]


@dataclass
class Stack:
    outputs: dict[str, str]
    s3: Any
    sqs: Any
    dynamodb: Any
    events: Any
    logs: Any
    cloudformation: Any

    def table(self, output: str) -> str:
        return self.outputs[output]

    def queue_messages(self, output: str) -> list[dict[str, Any]]:
        """Every visible message (left visible again), with attributes."""
        response = self.sqs.receive_message(
            QueueUrl=self.outputs[output],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        )
        return response.get("Messages", [])

    def depth(self, output: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.outputs[output], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def add_outputs(self, extra: dict[str, str]) -> None:
        """Redeploy the stack with more outputs (a feature of another issue landing)."""
        self.outputs |= extra
        self.cloudformation.update_stack(StackName=STACK, TemplateBody=_template(self.outputs))


def _template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Anchor": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
    )


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "COLUMNS": "300",  # Rich tables at full width, so rows assert on one line
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "SENSORHOOK_STACK"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        clear_cached_clients()
        session = boto3.Session(region_name=REGION)
        dynamodb = session.client("dynamodb")
        for table, keys in TABLES.values():
            dynamodb.create_table(
                TableName=table,
                KeySchema=[
                    {"AttributeName": name, "KeyType": kind}
                    for name, kind in zip(keys, ("HASH", "RANGE"), strict=False)
                ],
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"} for name in keys
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sqs = session.client("sqs")
        queues = {
            output: sqs.create_queue(QueueName=name)["QueueUrl"]
            for output, name in (
                (Output.INGEST_QUEUE_URL, "sensorhook-dev-ingest"),
                (Output.DLQ_URL, "sensorhook-dev-ingest-dlq"),
                (Output.LAKE_WRITER_FAILURES_QUEUE_URL, "sensorhook-dev-lake-writer-failures"),
            )
        }
        events = session.client("events")
        events.create_event_bus(Name=BUS)
        outputs = {
            Output.API_URL: "https://abc123.execute-api.us-east-1.amazonaws.com/",
            Output.BUCKET_NAME: BUCKET,
            Output.EVENT_BUS_NAME: BUS,
            **queues,
            **{output: table for output, (table, _) in TABLES.items()},
            **FUNCTIONS,
        }
        cloudformation = session.client("cloudformation")
        cloudformation.create_stack(StackName=STACK, TemplateBody=_template(outputs))
        yield Stack(
            outputs=outputs,
            s3=s3,
            sqs=sqs,
            dynamodb=dynamodb,
            events=events,
            logs=session.client("logs"),
            cloudformation=cloudformation,
        )
        clear_cached_clients()


@pytest.fixture
def sensorhook() -> Any:
    """Runs `sensorhook --stack sensorhook-dev ARGS...` through Typer's test runner."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, stack: str | None = STACK) -> Any:
        selection = ["--stack", stack] if stack else []
        return runner.invoke(app, [*selection, *args], input=input)

    return invoke
