"""The runtime's corrections to moto keep its answers and drop its costs."""

import gc
import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
import werkzeug
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.server import ThreadedMotoServer
from moto.sqs.models import Message

from local.runtime.moto_fixes import (
    models_are_not_tracked,
    requests_leave_no_garbage_cycles,
    sqs_reads_the_clock_once,
    stream_records_are_numbered_atomically,
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_moto_keeps_no_reference_to_the_models_it_creates() -> None:
    # Given moto's own tracking of every model object (a list per class that only grows)
    Item(DynamoType({"S": "before"}), None, {})
    assert Item.instances_tracked

    # When the runtime's fix is on, the list is emptied and new objects are not added to it
    undo = models_are_not_tracked()
    try:
        item = Item(DynamoType({"S": "k"}), None, {"v": {"N": "1"}})
        message = Message("id", "body")
        assert Item.instances_tracked == []
        assert Message.instances_tracked == []
        # and the objects are whole
        assert item.attrs["v"] == DynamoType({"N": "1"})
        assert message.body == "body"
    finally:
        undo()
    Item(DynamoType({"S": "after"}), None, {})
    assert len(Item.instances_tracked) == 1


def test_queue_counts_are_moto_s_own_with_one_clock_reading(aws: None) -> None:
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        moto_s = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        undo = sqs_reads_the_clock_once()
        try:
            ours = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        finally:
            undo()
        assert (
            ours
            == moto_s
            == {
                "ApproximateNumberOfMessages": "3",
                "ApproximateNumberOfMessagesNotVisible": "2",
                "ApproximateNumberOfMessagesDelayed": "1",
            }
        )
        assert sorted(m["Body"] for m in received) == ["2", "3", "4"]


def test_stream_records_written_from_many_threads_are_numbered_once_each(aws: None) -> None:
    # Given a table with a stream, written by eight threads at once (the local runtime's
    # functions share one process; the processor writes readings items concurrently)
    undo = stream_records_are_numbered_atomically()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over often, as a loaded machine does
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="t",
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
            from moto.dynamodb.models import dynamodb_backends

            backend = dynamodb_backends["123456789012"]["us-east-1"]

            def write(thread: int) -> None:
                for n in range(150):
                    backend.put_item("t", {"k": {"S": f"{thread}-{n}"}, "v": {"S": "x" * 200}})

            threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            shard = backend.get_table("t").stream_shard
            numbers = [int(r.record["dynamodb"]["SequenceNumber"]) for r in shard.items]
    finally:
        sys.setswitchinterval(switch)
        undo()
    # Then each record's number is its place in the shard, which a shard iterator relies on
    # to read each record once
    first = shard.starting_sequence_number
    assert numbers == list(range(first, first + 8 * 150))


@pytest.fixture
def moto_server(aws: None) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _requests_left_as_garbage(endpoint: str, count: int) -> int:
    """Requests the server answered that are unreachable but still alive: only a full
    collection of the garbage collector frees them (with their bodies)."""
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    sqs.list_queues()  # the app and the client warmed up
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage, to count
    try:
        for _ in range(count):
            sqs.list_queues()
        gc.collect()
        return sum(isinstance(o, werkzeug.Request) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_requests_to_the_embedded_aws_leave_no_garbage_cycles(moto_server: str) -> None:
    # Given moto's server, whose Flask apps run in debug mode, where each of 50 requests is
    # left in a reference cycle
    assert _requests_left_as_garbage(moto_server, 50) == 50

    # When the runtime's fix is on, each request is freed as soon as it is answered
    undo = requests_leave_no_garbage_cycles()
    try:
        assert _requests_left_as_garbage(moto_server, 50) == 0
    finally:
        undo()
