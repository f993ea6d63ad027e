"""`make local`'s expiry on the whole stack: a readings item past its TTL is deleted by the
embedded DynamoDB as by AWS's, and its consumers treat the deletion as they do in AWS."""

import io
import time
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from moto.dynamodb.models import dynamodb_backends

from infra.constants import Output
from local.runtime import EmbeddedStack
from local.runtime.expiry import TTL_USER_IDENTITY
from local.sandbox import PROJECT_DIR
from sensorhook.core.flavors import Flavor
from sensorhook.dal.readings_store import ReadingsStore
from sensorhook.providers.registry import normalize
from tests.fixtures.loader import sample_text

pytestmark = pytest.mark.slow


def test_a_ttl_deletion_is_a_service_remove_that_never_reaches_the_lake() -> None:
    # Given the stack with a local day of one second, and one delivery's 16 readings stored with
    # a TTL of one day from a receipt long past (the processor's write, with its TTL)
    delivery = normalize(
        Flavor.EVERACTIVE_DS_SENSOR_READING,
        sample_text("everactive-ds/sensor-reading-mhm.json"),
        event_id="everactive-ds-sensor-reading:mhm",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with EmbeddedStack(
        PROJECT_DIR, schedule_speedup=0, step_functions_speedup=60, retention_day_s=1.0
    ) as stack:
        table = stack.outputs[Output.READINGS_TABLE]
        dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
        ReadingsStore(table, client=dynamodb, writers=1).put_readings(delivery.readings, ttl_days=1)

        # When the janitor's next rounds run (every 5 s) and the stack drains
        deadline = time.monotonic() + 30
        while dynamodb.scan(TableName=table, Select="COUNT")["Count"] and (
            time.monotonic() < deadline
        ):
            time.sleep(0.5)
        stack.drain(timeout=60)

        # Then the item is gone, by a REMOVE stream record DynamoDB itself made
        assert dynamodb.scan(TableName=table, Select="COUNT")["Count"] == 0
        shard = dynamodb_backends[stack.account_id][stack.region].tables[table].stream_shard
        assert shard is not None
        records = [record.record for record in shard.items]
        [removed] = [r for r in records if r["eventName"] == "REMOVE"]
        assert removed["userIdentity"] == TTL_USER_IDENTITY
        assert records[-1] is removed
        assert not [r for r in records if r is not removed and "userIdentity" in r]
        # and the lake holds each reading once, from the INSERT: the lake writer's filter kept
        # the REMOVE out (as in AWS), and nothing failed into its failure destination
        bucket = stack.outputs[Output.BUCKET_NAME]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="readings/").get("Contents", [])
        rows = sum(
            pq.read_table(
                io.BytesIO(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            ).num_rows
            for o in listed
        )
        assert rows == len(delivery.readings) == 16
        failures = stack.client("sqs").get_queue_url(
            QueueName="sensorhook-dev-lake-writer-failures"
        )
        attributes = stack.client("sqs").get_queue_attributes(
            QueueUrl=failures["QueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
        )
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
