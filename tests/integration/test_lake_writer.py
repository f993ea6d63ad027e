"""The lake writer on moto: real readings-table stream records in, Parquet objects out."""

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import EndpointConnectionError

from sensorhook.core.flavors import Flavor
from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import s3_client
from sensorhook.dal.readings_store import ReadingsStore, iso_ms
from sensorhook.handlers import lake_writer
from sensorhook.providers.registry import normalize
from tests.builders import lambda_context
from tests.fixtures.loader import fixture_text, sample_text
from tests.integration.conftest import REGION, TABLES, Aws

READINGS_TABLE = TABLES["READINGS_TABLE"][0]
RECEIVED_AT = datetime(2022, 6, 28, 20, 20, 3, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_lake_writer(aws: Aws) -> Iterator[None]:
    lake_writer.lake_store.cache_clear()
    yield
    lake_writer.lake_store.cache_clear()


def mhm_readings(event_id: str = "everactive-ds-sensor-reading:mhm") -> list[Reading]:
    delivery = normalize(
        Flavor.EVERACTIVE_DS_SENSOR_READING,
        sample_text("everactive-ds/sensor-reading-mhm.json"),
        event_id=event_id,
        received_at=RECEIVED_AT,
    )
    return delivery.readings


def efento_readings() -> list[Reading]:
    delivery = normalize(
        Flavor.EFENTO_MEASUREMENTS,
        fixture_text("efento/multi-channel-batch.json"),
        event_id="efento-measurements:batch",
        received_at=RECEIVED_AT,
    )
    return delivery.readings


class ReadingsStream:
    """Reads the readings table's stream (moto) and shapes records as Lambda delivers them."""

    def __init__(self, aws: Aws) -> None:
        self.arn = aws.dynamodb.describe_table(TableName=READINGS_TABLE)["Table"]["LatestStreamArn"]
        # botocore sends ARN-addressed calls to <account>.streams-ddb.<region>, a host moto
        # 5.2.5 does not serve; the regional endpoint reaches the same mock
        self._client = boto3.client(
            "dynamodbstreams",
            region_name=REGION,
            endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com",
        )
        shard = self._client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]
        self._iterator = self._client.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self._last_sequence = 0

    def next_event(self) -> dict[str, Any]:
        """A Lambda event with every record written since the previous call."""
        response = self._client.get_records(ShardIterator=self._iterator)
        self._iterator = response["NextShardIterator"]
        records = []
        for record in response["Records"]:
            # a record read again (a number two records share) fails here, not loops for ever
            sequence = int(record["dynamodb"]["SequenceNumber"])
            assert sequence > self._last_sequence, f"stream record {sequence} read again"
            self._last_sequence = sequence
            change = dict(record["dynamodb"])
            created = change.get("ApproximateCreationDateTime")
            if isinstance(created, datetime):
                change["ApproximateCreationDateTime"] = created.timestamp()
            records.append({**record, "dynamodb": change, "eventSourceARN": self.arn})
        return {"Records": records}


def run(event: dict[str, Any]) -> dict[str, Any]:
    return dict(lake_writer.handler(event, lambda_context()))


def read_parquet(aws: Aws, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(aws.object_bytes(key)))


def lake_rows(aws: Aws) -> list[Reading]:
    """Every row of every object in the lake."""
    return [
        Reading.model_validate(row)
        for key in aws.object_keys("readings/")
        for row in read_parquet(aws, key).to_pylist()
    ]


