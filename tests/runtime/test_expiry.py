"""The embedded AWS expires the stack's data as AWS does, by the template's rules, on a clock
where a day lasts `day_s` seconds (local/runtime/expiry.py)."""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow
from moto.dynamodb.models import dynamodb_backends
from moto.s3.models import s3_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.models import stepfunctions_backends

from local.runtime.expiry import (
    TTL_USER_IDENTITY,
    Expirer,
    ExpiryRules,
    LifecycleRule,
    QueueRetention,
    TtlRule,
)

REGION = "us-east-1"
DAY_S = 10.0  # a day of the rules lasts 10 s


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


def _expirer(rules: ExpiryRules) -> Expirer:
    return Expirer(DEFAULT_ACCOUNT_ID, REGION, rules, DAY_S)


def test_rules_are_read_from_the_template_by_deployed_name() -> None:
    template = {
        "Resources": {
            "Readings": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True}
                },
            },
            "Plain": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "LifecycleConfiguration": {
                        "Rules": [
                            {
                                "Id": "raw",
                                "Prefix": "raw/",
                                "ExpirationInDays": 180,
                                "Status": "Enabled",
                            },
                            {"Id": "off", "ExpirationInDays": 1, "Status": "Disabled"},
                            {
                                "Id": "old",
                                "Filter": {"Prefix": "x/"},
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                                "Status": "Enabled",
                            },
                        ]
                    }
                },
            },
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Work": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Reads": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Work", "Arn"]}},
            },
        }
    }
    physical = {
        "Readings": "stage-readings",
        "Plain": "stage-plain",
        "Bucket": "the-bucket",
        "Dlq": "http://127.0.0.1:5000/123456789012/stage-dlq",
        "Queue": "http://127.0.0.1:5000/123456789012/stage-queue",
        "Work": "http://127.0.0.1:5000/123456789012/stage-work",
    }

    rules = ExpiryRules.from_template(template, physical)

    assert rules.ttl == (TtlRule("stage-readings", "expires_at"),)
    assert rules.lifecycle == (
        LifecycleRule("the-bucket", "raw", "raw/", 180.0, None),
        LifecycleRule("the-bucket", "old", "x/", None, 30.0),
    )
    assert rules.queues == (
        QueueRetention("stage-dlq", 1209600.0),
        QueueRetention("stage-queue", 4 * 86400.0),  # SQS's default
    )  # and not the queue a function reads: its messages wait on real-time windows


# --- DynamoDB TTL -----------------------------------------------------------------------------


def _table(name: str) -> Any:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return dynamodb


def _keys(name: str) -> set[str]:
    return {
        str(item.hash_key.value)
        for item in dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[name].all_items()
    }


def test_ttl_deletes_items_past_their_compressed_ttl_with_the_service_identity(aws: None) -> None:
    # Given items whose TTL passed, is two days away, is not a number, or is missing
    dynamodb = _table("t")
    now = time.time()
    for key, ttl in {
        "past": {"N": str(int(now) - 5)},
        "two-days": {"N": str(int(now) + 2 * 86400)},
    }.items():
        dynamodb.put_item(TableName="t", Item={"k": {"S": key}, "expires_at": ttl})
    dynamodb.put_item(TableName="t", Item={"k": {"S": "text"}, "expires_at": {"S": "soon"}})
    dynamodb.put_item(TableName="t", Item={"k": {"S": "none"}})
    expirer = _expirer(ExpiryRules(ttl=(TtlRule("t", "expires_at"),)))

    # When the expirer runs now, then after one local day, then after two
    expirer.expire(now)
    after_now = _keys("t")
    expirer.expire(now + DAY_S)
    after_one_day = _keys("t")
    expirer.expire(now + 2 * DAY_S + 1)

    # Then each item goes when its TTL passes on the local clock, the others stay
    assert after_now == {"two-days", "text", "none"}
    assert after_one_day == {"two-days", "text", "none"}
    assert _keys("t") == {"text", "none"}
    assert expirer.expired.items == 2
    # and each deletion is a REMOVE stream record made by DynamoDB itself, as in AWS
    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables["t"].stream_shard
    assert shard is not None
    removes = [r.record for r in shard.items if r.record["eventName"] == "REMOVE"]
    assert [r["dynamodb"]["Keys"]["k"]["S"] for r in removes] == ["past", "two-days"]
    assert all(r["userIdentity"] == TTL_USER_IDENTITY for r in removes)
    assert all(
        "userIdentity" not in r.record for r in shard.items if r.record["eventName"] == "INSERT"
    )


def test_an_item_whose_ttl_moved_is_kept_until_its_new_ttl(aws: None) -> None:
    # Given an item seen with a TTL one day away
    dynamodb = _table("t")
    now = time.time()
    dynamodb.put_item(
        TableName="t", Item={"k": {"S": "a"}, "expires_at": {"N": str(int(now) + 86400)}}
    )
    expirer = _expirer(ExpiryRules(ttl=(TtlRule("t", "expires_at"),)))
    expirer.expire(now)

    # When a later write moves its TTL three days on (a newer delivery of the same reading)
    later = now + DAY_S / 2
    dynamodb.put_item(
        TableName="t", Item={"k": {"S": "a"}, "expires_at": {"N": str(int(later) + 3 * 86400)}}
    )
    expirer.expire(later)
    expirer.expire(now + DAY_S + 1)  # past its first TTL

    # Then it stays until the new one
    assert _keys("t") == {"a"}
    expirer.expire(later + 3 * DAY_S + 1)
    assert _keys("t") == set()


