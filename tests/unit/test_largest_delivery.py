"""The largest delivery accepted (100,000 readings from one ~1.5 KB Efento body) goes through the
processor's logic with in-memory stores: stored in bounded chunks, handed to a second attempt
when the first runs short of time, and every reading stored and published exactly once.
(moto would take many minutes for 100,000 items; `make bench` prints its memory and time.)"""

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.core.reading import Reading
from sensorhook.dal.archive import Archive
from sensorhook.dal.delivery_progress import DeliveryProgress
from sensorhook.dal.events import EventPublisher
from sensorhook.dal.gateway_history import GatewayHistoryStore
from sensorhook.dal.gateways_store import GatewaysStore
from sensorhook.dal.readings_store import ReadingsStore
from sensorhook.dal.sensor_state_store import SensorStateStore
from sensorhook.logic.process import (
    DeliveryProcessor,
    DeliveryUnfinished,
    ProcessingLimits,
    ProcessorStores,
)
from sensorhook.providers.registry import CHANNEL_ORDER, DeliveryChunks, normalize
from tests.builders import largest_efento_batch
from tests.fixtures.loader import fixture_text


class MemoryPersistence(BasePersistenceLayer):
    """Powertools idempotency records in a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        if idempotency_key not in self.records:
            raise IdempotencyItemNotFoundError
        return self.records[idempotency_key]

    def _put_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


class MemoryDynamoDB:
    """The DynamoDB calls the processor makes, kept in memory; counts every reading write."""

    def __init__(self) -> None:
        self.reading_writes: Counter[tuple[str, str, str]] = Counter()
        self.reading_updates = 0
        self.progress: dict[str, dict[str, Any]] = {}

    def put_item(self, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        if TableName == "idempotency":
            self.progress[Item["id"]["S"]] = Item
        return {}

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        if TableName != "idempotency":
            return {}  # sensor state is not kept here: no stored measurement precedes the batch
        item = self.progress.get(Key["id"]["S"])
        return {"Item": item} if item else {}

    def delete_item(self, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        self.progress.pop(Key["id"]["S"], None)
        return {}

    def update_item(self, TableName: str, **request: Any) -> dict[str, Any]:
        if TableName == "readings":  # one attribute `metric#channel` per reading written
            self.reading_updates += 1
            key = request["Key"]
            for name in request["ExpressionAttributeNames"].values():
                if "#" in name:
                    self.reading_writes[(key["series"]["S"], key["point"]["S"], name)] += 1
        return {}


class MemoryEventBridge:
    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.details.extend(json.loads(entry["Detail"]) for entry in Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


def processor_on(
    dynamodb: MemoryDynamoDB, bus: MemoryEventBridge, *, chunk_readings: int
) -> DeliveryProcessor:
    stores = ProcessorStores(
        readings=ReadingsStore("readings", dynamodb),
        sensor_state=SensorStateStore("sensor-state", dynamodb),
        gateways=GatewaysStore("gateways", dynamodb),
        archive=Archive("bucket", object()),
        events=EventPublisher("bus", bus),
        gateway_history=GatewayHistoryStore("readings", dynamodb),
        progress=DeliveryProgress("idempotency", ttl_seconds=3600, client=dynamodb),
    )
    return DeliveryProcessor(
        stores,
        limits=ProcessingLimits(
            reading_ttl_days=90,
            future_tolerance=timedelta(seconds=300),
            chunk_readings=chunk_readings,
            chunk_time_guard_ms=10_000,
        ),
        persistence_layer=MemoryPersistence(),
        idempotency_ttl_seconds=3600,
    )


@pytest.mark.slow
def test_the_largest_delivery_is_stored_in_chunks_across_attempts_exactly_once() -> None:
    # Given the largest delivery accepted, and a processor storing 5,000 readings per chunk
    batch = largest_efento_batch()
    body = json.dumps(batch, separators=(",", ":"))
    assert len(body) < 1_600
    envelope = IngestEnvelope(
        flavor=Flavor.EFENTO_MEASUREMENTS,
        event_id=event_id_for(Flavor.EFENTO_MEASUREMENTS, batch),
        received_at=datetime(2024, 3, 12, 14, 0, tzinfo=UTC),
        request_id="largest",
        body=body,
    )
    dynamodb, bus = MemoryDynamoDB(), MemoryEventBridge()
    processor = processor_on(dynamodb, bus, chunk_readings=5_000)

    # When a first attempt has time for 12 chunks (60 s, 4 s a chunk, 10 s guard)
    def time_left() -> int:
        return 60_000 - 4_000 * len(dynamodb.reading_writes) // 5_000

    with pytest.raises(DeliveryUnfinished) as unfinished:
        processor.process(envelope, time_left)
    assert unfinished.value.chunks_done == 13
    assert len(dynamodb.reading_writes) == 65_000

    # and SQS's retry, in a fresh invocation, finishes it
    summary = processor.process(envelope, lambda: 60_000)

    # Then it resumed at chunk 13 of 20, and every reading was written once and published once,
    # in events of distinct dedupe ids, and the progress record is gone
    assert (summary.chunks, summary.resumed_at_chunk, summary.readings) == (20, 13, 35_000)
    assert len(dynamodb.reading_writes) == 100_000
    assert set(dynamodb.reading_writes.values()) == {1}
    published = Counter(
        (r["metric"], r["channel"], r["measured_at"]) for d in bus.details for r in d["readings"]
    )
    assert len(published) == 100_000 and set(published.values()) == {1}
    assert len({d["dedupe_id"] for d in bus.details}) == len(bus.details)
    assert dynamodb.progress == {}
    # in one update per sensor and instant (6 channels each) and chunk that holds it: chunks
    # are slices in time, not channel by channel (100,000 updates)
    instants = len({(series, point) for series, point, _ in dynamodb.reading_writes})
    assert instants < 17_000
    assert instants <= dynamodb.reading_updates < instants + summary.chunks


RECEIVED = datetime(2024, 3, 12, 14, 0, tzinfo=UTC)


def multi_channel_chunks(chunk_size: int) -> tuple[str, DeliveryChunks]:
    body = fixture_text("efento/multi-channel-batch.json")
    return body, DeliveryChunks(
        Flavor.EFENTO_MEASUREMENTS,
        body,
        event_id="efento-measurements:multi",
        received_at=RECEIVED,
        chunk_size=chunk_size,
    )


def test_chunks_are_slices_in_time_each_in_the_order_normalize_makes() -> None:
    body, chunks = multi_channel_chunks(4)
    whole = normalize(
        Flavor.EFENTO_MEASUREMENTS, body, event_id="efento-measurements:multi", received_at=RECEIVED
    ).readings
    by_time = [chunk.readings for chunk in chunks.chunks()]

    # every reading once, the same chunks every time, each chunk in normalize's order
    assert sorted((r for chunk in by_time for r in chunk), key=whole.index) == whole
    assert [chunk.readings for chunk in chunks.chunks()] == by_time
    for chunk in by_time:
        assert chunk == sorted(chunk, key=whole.index)
    # a chunk's channel readings end no later than the next chunk's begin
    channel_times = [[r.measured_at for r in chunk if r.channel] for chunk in by_time]
    for earlier, later in itertools.pairwise(t for t in channel_times if t):
        assert max(earlier) <= min(later)

    # so a chunk touches fewer instants than channel by channel (one channel's run of them)
    def instants(chunks: list[list[Reading]]) -> int:
        return sum(len({r.measured_at for r in chunk}) for chunk in chunks)

    by_channel = [c.readings for c in chunks.chunks(order=CHANNEL_ORDER)]
    assert instants(by_time) < instants(by_channel)
    # and a delivery of one chunk is exactly what normalize makes
    [single] = multi_channel_chunks(len(whole))[1].chunks()
    assert single.readings == whole


def test_a_delivery_part_stored_in_channel_order_resumes_in_it() -> None:
    # Given a delivery whose first 2 chunks an earlier version stored, cut channel by channel,
    # its progress record naming no order
    body, chunks = multi_channel_chunks(3)
    assert chunks.count >= 4
    dynamodb, bus = MemoryDynamoDB(), MemoryEventBridge()
    earlier = ReadingsStore("readings", dynamodb)
    for chunk in itertools.islice(chunks.chunks(order=CHANNEL_ORDER), 2):
        earlier.put_readings(chunk.readings, ttl_days=90)
    event_id = event_id_for(Flavor.EFENTO_MEASUREMENTS, json.loads(body))
    dynamodb.progress["progress#" + event_id] = {"chunks_done": {"N": "2"}}

    # When SQS's retry reaches this version
    envelope = IngestEnvelope(
        flavor=Flavor.EFENTO_MEASUREMENTS,
        event_id=event_id,
        received_at=RECEIVED,
        request_id="resumed",
        body=body,
    )
    summary = processor_on(dynamodb, bus, chunk_readings=3).process(envelope, lambda: 60_000)

    # Then it resumed at chunk 2 in the order it began in: every reading stored exactly once
    assert summary.resumed_at_chunk == 2
    total = sum(len(chunk.readings) for chunk in chunks.chunks())
    assert len(dynamodb.reading_writes) == total
    assert set(dynamodb.reading_writes.values()) == {1}