def fail_lake_puts_after(count: int) -> None:
    """Make S3 refuse every PutObject after the first `count` (as an outage would)."""
    calls = 0

    def refuse(**_: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > count:
            raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    s3_client().meta.events.register("before-call.s3.PutObject", refuse, unique_id="refuse")


def allow_lake_puts() -> None:
    s3_client().meta.events.unregister("before-call.s3.PutObject", unique_id="refuse")


def test_inserted_readings_become_one_parquet_object_per_date_and_provider(aws: Aws) -> None:
    # Given the real MHM readings and an Efento batch written to the readings table
    stream = ReadingsStream(aws)
    mhm, efento = mhm_readings(), efento_readings()
    ReadingsStore(READINGS_TABLE).put_readings([*mhm, *efento], ttl_days=90)
    event = stream.next_event()
    sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in event["Records"]]

    # When the lake writer receives the stream batch
    response = run(event)

    # Then each (date, provider) has one object named by the stream and the batch's first number
    assert response == {"batchItemFailures": []}
    label = stream.arn.rsplit("/stream/", 1)[1].replace("-", "").replace(":", "").replace(".", "")
    name = f"{label}-{sequence_numbers[0]}.parquet"
    assert sorted(aws.object_keys("readings/")) == [
        f"readings/date=2021-05-25/provider=efento/{name}",
        f"readings/date=2022-06-28/provider=everactive/{name}",
    ]
    # and the MHM object holds exactly the canonical readings, with the lake's column types
    table = read_parquet(aws, f"readings/date=2022-06-28/provider=everactive/{name}")
    types = {field.name: field.type for field in table.schema}
    assert types["measured_at"] == pa.timestamp("ms", tz="UTC")
    assert types["received_at"] == pa.timestamp("ms", tz="UTC")
    assert (types["value"], types["period_s"], types["error_code"]) == (
        pa.float64(),
        pa.int32(),
        pa.int32(),
    )
    assert types["sensor_id"] == types["metric"] == types["text_value"] == pa.string()
    assert set(types) == set(Reading.model_fields)
    rows = [Reading.model_validate(row) for row in table.to_pylist()]
    assert sorted(rows, key=lambda r: r.point_key) == sorted(mhm, key=lambda r: r.point_key)


def test_efento_status_rows_keep_their_nulls(aws: Aws) -> None:
    stream = ReadingsStream(aws)
    efento = efento_readings()
    ReadingsStore(READINGS_TABLE).put_readings(efento, ttl_days=0)

    run(stream.next_event())

    [key] = aws.object_keys("readings/date=2021-05-25/provider=efento/")
    rows = [Reading.model_validate(row) for row in read_parquet(aws, key).to_pylist()]
    missing = [row for row in rows if row.status == "MISSING"]
    assert missing
    assert all(row.value is None for row in missing)
    assert sorted(rows, key=lambda r: (r.series_key, r.point_key)) == sorted(
        efento, key=lambda r: (r.series_key, r.point_key)
    )


def test_the_lake_answers_sql_over_its_partitions(aws: Aws, tmp_path: Path) -> None:
    # Given the lake written from MHM and Efento readings
    stream = ReadingsStream(aws)
    ReadingsStore(READINGS_TABLE).put_readings([*mhm_readings(), *efento_readings()], ttl_days=90)
    run(stream.next_event())
    for key in aws.object_keys("readings/"):
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(aws.object_bytes(key))

    # When it is queried the way Athena would, through the hive partitions
    rows = duckdb.execute(
        """
        SELECT date, provider, count(*), max(value) FILTER (WHERE metric = 'temperature')
        FROM read_parquet(?, hive_partitioning = true)
        GROUP BY ALL ORDER BY date
        """,
        [f"{tmp_path}/readings/*/*/*.parquet"],
    ).fetchall()

    # Then each partition answers with its readings
    efento_count = len(efento_readings())
    efento_max = max(r.value for r in efento_readings() if r.metric == "temperature" and r.value)
    assert rows == [
        (datetime(2021, 5, 25).date(), "efento", efento_count, efento_max),
        (datetime(2022, 6, 28).date(), "everactive", 16, pytest.approx(63.6625)),
    ]


