"""The packed readings table on moto: one item per sensor and instant that later deliveries add
to and never replace, read back as flat readings, with items of the layout before the packing
(one per reading) read alongside until their TTL removes them."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sensorhook.core.flavors import Flavor
from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.readings_store import (
    ReadingsStore,
    iso_ms,
    packed_reading,
    reading_attributes,
    reading_name,
    source_key,
    source_of,
)
from sensorhook.providers.registry import normalize
from tests.fixtures.loader import sample_text
from tests.integration.conftest import TABLES, Aws
from tests.integration.test_processor import MAC, item_count, reading_count

READINGS_TABLE = TABLES["READINGS_TABLE"][0]
RECEIVED_AT = datetime(2022, 6, 28, 20, 20, 3, tzinfo=UTC)
AT = datetime(2022, 6, 28, 20, 19, 51, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def mhm(event_id: str = "everactive-ds-sensor-reading:mhm") -> list[Reading]:
    return normalize(
        Flavor.EVERACTIVE_DS_SENSOR_READING,
        sample_text("everactive-ds/sensor-reading-mhm.json"),
        event_id=event_id,
        received_at=RECEIVED_AT,
    ).readings


def put_old_layout(aws: Aws, reading: Reading) -> None:
    """An item as the processor wrote it before the packing: one reading, point with suffix."""
    item = reading_attributes(reading)
    item["series"] = {"S": reading.series_key}
    item["point"] = {"S": reading.point_key}
    item["expires_at"] = {"N": str(int(reading.received_at.timestamp()) + 90 * 86_400)}
    aws.dynamodb.put_item(TableName=READINGS_TABLE, Item=item)


def put_packed_before_sources(aws: Aws, readings: list[Reading]) -> None:
    """An item as the processor wrote it when packing began: one item per sensor and instant,
    every reading's map holding its delivery's fields itself (no sources)."""
    first = readings[0]
    item: dict[str, Any] = {
        "series": {"S": first.series_key},
        "point": {"S": iso_ms(first.measured_at)},
        "provider": {"S": first.provider},
        "sensor_id": {"S": first.sensor_id},
        "sensor_family": {"S": first.sensor_family},
    }
    for reading in readings:
        key, source = source_of(reading)
        packed = packed_reading(reading, key)["M"]
        del packed["k"]
        item[reading_name(reading)] = {"M": {**packed, **source}}
    aws.dynamodb.put_item(TableName=READINGS_TABLE, Item=item)


def delivered_at(readings: list[Reading], event_id: str, received_at: datetime) -> list[Reading]:
    return [
        r.model_copy(update={"event_id": event_id, "received_at": received_at}) for r in readings
    ]


def test_a_delivery_stores_what_its_readings_share_once_per_item(aws: Aws) -> None:
    ReadingsStore(READINGS_TABLE).put_readings(mhm(), ttl_days=90)

    [item] = aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]

    # one source attribute holds the delivery's fields; each reading names it
    [source_name] = [name for name in item if name.startswith("@")]
    assert item[source_name]["M"]["i"] == {"S": "everactive-ds-sensor-reading:mhm"}
    assert item[source_name]["M"]["r"] == {"S": iso_ms(RECEIVED_AT)}
    readings = [item[name]["M"] for name in item if "#" in name]
    assert len(readings) == 16
    assert all(packed["k"] == {"S": source_name[1:]} for packed in readings)
    assert all(not {"i", "r", "g", "n"} & set(packed) for packed in readings)


def test_a_reading_stores_its_status_only_when_it_is_not_ok(aws: Aws) -> None:
    readings = mhm()
    missing = readings[0].model_copy(update={"status": "MISSING", "value": None})
    store = ReadingsStore(READINGS_TABLE)
    store.put_readings([missing, *readings[1:]], ttl_days=90)

    [item] = aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]
    maps = {name: item[name]["M"] for name in item if "#" in name}
    assert maps.pop(reading_name(missing))["s"] == {"S": "MISSING"}
    assert all("s" not in packed for packed in maps.values())  # OK: 4 bytes less a reading
    assert store.query_range("everactive", MAC, AT, AT) == sorted(
        [missing, *readings[1:]], key=lambda r: (r.measured_at, r.metric, r.channel)
    )


def test_a_source_is_named_by_its_content_but_its_receipt_in_every_process() -> None:
    # every writer (another invocation, a retry, another Lambda) names the same delivery alike,
    # whatever order its fields come in and whenever it received it; an absent field and an
    # empty one are other content
    source = {
        "r": {"S": "2022-06-28T20:20:03.000Z"},
        "i": {"S": "everactive-ds-sensor-reading:mhm"},
    }
    assert source_key(source) == "O3D--8q1"
    assert source_key(dict(reversed(source.items()))) == "O3D--8q1"
    assert source_key({**source, "r": {"S": "2022-07-05T20:20:03.000Z"}}) == "O3D--8q1"
    assert source_key({**source, "g": {"S": ""}}) != "O3D--8q1"


def test_copies_of_a_delivery_received_again_do_not_grow_its_item(aws: Aws) -> None:
    store = ReadingsStore(READINGS_TABLE)
    week = 7 * 24 * 60 * MINUTE
    # Given the MHM delivery stored, then three copies of it received a week apart each (past
    # the idempotency records' TTL, so each is processed again)
    store.put_readings(mhm(), ttl_days=90)
    for weeks in (1, 2, 3):
        copy = delivered_at(mhm(), "everactive-ds-sensor-reading:mhm", RECEIVED_AT + weeks * week)
        store.put_readings(copy, ttl_days=90)

    # Then the item still holds one source, with the first receipt, and every reading names it
    [item] = aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]
    [source_name] = [name for name in item if name.startswith("@")]
    assert item[source_name]["M"]["r"] == {"S": iso_ms(RECEIVED_AT)}
    readings = [item[name]["M"] for name in item if "#" in name]
    assert len(readings) == 16
    assert all(packed["k"] == {"S": source_name[1:]} for packed in readings)
    # and it stays hot from the newest copy's receipt
    assert item["expires_at"] == {"N": str(int((RECEIVED_AT + 3 * week).timestamp()) + 90 * 86_400)}


def test_readings_merged_from_several_deliveries_keep_each_their_own_delivery_fields(
    aws: Aws,
) -> None:
    # Given one instant written by three deliveries: all 16 readings, then 8 of them again
    # later, then 4 of those again from another gateway with another schema
    store = ReadingsStore(READINGS_TABLE)
    first = mhm()
    second = delivered_at(first[4:12], "everactive-ds-sensor-reading:b", RECEIVED_AT + MINUTE)
    third = [
        r.model_copy(update={"gateway_id": "GW-2", "schema_name": "other/1"})
        for r in delivered_at(first[8:12], "everactive-ds-sensor-reading:c", RECEIVED_AT + MINUTE)
    ]
    for delivery in (first, second, third):
        store.put_readings(delivery, ttl_days=90)

    # Then the item holds one source per delivery and every reading reads back with the
    # fields of the delivery that wrote it last
    [item] = aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]
    assert len([name for name in item if name.startswith("@")]) == 3
    expected = {r.point_key: r for r in [*first, *second, *third]}
    stored = store.query_range("everactive", MAC, AT, AT)
    assert {r.point_key: r for r in stored} == expected
    # and writing a delivery again adds no source
    store.put_readings(second, ttl_days=90)
    [item] = aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]
    assert len([name for name in item if name.startswith("@")]) == 3


def test_packed_items_written_before_the_sources_are_read_and_added_to(aws: Aws) -> None:
    # Given an instant stored as packing began (each map with its delivery's fields)
    store = ReadingsStore(READINGS_TABLE)
    before = mhm()[:8]
    put_packed_before_sources(aws, before)

    # When a later delivery adds the other channels in the current layout
    later = delivered_at(mhm()[8:], "everactive-ds-sensor-reading:later", RECEIVED_AT + MINUTE)
    store.put_readings(later, ttl_days=90)

    # Then the item's readings of both layouts read back whole
    assert store.query_range("everactive", MAC, AT, AT) == sorted(
        [*before, *later], key=lambda r: (r.metric, r.channel)
    )


def test_a_reading_whose_source_is_missing_is_not_read_without_it(aws: Aws) -> None:
    # Given an item whose source attribute is gone (never written by the store: a damaged item)
    ReadingsStore(READINGS_TABLE).put_readings(mhm()[:1], ttl_days=90)
    [item] = aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]
    [source_name] = [name for name in item if name.startswith("@")]
    del item[source_name]
    aws.dynamodb.put_item(TableName=READINGS_TABLE, Item=item)

    # Then reading it fails clearly instead of returning a reading without its delivery
    with pytest.raises(ValueError, match="names a source the item does not hold"):
        ReadingsStore(READINGS_TABLE).query_range("everactive", MAC, AT, AT)


def test_a_later_delivery_with_other_channels_adds_to_the_item_instead_of_replacing_it(
    aws: Aws,
) -> None:
    # Given half of a sensor's readings at one instant stored
    store = ReadingsStore(READINGS_TABLE)
    first, rest = mhm()[:8], mhm(event_id="everactive-ds-sensor-reading:rest")[8:]
    store.put_readings(first, ttl_days=90)

    # When another delivery brings the other half of the same instant
    store.put_readings(rest, ttl_days=90)

    # Then one item holds all 16, each with the fields of the delivery that brought it
    assert item_count(aws, "READINGS_TABLE") == 1
    stored = store.query_range("everactive", MAC, AT, AT)
    assert sorted(stored, key=lambda r: r.point_key) == sorted(
        [*first, *rest], key=lambda r: r.point_key
    )


def test_the_same_reading_written_twice_stays_one_reading(aws: Aws) -> None:
    store = ReadingsStore(READINGS_TABLE)

    assert store.put_readings(mhm(), ttl_days=90) == 16
    assert store.put_readings(mhm(), ttl_days=90) == 16
    assert store.put_readings([*mhm(), *mhm()], ttl_days=90) == 16  # twice in one call

    assert reading_count(aws) == 16
    assert len(store.query_range("everactive", MAC, AT, AT)) == 16


def test_an_item_keeps_its_sensor_fields_once_and_expires_from_its_newest_receipt(
    aws: Aws,
) -> None:
    ReadingsStore(READINGS_TABLE).put_readings(mhm(), ttl_days=90)

    [item] = aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"]

    assert item["series"] == {"S": f"everactive#{MAC}"}
    assert item["point"] == {"S": "2022-06-28T20:19:51.000Z"}
    assert item["sensor_family"] == {"S": "vibration-electrical"}
    assert item["expires_at"] == {"N": str(int(RECEIVED_AT.timestamp()) + 90 * 86_400)}
    readings = [name for name in item if "#" in name]
    assert len(readings) == 16
    assert item["temperature#0"]["M"]["v"] == {"N": "59.1625"}
    assert "provider" not in item["temperature#0"]["M"]


def test_old_per_reading_items_and_packed_items_are_read_together(aws: Aws) -> None:
    # Given one sensor with readings of the old layout at one instant and packed ones at the
    # next minute, and a reading in both layouts (written again after the packing)
    store = ReadingsStore(READINGS_TABLE)
    old = mhm()
    for reading in old:
        put_old_layout(aws, reading)
    new = [r.model_copy(update={"measured_at": AT + timedelta(minutes=1)}) for r in mhm()]
    store.put_readings([*new, old[0]], ttl_days=90)

    # When the sensor's series is queried over both instants
    series = store.query_range("everactive", MAC, AT, AT + timedelta(minutes=1))

    # Then every reading comes back once, flat, oldest first, with its own fields
    assert len(series) == 32
    assert sorted(series, key=lambda r: (r.measured_at, r.point_key)) == series
    assert set(series) == {*old, *new}
    # and the newest reading before a moment is found in either layout
    assert store.newest_before("everactive", MAC, AT + timedelta(minutes=1)) == AT
    assert store.newest_before("everactive", MAC, AT + timedelta(minutes=2)) == AT + timedelta(
        minutes=1
    )
    assert store.newest_before("everactive", MAC, AT) is None


def test_the_newest_reading_before_an_incident_is_one_received_before_it_too(aws: Aws) -> None:
    # Given a sensor's reading delivered before an incident was detected, and one measured in
    # the incident's hole that was delivered late, after detection (the webhook re-enabled)
    store = ReadingsStore(READINGS_TABLE)
    detected_at = AT + 5 * MINUTE
    store.put_readings(mhm(), ttl_days=90)  # measured AT, received RECEIVED_AT (before)
    late = [
        r.model_copy(update={"measured_at": AT + 2 * MINUTE, "received_at": detected_at + MINUTE})
        for r in mhm("everactive-ds-sensor-reading:late")
    ]
    store.put_readings(late, ttl_days=90)
    # and one in the hole delivered again later, once before detection: that copy counts
    both = [
        r.model_copy(update={"measured_at": AT + MINUTE, "received_at": AT + MINUTE})
        for r in mhm("everactive-ds-sensor-reading:early")
    ]
    store.put_readings(both, ttl_days=90)
    store.put_readings(
        [r.model_copy(update={"received_at": detected_at + 2 * MINUTE}) for r in both],
        ttl_days=90,
    )

    # Then the backfill continues from the newest reading received before detection, so the
    # hole before the late reading is read back
    # (the reading delivered twice counts by its first delivery, though it names the second)
    assert store.newest_before("everactive", MAC, detected_at) == AT + MINUTE
    # and before that one was received, the late one still does not count
    assert store.newest_before("everactive", MAC, AT + MINUTE) == AT


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (AT, AT, 16),  # the instant's own second, both ends
        (AT - timedelta(hours=1), AT - timedelta(seconds=1), 0),  # ends a second before
        (AT + timedelta(seconds=1), AT + timedelta(hours=1), 0),  # starts a second after
    ],
)
def test_a_range_is_whole_seconds_at_both_ends(
    aws: Aws, start: datetime, end: datetime, count: int
) -> None:
    store = ReadingsStore(READINGS_TABLE)
    store.put_readings(
        [r.model_copy(update={"measured_at": AT + timedelta(milliseconds=999)}) for r in mhm()],
        ttl_days=90,
    )

    assert len(store.query_range("everactive", MAC, start, end)) == count


def test_readings_of_one_instant_past_the_update_limit_are_written_by_several_updates(
    aws: Aws,
) -> None:
    # Given 250 channels of one sensor at one instant (more than one UpdateItem SETs)
    [template] = mhm()[:1]
    readings = [template.model_copy(update={"channel": str(n)}) for n in range(250)]

    written = ReadingsStore(READINGS_TABLE).put_readings(readings, ttl_days=90)

    assert written == 250
    assert item_count(aws, "READINGS_TABLE") == 1
    assert reading_count(aws) == 250
    assert iso_ms(template.measured_at) == "2022-06-28T20:19:51.000Z"


def test_each_update_of_an_instant_sets_the_sources_its_readings_name(aws: Aws) -> None:
    # Given 250 channels of one sensor at one instant, each from its own gateway (250 sources,
    # written by 3 updates)
    [template] = mhm()[:1]
    readings = [
        template.model_copy(update={"channel": str(n), "gateway_id": f"GW-{n}"}) for n in range(250)
    ]
    ReadingsStore(READINGS_TABLE).put_readings(readings, ttl_days=90)

    # Then every reading reads back with its own gateway
    stored = ReadingsStore(READINGS_TABLE).query_range("everactive", MAC, AT, AT)
    assert {r.channel: r.gateway_id for r in stored} == {str(n): f"GW-{n}" for n in range(250)}


def test_the_largest_instant_a_delivery_may_hold_is_one_item_dynamodb_accepts(
    aws: Aws,
) -> None:
    # Given 6 readings at one instant with 60,000 bytes of text each: the most one packed item
    # may hold by the delivery check (7 are refused, tests/unit/test_reading_bounds.py)
    [template] = mhm()[:1]
    readings = [
        template.model_copy(update={"channel": str(n), "text_value": "x" * 60_000})
        for n in range(7)
    ]
    NormalizedDelivery(readings=readings[:6])
    store = ReadingsStore(READINGS_TABLE)

    # Then DynamoDB (moto enforces the 400 KB item) takes them as one item
    assert store.put_readings(readings[:6], ttl_days=90) == 6
    assert reading_count(aws) == 6
    # and the 7 the check refuses would fail the write itself (what the check spares SQS)
    with pytest.raises(ClientError, match="size"):
        store.put_readings(readings, ttl_days=90)


def test_the_largest_instant_with_a_source_per_reading_is_one_item_dynamodb_accepts(
    aws: Aws,
) -> None:
    # Given 6 readings at one instant, each from its own gateway (6 sources in the item), with
    # 30,000 bytes of gateway id and 29,800 of text each: the most the delivery check allows
    [template] = mhm()[:1]
    readings = [
        template.model_copy(
            update={
                "channel": str(n),
                "gateway_id": str(n) * 30_000,
                "text_value": "x" * 29_800,
                "period_s": -(2**31),
                "error_code": -(2**31),
                "value": -1.2345678901234567e-100,
                "future_dated": True,
            }
        )
        for n in range(6)
    ]
    NormalizedDelivery(readings=readings)

    # Then DynamoDB (moto enforces the 400 KB item) takes them as one item
    assert ReadingsStore(READINGS_TABLE).put_readings(readings, ttl_days=90) == 6
    assert len(ReadingsStore(READINGS_TABLE).query_range("everactive", MAC, AT, AT)) == 6


class OverlapWatchingClient:
    """Records how many updates of one item were in flight at once (each held 50 ms)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._guard = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self.most_at_once = 0

    def update_item(self, **request: Any) -> Any:
        point = request["Key"]["point"]["S"]
        with self._guard:
            self._in_flight[point] = self._in_flight.get(point, 0) + 1
            self.most_at_once = max(self.most_at_once, self._in_flight[point])
        try:
            time.sleep(0.05)
            return self._client.update_item(**request)
        finally:
            with self._guard:
                self._in_flight[point] -= 1


