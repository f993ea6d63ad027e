"""The retention janitor trims what moto would keep for ever, and nothing else."""

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.logs.models import logs_backends
from moto.sqs.models import sqs_backends

from local.runtime.expiry import Expirer, ExpiryRules, TtlRule
from local.runtime.retention import Janitor, RetentionBounds

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _table_with_stream(dynamodb: Any, name: str) -> str:
    return str(
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]["LatestStreamArn"]
    )


def test_logs_archives_and_read_stream_records_are_trimmed_to_their_bounds(aws: None) -> None:
    # Given a function's log group with 30 invocation streams, an archive of 25 events, and a
    # table stream of 250 records of which a reader has read 210
    logs, events = boto3.client("logs"), boto3.client("events")
    dynamodb = boto3.client("dynamodb")
    logs.create_log_group(logGroupName="/aws/lambda/f")
    for n in range(30):
        logs.create_log_stream(logGroupName="/aws/lambda/f", logStreamName=f"s{n:02d}")
        logs.put_log_events(
            logGroupName="/aws/lambda/f",
            logStreamName=f"s{n:02d}",
            logEvents=[{"timestamp": 1, "message": "START"}],
        )
    bus_arn = events.create_event_bus(Name="bus")["EventBusArn"]
    events.create_archive(ArchiveName="all", EventSourceArn=bus_arn)
    for n in range(25):
        events.put_events(
            Entries=[
                {
                    "Source": "s",
                    "DetailType": "t",
                    "Detail": json.dumps({"n": n}),
                    "EventBusName": "bus",
                }
            ]
        )
    stream_arn = _table_with_stream(dynamodb, "read")
    for n in range(250):
        dynamodb.put_item(TableName="read", Item={"k": {"S": str(n)}})
    # (moto's in-process mock serves no stream API: the reader uses moto's backend directly)
    backend = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][REGION]
    shard_id = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables["read"].stream_shard.id
    iterator = backend.get_shard_iterator(stream_arn, shard_id, "TRIM_HORIZON", None).arn
    read = []
    for _ in range(3):
        page = backend.get_records(iterator, 70)
        read += page["Records"]
        iterator = page["NextShardIterator"]
    janitor = Janitor(
        DEFAULT_ACCOUNT_ID,
        REGION,
        RetentionBounds(
            log_streams_per_group=10, archived_events=5, stream_records=100, stream_trim_step=100
        ),
    )
    # When it trims (the reader's used iterators are gone, as the runtime's poller drops them)
    iterators = backend.shard_iterators
    for arn in [arn for arn in iterators if arn != iterator]:
        iterators.pop(arn)
    trimmed = janitor.trim()
    # Then the newest 10 log streams and 5 archived events are left, and the stream keeps what
    # the reader has not read (trimmed in whole steps of 100: 210 read, 200 dropped)
    streams_left = logs.describe_log_streams(logGroupName="/aws/lambda/f")["logStreams"]
    assert [s["logStreamName"] for s in streams_left] == [f"s{n:02d}" for n in range(20, 30)]
    held = janitor.retained()
    assert (held.log_streams, held.archived_events) == (10, 5)
    assert (trimmed.log_streams, trimmed.archived_events, trimmed.stream_records) == (20, 20, 200)
    assert held.stream_records == 50
    # And the reader carries on from where it was, the sequence numbers unchanged
    rest = backend.get_records(iterator, 1000)["Records"]
    assert len(read) + len(rest) == 250
    assert [r["dynamodb"]["Keys"]["k"]["S"] for r in rest] == [str(n) for n in range(210, 250)]
    # And the table itself is untouched
    assert dynamodb.scan(TableName="read", Select="COUNT")["Count"] == 250