def test_modify_and_remove_records_do_not_reach_the_lake(aws: Aws) -> None:
    # Given readings already in the lake
    stream = ReadingsStream(aws)
    store = ReadingsStore(READINGS_TABLE)
    store.put_readings(mhm_readings(), ttl_days=90)
    run(stream.next_event())
    before = {key: aws.object_bytes(key) for key in aws.object_keys("readings/")}

    # When the same readings arrive again in another delivery (MODIFY) and one expires (REMOVE)
    store.put_readings(mhm_readings(event_id="everactive-ds-sensor-reading:again"), ttl_days=90)
    first = mhm_readings()[0]
    aws.dynamodb.delete_item(
        TableName=READINGS_TABLE,
        Key={"series": {"S": first.series_key}, "point": {"S": iso_ms(first.measured_at)}},
    )
    event = stream.next_event()
    assert {record["eventName"] for record in event["Records"]} == {"MODIFY", "REMOVE"}
    response = run(event)

    # Then nothing is written: the lake holds each reading once, from its first INSERT
    assert response == {"batchItemFailures": []}
    assert {key: aws.object_bytes(key) for key in aws.object_keys("readings/")} == before


def test_a_retried_batch_overwrites_its_objects(aws: Aws) -> None:
    stream = ReadingsStream(aws)
    ReadingsStore(READINGS_TABLE).put_readings(mhm_readings(), ttl_days=90)
    event = stream.next_event()

    run(event)
    run(event)

    [key] = aws.object_keys("readings/")
    assert read_parquet(aws, key).num_rows == 16


def test_an_item_that_is_not_a_reading_stops_the_batch_at_it(aws: Aws) -> None:
    # Given a batch: MHM readings, then a foreign item, then Efento readings
    stream = ReadingsStream(aws)
    store = ReadingsStore(READINGS_TABLE)
    store.put_readings(mhm_readings(), ttl_days=90)
    aws.dynamodb.put_item(
        TableName=READINGS_TABLE,
        Item={"series": {"S": "manual#x"}, "point": {"S": "2022-06-28T00:00:00Z#note#"}},
    )
    store.put_readings(efento_readings(), ttl_days=0)
    event = stream.next_event()
    [foreign] = [
        record["dynamodb"]["SequenceNumber"]
        for record in event["Records"]
        if record["dynamodb"]["Keys"]["series"]["S"] == "manual#x"
    ]

    # When the lake writer receives it
    response = run(event)

    # Then the stream is told to retry from the foreign item, and only what precedes it is in
    # the lake (the Efento readings come with the retried batch, written once)
    assert response == {"batchItemFailures": [{"itemIdentifier": foreign}]}
    [key] = aws.object_keys("readings/")
    assert key.startswith("readings/date=2022-06-28/provider=everactive/")
    assert read_parquet(aws, key).num_rows == 16


def test_a_failed_write_retries_the_whole_batch_and_leaves_each_reading_once(
    aws: Aws, tmp_path: Path
) -> None:
    # Given a stream batch of two objects (MHM, then Efento) whose second write fails
    stream = ReadingsStream(aws)
    store = ReadingsStore(READINGS_TABLE)
    store.put_readings(mhm_readings(), ttl_days=90)
    store.put_readings(efento_readings(), ttl_days=90)
    failed_batch = stream.next_event()["Records"]
    fail_lake_puts_after(1)

    # When the lake writer receives it
    response = run({"Records": failed_batch})

    # Then the first object is written, and the stream is told to retry from the batch's start
    first = failed_batch[0]["dynamodb"]["SequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": first}]}
    assert [key.split("/")[2] for key in aws.object_keys("readings/")] == ["provider=everactive"]

    # When S3 recovers and the stream retries from that record, with a reading inserted since
    allow_lake_puts()
    later = [
        r.model_copy(update={"measured_at": r.measured_at.replace(hour=21)}) for r in mhm_readings()
    ]
    store.put_readings(later, ttl_days=90)
    retried_batch = failed_batch + stream.next_event()["Records"]
    assert run({"Records": retried_batch}) == {"batchItemFailures": []}

    # Then the lake holds every reading exactly once, as SQL over the objects sees it
    for key in aws.object_keys("readings/"):
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(aws.object_bytes(key))
    [(rows, distinct)] = duckdb.execute(
        """
        SELECT count(*), count(DISTINCT (provider, sensor_id, measured_at, metric, channel))
        FROM read_parquet(?)
        """,
        [f"{tmp_path}/readings/*/*/*.parquet"],
    ).fetchall()
    expected = [*mhm_readings(), *efento_readings(), *later]
    assert rows == distinct == len(expected)
    assert sorted(lake_rows(aws), key=lambda r: (r.series_key, r.point_key)) == sorted(
        expected, key=lambda r: (r.series_key, r.point_key)
    )