def test_two_deliveries_adding_to_one_item_at_once_update_it_one_after_the_other(
    aws: Aws,
) -> None:
    # Given two deliveries with other channels of one instant, stored at once by two threads
    # of one process (as the local mode runs concurrent Lambda invocations)
    client = OverlapWatchingClient(dynamodb_client())
    store = ReadingsStore(READINGS_TABLE, client)
    halves = (mhm()[:8], mhm(event_id="everactive-ds-sensor-reading:rest")[8:])
    with ThreadPoolExecutor(max_workers=2) as pool:
        for written in pool.map(lambda half: store.put_readings(half, ttl_days=90), halves):
            assert written == 8

    # Then the item was never updated twice at once, and holds all 16
    assert client.most_at_once == 1
    assert reading_count(aws) == 16


def test_metric_and_channel_text_round_trips_whatever_it_holds(aws: Aws) -> None:
    # Given readings whose metric or channel hold the separator, or whose channel is empty
    [template] = mhm()[:1]
    odd = [
        template.model_copy(update={"metric": "a#b", "channel": "1"}),
        template.model_copy(update={"metric": "a", "channel": "b#1"}),
        template.model_copy(update={"metric": "a", "channel": ""}),
        template.model_copy(update={"metric": "a#", "channel": ""}),
    ]
    store = ReadingsStore(READINGS_TABLE)

    store.put_readings(odd, ttl_days=90)

    # Then each is its own reading and reads back as written
    assert set(store.query_range("everactive", MAC, AT, AT)) == set(odd)
    # and the names of the two that only a naive `metric#channel` would confuse differ
    names = {name for item in aws.dynamodb.scan(TableName=READINGS_TABLE)["Items"] for name in item}
    assert {"a%23b#1", "a#b#1", "a#", "a%23#"} <= names


def test_an_instant_delivered_again_by_another_delivery_counts_by_its_first(aws: Aws) -> None:
    # Given an instant delivered before the moment, then again after it by another delivery
    # (another event id: the readings now name the late source, the item keeps both)
    store = ReadingsStore(READINGS_TABLE)
    moment = RECEIVED_AT + 5 * MINUTE
    store.put_readings(mhm(), ttl_days=90)
    store.put_readings(
        delivered_at(mhm(), "everactive-ds-sensor-reading:again", moment + MINUTE), ttl_days=90
    )
    assert {r.received_at for r in store.query_range("everactive", MAC, AT, AT)} == {
        moment + MINUTE
    }

    # Then the instant counts for the moment: one of its deliveries came before it
    assert store.newest_before("everactive", MAC, moment) == AT
