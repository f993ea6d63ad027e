"""The readings table: every canonical reading, packed one item per sensor and instant, or
for Efento (`BUCKETED_PROVIDERS`) one item per sensor and time bucket.

An item is keyed series=`provider#sensor_id`, point=`iso_ms(measured_at)` and holds every
reading of that sensor measured at that instant, one top-level attribute per reading named
`metric#channel` (the only attribute names with a `#`) whose value is a compact map of the
reading's own fields (`PACKED_FIELDS`); the sensor's fields (provider, sensor_id,
sensor_family) are stored once. What the readings of one delivery share (its event_id,
received_at, gateway_id, schema_name: `SOURCE_FIELDS`) is stored once too, as a source
attribute `@<key>` whose key is a hash of that content but the receipt, and each reading's
map names its source (`k`). Writes are UpdateItem `SET` of each reading's attribute and its
source's (the source only if absent: a copy received again keeps the first receipt), so a
later delivery with other channels at the same instant adds to the item instead of replacing
it (its own source beside the others), and the same reading written twice is one attribute
(docs/readings.md).

An Efento delivery is a batch of many instants, so its readings are kept one item per sensor
and `BUCKET_S` bucket (`item_key`): point=`bucket_point(start)` (`<second>Z+900s`), each
reading's attribute `<offset>#metric#channel`, its instant's offset in the bucket in seconds
(`offset_text`); written and merged exactly as an instant's item, one bucket's readings in as
many updates as `_ASSIGNMENTS_PER_UPDATE` needs.

Read as well, until their TTL removes them: items written before the packing (one per
reading, point=`<second>Z#metric#channel`, the reading's fields as attributes) and packed
items written before the sources (each reading's map holding every field itself).

Items are written with the low-level client in DynamoDB's wire format: this is the hot path
of the processor, and boto3's resource layer would cost a TypeSerializer walk per attribute.
Numbers are written as the exact decimal text of the float (what `Decimal(repr(x))` prints),
so nothing is rounded on the way in.
"""

import base64
import functools
import hashlib
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sensorhook.core.reading import BUCKET_S, BUCKETED_PROVIDERS, Reading, bucket_start
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.wire_format import AttributeValue, plain_item

Item = dict[str, AttributeValue]

_KEY_ATTRIBUTES = ("series", "point", "expires_at")
SENSOR_FIELDS = ("provider", "sensor_id", "sensor_family")
# A reading's own fields in its packed map, by short name: each name is stored once per
# reading, so short names keep a packed item (and its write units) small.
PACKED_FIELDS = {
    "unit": "u",
    "status": "s",
    "value": "v",
    "error_code": "e",
    "period_s": "p",
    "received_at": "r",
    "event_id": "i",
    "gateway_id": "g",
    "schema_name": "n",
    "text_value": "t",
    "future_dated": "f",
}
_FIELD_OF = {short: name for name, short in PACKED_FIELDS.items()}
# The status of almost every reading: a packed map leaves it out, and a reader puts it back
# (4 bytes of each reading's map; Efento's 900 s bucket of two channels then fits one write unit)
DEFAULT_STATUS = "OK"
# The series of the gateway status history's items, which share this table and its stream
# (dal/gateway_history.py); a reading's series starts with its provider, never so.
GATEWAY_HISTORY_PREFIX = "gateway_status#"
# A delivery's fields, shared by all its readings at one instant: stored once per item in the
# reading's source attribute, not in every reading's map.
SOURCE_FIELDS = ("received_at", "event_id", "gateway_id", "schema_name")
# A reading's map names its source by this key; the source's attribute is SOURCE_PREFIX + key
# (no `#` in either, so a source is never taken for a reading).
SOURCE_KEY = "k"
SOURCE_PREFIX = "@"
# A source's receipt (received_at): not part of its key, and kept from the first copy
SOURCE_RECEIPT = "r"
# Readings and sources SET by one UpdateItem: keeps its expression far below DynamoDB's 4 KB
# (and within what the local mode's embedded AWS parses); an item with more is written by
# several updates of the same key, each idempotent.
_ASSIGNMENTS_PER_UPDATE = 100
# Concurrent UpdateItem calls of one put_readings: a chunk of a large Efento delivery is
# thousands of items, each one round trip (docs/readings.md, "Writes").
WRITERS = 16
# One process never updates an item from two threads at once. DynamoDB applies concurrent
# updates of an item one after the other; the embedded AWS of the local mode (moto), where
# every Lambda runs in one process, reads, creates and writes an item in steps, so two
# deliveries adding to one new item at once would both be INSERTs there (two lake rows).
_ITEM_LOCKS = tuple(threading.Lock() for _ in range(64))