# --- S3 lifecycle -----------------------------------------------------------------------------


def _bucket(versioned: bool = True) -> Any:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bkt")
    if versioned:
        s3.put_bucket_versioning(Bucket="bkt", VersioningConfiguration={"Status": "Enabled"})
    return s3


def _age(key: str, local_days: float, index: int = -1) -> None:
    """Make the version `index` of `key` `local_days` local days old."""
    version = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets["bkt"].keys.getlist(key)[index]
    version.last_modified = utcnow() - timedelta(seconds=local_days * DAY_S)


def _versions(key: str) -> list[str]:
    return [
        type(v).__name__
        for v in s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets["bkt"].keys.getlist(key, [])
    ]


def test_expiration_marks_a_current_version_deleted_under_its_prefix_only(aws: None) -> None:
    # Given a raw object 181 days old, a newer one, and an old object outside the prefix
    s3 = _bucket()
    for key in ("raw/old", "raw/new", "lake/old"):
        s3.put_object(Bucket="bkt", Key=key, Body=b"x")
    _age("raw/old", 181)
    _age("lake/old", 181)
    rule = LifecycleRule("bkt", "raw", "raw/", expiration_days=180, noncurrent_days=None)
    expirer = _expirer(ExpiryRules(lifecycle=(rule,)))

    expirer.expire()

    # Then the old raw object is hidden by a delete marker (a versioned bucket), the rest stay
    assert _versions("raw/old") == ["FakeKey", "FakeDeleteMarker"]
    assert _versions("raw/new") == ["FakeKey"]
    assert _versions("lake/old") == ["FakeKey"]
    assert expirer.expired.current_versions == 1


def test_noncurrent_versions_go_that_long_after_they_were_replaced(aws: None) -> None:
    # Given a key with three versions: replaced 31 days ago, replaced 29 days ago, current
    s3 = _bucket()
    for body in (b"1", b"2", b"3"):
        s3.put_object(Bucket="bkt", Key="k", Body=body)
    _age("k", 40, 0)
    _age("k", 31, 1)  # the first version became noncurrent when this one was written
    _age("k", 29, 2)
    rule = LifecycleRule("bkt", "old", "", expiration_days=None, noncurrent_days=30)
    expirer = _expirer(ExpiryRules(lifecycle=(rule,)))

    expirer.expire()

    # Then only the version noncurrent for over 30 days is gone
    bodies = [
        v.value for v in s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets["bkt"].keys.getlist("k")
    ]
    assert bodies == [b"2", b"3"]
    assert expirer.expired.noncurrent_versions == 1


def test_an_expired_object_delete_marker_goes_once_it_is_as_old_as_the_expiration(
    aws: None,
) -> None:
    # Given two keys left with only a delete marker: one 181 days old, one 10 days old
    s3 = _bucket()
    for key in ("raw/a", "raw/b"):
        s3.put_object(Bucket="bkt", Key=key, Body=b"x")
        s3.delete_object(Bucket="bkt", Key=key)
        version = s3.list_object_versions(Bucket="bkt", Prefix=key)["Versions"][0]["VersionId"]
        s3.delete_object(Bucket="bkt", Key=key, VersionId=version)
    _age("raw/a", 181)
    _age("raw/b", 10)
    rule = LifecycleRule("bkt", "raw", "raw/", expiration_days=180, noncurrent_days=None)
    expirer = _expirer(ExpiryRules(lifecycle=(rule,)))

    expirer.expire()

    # Then the old marker is removed, as S3 does for a rule with Days; the young one stays
    assert _versions("raw/a") == []
    assert _versions("raw/b") == ["FakeDeleteMarker"]
    assert expirer.expired.delete_markers == 1


# --- SQS retention, Step Functions executions ------------------------------------------------


def test_messages_older_than_the_queues_compressed_retention_are_dropped(aws: None) -> None:
    # Given a queue kept 14 days with a message 15 local days old and a fresh one
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    sqs.send_message(QueueUrl=url, MessageBody="new")
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues["q"]
    old = queue._messages[0]
    old.sent_timestamp = int(old.sent_timestamp or 0) - int(15 * DAY_S * 1000)  # type: ignore[assignment]
    expirer = _expirer(ExpiryRules(queues=(QueueRetention("q", 1209600.0),)))

    expirer.expire()

    assert [m.body for m in queue._messages] == ["new"]
    assert expirer.expired.messages == 1


def test_closed_executions_are_listed_for_90_days(aws: None) -> None:
    # Given a state machine with a running execution and two stopped ones, one 91 days ago
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="m",
        definition='{"StartAt": "w", "States": {"w": {"Type": "Pass", "End": true}}}',
        roleArn="arn:aws:iam::123456789012:role/r",
    )["stateMachineArn"]
    running, recent, old = (
        sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(3)
    )
    for execution in (recent, old):
        sfn.stop_execution(executionArn=execution)
    [machine] = stepfunctions_backends[DEFAULT_ACCOUNT_ID][REGION].state_machines
    [stopped] = [e for e in machine.executions if e.execution_arn == old]
    assert stopped.stop_date is not None
    stopped.stop_date = stopped.stop_date - timedelta(seconds=91 * DAY_S)
    expirer = _expirer(ExpiryRules())

    expirer.expire()

    assert {e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]} == {
        running,
        recent,
    }
    assert expirer.expired.executions == 1
