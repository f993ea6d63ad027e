"""Efento's readings on moto, one item per sensor and time bucket (docs/readings.md): a batch
is one or two items, a reading written again is one attribute and no second lake row, a
resend adds only its new instants, and a range, the newest reading before a moment and items
written per instant before the buckets read as one series."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.core.reading import Reading
from sensorhook.dal.readings_store import (
    ReadingsStore,
    bucket_point,
    item_key,
    offset_text,
)
from sensorhook.logic.compaction import one_row_per_identity
from sensorhook.logic.lake import READING_IDENTITY
from sensorhook.providers.registry import normalize
from tests.fixtures.loader import fixture_json, fixture_text
from tests.integration.conftest import TABLES, Aws
from tests.integration.test_lake_writer import ReadingsStream, lake_rows
from tests.integration.test_lake_writer import run as run_lake_writer
from tests.integration.test_processor import envelope, item_count, reading_count
from tests.integration.test_processor import run as run_processor
from tests.integration.test_readings_store import put_old_layout

READINGS_TABLE = TABLES["READINGS_TABLE"][0]
EXAMPLE = "efento/example-1-value-change.json"  # 12:00-12:04, one channel, 60 s
SENSOR = "1234"
DAY = datetime(2021, 5, 25, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def batch(
    first: datetime, minutes: int, *, received_after: timedelta = timedelta(seconds=7)
) -> str:
    """The seed's value-change example (tests/fixtures) moved to `first`, measuring every
    minute for `minutes` minutes, the value moving at its third minute."""
    payload = fixture_json(EXAMPLE)
    last = first + timedelta(minutes=minutes - 1)
    stamp = "%Y-%m-%d %H:%M:%S"
    payload["firstMeasurementTimestamp"] = first.strftime(stamp)
    payload["lastMeasurementTimestamp"] = last.strftime(stamp)
    payload["measurementsReceivedAt"] = (last + received_after).strftime(stamp)
    events = payload["measurementsEvents"][0]["events"]
    events[0]["timestamp"] = first.strftime(stamp)
    events[1]["timestamp"] = (first + timedelta(minutes=min(3, minutes - 1))).strftime(stamp)
    return json.dumps(payload)


def readings_of(body: str, event_id: str, received_at: datetime) -> list[Reading]:
    return normalize(
        Flavor.EFENTO_MEASUREMENTS, body, event_id=event_id, received_at=received_at
    ).readings


def store() -> ReadingsStore:
    return ReadingsStore(READINGS_TABLE)


def items(aws: Aws) -> list[dict[str, Any]]:
    return list(aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"])


def reading_names(item: dict[str, Any]) -> set[str]:
    return {name for name in item if "#" in name}


def identity(reading: Reading) -> tuple[Any, ...]:
    return tuple(getattr(reading, name) for name in READING_IDENTITY)


def test_an_efento_batch_lands_as_one_item_per_time_bucket(aws: Aws) -> None:
    # Given the multi-channel fixture (08:00-08:10, received 08:10:12.345) processed
    body = fixture_text("efento/multi-channel-batch.json")
    delivery = envelope(Flavor.EFENTO_MEASUREMENTS, body)
    assert run_processor(("e-1", delivery)) == {"batchItemFailures": []}
    expected = readings_of(body, delivery.event_id, delivery.received_at)

    # Then its readings are one item: the sensor's 900 s bucket from 08:00
    [item] = items(aws)
    assert item["point"] == {"S": "2021-05-25T08:00:00Z+900s"}
    names = reading_names(item)
    assert len(names) == len(expected) == reading_count(aws)
    # one attribute per reading, named by its instant's offset, metric and channel
    assert {"0#temperature#1", "300#temperature#1", "600#humidity#2"} <= names
    assert "612.345#signal_strength#" in names
    # the delivery's fields stored once
    assert len([name for name in item if name.startswith("@")]) == 1
    # and read back as the readings it was made of
    assert ReadingsStore(READINGS_TABLE).query_range(
        "efento", "77", DAY.replace(hour=8), DAY.replace(hour=9)
    ) == sorted(expected, key=lambda r: (r.measured_at, r.metric, r.channel))


def test_the_same_batch_again_adds_no_reading_and_no_lake_row(aws: Aws) -> None:
    # Given a batch stored and written to the lake
    stream = ReadingsStream(aws)
    body = batch(DAY.replace(hour=12), 5)
    first = readings_of(body, "efento-measurements:a", DAY.replace(hour=12, minute=5))
    store().put_readings(first, ttl_days=90)
    run_lake_writer(stream.next_event())
    [stored] = items(aws)
    assert len(lake_rows(aws)) == len(first)

    # When the same batch comes again: a retry of it, and a copy under another delivery
    store().put_readings(first, ttl_days=90)
    again = readings_of(body, "efento-measurements:b", DAY.replace(hour=12, minute=20))
    store().put_readings(again, ttl_days=90)
    event = stream.next_event()
    assert {record["eventName"] for record in event["Records"]} == {"MODIFY"}
    run_lake_writer(event)

    # Then the item holds the same readings (the copy's delivery added a source, no reading)
    [item] = items(aws)
    assert reading_names(item) == reading_names(stored)
    assert len([name for name in item if name.startswith("@")]) == 2
    # and the lake still has one row per reading
    assert sorted(map(identity, lake_rows(aws))) == sorted(map(identity, first))


def test_an_overlapping_resend_adds_only_its_new_instants_to_the_lake(aws: Aws) -> None:
    # Given a batch of 12:00-12:04 stored and in the lake
    stream = ReadingsStream(aws)
    first = readings_of(batch(DAY.replace(hour=12), 5), "efento-measurements:a", DAY)
    store().put_readings(first, ttl_days=90)
    run_lake_writer(stream.next_event())

    # When a later batch covers 12:02-12:08 (Efento resending a period it had covered)
    later = readings_of(
        batch(DAY.replace(hour=12, minute=2), 7), "efento-measurements:b", DAY + SECOND
    )
    store().put_readings(later, ttl_days=90)
    run_lake_writer(stream.next_event())

    # Then the lake gained the readings of its new instants only: each reading once
    rows = lake_rows(aws)
    assert len(rows) == len({identity(r) for r in [*first, *later]})
    assert sorted(map(identity, rows)) == sorted({identity(r) for r in [*first, *later]})
    new = {identity(r) for r in later} - {identity(r) for r in first}
    assert len(new) == 4 + 4  # 12:05-12:08, and the later batch's device readings
    # and the hot copy holds both batches in one bucket item
    [item] = items(aws)
    assert len(reading_names(item)) == len(rows)


def test_a_batch_crossing_a_bucket_boundary_is_two_items_read_as_one_series(aws: Aws) -> None:
    # Given a batch of 12:10-12:19 (the buckets of 12:00 and 12:15), received 12:19:07
    body = batch(DAY.replace(hour=12, minute=10), 10)
    readings = readings_of(body, "efento-measurements:a", DAY.replace(hour=12, minute=20))
    stream = ReadingsStream(aws)

    store().put_readings(readings, ttl_days=90)

    # Then it is two items, split at 12:15
    by_point = {item["point"]["S"]: item for item in items(aws)}
    assert sorted(by_point) == ["2021-05-25T12:00:00Z+900s", "2021-05-25T12:15:00Z+900s"]
    assert len(reading_names(by_point["2021-05-25T12:00:00Z+900s"])) == 5  # 12:10-12:14
    assert "240#temperature#1" in by_point["2021-05-25T12:15:00Z+900s"]  # 12:19
    # read back as one series, and each reading once in the lake
    assert store().query_range("efento", SENSOR, DAY, DAY + timedelta(days=1)) == sorted(
        readings, key=lambda r: (r.measured_at, r.metric, r.channel)
    )
    run_lake_writer(stream.next_event())
    assert sorted(map(identity, lake_rows(aws))) == sorted(map(identity, readings))


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        # inside the first bucket, from a minute of it
        ((12, 12, 0), (12, 13, 59), [12, 13]),
        # across the edge between two buckets
        ((12, 14, 0), (12, 15, 0), [14, 15]),
        # from the second of a bucket's start: that bucket's first reading included
        ((12, 15, 0), (12, 16, 0), [15, 16]),
        # ending the second before a bucket begins: nothing of it
        ((12, 16, 30), (12, 29, 59), [17, 18, 19]),
        # a second inside a bucket between two readings: nothing
        ((12, 11, 1), (12, 11, 59), []),
    ],
)
def test_a_range_across_bucket_edges_is_exactly_its_readings(
    aws: Aws, start: tuple[int, ...], end: tuple[int, ...], minutes: list[int]
) -> None:
    # Given temperatures measured each minute 12:10-12:19 half a second past the minute, in
    # two buckets, with the device's readings at receipt (12:19:07.500)
    readings = [
        r.model_copy(update={"measured_at": r.measured_at + timedelta(milliseconds=500)})
        for r in readings_of(
            batch(DAY.replace(hour=12, minute=10), 10), "efento-measurements:a", DAY
        )
    ]
    store().put_readings(readings, ttl_days=90)
    hour, minute, second = start
    first = DAY.replace(hour=hour, minute=minute, second=second)
    hour, minute, second = end
    last = DAY.replace(hour=hour, minute=minute, second=second)

    # When the range is read
    series = store().query_range("efento", SENSOR, first, last)

    # Then it holds exactly the readings measured within its whole seconds, both ends included
    assert [r.measured_at.minute for r in series if r.metric == "temperature"] == minutes
    assert all(first <= r.measured_at < last + SECOND for r in series)
    expected = [r for r in readings if first <= r.measured_at < last + SECOND]
    assert len(series) == len(expected)


def test_the_newest_reading_before_a_moment_ignores_a_late_one_in_the_same_bucket(
    aws: Aws,
) -> None:
    # Given a batch of 12:00-12:04 received at 12:04:07, and the same sensor's 12:06-12:08
    # (in the same bucket) delivered late, after the moment asked about
    moment = DAY.replace(hour=12, minute=10)
    received = DAY.replace(hour=12, minute=4, second=7, microsecond=200_000)
    on_time = readings_of(batch(DAY.replace(hour=12), 5), "efento-measurements:a", received)
    late = readings_of(
        batch(DAY.replace(hour=12, minute=6), 3), "efento-measurements:b", moment + SECOND
    )
    store().put_readings([*on_time, *late], ttl_days=90)
    [_] = items(aws)  # one bucket item holds both

    # Then the newest reading measured and received before the moment is the on-time
    # batch's last (its device readings, at its receipt 12:04:07)
    assert store().newest_before("efento", SENSOR, moment) == DAY.replace(
        hour=12, minute=4, second=7
    )
    # and asked after the late delivery, its readings count
    assert store().newest_before("efento", SENSOR, moment + 2 * SECOND) == DAY.replace(
        hour=12, minute=8, second=7
    )
    # a reading measured in the moment's own second does not count
    assert store().newest_before("efento", SENSOR, received + timedelta(milliseconds=200)) == (
        DAY.replace(hour=12, minute=4)
    )
    assert store().newest_before("efento", SENSOR, DAY.replace(hour=12)) is None


def test_a_reading_delivered_again_late_counts_by_its_last_delivery(aws: Aws) -> None:
    # Given 12:00-12:04 delivered on time, and 12:03-12:04 of it again after the moment
    moment = DAY.replace(hour=12, minute=10)
    on_time = readings_of(
        batch(DAY.replace(hour=12), 5), "efento-measurements:a", DAY.replace(hour=12, minute=5)
    )
    store().put_readings(on_time, ttl_days=90)
    again = [
        r.model_copy(update={"event_id": "efento-measurements:b", "received_at": moment})
        for r in on_time
        if r.metric == "temperature" and r.measured_at.minute >= 3
    ]
    store().put_readings(again, ttl_days=90)

    # Then the anchor moves back to the newest reading whose last delivery was on time (a
    # backfill from it reads more, deduplicated: never a hole), the device readings here
    assert store().newest_before("efento", SENSOR, moment) == DAY.replace(
        hour=12, minute=4, second=7
    )
    temperatures_only = {r.measured_at for r in on_time if r.metric == "temperature"}
    assert max(temperatures_only) == DAY.replace(hour=12, minute=4)


def test_items_written_per_instant_before_the_buckets_read_beside_them(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 12:00-12:04 stored by the version before the buckets (an item per instant)
    stream = ReadingsStream(aws)
    received = DAY.replace(hour=12, minute=5)
    old = readings_of(batch(DAY.replace(hour=12), 5), "efento-measurements:a", received)
    with monkeypatch.context() as before_buckets:
        before_buckets.setattr("sensorhook.core.reading.BUCKETED_PROVIDERS", frozenset())
        store().put_readings(old, ttl_days=90)
    run_lake_writer(stream.next_event())
    assert item_count(aws, "READINGS_TABLE") == 6  # five minutes and the receipt's instant
    assert all("+" not in item["point"]["S"] for item in items(aws))

    # When this version stores 12:03-12:08 (12:03-12:04 written again, now in a bucket)
    new = readings_of(
        batch(DAY.replace(hour=12, minute=3), 6), "efento-measurements:b", received + 5 * SECOND
    )
    store().put_readings(new, ttl_days=90)
    run_lake_writer(stream.next_event())

    # Then the series reads every reading once, from both layouts
    expected = {identity(r): r for r in [*old, *new]}  # the later copy of 12:03-12:04
    series = store().query_range("efento", SENSOR, DAY, DAY + timedelta(days=1))
    assert sorted(map(identity, series)) == sorted(expected)
    # and the newest reading before a moment is found in either layout
    assert store().newest_before("efento", SENSOR, received + SECOND) == DAY.replace(
        hour=12, minute=4, second=7
    )
    assert store().newest_before("efento", SENSOR, DAY.replace(hour=13)) == DAY.replace(
        hour=12, minute=8, second=7
    )
    # and the lake: 12:03-12:04 written again into a bucket is a second row of the same
    # identity, which compaction (and the Athena views) keep once, the first received
    rows = lake_rows(aws)
    assert len(rows) == len(old) + len(new)
    table = pa.Table.from_pylist([r.model_dump() for r in rows])
    kept = one_row_per_identity(table, READING_IDENTITY)
    assert kept.num_rows == len(expected)
    firsts = {identity(Reading.model_validate(row)) for row in kept.to_pylist()}
    assert firsts == set(expected)
    assert {row["event_id"] for row in kept.to_pylist() if row["measured_at"].minute == 3} == {
        "efento-measurements:a"
    }


def test_a_bucket_of_more_readings_than_one_update_sets_is_written_by_several(
    aws: Aws,
) -> None:
    # Given 50 seconds of a sensor measuring 6 channels every second: 300 readings in one
    # bucket, more than one UpdateItem sets (tests/unit/test_reading_bounds.py checks the
    # densest bucket, 900 s of it, against DynamoDB's 400 KB)
    template = readings_of(batch(DAY.replace(hour=12), 1), "efento-measurements:a", DAY)[0]
    dense = [
        template.model_copy(
            update={
                "channel": str(channel),
                "measured_at": DAY.replace(hour=12) + timedelta(seconds=second),
                "period_s": 1,
                "value": 20.0 + second / 1000,
            }
        )
        for second in range(50)
        for channel in range(1, 7)
    ]
    stream = ReadingsStream(aws)

    # When it is stored
    assert store().put_readings(dense, ttl_days=90) == len(dense)

    # Then it is one item holding every reading, and each reading is one lake row
    [item] = items(aws)
    assert len(reading_names(item)) == 300
    assert store().query_range("efento", SENSOR, DAY, DAY + timedelta(days=1)) == sorted(
        dense, key=lambda r: (r.measured_at, r.metric, r.channel)
    )
    event = stream.next_event()
    assert len(event["Records"]) >= 3  # an INSERT, then a MODIFY per further update
    run_lake_writer(event)
    assert sorted(map(identity, lake_rows(aws))) == sorted(map(identity, dense))


def test_an_instant_names_one_attribute_and_its_bucket_in_every_writer() -> None:
    [reading] = readings_of(batch(DAY.replace(hour=12, minute=14), 1), "e", DAY)[:1]
    at = DAY.replace(hour=12, minute=14, second=59, microsecond=999_999)
    start = DAY.replace(hour=12)
    assert offset_text(at, start) == "899.999"
    assert offset_text(DAY.replace(hour=12, minute=2), start) == "120"
    assert offset_text(DAY.replace(hour=12, minute=2, microsecond=500_000), start) == "120.500"
    assert bucket_point(start) == "2021-05-25T12:00:00Z+900s"
    assert item_key(reading.model_copy(update={"measured_at": at})) == (
        "efento#1234",
        "2021-05-25T12:00:00Z+900s",
        "899.999#temperature#1",
    )
    assert item_key(reading.model_copy(update={"measured_at": at + timedelta(microseconds=1)}))[
        1
    ] == ("2021-05-25T12:15:00Z+900s")
    # a reading measured before 1970 falls in the bucket before its instant, not after
    early = datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert item_key(reading.model_copy(update={"measured_at": early}))[1:] == (
        "1969-12-31T23:45:00Z+900s",
        "899#temperature#1",
    )


def test_an_old_layout_item_whose_metric_holds_a_plus_is_not_taken_for_a_bucket(
    aws: Aws,
) -> None:
    # Given an Efento reading stored one item per reading (the layout before the packing),
    # its metric holding a `+` (its point `<second>Z#a+b#1`)
    [reading] = readings_of(batch(DAY.replace(hour=12), 1), "e", DAY.replace(hour=12, minute=1))[:1]
    odd = reading.model_copy(update={"metric": "a+b"})
    put_old_layout(aws, odd)

    # Then it reads back as that reading, in a range and as the newest before a moment
    assert store().query_range("efento", SENSOR, DAY, DAY + timedelta(days=1)) == [odd]
    assert store().newest_before("efento", SENSOR, DAY.replace(hour=13)) == odd.measured_at
