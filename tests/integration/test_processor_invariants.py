"""Invariants of the processor that nothing else would notice breaking: an interrupted delivery
is not skipped, a failed write among concurrent readings writes fails the call (so it is
retried), and the test Lambda context counts down like Lambda's."""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from botocore.exceptions import ClientError

from sensorhook.core.flavors import Flavor
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.readings_store import ReadingsStore, iso_ms
from sensorhook.handlers import processor
from sensorhook.providers.registry import normalize
from tests.builders import lambda_context
from tests.integration.conftest import TABLES, Aws
from tests.integration.test_processor import (
    RECEIVED_AT,
    item_count,
    mhm_envelope,
    reading_count,
    run,
    writes_readings,
)


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

    def kill(params: dict[str, Any], **_: Any) -> None:
        if writes_readings(params):
            raise LambdaKilled

    dynamodb_client().meta.events.register(
        "before-call.dynamodb.UpdateItem", kill, unique_id="kill"
    )
    with pytest.raises(LambdaKilled):
        run(("m-1", delivery), context=lambda_context(remaining_ms=1_200))
    dynamodb_client().meta.events.unregister("before-call.dynamodb.UpdateItem", unique_id="kill")
    assert reading_count(aws) == 0

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
    assert reading_count(aws) == 16


class FailingOnceClient:
    """DynamoDB failing one write (throttled past botocore's retries, or a timeout) among the
    concurrent writes of a large chunk; every other write goes through."""

    def __init__(self, client: Any, fail_point: str) -> None:
        self._client = client
        self._fail_point = fail_point
        self.failed = 0

    def update_item(self, **request: Any) -> dict[str, Any]:
        if request["Key"]["point"]["S"] == self._fail_point and not self.failed:
            self.failed += 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "UpdateItem",
            )
        return dict(self._client.update_item(**request))


def test_one_failed_write_among_concurrent_ones_fails_the_call_and_its_retry_stores_all(
    aws: Aws,
) -> None:
    # Given 40 instants of 3 readings, one of whose writes fails once
    readings = [
        reading.model_copy(
            update={"measured_at": RECEIVED_AT - timedelta(minutes=minute), "channel": channel}
        )
        for reading in normalize(
            Flavor.EVERACTIVE_DS_SENSOR_READING,
            mhm_envelope().body or "",
            event_id="e-1",
            received_at=RECEIVED_AT,
        ).readings[:1]
        for minute in range(40)
        for channel in ("0", "1", "2")
    ]
    failing = iso_ms(RECEIVED_AT - timedelta(minutes=17))
    client = FailingOnceClient(dynamodb_client(), failing)
    store = ReadingsStore(TABLES["READINGS_TABLE"][0], client, writers=8)

    # When they are written concurrently, the write fails: the caller (SQS) must retry
    with pytest.raises(ClientError):
        store.put_readings(readings, ttl_days=90)

    # Then the retry writes all of them, each once
    assert store.put_readings(readings, ttl_days=90) == 120
    assert client.failed == 1
    assert reading_count(aws) == 120
    assert item_count(aws, "READINGS_TABLE") == 40


def test_the_test_lambda_context_counts_down_from_realistic_time_left() -> None:
    context = lambda_context()
    first = context.get_remaining_time_in_millis()
    time.sleep(0.02)

    assert 59_000 < first <= 60_000
    assert context.get_remaining_time_in_millis() < first
    assert 0 < lambda_context(remaining_ms=5_000).get_remaining_time_in_millis() <= 5_000
