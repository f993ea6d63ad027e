"""What a delivery costs at AWS list prices, beside the floor this architecture allows.

Every AWS call the receiver, processor and lake writer make for deliveries of each flavor is
recorded on the bench's canned HTTP layer (bench/canned_aws.py: the handlers run unmodified,
only the socket is gone) and turned into the units AWS bills for it. Units nobody calls for
are added from the stage configuration the stack deploys with: the HTTP API request, Lambda
invocations and duration, the event source's batched SQS receive and delete, and log
ingestion (what the handlers print, measured, plus Lambda's own START/END/REPORT lines).

Lambda duration is the only estimate: the CPU time measured here plus an assumed in-region
latency per AWS call (`CALL_LATENCY_MS`), billed per invocation rounded up to 1 ms.
Prices, their date, region and meaning: bench/prices.json.
"""

import contextlib
import io
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSRequest

PRICES = json.loads((Path(__file__).with_name("prices.json")).read_text())
KB, SQS_CHUNK, EVENT_CHUNK, HTTP_API_CHUNK = 1024, 64 * 1024, 64 * 1024, 512 * 1024
# Lambda's own lines per invocation (START, END, REPORT), as CloudWatch Logs ingests them.
PLATFORM_LOG_BYTES = 350
# Assumed in-region latency of one call from Lambda, the only estimated input (see docstring).
CALL_LATENCY_MS = {
    "dynamodb": 5.0,
    "sqs": 8.0,
    "s3_put": 20.0,
    "s3_get": 10.0,
    "events": 12.0,
    "secretsmanager": 10.0,
}
MONTH_MINUTES = 30 * 24 * 60


@dataclass
class Units:
    """Billed units (the keys of bench/prices.json), per delivery unless said otherwise."""

    http_api_request: float = 0.0
    lambda_request: float = 0.0
    lambda_gb_second: float = 0.0
    sqs_request: float = 0.0
    dynamodb_write_request_unit: float = 0.0
    dynamodb_read_request_unit: float = 0.0
    s3_put_request: float = 0.0
    s3_get_request: float = 0.0
    eventbridge_event: float = 0.0
    secrets_manager_api_call: float = 0.0
    cloudwatch_logs_ingested_gb: float = 0.0

    def __add__(self, other: "Units") -> "Units":
        return Units(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def scaled(self, factor: float) -> "Units":
        return Units(**{f.name: getattr(self, f.name) * factor for f in fields(self)})

    def dollars_by_unit(self) -> dict[str, float]:
        return {
            f.name: getattr(self, f.name) * PRICES["prices"][f.name]["usd"] for f in fields(self)
        }

    def dollars(self) -> float:
        return sum(self.dollars_by_unit().values())


@dataclass
class CallUnits:
    """What the AWS calls of one handler invocation bill, and how long they keep it waiting."""

    units: Units = field(default_factory=Units)
    latency_ms: float = 0.0
    operations: Counter[str] = field(default_factory=Counter)


def item_bytes(value: Any, name: str = "") -> int:
    """DynamoDB's item size rules on a wire-format item: names plus values, numbers about one
    byte per two digits plus one, containers three bytes plus one per element."""
    size = len(name.encode())
    ((kind, inner),) = value.items()
    if kind == "S":
        return size + len(inner.encode())
    if kind == "N":
        return size + math.ceil(len(inner.lstrip("-").replace(".", "")) / 2) + 1
    if kind == "B":
        return size + len(inner)
    if kind in ("BOOL", "NULL"):
        return size + 1
    if kind == "M":
        return size + 3 + sum(item_bytes(v, k) + 1 for k, v in inner.items())
    if kind in ("L", "SS", "NS", "BS"):
        return size + 3 + sum(item_bytes(v if kind == "L" else {kind[0]: v}) + 1 for v in inner)
    raise ValueError(f"unknown attribute type {kind}")


def stored_bytes(item: dict[str, Any]) -> int:
    """An item's size: its attributes' names and values (no container overhead at the top)."""
    return sum(item_bytes(value, name) for name, value in item.items())


def write_units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(stored_bytes(item) / KB))


# `SET #name = :value` assignments of an update expression, and `#name = if_not_exists(#name,
# :value)` (the value, on an item being created); not sums or other forms
_ASSIGNMENT = re.compile(
    r"(#\w+)\s*=\s*(?:if_not_exists\(\s*\1\s*,\s*(:\w+)\s*\)|(:\w+))\s*(?=,|$)"
)


def updated_item(payload: dict[str, Any]) -> dict[str, Any]:
    """The item an UpdateItem leaves when it creates the item or rewrites all of it: its key,
    each `SET #name = :value` under the attribute's real name, and any other value under its
    placeholder (an estimate for the rarer forms)."""
    names = payload.get("ExpressionAttributeNames", {})
    values = dict(payload.get("ExpressionAttributeValues", {}))
    item = dict(payload["Key"])
    for name, if_absent, always in _ASSIGNMENT.findall(payload.get("UpdateExpression", "")):
        value = if_absent or always
        if value in values:
            item[names.get(name, name)] = values.pop(value)
    return {**item, **values}


