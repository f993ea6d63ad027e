"""Gateway status reports reach the lake (gateway_status/) once each, so Athena can query them
over time: the processor writes one history item per report, conditionally, to the readings
table; its stream brings the item's INSERT to the lake writer (docs/athena.md).

A gateway status delivery keeps no Powertools idempotency record: every copy of a report (a
re-send with the same or other bytes, an SQS redelivery, two in one batch, concurrent copies)
must still give one history item, one stream record and one lake row."""

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sensorhook.core.flavors import Flavor
from sensorhook.core.settings import processor_settings
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.handlers import lake_writer, processor
from tests.fixtures.loader import sample_json, sample_text
from tests.integration.conftest import BUCKET, TABLES, Aws
from tests.integration.test_lake_writer import ReadingsStream
from tests.integration.test_lake_writer import run as run_lake_writer
from tests.integration.test_processor import GATEWAY_V3, RECEIVED_AT, envelope, item_count, run

READINGS_TABLE = TABLES["READINGS_TABLE"][0]


@pytest.fixture(autouse=True)
def fresh_functions(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    lake_writer.lake_store.cache_clear()
    yield
    processor.delivery_processor.cache_clear()
    lake_writer.lake_store.cache_clear()


def _lake_rows(aws: Aws) -> tuple[list[str], list[dict[str, object]]]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="gateway_status/").get("Contents", [])
    keys = [entry["Key"] for entry in listed]
    rows: list[dict[str, object]] = []
    for key in keys:
        body = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        rows.extend(pq.read_table(io.BytesIO(body)).to_pylist())
    return keys, rows


def _to_lake(aws: Aws) -> dict[str, Any]:
    """The readings stream since the start, through the lake writer; the stream event."""
    event = ReadingsStream(aws).next_event()
    assert run_lake_writer(event) == {"batchItemFailures": []}
    return event


def _history_items(aws: Aws) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]
    return [item for item in items if item["series"]["S"].startswith("gateway_status#")]


def test_a_gateway_status_lands_in_the_lake_once_under_its_reported_day(aws: Aws) -> None:
    # Given the real v3 gateway status, delivered twice (a provider re-send)
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))

    # When the processor handles both and the lake writer the readings stream
    assert run(("g-1", status)) == {"batchItemFailures": []}
    assert run(("g-2", status)) == {"batchItemFailures": []}
    event = _to_lake(aws)

    # Then one stream record, one object, one row, in the partition of the day it was
    # reported, with the report's fields and the columns the Athena table reads
    assert [record["eventName"] for record in event["Records"]] == ["INSERT"]
    keys, rows = _lake_rows(aws)
    assert len(keys) == 1
    assert keys[0].startswith("gateway_status/date=2022-06-28/provider=everactive/")
    (row,) = rows
    assert set(row) == {
        "provider",
        "gateway_id",
        "reported_at",
        "schema_name",
        "online",
        "summary",
        "event_id",
        "received_at",
    }
    assert row["gateway_id"] == "SYN0001"
    assert row["online"] is False
    assert row["schema_name"] == "gateway_status_v3.schema.json"
    assert row["event_id"] == status.event_id
    assert row["received_at"] == RECEIVED_AT
    assert '"mqtt_queue_size": 88' in str(row["summary"])


def test_the_history_item_expires_like_readings_and_keeps_no_idempotency_record(
    aws: Aws,
) -> None:
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))

    assert run(("g-1", status)) == {"batchItemFailures": []}

    # the TTL counts from receipt (the stack's reading_ttl_days), like a reading's
    (item,) = _history_items(aws)
    ttl_days = processor_settings().reading_ttl_days
    assert ttl_days > 0
    assert int(item["expires_at"]["N"]) == int(RECEIVED_AT.timestamp()) + ttl_days * 86_400
    # the conditional history write is the delivery's dedupe record: no Powertools record
    assert item_count(aws, "IDEMPOTENCY_TABLE") == 0


def test_a_re_sent_report_with_other_bytes_keeps_its_first_copy(aws: Aws) -> None:
    # Given the report, and a copy of it (same gateway, same report time) whose other fields
    # differ, as a second relay of it would
    first = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))
    body = sample_json(GATEWAY_V3)
    body["Services"]["mqttQueueSize"]["queueSize"] = 99
    copy = envelope(
        Flavor.EVERACTIVE_DS_GATEWAY_STATUS,
        json.dumps(body),
        received_at=RECEIVED_AT.replace(minute=59),
    )
    assert copy.event_id == first.event_id

    # When both are processed, the copy in a later batch
    assert run(("g-1", first)) == {"batchItemFailures": []}
    assert run(("g-2", copy)) == {"batchItemFailures": []}
    _to_lake(aws)

    # Then one history item and one row: the first copy's
    (item,) = _history_items(aws)
    assert item["received_at"]["S"] == "2022-06-28T20:20:03.000Z"
    _, rows = _lake_rows(aws)
    (row,) = rows
    assert row["received_at"] == RECEIVED_AT
    assert '"mqtt_queue_size": 88' in str(row["summary"])


def test_the_same_report_twice_in_one_batch_is_one_row(aws: Aws) -> None:
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))

    assert run(("g-1", status), ("g-2", status)) == {"batchItemFailures": []}
    event = _to_lake(aws)

    assert len(event["Records"]) == 1
    assert len(_lake_rows(aws)[1]) == 1
    assert len(_history_items(aws)) == 1


def test_a_delivery_failing_after_its_history_write_is_retried_without_a_second_row(
    aws: Aws,
) -> None:
    # Given the gateways table failing once, after the report's history item was written
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))
    failures = iter([True])

    def fail_once(params: dict[str, Any], **_: Any) -> None:
        if json.loads(params["body"])["TableName"] == TABLES["GATEWAYS_TABLE"][0] and next(
            failures, False
        ):
            raise RuntimeError("gateways table unavailable")

    client = dynamodb_client()
    client.meta.events.register("before-call.dynamodb.UpdateItem", fail_once, unique_id="fail")
    try:
        with pytest.raises(BatchProcessingError):  # the batch's only record failed
            run(("g-1", status))
    finally:
        client.meta.events.unregister("before-call.dynamodb.UpdateItem", unique_id="fail")

    # When SQS redelivers it
    assert run(("g-1", status)) == {"batchItemFailures": []}
    _to_lake(aws)

    # Then the history item was there from the first attempt, the gateway's status is
    # stored, and the lake has the report once
    assert len(_history_items(aws)) == 1
    gateways = aws.dynamodb.scan(TableName=TABLES["GATEWAYS_TABLE"][0])["Items"]
    assert [item["gateway_id"]["S"] for item in gateways] == ["SYN0001"]
    assert len(_lake_rows(aws)[1]) == 1


def test_three_concurrent_copies_store_the_report_once(aws: Aws) -> None:
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))
    processor.delivery_processor()  # built once, as each execution environment has its own
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(run((f"g-{n}", status))))
        for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [{"batchItemFailures": []}] * 3
    event = _to_lake(aws)
    assert [record["eventName"] for record in event["Records"]] == ["INSERT"]
    assert len(_lake_rows(aws)[1]) == 1
