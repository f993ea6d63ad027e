"""The largest delivery accepted (100,000 readings from one ~1.5 KB Efento body) goes through the
processor's logic with in-memory stores: stored in bounded chunks, handed to a second attempt
when the first runs short of time, and every reading stored and published exactly once.
(moto would take many minutes for 100,000 items; `make bench` prints its memory and time.)"""

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
from sensorhook.dal.archive import Archive
from sensorhook.dal.delivery_progress import DeliveryProgress
from sensorhook.dal.events import EventPublisher
from sensorhook.dal.gateways_store import GatewaysStore
from sensorhook.dal.lake_store import LakeStore
from sensorhook.dal.readings_store import ReadingsStore
from sensorhook.dal.sensor_state_store import SensorStateStore
from sensorhook.logic.process import (
    DeliveryProcessor,
    DeliveryUnfinished,
    ProcessingLimits,
    ProcessorStores,
)
from tests.builders import largest_efento_batch


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
        self.progress: dict[str, str] = {}

    def put_item(self, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        if TableName == "idempotency":
            self.progress[Item["id"]["S"]] = Item["chunks_done"]["N"]
        return {}

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        if TableName != "idempotency":
            return {}  # sensor state is not kept here: no stored measurement precedes the batch
        done = self.progress.get(Key["id"]["S"])
        return {"Item": {"chunks_done": {"N": done}}} if done else {}

    def delete_item(self, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        self.progress.pop(Key["id"]["S"], None)
        return {}

    def update_item(self, TableName: str, **request: Any) -> dict[str, Any]:
        if TableName == "readings":  # one attribute `metric#channel` per reading written
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
    stores = ProcessorStores(
        readings=ReadingsStore("readings", dynamodb),
        sensor_state=SensorStateStore("sensor-state", dynamodb),
        gateways=GatewaysStore("gateways", dynamodb),
        archive=Archive("bucket", object()),
        events=EventPublisher("bus", bus),
        lake=LakeStore("bucket", object()),  # an Efento batch has no gateway status to write
        progress=DeliveryProgress("idempotency", ttl_seconds=3600, client=dynamodb),
    )
    processor = DeliveryProcessor(
        stores,
        limits=ProcessingLimits(
            reading_ttl_days=90,
            future_tolerance=timedelta(seconds=300),
            chunk_readings=5_000,
            chunk_time_guard_ms=10_000,
        ),
        persistence_layer=MemoryPersistence(),
        idempotency_ttl_seconds=3600,
    )

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