def iso_ms(moment: datetime) -> str:
    """Fixed-width UTC text (`2022-06-28T20:19:51.000Z`), so string order is time order and
    conditional writes can compare stored timestamps with `<`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def number(value: float | int) -> AttributeValue:
    return {"N": str(Decimal(repr(value)))}


def reading_attributes(reading: Reading) -> Item:
    """The reading's own fields as DynamoDB attributes; absent optional fields are omitted."""
    item: Item = {
        "provider": {"S": reading.provider},
        "sensor_id": {"S": reading.sensor_id},
        "sensor_family": {"S": reading.sensor_family},
        "metric": {"S": reading.metric},
        "channel": {"S": reading.channel},
        "unit": {"S": reading.unit},
        "status": {"S": reading.status},
        "measured_at": {"S": iso_ms(reading.measured_at)},
        "received_at": {"S": iso_ms(reading.received_at)},
        "event_id": {"S": reading.event_id},
    }
    if reading.gateway_id is not None:
        item["gateway_id"] = {"S": reading.gateway_id}
    if reading.value is not None:
        item["value"] = number(reading.value)
    if reading.error_code is not None:
        item["error_code"] = number(reading.error_code)
    if reading.period_s is not None:
        item["period_s"] = number(reading.period_s)
    if reading.schema_name is not None:
        item["schema_name"] = {"S": reading.schema_name}
    if reading.text_value is not None:
        item["text_value"] = {"S": reading.text_value}
    if reading.future_dated:
        item["future_dated"] = {"BOOL": True}
    return item


def reading_from_item(item: Mapping[str, Any]) -> Reading:
    """A reading back from a deserialized item (a Query result or a stream image)."""
    fields = {name: value for name, value in item.items() if name not in _KEY_ATTRIBUTES}
    fields.setdefault("gateway_id", None)
    fields.setdefault("value", None)
    return Reading.model_validate(fields)


def reading_name(reading: Reading) -> str:
    """The reading's attribute in its packed item: `metric#channel` (a `#` even when the
    channel is empty, which is how a reading's attribute is told from the sensor's). A `%` or
    `#` in the metric is written `%25` or `%23`, so the first `#` always ends the metric and no
    two readings share a name (`a#b` + `1` and `a` + `b#1` would)."""
    metric = reading.metric.replace("%", "%25").replace("#", "%23")
    return f"{metric}#{reading.channel}"


def metric_and_channel(name: str) -> tuple[str, str]:
    """The metric and channel a reading's attribute name stands for (`reading_name` undone)."""
    metric, _, channel = name.partition("#")
    return metric.replace("%23", "#").replace("%25", "%"), channel


def bucket_point(start: datetime) -> str:
    """A bucket item's sort key: its first second and its width, `2026-11-29T12:15:00Z+900s`.
    It sorts among the points of that second (a Query by time range finds it as it finds an
    instant's item) and is told from them by the `+`: an instant's point is `iso_ms`, an item
    of the layout before the packing `<second>Z#metric#channel`."""
    return f"{_second(start)}Z+{BUCKET_S}s"


def offset_text(measured_at: datetime, start: datetime) -> str:
    """An instant's place in its bucket, in its readings' attribute names: whole seconds from
    the bucket's start, with milliseconds only when it has any (`120`, `120.5` is `120.500`),
    so one instant is always one text."""
    elapsed = measured_at - start
    milliseconds = (elapsed.days * 86_400 + elapsed.seconds) * 1000 + elapsed.microseconds // 1000
    seconds, fraction = divmod(milliseconds, 1000)
    return f"{seconds}.{fraction:03d}" if fraction else str(seconds)


