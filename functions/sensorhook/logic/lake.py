"""The lake's key layout, and readings table stream -> Parquet objects, one per (table, date,
provider) per stream batch: readings under readings/, gateway status reports under
gateway_status/.

The key layout (`<table prefix>date=YYYY-MM-DD/provider=<provider>/<name>.parquet`) is what
the Glue tables' partition projection reads (infra/constructs/catalog.py; a test holds them
together), and what compaction rewrites (sensorhook.logic.compaction).

A readings item packs every reading of one sensor at one instant, or an Efento sensor's of one
time bucket (dal/readings_store.py), so an INSERT brings all its readings to the lake and a
MODIFY only the readings its new image holds and its old image did not (a later delivery with
other channels of that instant, or other instants of that bucket); a reading written again (a
retry, a re-sent delivery, a resend of instants an earlier batch covered) is in both images,
under the same attribute, and adds no row. A
REMOVE is TTL expiry of the hot copy, not new data, and deletes nothing. A gateway status
history item (dal/gateway_history.py) is written once, conditionally: its INSERT is one row,
and a MODIFY of it (none is written) would add none.

An object is named by the stream and the batch's FIRST sequence number only: the stream
retries a failed batch from that same record, with the same records or more, so the retry
overwrites every object the failed attempt wrote instead of adding copies. That holds only
while the stream never retries part of a batch from elsewhere, which is why the event source
does not bisect failed batches and a failed write fails the batch from its first record.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from sensorhook.core.normalized import GatewayStatus, GatewayStatusRecord
from sensorhook.core.reading import Reading
from sensorhook.dal.gateway_history import record_from_item
from sensorhook.dal.lake_store import LakeStore
from sensorhook.dal.readings_store import is_gateway_history, is_packed, readings_from_item
from sensorhook.observability import logger, metrics


@dataclass(frozen=True)
class StreamChange:
    """One stream record, as the lake cares about it (images deserialized)."""

    sequence_number: str
    new_image: Mapping[str, Any] | None = None  # INSERT and MODIFY; None for REMOVE
    old_image: Mapping[str, Any] | None = None  # MODIFY (the stream's NEW_AND_OLD_IMAGES)
    modified: bool = False  # a MODIFY: only the readings not in old_image are new


def new_readings(change: StreamChange) -> list[Reading]:
    """The readings a change brings that the lake does not have yet."""
    if change.new_image is None:
        return []
    if not change.modified:
        return readings_from_item(change.new_image)
    if change.old_image is None:
        # without the old image no reading can be told new: writing them all would double
        # rows, so none is written and the stream's view type is the thing to fix
        raise ValueError("a MODIFY without its old image (the stream must be NEW_AND_OLD_IMAGES)")
    if not is_packed(change.new_image):
        return []  # an item of the old layout is one reading: overwritten, not new
    before = {name for name in change.old_image if "#" in name}
    return readings_from_item(change.new_image, skip=before)


def new_gateway_statuses(change: StreamChange) -> list[GatewayStatusRecord]:
    """The gateway status report a change brings: an INSERT of a history item only."""
    if change.new_image is None or change.modified or not is_gateway_history(change.new_image):
        return []
    return [record_from_item(change.new_image)]


@dataclass
class LakeWrite:
    keys: list[str] = field(default_factory=list)  # objects written
    # The record the stream must retry from: the first one that could not be read as a
    # reading (nothing from it on was written), or the batch's first record when a write
    # failed (the retry rewrites every object of the batch under the same names).
    retry_from: str | None = None


def shard_label(event_source_arn: str) -> str:
    """The stream's label (its creation time) from the stream ARN, as a key-safe token.

    A Lambda stream event names the stream but not the shard; sequence numbers are unique
    within a stream, so the label plus the batch's first number name the batch uniquely.
    """
    label = event_source_arn.rsplit("/stream/", 1)[-1]
    return re.sub(r"[^0-9A-Za-z]", "", label)


READINGS_PREFIX = "readings/"
GATEWAY_STATUS_PREFIX = "gateway_status/"

# What makes a lake row the same row: the readings table's key (series and point) and a
# gateway's report. Compaction and the Athena views keep one row per identity, the first
# received.
READING_IDENTITY = ("provider", "sensor_id", "measured_at", "metric", "channel")
GATEWAY_STATUS_IDENTITY = ("provider", "gateway_id", "reported_at", "schema_name")
FIRST_RECEIVED = ("received_at", "event_id")


def partition_prefix(table_prefix: str, day: date, provider: str) -> str:
    return f"{table_prefix}date={day:%Y-%m-%d}/provider={provider}/"


def lake_key(reading: Reading, batch_name: str) -> str:
    prefix = partition_prefix(READINGS_PREFIX, reading.measured_at.date(), reading.provider)
    return f"{prefix}{batch_name}.parquet"


def gateway_status_key(status: GatewayStatus, batch_name: str) -> str:
    prefix = partition_prefix(GATEWAY_STATUS_PREFIX, status.reported_at.date(), status.provider)
    return f"{prefix}{batch_name}.parquet"


def write_to_lake(changes: Sequence[StreamChange], shard: str, store: LakeStore) -> LakeWrite:
    result = LakeWrite()
    readings: list[Reading] = []
    statuses: list[GatewayStatusRecord] = []
    for change in changes:
        try:
            readings.extend(new_readings(change))
            statuses.extend(new_gateway_statuses(change))
        except (ValidationError, ValueError) as error:
            logger.error(
                "stream record is not a reading or gateway status; retrying from it",
                extra={
                    "sequence_number": change.sequence_number,
                    "errors": (
                        error.errors(include_input=False)[:5]
                        if isinstance(error, ValidationError)
                        else str(error)
                    ),
                },
            )
            result.retry_from = change.sequence_number
            break
    batch_name = f"{shard}-{changes[0].sequence_number}"
    objects: dict[str, list[Reading]] = {}
    for reading in readings:
        objects.setdefault(lake_key(reading, batch_name), []).append(reading)
    status_objects: dict[str, list[GatewayStatusRecord]] = {}
    for record in statuses:
        status_objects.setdefault(gateway_status_key(record.status, batch_name), []).append(record)
    writes: list[tuple[str, Callable[[], None]]] = [
        (key, partial(store.put_readings, key, rows)) for key, rows in objects.items()
    ]
    writes += [
        (key, partial(store.put_gateway_statuses, key, rows))
        for key, rows in status_objects.items()
    ]
    for key, write in writes:
        try:
            write()
        except Exception:
            # Acknowledging the objects already written would make the retry start past
            # this batch's first record, under other names: those rows would then be twice.
            logger.exception(
                "lake write failed; the stream retries the whole batch",
                extra={"key": key, "written": result.keys},
            )
            result.retry_from = changes[0].sequence_number
            return result
        result.keys.append(key)
    # counted even when zero, so the metric shows the writer alive on batches of overwrites
    metrics.add_metric(name="LakeRowsWritten", unit=MetricUnit.Count, value=len(readings))
    if statuses:
        metrics.add_metric(
            name="LakeGatewayStatusRowsWritten", unit=MetricUnit.Count, value=len(statuses)
        )
    if result.keys:
        logger.info("rows written to the lake", extra={"objects": result.keys})
    return result
