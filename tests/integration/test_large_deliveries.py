"""Large Efento deliveries: stored in chunks within the invocation's time, resumed after the last
chunk stored, and still exactly once (each reading stored once, one lake row each, each event
once)."""

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sensorhook.core.flavors import Flavor
from sensorhook.dal.aws_clients import dynamodb_client, events_client
from sensorhook.dal.events import EventPublishError
from sensorhook.dal.readings_store import iso_ms
from sensorhook.handlers import lake_writer, processor
from sensorhook.providers.registry import normalize
from tests.builders import lambda_context, largest_efento_batch
from tests.integration.conftest import TABLES, Aws
from tests.integration.test_lake_writer import ReadingsStream, lake_rows
from tests.integration.test_processor import RECEIVED_AT, envelope, item_count, reading_count, run

IDEMPOTENCY_TABLE = TABLES["IDEMPOTENCY_TABLE"][0]


@pytest.fixture(autouse=True)
def fresh_processor(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    yield
    processor.delivery_processor.cache_clear()


def chunked(monkeypatch: pytest.MonkeyPatch, readings_per_chunk: int) -> None:
    monkeypatch.setenv("CHUNK_READINGS", str(readings_per_chunk))
    processor.processor_settings.cache_clear()


def efento_delivery(points: int) -> Any:
    body = json.dumps(largest_efento_batch(points=points))
    return envelope(Flavor.EFENTO_MEASUREMENTS, body)


def expected_readings(delivery: Any) -> int:
    return len(
        normalize(
            delivery.flavor, delivery.body, event_id=delivery.event_id, received_at=RECEIVED_AT
        ).readings
    )


def published_readings(aws: Aws) -> tuple[Counter[str], Counter[tuple[str, str, str]]]:
    """How often each dedupe_id was published, and each reading (point) in an event."""
    events = [
        e["detail"] for e in aws.published_events() if e["detail-type"] == "readings.received"
    ]
    dedupe_ids = Counter(detail["dedupe_id"] for detail in events)
    points = Counter(
        (r["measured_at"], r["metric"], r["channel"]) for d in events for r in d["readings"]
    )
    return dedupe_ids, points


def lake_rows_per_reading(aws: Aws, stream: ReadingsStream) -> Counter[tuple[str, ...]]:
    """How often each reading became a lake row: every stream record so far through the lake
    writer (an item packs a sensor's instant, so a chunk can INSERT it and a later one MODIFY
    it with the other channels)."""
    lake_writer.lake_store.cache_clear()
    while records := stream.next_event()["Records"]:  # a page holds at most 1,000 records
        assert dict(lake_writer.handler({"Records": records}, lambda_context())) == {
            "batchItemFailures": []
        }
    return Counter(
        (r.series_key, iso_ms(r.measured_at), r.metric, r.channel) for r in lake_rows(aws)
    )


def progress_items(aws: Aws) -> list[dict[str, Any]]:
    items = aws.dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    return [item for item in items if item["id"]["S"].startswith("progress#")]


def test_a_delivery_out_of_time_resumes_after_its_last_stored_chunk(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 6-channel delivery of 1,204 readings stored 250 at a time (5 chunks), and an
    # invocation whose time runs short once two chunks are recorded
    chunked(monkeypatch, 250)
    stream = ReadingsStream(aws)
    delivery = efento_delivery(points=200)
    total = expected_readings(delivery)
    assert total == 6 * 200 + 4
    recorded = 0

    def count_progress(params: dict[str, Any], **_: Any) -> None:
        nonlocal recorded
        recorded += params["Item"].get("id", {}).get("S", "").startswith("progress#")

    dynamodb_client().meta.events.register(
        "before-parameter-build.dynamodb.PutItem", count_progress
    )
    short = lambda_context()
    short.get_remaining_time_in_millis = lambda: 60_000 if recorded < 2 else 9_000  # type: ignore[method-assign]

    # When it is processed
    with pytest.raises(BatchProcessingError, match="DeliveryUnfinished"):
        run(("e-1", delivery), context=short)

    # Then it failed before its third chunk (SQS will retry it), two chunks stored and recorded
    assert reading_count(aws) == 500
    [progress] = progress_items(aws)
    assert progress["chunks_done"]["N"] == "2"

    # When SQS retries it in a fresh invocation
    assert run(("e-1", delivery)) == {"batchItemFailures": []}

    # Then every reading is stored once, one lake row each, published once,
    # every event under its own dedupe_id, and the progress record is gone
    assert reading_count(aws) == total
    inserts = lake_rows_per_reading(aws, stream)
    assert len(inserts) == total and set(inserts.values()) == {1}
    dedupe_ids, points = published_readings(aws)
    assert len(points) == total and set(points.values()) == {1}
    assert set(dedupe_ids.values()) == {1}
    assert {d.rsplit(":", 2)[1] for d in dedupe_ids} == {"0", "1", "2", "3", "4"}
    assert progress_items(aws) == []

    # And the same delivery again is skipped as a duplicate
    assert run(("e-2", delivery)) == {"batchItemFailures": []}
    assert aws.published_events() == []


def test_a_chunk_interrupted_part_way_is_stored_again_without_doubles(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a delivery stored 250 readings at a time, and EventBridge failing once the third
    # chunk's readings are written (after its readings, before its events)
    monkeypatch.setattr("sensorhook.dal.events.time.sleep", lambda _: None)
    chunked(monkeypatch, 250)
    stream = ReadingsStream(aws)
    delivery = efento_delivery(points=200)
    total = expected_readings(delivery)
    puts = 0

    def fail_third_chunk(**_: Any) -> None:
        nonlocal puts
        puts += 1
        if reading_count(aws) == 750:
            raise EventPublishError("EventBridge unavailable")

    events_client().meta.events.register("before-call.events.PutEvents", fail_third_chunk)

    # When it is processed, and retried after the outage
    with pytest.raises(BatchProcessingError, match="EventPublishError"):
        run(("e-1", delivery))
    events_client().meta.events.unregister("before-call.events.PutEvents", fail_third_chunk)
    assert run(("e-1", delivery)) == {"batchItemFailures": []}

    # Then the third chunk was stored again: still each reading once and one lake row each, and
    # every reading published once
    assert reading_count(aws) == total
    inserts = lake_rows_per_reading(aws, stream)
    assert len(inserts) == total and set(inserts.values()) == {1}
    dedupe_ids, points = published_readings(aws)
    assert len(points) == total and set(points.values()) == {1}
    assert set(dedupe_ids.values()) == {1}


def test_a_late_chunk_no_store_can_take_quarantines_the_delivery_before_any_write(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a delivery stored 25 readings at a time whose last channel, in its last chunks,
    # reports an error code no store can hold (the lake's error_code is int32)
    chunked(monkeypatch, 25)
    body = largest_efento_batch(points=20)
    body["measurementsEvents"][-1]["events"][-1].update(status="ERROR", value=2**40)
    delivery = envelope(Flavor.EFENTO_MEASUREMENTS, json.dumps(body))

    # When it is processed
    assert run(("e-1", delivery)) == {"batchItemFailures": []}

    # Then it is quarantined whole: nothing of its first chunks was stored or published
    assert aws.object_keys("quarantine/") != []
    assert reading_count(aws) == 0
    assert item_count(aws, "SENSOR_STATE_TABLE") == 0
    assert aws.published_events() == []
