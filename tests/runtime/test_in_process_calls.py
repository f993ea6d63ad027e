"""This process's boto3 calls to the embedded AWS are answered in the calling thread, as the
server would answer them."""

import io
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local.runtime.in_process_calls import InProcessCalls, calls_stay_in_process


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    started = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    started.start()
    try:
        yield started.get_host_and_port()[1]
    finally:
        started.stop()


def _round_trip(endpoint: str) -> dict[str, object]:
    """A few calls of every protocol the functions use: JSON, query, REST-XML with bodies."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}, "b": {"B": b"\x00\xff"}})
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="bucket-1")
    s3.put_object(Bucket="bucket-1", Key="k_1", Body=b"\x1f\x8b binary", Metadata={"m": "v"})
    s3.upload_fileobj(io.BytesIO(b"from a file"), "bucket-1", "file")
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={"n": {"DataType": "Number", "StringValue": "1"}},
    )
    obj = s3.get_object(Bucket="bucket-1", Key="k_1")
    missing = dynamodb.get_item(TableName="t", Key={"pk": {"S": "missing"}})
    with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.get_item(TableName="nope", Key={"pk": {"S": "a"}})
    return {
        "item": dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"],
        "missing": "Item" in missing,
        "body": obj["Body"].read(),
        "metadata": obj["Metadata"],
        "file": s3.get_object(Bucket="bucket-1", Key="file")["Body"].read(),
        "message": [
            (m["Body"], m["MessageAttributes"]["n"]["StringValue"])
            for m in sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
        ],
    }


def test_calls_to_the_server_are_answered_in_process_as_the_server_answers(server: int) -> None:
    expected = {
        "item": {"pk": {"S": "a"}, "b": {"B": b"\x00\xff"}},
        "missing": False,
        "body": b"\x1f\x8b binary",
        "metadata": {"m": "v"},
        "file": b"from a file",
        "message": [("hello", "1")],
    }
    calls, undo = calls_stay_in_process(server)
    try:
        # both names the process reaches the server by (Step Functions' tasks use localhost)
        assert _round_trip(f"http://127.0.0.1:{server}") == expected
        answered = calls.answered
        assert answered >= 10
        requests = boto3.client("sqs", endpoint_url=f"http://localhost:{server}")
        assert requests.list_queues()["QueueUrls"]
        assert calls.answered == answered + 1
    finally:
        undo()
    # and without it, the same over the socket: nothing more answered in process
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server}").list_buckets()
    assert calls.answered == answered + 1


def test_only_the_embedded_server_s_urls_are_answered() -> None:
    calls = InProcessCalls(5123)
    assert calls.handles("http://127.0.0.1:5123/")
    assert calls.handles("http://localhost:5123")
    assert not calls.handles("http://127.0.0.1:51234/")
    assert not calls.handles("https://dynamodb.us-east-1.amazonaws.com/")