def applied_update(stored: dict[str, Any] | None, payload: dict[str, Any]) -> dict[str, Any]:
    """The item an UpdateItem leaves on the `stored` one (None: it creates the item): each
    `SET #name = :value`, and `#name = if_not_exists(#name, :value)` where the item has no
    such attribute; any other value under its placeholder, as `updated_item` estimates."""
    names = payload.get("ExpressionAttributeNames", {})
    values = dict(payload.get("ExpressionAttributeValues", {}))
    item = {**(stored or {}), **payload["Key"]}
    for name, if_absent, always in _ASSIGNMENT.findall(payload.get("UpdateExpression", "")):
        if always in values:
            item[names.get(name, name)] = values.pop(always)
        elif if_absent in values:
            item.setdefault(names.get(name, name), values.pop(if_absent))
    return {**item, **values}


def stored_images(request: AWSRequest) -> tuple[dict[str, Any] | None, dict[str, Any]] | None:
    """The item before and after an UpdateItem as the bench's tables hold it (CannedTables:
    the item the batches before left), or None where no tables kept it."""
    images: tuple[dict[str, Any] | None, dict[str, Any]] | None
    images = request.context.get(STORED_IMAGES)
    return images


# Where CannedTables leaves an UpdateItem's item before and after, on the request's context
STORED_IMAGES = "bench_stored_images"


def due_index_entry(item: dict[str, Any]) -> dict[str, Any]:
    """What sensor_state's keys-only due index stores of an item."""
    kept = ("series", "metric_channel", "due_shard", "due_at")
    return {name: value for name, value in item.items() if name in kept}


def due_index_moves(item: dict[str, Any], every_s: int = 60, deliveries: int = 600) -> float:
    """The share of a sensor's `#latest` writes that move its due_at (each such move is two
    index writes: the old entry deleted, the new one put), for a sensor delivering every
    `every_s`, by the processor's own rule (SilenceSchedule.due_at, default settings)."""
    from datetime import UTC, datetime, timedelta

    from sensorhook.dal.sensor_state_store import SilenceSchedule

    schedule = SilenceSchedule()
    period_s = int(item["period_s"]["N"]) if "period_s" in item else None
    batch_s = int(item["batch_s"]["N"]) if "batch_s" in item else 0  # a sensor sending batches
    metrics = {name.partition("#")[0] for name in item["channels"]["M"]}  # latest_metrics
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stored: str | None = None
    moves = 0
    for n in range(deliveries):
        heard_at = start + timedelta(seconds=n * every_s)
        due = schedule.due_at(stored, heard_at, period_s, metrics, batch_s)
        moves += due != stored
        stored = due
    return moves / deliveries


def _key_of(payload: dict[str, Any], item: dict[str, Any]) -> str:
    """A table and item key as one text (the key attributes are those GetItem names)."""
    return json.dumps([payload.get("TableName"), sorted(item.items())], sort_keys=True)


def _dynamodb_units(
    operation: str,
    payload: dict[str, Any],
    units: Units,
    written: dict[str, int],
    every_s: int = 60,
    *,
    images: tuple[dict[str, Any] | None, dict[str, Any]] | None = None,
) -> None:
    if operation == "PutItem":
        units.dynamodb_write_request_unit += write_units(payload["Item"])
        if "due_at" in payload["Item"]:
            # a `#latest` item whose due_at moves: the index deletes the old entry and puts
            # the new one, each billed like a write of the entry (at steady state; the canned
            # AWS answers every read empty, so each write here looks like a first one)
            units.dynamodb_write_request_unit += (
                2
                * write_units(due_index_entry(payload["Item"]))
                * due_index_moves(payload["Item"], every_s)
            )
    elif operation == "UpdateItem":
        # billed on the larger of the item before and after: as the bench's tables hold it
        # (`stored_images`), else the item the update's own values make
        if images is not None:
            before, after = images
            units.dynamodb_write_request_unit += max(
                write_units(after), write_units(before) if before is not None else 0
            )
        else:
            units.dynamodb_write_request_unit += write_units(updated_item(payload))
    elif operation == "DeleteItem":
        units.dynamodb_write_request_unit += write_units(payload["Key"])
    elif operation == "BatchWriteItem":
        for writes in payload["RequestItems"].values():
            for write in writes:
                item = write.get("PutRequest", {}).get("Item") or write["DeleteRequest"]["Key"]
                units.dynamodb_write_request_unit += write_units(item)
    elif operation == "GetItem":
        # the item read is, at steady state, the one the same invocation then writes back
        size = max(
            (v for k, v in written.items() if k == _key_of(payload, payload["Key"])), default=0
        )
        per_4kb = 1 if payload.get("ConsistentRead") else 0.5
        units.dynamodb_read_request_unit += max(1, math.ceil(size / (4 * KB))) * per_4kb
    elif operation == "Query":
        units.dynamodb_read_request_unit += 1 if payload.get("ConsistentRead") else 0.5


