"""A reading older than the readings TTL reaches the lake once, however often it is delivered.

The hot copy's TTL counts from receipt: counted from the device time, a backfilled reading would
expire at once, and its next copy would be an INSERT again, a second row in the lake.
"""

from datetime import datetime, timedelta

from sensorhook.core.flavors import Flavor
from tests.integration.conftest import TABLES, Aws
from tests.integration.test_lake_writer import ReadingsStream, lake_rows
from tests.integration.test_lake_writer import run as run_lake_writer
from tests.integration.test_processor import RECEIVED_AT, mhm_measured_at, run

READINGS_TABLE = TABLES["READINGS_TABLE"][0]


def expire_items(aws: Aws, now: datetime) -> int:
    """What DynamoDB's TTL sweep does by `now`: delete every item whose expires_at has passed."""
    deleted = 0
    for item in aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]:
        if "expires_at" in item and int(item["expires_at"]["N"]) <= now.timestamp():
            key = {"series": item["series"], "point": item["point"]}
            aws.dynamodb.delete_item(TableName=READINGS_TABLE, Key=key)
            deleted += 1
    return deleted


def test_a_backfilled_reading_older_than_the_ttl_is_one_lake_row_per_metric(aws: Aws) -> None:
    stream = ReadingsStream(aws)
    # Given a reading measured 100 days before it was received (the TTL is 90 days)
    measured = RECEIVED_AT - timedelta(days=100)
    first = mhm_measured_at(measured, received_at=RECEIVED_AT)
    assert run(("m-1", first)) == {"batchItemFailures": []}
    assert run_lake_writer(stream.next_event()) == {"batchItemFailures": []}
    assert len(lake_rows(aws)) == 16

    # When a day later DynamoDB's TTL sweep has run, and another copy of the reading arrives
    # that delivery dedupe does not catch (its idempotency record has expired: another key)
    a_day_later = RECEIVED_AT + timedelta(days=1)
    expire_items(aws, a_day_later)
    copy = mhm_measured_at(measured, received_at=a_day_later).model_copy(
        update={"event_id": f"{Flavor.EVERACTIVE_DS_SENSOR_READING.value}:another-copy"}
    )
    assert run(("m-2", copy)) == {"batchItemFailures": []}
    assert run_lake_writer(stream.next_event()) == {"batchItemFailures": []}

    # Then the hot copy was overwritten, not inserted again: the lake has each reading once
    rows = lake_rows(aws)
    assert len(rows) == 16
    assert {row.measured_at for row in rows} == {measured}