def test_a_later_delivery_with_other_channels_adds_only_its_readings_to_the_lake(
    aws: Aws,
) -> None:
    # Given the first half of a sensor's readings at one instant, in the lake
    stream = ReadingsStream(aws)
    store = ReadingsStore(READINGS_TABLE)
    mhm = mhm_readings()
    store.put_readings(mhm[:8], ttl_days=90)
    run(stream.next_event())

    # When another delivery brings the other half of that instant (a MODIFY of the same item)
    # and a retry writes it again (a MODIFY that brings nothing new)
    later = mhm_readings(event_id="everactive-ds-sensor-reading:rest")[8:]
    store.put_readings(later, ttl_days=90)
    store.put_readings(later, ttl_days=90)
    event = stream.next_event()
    assert {record["eventName"] for record in event["Records"]} == {"MODIFY"}
    assert run(event) == {"batchItemFailures": []}

    # Then the lake holds every reading of the instant once: the first half from the INSERT,
    # the second from the first MODIFY, nothing from the retry
    rows = lake_rows(aws)
    assert len(rows) == 16
    assert sorted(rows, key=lambda r: r.point_key) == sorted(
        [*mhm[:8], *later], key=lambda r: r.point_key
    )


def test_a_modify_without_its_old_image_writes_nothing_and_stops_the_batch(aws: Aws) -> None:
    # Given a MODIFY as a NEW_IMAGE-only stream would send it (no OldImage)
    stream = ReadingsStream(aws)
    store = ReadingsStore(READINGS_TABLE)
    store.put_readings(mhm_readings()[:8], ttl_days=90)
    stream.next_event()
    store.put_readings(mhm_readings()[8:], ttl_days=90)
    records = stream.next_event()["Records"]
    for record in records:
        record["dynamodb"].pop("OldImage", None)

    # When the lake writer receives it
    response = run({"Records": records})

    # Then none of its readings is written (all would have been, the old ones twice)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
    }
    assert aws.object_keys("readings/") == []


def test_a_modify_of_an_item_packed_before_the_sources_adds_its_readings_with_their_fields(
    aws: Aws,
) -> None:
    # Given an instant stored as packing began (every map with its delivery's fields), in the
    # lake
    from tests.integration.test_readings_store import put_packed_before_sources

    stream = ReadingsStream(aws)
    mhm = mhm_readings()
    put_packed_before_sources(aws, mhm[:8])
    run(stream.next_event())

    # When a later delivery from another gateway adds the other channels (its own source)
    later = [
        r.model_copy(
            update={
                "event_id": "everactive-ds-sensor-reading:later",
                "received_at": RECEIVED_AT.replace(minute=21),
                "gateway_id": "GW-LATER",
            }
        )
        for r in mhm_readings()[8:]
    ]
    ReadingsStore(READINGS_TABLE).put_readings(later, ttl_days=90)
    event = stream.next_event()
    assert {record["eventName"] for record in event["Records"]} == {"MODIFY"}
    assert run(event) == {"batchItemFailures": []}

    # Then the lake holds each reading once, each with the fields of its own delivery
    rows = sorted(lake_rows(aws), key=lambda r: r.point_key)
    assert rows == sorted([*mhm[:8], *later], key=lambda r: r.point_key)