def _target(request: AWSRequest) -> str:
    target = request.headers.get("X-Amz-Target", b"")
    return target.decode() if isinstance(target, bytes) else target


def call_units(requests: Iterable[AWSRequest], every_s: int = 60) -> CallUnits:
    """Turn recorded requests into billed units; UpdateItem is sized by the larger of the
    stored item before and after it (`stored_images`; without the bench's tables, by the item
    its own values make, `updated_item`, which undercounts an item it adds to). A sensor-state
    GetItem is sized by the item written back under its key (the canned AWS answers it empty;
    deployed, it returns that item); its PutItem adds the due index's writes."""
    result = CallUnits()
    units = result.units
    requests = list(requests)
    written: dict[str, int] = {}
    for request in requests:
        if _target(request).endswith(".PutItem"):
            payload = json.loads(request.body)
            key = {
                n: payload["Item"][n] for n in ("series", "metric_channel") if n in payload["Item"]
            }
            if key:
                written[_key_of(payload, key)] = stored_bytes(payload["Item"])
    for request in requests:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        body = request.body or b""
        payload = json.loads(body) if target and body else {}
        operation = target.rpartition(".")[2] or f"S3 {request.method}"
        result.operations[operation] += 1
        if target.startswith("DynamoDB_"):
            result.latency_ms += CALL_LATENCY_MS["dynamodb"]
            _dynamodb_units(
                operation, payload, units, written, every_s, images=stored_images(request)
            )
        elif target.startswith("AmazonSQS."):
            result.latency_ms += CALL_LATENCY_MS["sqs"]
            entries = payload.get("Entries") or [payload]
            size = sum(len(entry["MessageBody"].encode()) for entry in entries)
            units.sqs_request += max(1, math.ceil(size / SQS_CHUNK))
        elif target.startswith("AWSEvents."):
            result.latency_ms += CALL_LATENCY_MS["events"]
            for entry in payload["Entries"]:
                size = sum(
                    len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail")
                )
                units.eventbridge_event += max(1, math.ceil(size / EVENT_CHUNK))
        elif target.startswith("secretsmanager."):
            result.latency_ms += CALL_LATENCY_MS["secretsmanager"]
            units.secrets_manager_api_call += 1
        elif not target and request.method in ("PUT", "POST"):
            result.latency_ms += CALL_LATENCY_MS["s3_put"]
            units.s3_put_request += 1
        elif not target:
            result.latency_ms += CALL_LATENCY_MS["s3_get"]
            units.s3_get_request += 1
    return result


@dataclass
class Invocation:
    """One handler invocation as measured: its calls, CPU and what it printed."""

    calls: CallUnits
    cpu_ms: float
    log_bytes: int

    def lambda_units(self, memory_mb: int) -> Units:
        billed_ms = math.ceil(self.cpu_ms + self.calls.latency_ms)
        return Units(
            lambda_request=1,
            lambda_gb_second=billed_ms / 1000 * memory_mb / 1024,
            cloudwatch_logs_ingested_gb=(self.log_bytes + PLATFORM_LOG_BYTES) / 1024**3,
        )


@contextlib.contextmanager
def printed_into(sink: io.StringIO) -> Iterator[None]:
    """Everything a handler prints goes to `sink`: stdout and stderr (Metrics' EMF lines,
    `single_metric`, print) and every logging stream handler (the Powertools Logger writes to
    the stream it captured when it was created, which `redirect_stdout` does not reach)."""
    handlers = [
        handler
        for logger in (
            logging.getLogger(),
            *(
                one
                for one in logging.Logger.manager.loggerDict.values()
                if isinstance(one, logging.Logger)
            ),
        )
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]
    streams = [handler.setStream(sink) for handler in handlers]
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            if stream is not None:
                handler.setStream(stream)


def measure(recorded: list[AWSRequest], work: Callable[[], Any], every_s: int = 60) -> Invocation:
    """Run one invocation; its requests are those recorded meanwhile, its log bytes every
    line it printed (`printed_into`)."""
    first = len(recorded)
    sink = io.StringIO()
    with printed_into(sink):
        began = time.process_time()
        work()
        cpu_ms = (time.process_time() - began) * 1000
    return Invocation(call_units(recorded[first:], every_s), cpu_ms, len(sink.getvalue().encode()))


@dataclass
class FlavorCost:
    flavor: str
    label: str  # the sensor's deliveries (bench/workload.py, cost_workload)
    kind: str  # change or steady (bench/workload.py)
    what: str  # what the delivery is
    events: float  # per delivery
    body_bytes: int
    readings: int  # per delivery
    actual: Units
    floor: Units
    operations: Counter[str]  # AWS calls per delivery (receiver + processor)
    # packed readings items plus DynamoDB's 100-byte overhead per item, per reading
    dynamodb_bytes_per_reading: float
    raw_bytes_per_delivery: float  # gzip JSON lines in the raw archive
    parquet_bytes_per_reading: float
    state: "StateSizes | None" = None  # the sensor's state, when the flavor has readings
    # bytes printed per delivery: receiver, processor share, lake writer share
    log_bytes: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def ratio(self) -> float:
        return self.actual.dollars() / self.floor.dollars()