def item_key(reading: Reading) -> tuple[str, str, str]:
    """The item that holds the reading (series, point) and the reading's attribute in it: an
    instant's item and `metric#channel`, or, for a provider kept in time buckets, its bucket's
    item and `<offset>#metric#channel`."""
    start = bucket_start(reading.provider, reading.measured_at)
    if start is None:
        return reading.series_key, iso_ms(reading.measured_at), reading_name(reading)
    name = f"{offset_text(reading.measured_at, start)}#{reading_name(reading)}"
    return reading.series_key, bucket_point(start), name


def _bucket_of(point: str) -> tuple[datetime, int] | None:
    """A bucket item's start and width from its point, or None for any other item."""
    if point[19:21] != "Z+":  # an old layout's metric may hold a `+`, never there
        return None
    start = datetime.fromisoformat(point[:19] + "+00:00")
    return start, int(point[21:].removesuffix("s"))


@functools.lru_cache(maxsize=1024)  # a chunk's readings share a handful of sources
def packed_source(
    received_at: datetime, event_id: str, gateway_id: str | None, schema_name: str | None
) -> tuple[str, dict[str, AttributeValue]]:
    """A delivery's fields the readings of it share (`SOURCE_FIELDS`), as the key and the map
    of their source's attribute; absent optional fields are omitted."""
    fields: Item = {SOURCE_RECEIPT: {"S": iso_ms(received_at)}, "i": {"S": event_id}}
    if gateway_id is not None:
        fields["g"] = {"S": gateway_id}
    if schema_name is not None:
        fields["n"] = {"S": schema_name}
    return source_key(fields), fields


def source_of(reading: Reading) -> tuple[str, dict[str, AttributeValue]]:
    """The key and map of the reading's source (`packed_source`)."""
    return packed_source(
        reading.received_at, reading.event_id, reading.gateway_id, reading.schema_name
    )


