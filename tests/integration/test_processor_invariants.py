"""Invariants of the processor that nothing else would notice breaking: an interrupted delivery
is not skipped, DynamoDB's unprocessed writes are written, and the test Lambda context counts
down like Lambda's."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from sensorhook.dal import readings_store as readings_store_module
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.readings_store import ReadingsStore
from sensorhook.handlers import processor
from sensorhook.providers.registry import normalize
from tests.builders import lambda_context
from tests.integration.conftest import TABLES, Aws
from tests.integration.test_processor import RECEIVED_AT, item_count, mhm_envelope, run


@pytest.fixture(autouse=True)
def fresh_processor(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    yield
    processor.delivery_processor.cache_clear()


class LambdaKilled(BaseException):
    """What a Lambda timeout or out-of-memory does to a delivery: nothing after it runs, not
    even Powertools' clean-up of the in-progress record (it only catches Exception)."""


def test_a_delivery_killed_mid_write_is_processed_at_its_next_receive(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an invocation killed inside its readings write, 1.2 s before its timeout (the
    # chunk time guard lowered to 1 s so the write starts)
    monkeypatch.setenv("CHUNK_TIME_GUARD_SECONDS", "1")
    processor.processor_settings.cache_clear()
    delivery = mhm_envelope()

    def kill(**_: Any) -> None:
        raise LambdaKilled

    dynamodb_client().meta.events.register(
        "before-call.dynamodb.BatchWriteItem", kill, unique_id="kill"
    )
    with pytest.raises(LambdaKilled):
        run(("m-1", delivery), context=lambda_context(remaining_ms=1_200))
    dynamodb_client().meta.events.unregister(
        "before-call.dynamodb.BatchWriteItem", unique_id="kill"
    )
    assert item_count(aws, "READINGS_TABLE") == 0

    # When SQS delivers it again after that invocation's timeout (a new environment)
    time.sleep(1.5)
    processor.delivery_processor.cache_clear()
    batch = BatchProcessor(EventType.SQS)
    monkeypatch.setattr(processor, "_batch_processor", batch)
    response = run(("m-1", delivery))

    # Then the left-over in-progress record has expired with the killed invocation: the
    # delivery is stored, not refused as "in progress" until the idempotency TTL
    assert [type(error) for _, error, _ in batch.exceptions] == []
    assert response == {"batchItemFailures": []}
    assert item_count(aws, "READINGS_TABLE") == 16


class PartlyProcessingClient:
    """DynamoDB as it behaves under load: the first BatchWriteItem writes only the first half
    of its items and returns the rest as UnprocessedItems."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        self.calls += 1
        [(table, requests)] = RequestItems.items()
        if self.calls > 1:
            return dict(self._client.batch_write_item(RequestItems=RequestItems))
        half = len(requests) // 2
        self._client.batch_write_item(RequestItems={table: requests[:half]})
        return {"UnprocessedItems": {table: requests[half:]}}


def test_items_dynamodb_leaves_unprocessed_are_written_by_a_retry(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readings_store_module.time, "sleep", lambda _: None)
    delivery = mhm_envelope()
    readings = normalize(
        delivery.flavor, delivery.body or "", event_id=delivery.event_id, received_at=RECEIVED_AT
    ).readings
    client = PartlyProcessingClient(dynamodb_client())

    written = ReadingsStore(TABLES["READINGS_TABLE"][0], client).put_readings(readings, ttl_days=90)

    assert written == 16
    assert client.calls == 2
    assert item_count(aws, "READINGS_TABLE") == 16


def test_the_test_lambda_context_counts_down_from_realistic_time_left() -> None:
    context = lambda_context()
    first = context.get_remaining_time_in_millis()
    time.sleep(0.02)

    assert 59_000 < first <= 60_000
    assert context.get_remaining_time_in_millis() < first
    assert 0 < lambda_context(remaining_ms=5_000).get_remaining_time_in_millis() <= 5_000