def body_bytes(request: AWSRequest) -> int:
    body = request.body
    if body is None:
        return 0
    if isinstance(body, bytes | bytearray | str):
        return len(body)
    # a streamed body with a checksum trailer (aws-chunked) states its own length
    return int(request.headers.get("X-Amz-Decoded-Content-Length", 0))


def _items_written(
    requests: Iterable[AWSRequest],
    table: str,
    operation: bytes,
    item_of: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The items the `operation` calls (`.PutItem`, `UpdateItem`) on `table` leave."""
    items = []
    for request in requests:
        if not request.headers.get("X-Amz-Target", b"").endswith(operation):
            continue
        payload = json.loads(request.body)
        if payload["TableName"] == table:
            items.append(item_of(payload))
    return items


def readings_items(requests: Iterable[AWSRequest], table: str) -> list[dict[str, Any]]:
    """The packed readings items the processor's UpdateItem calls on `table` leave."""
    return _items_written(requests, table, b"UpdateItem", updated_item)


def history_items(requests: Iterable[AWSRequest], table: str) -> list[dict[str, Any]]:
    """The gateway status history items the processor's PutItem calls on `table` write (one
    stream record and one lake row each)."""
    return _items_written(requests, table, b".PutItem", lambda payload: payload["Item"])


def readings_in_item(item: dict[str, Any]) -> int:
    return sum("#" in name for name in item)  # one attribute `metric#channel` per reading


def stream_event(
    changes: Iterable[tuple[dict[str, Any] | None, dict[str, Any]]],
) -> dict[str, Any]:
    """The readings table's stream batch for the items the processor wrote: (old image or
    None, new image) each, an INSERT or a MODIFY."""
    records: list[dict[str, Any]] = []
    for old, item in changes:
        change: dict[str, Any] = {
            "Keys": {"series": item["series"], "point": item["point"]},
            "NewImage": item,
            "SequenceNumber": f"{len(records):021d}",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if old is not None:
            change["OldImage"] = old
        records.append(
            {
                "eventID": str(len(records)),
                "eventName": "INSERT" if old is None else "MODIFY",
                "eventSource": "aws:dynamodb",
                "awsRegion": "eu-west-1",
                "eventSourceARN": (
                    "arn:aws:dynamodb:eu-west-1:123456789012:table/readings/stream/bench"
                ),
                "dynamodb": change,
            }
        )
    return {"Records": records}


def readings_changes(
    requests: Iterable[AWSRequest], table: str
) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """The stream's (old, new) images of the processor's UpdateItem calls on `table`: as the
    bench's tables hold the item (`stored_images`), else an INSERT of what the update sets."""
    changes = []
    for request in requests:
        if not request.headers.get("X-Amz-Target", b"").endswith(b"UpdateItem"):
            continue
        payload = json.loads(request.body)
        if payload["TableName"] == table:
            changes.append(stored_images(request) or (None, updated_item(payload)))
    return changes


def flavor_cost(
    label: str, step: Any, config: Any, recorded: list[AWSRequest], context: Any
) -> FlavorCost:
    """One delivery's cost, from a batch of `processor_batch_size` records of `step`'s body
    (each with its own event id) through the receiver, processor and lake writer."""
    from bench.workload import CHANGE, STEADY, processor_batch, receiver_request
    from sensorhook.handlers import lake_writer, processor, receiver

    flavor, body = step.flavor, step.body

    # receiver: one request, measured after a first one filled the secret cache (the cache
    # lasts secret_cache_seconds, so a busy endpoint reads each secret about once a minute)
    request = receiver_request(flavor, body)
    receiver.handler(request, context)
    received = measure(recorded, lambda: receiver.handler(request, context))

    batch_size = config.processor_batch_size
    batch = processor_batch(flavor, body, batch_size)
    first = len(recorded)
    processed = measure(recorded, lambda: processor.handler(batch, context), step.every_s)
    from bench.workload import BENCH_ENV

    writes = readings_items(recorded[first:], BENCH_ENV["READINGS_TABLE"])
    histories = history_items(recorded[first:], BENCH_ENV["READINGS_TABLE"])
    readings_in_batch = sum(readings_in_item(item) for item in writes)
    readings = readings_in_batch // batch_size
    # the lake's rows: one per reading and one per gateway status report
    rows_in_batch = readings_in_batch + len(histories)
    rows = rows_in_batch / batch_size
    changes = readings_changes(recorded[first:], BENCH_ENV["READINGS_TABLE"])
    stream = stream_event([*changes, *((None, item) for item in histories)])
    lake_first = len(recorded)
    lake = measure(recorded, lambda: lake_writer.handler(stream, context)) if rows else None

    lake_share = Units()
    parquet_bytes = 0
    if lake is not None:
        # Deployed, the stream fills lake batches of lake_writer_batch_size rows at these
        # rates: per batch one invocation and the measured PUTs (one per partition); the CPU
        # per row as measured on this smaller batch.
        lake_batch = max(config.lake_writer_batch_size, rows_in_batch)
        full_batch = Invocation(
            lake.calls, lake.cpu_ms * lake_batch / rows_in_batch, lake.log_bytes
        )
        lake_share = (
            full_batch.calls.units + full_batch.lambda_units(config.lake_writer_memory_mb)
        ).scaled(rows / lake_batch)
        parquet_bytes = sum(body_bytes(r) for r in recorded[lake_first:] if r.method == "PUT")
    actual = (
        received.calls.units
        + received.lambda_units(config.receiver_memory_mb)
        + Units(http_api_request=math.ceil(len(body) / HTTP_API_CHUNK))
        # the event source receives and deletes a batch in one request each
        + Units(sqs_request=2).scaled(1 / batch_size)
        + (processed.calls.units + processed.lambda_units(config.processor_memory_mb)).scaled(
            1 / batch_size
        )
        + lake_share
    )
    events = processed.calls.units.eventbridge_event / batch_size
    # the row is what it says: a change publishes a second event, a steady delivery one (a
    # delivery without readings none)
    expected = {CHANGE: (events >= 2), STEADY: events == min(1, readings)}[step.kind]
    if not expected:
        raise SystemExit(f"bench setup: {label} ({step.what}) published {events} events")
    floor = (
        floor_units(
            body,
            config=config,
            readings=readings,
            events=events,
            writes=writes,
            batch_size=batch_size,
        )
        + lake_share
    )
    operations = received.calls.operations + Counter(
        {k: v / batch_size for k, v in processed.calls.operations.items()}
    )
    item_bytes_total = sum(stored_bytes(item) + 100 for item in writes)
    raw_puts = [r for r in recorded[first:] if "/raw/" in r.url or "raw%2F" in r.url]
    latest = [
        payload["Item"]
        for r in recorded[first:]
        if _target(r).endswith(".PutItem") and "due_at" in (payload := json.loads(r.body))["Item"]
    ]
    # the layout before (one sensor-state item per metric and channel) held each channel as
    # a reading item of the readings table's earlier layout: the size of one such item each
    from sensorhook.dal.readings_store import reading_attributes, readings_in

    item_sizes = [
        stored_bytes(
            {**reading_attributes(r), "series": {"S": r.series_key}, "point": {"S": r.point_key}}
        )
        + 100
        for r in readings_in(writes)
    ]
    state = None
    if latest and item_sizes:
        channels = len(latest[0]["channels"]["M"])
        state = StateSizes(
            # one item per metric and channel, each about a reading item (the layout before)
            legacy_bytes=channels * (sum(item_sizes) / len(item_sizes)),
            latest_bytes=stored_bytes(latest[0]) + 100,
            index_entry_bytes=stored_bytes(due_index_entry(latest[0])) + 100,
            index_wru_per_delivery=2
            * write_units(due_index_entry(latest[0]))
            * due_index_moves(latest[0], step.every_s),
        )
    return FlavorCost(
        flavor=flavor.value,
        label=label,
        kind=step.kind,
        what=step.what,
        events=events,
        body_bytes=len(body),
        readings=readings,
        actual=actual,
        floor=floor,
        operations=operations,
        dynamodb_bytes_per_reading=(
            item_bytes_total / readings_in_batch if readings_in_batch else 0.0
        ),
        raw_bytes_per_delivery=sum(body_bytes(r) for r in raw_puts) / batch_size,
        parquet_bytes_per_reading=parquet_bytes / readings_in_batch if readings else 0.0,
        state=state,
        log_bytes=(
            received.log_bytes,
            processed.log_bytes / batch_size,
            lake.log_bytes * rows / max(config.lake_writer_batch_size, rows_in_batch)
            if lake is not None
            else 0.0,
        ),
    )


@dataclass
class StateSizes:
    """One sensor's state as stored (bytes, with DynamoDB's 100 bytes of item overhead)."""

    legacy_bytes: float  # every per-channel item of the layout before the `#latest` item
    latest_bytes: int  # its `#latest` item
    index_entry_bytes: int  # its entry in the keys-only due index
    index_wru_per_delivery: float  # the due index's writes, at steady state


# Gateway health's share of sensors due or silent on a run, at steady state (an assumption:
# each one costs a Query entry and a BatchGetItem read; docs/cost.md)
DUE_SHARE = 0.01


def health_month(
    state: StateSizes, sensors: int, config: Any, deliveries_per_sensor: float = MONTH_MINUTES
) -> dict[str, float]:
    """DynamoDB dollars a month of gateway health's sensor reads, before and after the due
    index, for `sensors` each delivering once a minute. Reads: eventually consistent, 0.5 RRU
    per started 4 KB; a Scan is billed on the whole items it reads (pages of 1 MB), a
    BatchGetItem per item. The index's upkeep is the processor's extra writes."""
    runs = MONTH_MINUTES / config.gateway_health_schedule_minutes
    rru = PRICES["prices"]["dynamodb_read_request_unit"]["usd"]
    wru = PRICES["prices"]["dynamodb_write_request_unit"]["usd"]

    def scan(total_bytes: float) -> float:
        return math.ceil(total_bytes / (4 * KB)) * 0.5 * runs * rru

    due = math.ceil(sensors * DUE_SHARE)
    query = max(1, math.ceil(due * state.index_entry_bytes / (4 * KB))) * 0.5
    batch_get = due * math.ceil(state.latest_bytes / (4 * KB)) * 0.5
    return {
        "scan_before": scan(sensors * state.legacy_bytes),
        "scan_latest": scan(sensors * state.latest_bytes),
        "due_reads": (query + batch_get) * runs * rru,
        "due_index_writes": (state.index_wru_per_delivery * sensors * deliveries_per_sensor * wru),
    }


def packed_bytes(items: list[dict[str, Any]]) -> int:
    """One sensor's readings written in `items` (values the updates set) as one item would
    hold them: every reading, each source once, the key and the sensor's fields once (the
    floor's one item, whatever layout the processor writes them in)."""
    once: dict[str, int] = {}
    readings = 0
    for item in items:
        for name, value in item.items():
            if "#" in name:
                readings += item_bytes(value, name)
            else:
                once[name] = item_bytes(value, name)
    return readings + sum(once.values())


def floor_units(
    body: bytes,
    *,
    config: Any,
    readings: int,
    events: float,
    writes: list[dict[str, Any]],
    batch_size: int,
) -> Units:
    """The least this architecture can spend on one delivery (docs/cost.md, "The floor"):
    one API request; one receiver invocation; one SQS send, plus the batch's receive and
    delete shared; the processor invocation shared by its batch; per sensor one conditional
    write of its readings packed in one item (which is also the dedupe record) and one write
    of its latest state, or one conditional write for a gateway status; one event; the raw
    archive object shared by the batch (the lake writer's share is added by the caller, as
    measured: the lake is part of the product). The packed readings item holds what the
    readings updates wrote, its key, sensor fields and sources once (`packed_bytes`). Lambda
    duration counts only the calls listed, at the same assumed latencies, and no CPU."""
    # per sensor, each delivery's items (those naming its source) as one item
    deliveries: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for item in writes:
        sources = tuple(sorted(name for name in item if name.startswith("@")))
        deliveries.setdefault((item["series"]["S"], sources), []).append(item)
    readings_bytes_per_sensor: Counter[str] = Counter()
    for (series, _), items in deliveries.items():
        readings_bytes_per_sensor[series] += packed_bytes(items)
    sensors = max(1, len(readings_bytes_per_sensor))
    if readings:
        wru = sum(math.ceil(b / batch_size / KB) + 1 for b in readings_bytes_per_sensor.values())
    else:
        wru = 1
    receiver_ms = CALL_LATENCY_MS["sqs"]
    processor_ms = (
        CALL_LATENCY_MS["s3_put"] / batch_size
        + CALL_LATENCY_MS["dynamodb"] * (2 * sensors if readings else 1)
        + CALL_LATENCY_MS["events"]
    )
    return Units(
        http_api_request=math.ceil(len(body) / HTTP_API_CHUNK),
        lambda_request=1 + 1 / batch_size,
        lambda_gb_second=(
            math.ceil(receiver_ms) / 1000 * config.receiver_memory_mb / 1024
            + processor_ms / 1000 * config.processor_memory_mb / 1024
        ),
        sqs_request=math.ceil(len(body) / SQS_CHUNK) + 2 / batch_size,
        dynamodb_write_request_unit=wru,
        # one event for a delivery that yields any (a gateway status yields none)
        eventbridge_event=min(1.0, events),
        s3_put_request=1 / batch_size,
        cloudwatch_logs_ingested_gb=PLATFORM_LOG_BYTES * (1 + 1 / batch_size) / 1024**3,
    )


def cost_table(config: Any, context: Any, secrets: dict[str, str]) -> list[FlavorCost]:
    """Every measured delivery of the workload (bench/workload.py, cost_workload), each
    sensor's in order: a batch reads the state the batches before it wrote."""
    from bench.canned_aws import CannedTables, canned_aws
    from bench.workload import WARM_UP, cost_workload, processor_batch
    from sensorhook.handlers import processor

    tables = CannedTables()
    costs = []
    with (
        canned_aws(secrets, tables=tables) as recorded,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        for sensor in cost_workload():
            for step in sensor.steps:
                if step.kind == WARM_UP:
                    batch = processor_batch(step.flavor, step.body, config.processor_batch_size)
                    with printed_into(io.StringIO()):
                        processor.handler(batch, context)
                else:
                    costs.append(flavor_cost(sensor.label, step, config, recorded, context))
                tables.publish()
    return costs


# Real traffic's changes (an assumption, printed with the monthly table, docs/cost.md): a
# sensor reporting each minute changes state, or shows a gap, a handful of times a month
CHANGES_PER_SENSOR_MONTH = 5


@dataclass(frozen=True)
class MonthlyTraffic:
    """A month of one kind of sensor: its steady deliveries, and its changes (a second event)
    at CHANGES_PER_SENSOR_MONTH, each priced as measured."""

    label: str
    steady: FlavorCost | None  # None: every delivery of the flavor is a change (v2020-07)
    change: FlavorCost | None  # None: the flavor has no change deliveries (Data Services)
    deliveries_per_sensor: float
    changes_per_sensor: float


def monthly(traffic: MonthlyTraffic, sensors: int, config: Any) -> dict[str, float]:
    """Dollars a month for `sensors`: requests and, at steady state, DynamoDB readings kept for
    the TTL; S3 grows by the month's raw and Parquet bytes."""
    parts = [
        (traffic.steady, traffic.deliveries_per_sensor - traffic.changes_per_sensor),
        (traffic.change, traffic.changes_per_sensor),
    ]
    prices = PRICES["prices"]
    totals = {"requests": 0.0, "dynamodb_storage": 0.0, "s3_storage_added": 0.0}
    for cost, per_sensor in parts:
        if cost is None or not per_sensor:
            continue
        deliveries = sensors * per_sensor
        readings = deliveries * cost.readings
        dynamodb_gb = (
            readings / 30 * config.reading_ttl_days * cost.dynamodb_bytes_per_reading / 1e9
        )
        s3_gb = (
            deliveries * cost.raw_bytes_per_delivery + readings * cost.parquet_bytes_per_reading
        ) / 1e9
        totals["requests"] += cost.actual.dollars() * deliveries
        totals["dynamodb_storage"] += dynamodb_gb * prices["dynamodb_storage_gb_month"]["usd"]
        totals["s3_storage_added"] += s3_gb * prices["s3_storage_gb_month"]["usd"]
    return totals


def monthly_traffic(costs: list[FlavorCost]) -> list[MonthlyTraffic]:
    """The month's sensors, each priced by its last measured steady and change deliveries
    (those made with the sensor's state stored, as in real traffic)."""
    from bench.workload import CHANGE, EFENTO_TRANSMISSION_S, STEADY

    def last(label: str, kind: str) -> FlavorCost | None:
        return next((c for c in reversed(costs) if c.label == label and c.kind == kind), None)

    changes = CHANGES_PER_SENSOR_MONTH
    return [
        MonthlyTraffic(
            "Everactive Data Services",
            last("everactive-ds-sensor-reading", STEADY),
            None,
            MONTH_MINUTES,
            0,
        ),
        MonthlyTraffic(
            "Efento, fixture's shape",
            last("efento (test fixture)", STEADY),
            last("efento (test fixture)", CHANGE),
            MONTH_MINUTES,
            changes,
        ),
        MonthlyTraffic(
            "Efento as it reports",
            last("efento (as it reports)", STEADY),
            last("efento (as it reports)", CHANGE),
            MONTH_MINUTES * 60 / EFENTO_TRANSMISSION_S,
            changes,
        ),
        MonthlyTraffic(
            "Everactive v2020-07 traps",
            None,
            last("everactive-v2020-07", CHANGE),
            changes,
            changes,
        ),
    ]


def print_cost_report(config: Any, context: Any, secrets: dict[str, str]) -> None:
    from bench.workload import (
        EFENTO_BATCH_MEASUREMENTS,
        EFENTO_PERIOD_S,
        EFENTO_PHASE_S,
        EFENTO_TRANSMISSION_S,
        WARM_UP,
    )
    from sensorhook.core.reading import BUCKET_S

    costs = cost_table(config, context, secrets)
    print(
        f"\ncost per delivery at list prices ({PRICES['region']}, {PRICES['architecture']}, "
        f"prices of {PRICES['as_of']}; bench/prices.json), processor batches of "
        f"{config.processor_batch_size}"
    )
    print(
        "  each sensor's deliveries in order (bench/workload.py): a change carries a second "
        "event (v2020-07:\n  every delivery, its only webhook; Efento: a gap); a steady one "
        "does not; 'state stored': the\n  sensor's earlier delivery was processed first. "
        f"Efento as it reports: 2 channels, one measurement\n  per {EFENTO_PERIOD_S} s, a batch "
        f"every {EFENTO_TRANSMISSION_S // 60} min ({EFENTO_BATCH_MEASUREMENTS} measurements a "
        f"channel; its first batch, '{WARM_UP}', is not priced),\n  starting "
        f"{EFENTO_PHASE_S / 60:g} min past the quarter hour (the readings table's "
        f"{BUCKET_S} s buckets: two items a batch); 'on the quarter hour': the\n  same "
        "sensor's batches from :00, :15, ... (one item a batch)"
    )
    print(
        f"  {'sensor: delivery':58} {'kind':>6} {'rdg':>4} {'ev':>4} {'$/M deliv':>10} "
        f"{'$/M meas':>9} {'floor $/M':>10} {'ratio':>6} {'WRU':>6} {'floor WRU':>9}"
    )
    for cost in costs:
        per_million = cost.actual.dollars() * 1e6
        per_measurement = f"{per_million / cost.readings:9.3f}" if cost.readings else f"{'-':>9}"
        print(
            f"  {cost.label + ': ' + cost.what:58} {cost.kind:>6} {cost.readings:4d} "
            f"{cost.events:4.0f} {per_million:10.2f} {per_measurement} "
            f"{cost.floor.dollars() * 1e6:10.2f} {cost.ratio:6.2f} "
            f"{cost.actual.dynamodb_write_request_unit:6.1f} "
            f"{cost.floor.dynamodb_write_request_unit:9.1f}"
        )
    print("\n  where the money goes, $ per million deliveries (actual / floor)")
    names = [f.name for f in fields(Units)]
    print("  " + f"{'':58}" + "".join(f"{n.split('_')[0][:9]:>10}" for n in names))
    for cost in costs:
        actual, floor = cost.actual.dollars_by_unit(), cost.floor.dollars_by_unit()
        print(
            f"  {cost.label + ': ' + cost.what:58}"
            + "".join(f"{actual[n] * 1e6:10.2f}" for n in names)
        )
        print(f"  {'  floor':58}" + "".join(f"{floor[n] * 1e6:10.2f}" for n in names))
    print("\n  AWS calls per delivery (receiver + processor share)")
    for cost in costs:
        calls = ", ".join(f"{op} {n:g}" for op, n in sorted(cost.operations.items()))
        print(f"  {cost.label + ': ' + cost.what:58} {sum(cost.operations.values()):5.1f}: {calls}")
    print("\n  bytes printed per delivery (receiver, processor share, lake writer share)")
    for cost in costs:
        receiver_b, processor_b, lake_b = cost.log_bytes
        print(
            f"  {cost.label + ': ' + cost.what:58} {receiver_b:8.0f} {processor_b:8.0f} "
            f"{lake_b:8.0f}"
        )
    traffics = monthly_traffic(costs)
    print(
        "\n  a month ($: requests + DynamoDB storage at "
        f"{config.reading_ttl_days} d TTL + S3 added): steady deliveries as measured with the "
        f"sensor's\n  state stored, plus {CHANGES_PER_SENSOR_MONTH} change deliveries per sensor "
        "(a state change or a gap: an assumption)"
    )
    for traffic in traffics:
        every = MONTH_MINUTES * 60 / traffic.deliveries_per_sensor
        cadence = (
            f"one delivery per {every / 60:g} min"
            if traffic.steady is not None
            else f"{traffic.changes_per_sensor:g} changes a month"
        )
        print(f"  {traffic.label} ({cadence})")
        for sensors in (100, 1_000, 10_000):
            month = monthly(traffic, sensors, config)
            parts = " + ".join(f"{v:,.2f}" for v in month.values())
            print(f"  {'':4}{sensors:6,d} sensors: {sum(month.values()):10,.2f}  ({parts})")
    print(
        "\n  gateway health's sensor reads a month, DynamoDB $ (runs every "
        f"{config.gateway_health_schedule_minutes} min; due index: {DUE_SHARE:.0%} of sensors "
        "due or silent per run)"
    )
    print(
        f"  {'':26} {'sensors':>14} {'scan before':>12} {'scan #latest':>13} "
        f"{'due reads':>10} {'+ index writes':>15} {'= due total':>12}"
    )
    for traffic in traffics[:3]:
        state = traffic.steady.state if traffic.steady is not None else None
        if state is None:
            continue
        for sensors in (100, 1_000, 10_000):
            h = health_month(state, sensors, config, traffic.deliveries_per_sensor)
            print(
                f"  {traffic.label:26} {sensors:6,d} sensors: {h['scan_before']:12,.2f} "
                f"{h['scan_latest']:13,.2f} {h['due_reads']:10,.2f} "
                f"{h['due_index_writes']:15,.2f} {h['due_reads'] + h['due_index_writes']:12,.2f}"
            )


def main() -> None:
    """`python -m bench.cost`: the cost report alone, as `make bench` prints it last."""
    import os
    import sys

    from bench.__main__ import BENCH_ENV, CONTEXT, ROOT, SECRETS, cdk_context

    os.environ.update(BENCH_ENV)
    sys.path.insert(0, str(ROOT / "functions"))
    from infra.config import load_stage_config

    print_cost_report(load_stage_config(cdk_context(), "prod"), CONTEXT, SECRETS)


if __name__ == "__main__":
    main()