def test_a_queue_remembers_only_its_newest_deleted_receipt_handles(aws: None) -> None:
    # Given a queue whose 30 messages were received and deleted, with a bound of 10 handles
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    janitor = Janitor(DEFAULT_ACCOUNT_ID, REGION, RetentionBounds(deleted_receipt_handles=10))
    janitor.trim()  # the queue's memory of deleted handles is bounded from now on
    handles = []
    for n in range(30):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        handles.append(message["ReceiptHandle"])

    # When the janitor runs
    trimmed = janitor.trim()

    # Then the newest handles may still be deleted again (moto accepts it, as AWS does within a
    # handle's lifetime), the oldest are forgotten, and the memory stays within its bound
    for handle in handles[-4:]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues["q"]
    assert handles[0] not in queue.deleted_messages
    assert len(queue.deleted_messages) <= 10
    assert trimmed.deleted_receipt_handles >= 20


def test_log_streams_older_than_the_age_bound_are_trimmed_beyond_the_newest_few(
    aws: None,
) -> None:
    # Given a function on a compressed schedule: 30 invocation streams, the 25 oldest created
    # 20 minutes ago, well under the count bound of 200
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/scheduled")
    for n in range(30):
        logs.create_log_stream(logGroupName="/aws/lambda/scheduled", logStreamName=f"s{n:02d}")
    group = logs_backends[DEFAULT_ACCOUNT_ID][REGION].groups["/aws/lambda/scheduled"]
    for stream in list(group.streams.values())[:25]:
        stream.creation_time -= timedelta(minutes=20)
    janitor = Janitor(
        DEFAULT_ACCOUNT_ID,
        REGION,
        RetentionBounds(log_streams_per_group=200, log_streams_any_age=8, log_stream_age_s=600),
    )

    # When the janitor trims
    trimmed = janitor.trim()

    # Then the group keeps the 5 recent streams and, of the old ones, the newest 3 (8 in all):
    # what the group holds stops growing after the age bound, not after 200 invocations
    streams_left = logs.describe_log_streams(logGroupName="/aws/lambda/scheduled")["logStreams"]
    assert [s["logStreamName"] for s in streams_left] == [f"s{n:02d}" for n in range(22, 30)]
    assert trimmed.log_streams == 22


def test_retained_counts_every_object_version_and_item_and_trims_none(aws: None) -> None:
    # Given a versioned bucket where one key was written twice and then deleted, another key
    # once, and a table of 3 items
    s3, dynamodb = boto3.client("s3"), boto3.client("dynamodb")
    s3.create_bucket(Bucket="archive-bucket")
    s3.put_bucket_versioning(Bucket="archive-bucket", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2"):
        s3.put_object(Bucket="archive-bucket", Key="raw/a", Body=body)
    s3.delete_object(Bucket="archive-bucket", Key="raw/a")
    s3.put_object(Bucket="archive-bucket", Key="raw/b", Body=b"3")
    _table_with_stream(dynamodb, "readings")
    for n in range(3):
        dynamodb.put_item(TableName="readings", Item={"k": {"S": str(n)}})
    janitor = Janitor(DEFAULT_ACCOUNT_ID, REGION)

    # When the janitor trims and counts what is held
    janitor.trim()
    held = janitor.retained()

    # Then both versions and the delete marker of the first key count (AWS keeps them until
    # the lifecycle rule for noncurrent versions), with the second key: 4; and the 3 items
    assert (held.s3_objects, held.dynamodb_items) == (4, 3)


def test_each_round_applies_the_stacks_expiry_when_the_run_asks_for_it(aws: None) -> None:
    # Given a TTL table holding an item whose TTL has passed, and a janitor with an expirer
    dynamodb = boto3.client("dynamodb")
    _table_with_stream(dynamodb, "readings")
    dynamodb.put_item(TableName="readings", Item={"k": {"S": "old"}, "ttl": {"N": "1"}})
    expiry = ExpiryRules(ttl=(TtlRule("readings", "ttl"),))
    janitor = Janitor(
        DEFAULT_ACCOUNT_ID, REGION, expirer=Expirer(DEFAULT_ACCOUNT_ID, REGION, expiry, 2.0)
    )

    # When it trims
    janitor.trim()

    # Then the item is gone: the janitor runs the expiry with its own bounds
    assert dynamodb.scan(TableName="readings")["Items"] == []
    assert janitor.retained().dynamodb_items == 0
