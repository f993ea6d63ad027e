"""A canonical reading holds only what every store can hold (DynamoDB numbers, int32 columns),
so an authentic value out of range fails validation (quarantine), not the write (DLQ)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bench.cost import stored_bytes, updated_item
from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.core.reading import (
    BUCKET_S,
    PACKED_ITEM_MAX_BYTES,
    PACKED_READING_OVERHEAD_BYTES,
    Reading,
    check_packed_size,
)
from sensorhook.dal.readings_store import ReadingsStore

AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def reading(**changes: Any) -> Reading:
    fields: dict[str, Any] = {
        "provider": "efento",
        "sensor_id": "77",
        "sensor_family": "efento",
        "gateway_id": None,
        "metric": "temperature",
        "channel": "1",
        "value": 21.5,
        "unit": "Cel",
        "status": "OK",
        "measured_at": AT,
        "received_at": AT,
        "event_id": "efento-measurements:abc",
    }
    return Reading.model_validate({**fields, **changes})


@pytest.mark.parametrize(
    "value", [0.0, -0.0, 1e-130, -1e-130, 9.999999999999998e125, -9.999999999999998e125, None]
)
def test_values_dynamodb_can_store_are_readings(value: float | None) -> None:
    assert reading(value=value).value == value


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), 1e126, -1e126, 1e200, 9e-131, -1e-200]
)
def test_values_dynamodb_cannot_store_are_rejected(value: float) -> None:
    with pytest.raises(ValidationError) as raised:
        reading(value=value)
    assert [error["loc"] for error in raised.value.errors()] == [("value",)]


@pytest.mark.parametrize("field", ["error_code", "period_s"])
@pytest.mark.parametrize("number", [-(2**31), 0, 2**31 - 1])
def test_int32_fields_accept_the_int32_range(field: str, number: int) -> None:
    assert getattr(reading(**{field: number}), field) == number


@pytest.mark.parametrize("field", ["error_code", "period_s"])
@pytest.mark.parametrize("number", [-(2**31) - 1, 2**31, 2**40])
def test_int32_fields_reject_what_the_lake_columns_cannot_hold(field: str, number: int) -> None:
    with pytest.raises(ValidationError) as raised:
        reading(**{field: number})
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]


def _instant_of(count: int, text_bytes: int, at: datetime = AT) -> list[Reading]:
    """`count` readings of one sensor at one instant, each with `text_bytes` of text_value,
    of a provider whose readings are packed per instant (Efento's are per time bucket)."""
    return [
        reading(
            provider="everactive",
            channel=str(n),
            text_value="x" * text_bytes,
            value=None,
            measured_at=at,
        )
        for n in range(count)
    ]


def test_readings_of_one_instant_that_one_item_cannot_hold_are_refused_together() -> None:
    # Given readings each within the per-record limit (64 KiB of text), 7 of them at one instant
    # of one sensor: together past what one packed item (400 KB) holds
    too_many = _instant_of(7, 60_000)

    # Then the delivery holding them is refused (quarantined before any write)
    with pytest.raises(ValidationError, match="more than one DynamoDB item holds"):
        NormalizedDelivery(readings=too_many)
    # while 6 of them, or the 7 at distinct instants, are one delivery
    assert len(NormalizedDelivery(readings=too_many[:6]).readings) == 6
    spread = [
        r.model_copy(update={"measured_at": AT.replace(minute=n)}) for n, r in enumerate(too_many)
    ]
    assert len(NormalizedDelivery(readings=spread).readings) == 7


def test_multibyte_text_is_measured_in_bytes() -> None:
    # Given 7 readings at one instant of 20,000 three-byte characters each: 60,000 bytes each,
    # 420,000 in all, though only 140,000 characters
    wide = [r.model_copy(update={"text_value": "€" * 20_000}) for r in _instant_of(7, 0)]

    # Then they are refused together, and 6 of them (360,000 bytes) are not
    with pytest.raises(ValidationError, match="more than one DynamoDB item holds"):
        NormalizedDelivery(readings=wide)
    assert len(NormalizedDelivery(readings=wide[:6]).readings) == 6


def test_a_metric_the_table_escapes_is_measured_as_written() -> None:
    # Given 7 readings at one instant, each a 900-character metric of "#" (2,700 bytes once the
    # table escapes it, docs/readings.md) and 56,000 bytes of text: about 399,000 bytes as
    # text, about 412,000 as the item holds them
    hashes = [
        reading(metric="#" * 900, channel=str(n), text_value="x" * 56_000, value=None)
        for n in range(7)
    ]

    # Then they are refused together, and 6 of them are not
    with pytest.raises(ValidationError, match="more than one DynamoDB item holds"):
        NormalizedDelivery(readings=hashes)
    assert len(NormalizedDelivery(readings=hashes[:6]).readings) == 6


class RecordingClient:
    """Keeps the UpdateItem requests a put would send, and sends nothing."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> None:
        self.requests.append(request)


def test_what_the_check_counts_bounds_the_packed_item_written() -> None:
    # Given 200 readings at one instant with as little text as a reading can have and the
    # widest numbers, each from its own delivery (200 sources in the item: what the readings
    # share is stored once per source, so a source per reading is the largest item)
    readings = [
        reading(
            provider="e",
            sensor_id="7",
            sensor_family="",
            metric="%",
            channel=str(n),
            unit="",
            status="",
            event_id=f"{n}",
            gateway_id="",
            schema_name="",
            value=-1.2345678901234567e-100,
            error_code=-(2**31),
            period_s=-(2**31),
            future_dated=True,
        )
        for n in range(200)
    ]
    client = RecordingClient()
    ReadingsStore("readings", client, writers=1).put_readings(readings, ttl_days=90)

    # Then the item they make holds no more bytes than the delivery check counts for them,
    # beyond the room it keeps for the keys and the sensor's fields
    item: dict[str, Any] = {}
    for request in client.requests:
        item.update(updated_item(request))
    counted = sum(r.text_bytes() + r.escapes() + PACKED_READING_OVERHEAD_BYTES for r in readings)
    readings_and_sources = {name: v for name, v in item.items() if "#" in name or name[0] == "@"}
    assert len([name for name in item if name[0] == "@"]) == 200
    assert stored_bytes(readings_and_sources) <= counted
    assert stored_bytes(item) - stored_bytes(readings_and_sources) < 400 * 1024 - (
        PACKED_ITEM_MAX_BYTES
    )


def _bucket_item(readings: list[Reading]) -> dict[str, Any]:
    """The one item `readings` (one sensor, one bucket) make, from the updates a put sends."""
    client = RecordingClient()
    ReadingsStore("readings", client, writers=1).put_readings(readings, ttl_days=90)
    item: dict[str, Any] = {}
    for request in client.requests:
        assert request["Key"]["point"] == {"S": "2024-05-01T12:00:00Z+900s"}
        item.update(updated_item(request))
    return item


def test_the_densest_efento_bucket_is_one_item_dynamodb_accepts() -> None:
    # Given 900 s of an Efento sensor measuring 6 channels every second (5,400 readings in
    # one bucket, the most a bucket of Efento's sends holds), named by the longest metric,
    # with values of 6 digits
    dense = [
        reading(
            channel=str(channel),
            measured_at=AT + timedelta(seconds=second),
            metric="differential_pressure",
            unit="Pa",
            value=-1234.56 - second / 100,
            period_s=1,
        )
        for second in range(BUCKET_S)
        for channel in range(1, 7)
    ]

    # Then the delivery check lets it through, and the item is within DynamoDB's 400 KB
    check_packed_size(dense)
    item = _bucket_item(dense)
    assert len([name for name in item if "#" in name]) == 5_400
    assert stored_bytes(item) < 400 * 1024


def test_what_the_check_counts_bounds_the_bucket_item_written() -> None:
    # Given readings of one bucket with as little text as a reading can have, the widest
    # numbers and instants with milliseconds, each from its own delivery (a source each)
    readings = [
        reading(
            sensor_id="7",
            sensor_family="",
            metric="%",
            channel=str(n % 7),
            unit="",
            status="",
            event_id=f"{n}",
            gateway_id="",
            schema_name="",
            value=-1.2345678901234567e-100,
            error_code=-(2**31),
            period_s=-(2**31),
            future_dated=True,
            measured_at=AT + timedelta(seconds=899 - n, milliseconds=999),
        )
        for n in range(200)
    ]
    item = _bucket_item(readings)

    # Then the item holds no more bytes than the check counts for its readings and sources
    from sensorhook.core.reading import _item_bounds

    [counted] = _item_bounds(readings, in_bytes=True).values()
    readings_and_sources = {name: v for name, v in item.items() if "#" in name or name[0] == "@"}
    assert len([name for name in item if name[0] == "@"]) == 200
    assert stored_bytes(readings_and_sources) <= counted
    assert stored_bytes(item) - stored_bytes(readings_and_sources) < 400 * 1024 - (
        PACKED_ITEM_MAX_BYTES
    )


def test_readings_of_one_bucket_that_one_item_cannot_hold_are_refused_together() -> None:
    # Given Efento readings of one sensor within 15 minutes, each with 60,000 bytes of text:
    # 7 of them at distinct instants of one bucket are past what its item holds
    heavy = [
        reading(channel="1", text_value="x" * 60_000, value=None, measured_at=AT.replace(minute=n))
        for n in range(7)
    ]
    with pytest.raises(ValidationError, match="in the 900 s from 2024-05-01T12:00:00"):
        NormalizedDelivery(readings=heavy)
    # while across two buckets they are one delivery
    spread = [
        *heavy[:4],
        *(r.model_copy(update={"measured_at": AT.replace(minute=20)}) for r in heavy[4:5]),
    ]
    assert len(NormalizedDelivery(readings=spread).readings) == 5
