"""The runtime's corrections to moto keep its answers and drop its costs."""

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.sqs.models import Message

from local.runtime.moto_fixes import models_are_not_tracked, sqs_reads_the_clock_once


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