def source_key(source: Mapping[str, AttributeValue]) -> str:
    """A source's key: 8 characters of a hash of its content but its receipt (48 bits), so
    every writer names the same delivery alike without reading the item, and two deliveries'
    sources in one item differ (a collision among the few sources of one item: about 1 in
    10^13). A copy of a delivery received again (the same dedupe id, gateway and schema) names
    the same source, which keeps its first receipt (`put_readings`): keyed by the receipt too,
    each copy added a source, and an item re-sent often grew towards DynamoDB's 400 KB."""
    text = "\x1f".join(
        f"{name}={source[name]['S']}" for name in sorted(source) if name != SOURCE_RECEIPT
    )
    digest = hashlib.blake2b(text.encode(), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode()


def packed_reading(reading: Reading, source: str) -> AttributeValue:
    """The reading's own fields as its packed map, naming its source's key; absent optional
    fields are omitted, and so is the status when it is `DEFAULT_STATUS`."""
    fields: Item = {"u": {"S": reading.unit}, SOURCE_KEY: {"S": source}}
    if reading.status != DEFAULT_STATUS:
        fields["s"] = {"S": reading.status}
    if reading.value is not None:
        fields["v"] = number(reading.value)
    if reading.error_code is not None:
        fields["e"] = number(reading.error_code)
    if reading.period_s is not None:
        fields["p"] = number(reading.period_s)
    if reading.text_value is not None:
        fields["t"] = {"S": reading.text_value}
    if reading.future_dated:
        fields["f"] = {"BOOL": True}
    return {"M": fields}


def is_packed(item: Mapping[str, Any]) -> bool:
    """A packed item's point is the instant alone, or a bucket's (`bucket_point`); an item of
    the old layout (one reading, point `<second>Z#metric#channel`) has a `#` in it."""
    point = item["point"]
    return "#" not in (point["S"] if isinstance(point, dict) else point)


def is_gateway_history(item: Mapping[str, Any]) -> bool:
    """A gateway status history item (dal/gateway_history.py), wire format or deserialized."""
    series = item.get("series")
    text = series.get("S") if isinstance(series, dict) else series
    return isinstance(text, str) and text.startswith(GATEWAY_HISTORY_PREFIX)


def readings_from_item(
    item: Mapping[str, Any], *, skip: Collection[str] = frozenset()
) -> list[Reading]:
    """Every reading of a deserialized item (a Query result or a stream image), packed or of
    the old layout, in attribute-name order; `skip`: names (`reading_name`) to leave out.
    A gateway status history item (dal/gateway_history.py) has no `#` in its point or its
    attribute names, so it reads as a packed item of no readings."""
    if not is_packed(item):
        return [reading_from_item(item)]
    names = sorted(name for name in item if "#" in name and name not in skip)
    if not names:
        return []  # e.g. moto's stream image of the key alone, before an update's attributes
    sensor = {name: item[name] for name in SENSOR_FIELDS}
    bucket = _bucket_of(item["point"])
    if bucket is None:
        return [_unpacked(sensor, item, name, item["point"]) for name in names]
    readings = []
    for name in names:
        offset, _, reading = name.partition("#")
        seconds, _, milliseconds = offset.partition(".")
        at = bucket[0] + timedelta(seconds=int(seconds), milliseconds=int(milliseconds or 0))
        readings.append(_unpacked(sensor, item, reading, at, attribute=name))
    return readings


def _unpacked(
    sensor: Mapping[str, Any],
    item: Mapping[str, Any],
    name: str,
    measured_at: Any,
    *,
    attribute: str | None = None,
) -> Reading:
    """The reading `name` (`metric#channel`) of a packed item, measured at `measured_at`;
    `attribute`: its attribute's name when not `name` (in a bucket item)."""
    metric, channel = metric_and_channel(name)
    packed = dict(item[attribute or name])
    if SOURCE_KEY in packed:  # not in a map written before the sources: it holds them itself
        source = item.get(SOURCE_PREFIX + packed.pop(SOURCE_KEY))
        if source is None:
            raise ValueError(f"reading {name!r} names a source the item does not hold")
        packed.update(source)
    fields = {_FIELD_OF[short]: value for short, value in packed.items()}
    fields.setdefault("gateway_id", None)
    fields.setdefault("value", None)
    fields.setdefault("status", DEFAULT_STATUS)
    return Reading.model_validate(
        {**sensor, **fields, "metric": metric, "channel": channel, "measured_at": measured_at}
    )


def readings_in(items: Iterable[Mapping[str, AttributeValue]]) -> Iterator[Reading]:
    """Every reading of wire-format items (a Scan or Query page), packed or of the old layout."""
    for item in items:
        yield from readings_from_item(plain_item(item))


def _second(moment: datetime) -> str:
    """The UTC second a moment falls in, as the text both layouts' points start with."""
    return (moment.astimezone(UTC) if moment.tzinfo else moment).strftime("%Y-%m-%dT%H:%M:%S")


def _receipts(item: Mapping[str, AttributeValue], readings: Iterable[Reading]) -> set[datetime]:
    """When an item's readings were received: each reading's own delivery, and every delivery
    whose source the item keeps (a reading delivered again names only its latest source)."""
    receipts = {reading.received_at for reading in readings}
    for name, value in item.items():
        if name.startswith(SOURCE_PREFIX) and "r" in value.get("M", {}):
            received = value["M"][SOURCE_RECEIPT]["S"]
            receipts.add(datetime.fromisoformat(received.replace("Z", "+00:00")))
    return receipts


def _first_instant(item: Mapping[str, AttributeValue]) -> datetime:
    """The earliest instant a wire-format item can hold: its point's second."""
    return datetime.fromisoformat(item["point"]["S"][:19] + "+00:00")


def _newest_received_before(
    item: Mapping[str, AttributeValue], before: datetime
) -> datetime | None:
    """The newest instant of a wire-format item measured before `before` (whole seconds) and
    received before it (`newest_before`), or None."""
    readings = readings_from_item(plain_item(item))
    if _bucket_of(item["point"]["S"]) is None:  # one instant: any of its deliveries counts
        return (
            readings[0].measured_at
            if readings and min(_receipts(item, readings)) < before
            else None
        )
    limit = _second(before)
    counted = [
        reading.measured_at
        for reading in readings
        if _second(reading.measured_at) < limit and reading.received_at < before
    ]
    return max(counted, default=None)


class ReadingsStore:
    def __init__(self, table_name: str, client: Any = None, *, writers: int = WRITERS) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()
        self._writers = writers

    def put_readings(self, readings: Iterable[Reading], *, ttl_days: int) -> int:
        """Merge every reading into its sensor's item for its instant, or for its time bucket
        (`item_key`); returns the number of
        readings written (the same reading twice in one call counts, and is written, once: the
        last wins, as a later delivery of it overwrites it).

        One UpdateItem per item (more for an item of over `_ASSIGNMENTS_PER_UPDATE` readings
        and sources), `WRITERS` at a time. Each SETs only its readings' attributes and their
        sources: readings of the item
        written by other deliveries stay, and writing the same reading again changes nothing
        a reader or the lake counts. An item stays hot `ttl_days` after its newest write's
        receipt (0: forever), never after it was measured: a backfill of readings older than
        the TTL would otherwise expire at once, and its next copy would be an INSERT again, a
        second row in the lake.
        """
        items: dict[tuple[str, str], dict[str, Reading]] = {}
        for reading in readings:
            series, point, name = item_key(reading)
            items.setdefault((series, point), {})[name] = reading
        updates = [
            self._updates(series, point, by_name, ttl_s=ttl_days * 86_400)
            for (series, point), by_name in items.items()
        ]
        if len(updates) > 1 and self._writers > 1:
            with ThreadPoolExecutor(max_workers=min(self._writers, len(updates))) as pool:
                # map re-raises the first failed write here: the caller's retry rewrites all
                for _ in pool.map(self._update_all, updates):
                    pass
        else:
            for item_updates in updates:
                self._update_all(item_updates)
        return sum(len(by_name) for by_name in items.values())

    def _updates(
        self, series: str, point: str, by_name: Mapping[str, Reading], *, ttl_s: int
    ) -> list[dict[str, Any]]:
        """The UpdateItem requests that merge `by_name` into the item (series, point)."""
        any_reading = next(iter(by_name.values()))
        sensor_names = {"#provider": "provider", "#sensor": "sensor_id", "#family": "sensor_family"}
        sensor_values: Item = {
            ":provider": {"S": any_reading.provider},
            ":sensor": {"S": any_reading.sensor_id},
            ":family": {"S": any_reading.sensor_family},
        }
        if ttl_s:
            newest = max(reading.received_at for reading in by_name.values())
            sensor_names["#expires"] = "expires_at"
            sensor_values[":expires"] = {"N": str(int(newest.timestamp()) + ttl_s)}
        # each update sets the sources its own readings name: a reading is never stored
        # without its source, whichever update of the item lands first
        groups: list[list[tuple[str, str, dict[str, AttributeValue]]]] = [[]]
        group_sources: set[str] = set()
        for name in sorted(by_name):
            key, source = source_of(by_name[name])
            added = 1 if key in group_sources else 2  # the reading, and its source if new
            if len(groups[-1]) + len(group_sources) + added > _ASSIGNMENTS_PER_UPDATE:
                groups.append([])
                group_sources = set()
            groups[-1].append((name, key, source))
            group_sources.add(key)
        requests = []
        for group in groups:
            attribute_names, values = dict(sensor_names), dict(sensor_values)
            sources: dict[str, str] = {}
            for n, (name, key, source) in enumerate(group):
                if key not in sources:
                    sources[key] = f"#s{len(sources)}"
                    attribute_names[sources[key]] = SOURCE_PREFIX + key
                    values[f":s{len(sources) - 1}"] = {"M": source}
                attribute_names[f"#r{n}"] = name
                values[f":r{n}"] = packed_reading(by_name[name], key)
            # a source is set only if absent: a copy received again keeps the first receipt
            assignments = (
                f"{placeholder} = if_not_exists({placeholder}, :{placeholder[1:]})"
                if placeholder in sources.values()
                else f"{placeholder} = :{placeholder[1:]}"
                for placeholder in attribute_names
            )
            requests.append(
                {
                    "TableName": self._table_name,
                    "Key": {"series": {"S": series}, "point": {"S": point}},
                    "UpdateExpression": "SET " + ", ".join(assignments),
                    "ExpressionAttributeNames": attribute_names,
                    "ExpressionAttributeValues": values,
                }
            )
        return requests

    def _update_all(self, requests: list[dict[str, Any]]) -> None:
        key = requests[0]["Key"]
        with _ITEM_LOCKS[hash((key["series"]["S"], key["point"]["S"])) % len(_ITEM_LOCKS)]:
            for request in requests:
                self._client.update_item(**request)

    def newest_before(self, provider: str, sensor_id: str, before: datetime) -> datetime | None:
        """When the sensor's newest reading measured before `before` (whole seconds), and
        received before it too, was measured; None when it has none.

        A reading received later (a delivery of the incident's hole that came after the webhook
        was re-enabled) does not count: where a backfill starts from it, the hole's readings
        measured before it would never be read back (logic/backfill.py). An instant's item
        counts by the first delivery of any of its readings (every delivery's source stays in
        the item); a bucket's readings count each by the delivery that wrote it (its source),
        so a late reading never counts for the older ones beside it, and a reading delivered
        before `before` and again after counts as after (the anchor moves back: a backfill
        then reads more, deduplicated, never a hole). Usually one Query page of one item; one
        more item per late reading, and the items a bucket item spans when it is met."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table_name,
            KeyConditionExpression="series = :series AND point < :before",
            ExpressionAttributeValues={
                ":series": {"S": f"{provider}#{sensor_id}"},
                # below every layout's points of that second ("<second>.mmmZ",
                # "<second>Z#...", a bucket's "<second>Z+<width>s"): a bucket starting in
                # that second holds nothing measured before it
                ":before": {"S": _second(before)},
            },
            ScanIndexForward=False,
            PaginationConfig={"PageSize": 4},
        )
        widest = timedelta(seconds=BUCKET_S if provider in BUCKETED_PROVIDERS else 0)
        newest: datetime | None = None
        for page in pages:
            for item in page.get("Items", []):
                found = _newest_received_before(item, before)
                if found is not None and (newest is None or found > newest):
                    newest = found
                # items further on start at or before this one: none holds anything measured
                # later than this one's first instant plus the provider's widest item
                if newest is not None and _first_instant(item) + widest <= newest:
                    return newest
        return newest

    def query_range(
        self, provider: str, sensor_id: str, start: datetime, end: datetime
    ) -> list[Reading]:
        """Every reading of one sensor measured in [start, end] (whole seconds), oldest first
        (then by metric and channel): one paginated Query, packed items unpacked, from the
        time bucket `start` falls in where the provider's readings are kept in buckets. A
        reading stored in two layouts (written again after a change of layout) is returned
        once."""
        first, last = _second(start), _second(end)
        unique: dict[tuple[datetime, str, str], Reading] = {}
        for reading in self._query(provider, sensor_id, start, end):
            if first <= _second(reading.measured_at) <= last:
                unique.setdefault((reading.measured_at, reading.metric, reading.channel), reading)
        return [unique[key] for key in sorted(unique)]

    def _query(
        self, provider: str, sensor_id: str, start: datetime, end: datetime
    ) -> Iterator[Reading]:
        # the bucket `start` falls in begins earlier and holds readings of the range
        first = bucket_start(provider, start) or start
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table_name,
            KeyConditionExpression="series = :series AND point BETWEEN :start AND :end",
            ExpressionAttributeValues={
                ":series": {"S": f"{provider}#{sensor_id}"},
                # a second's text without suffix sorts below every layout's points of it, and
                # U+FFFF after it above them ("<second>.mmmZ", "<second>Z#metric#channel",
                # "<second>Z+<width>s")
                ":start": {"S": _second(first)},
                ":end": {"S": _second(end) + "\uffff"},
            },
        )
        for page in pages:
            yield from readings_in(page["Items"])
