"""Readings table stream -> Parquet objects, one per (date, provider) per stream batch.

Only INSERTs reach the lake: a MODIFY is an overwrite of a reading already there (the same
reading delivered again) and a REMOVE is TTL expiry of the hot copy, neither of which is new
data. Object keys are derived from the batch's sequence numbers, so a retried batch rewrites
the same objects instead of adding copies.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from sensorhook.core.reading import Reading
from sensorhook.dal.lake_store import LakeStore
from sensorhook.dal.readings_store import reading_from_item
from sensorhook.observability import logger, metrics


@dataclass(frozen=True)
class StreamChange:
    """One stream record, as the lake cares about it."""

    sequence_number: str
    inserted: Mapping[str, Any] | None  # the new item of an INSERT; None for MODIFY/REMOVE


@dataclass
class LakeWrite:
    keys: list[str] = field(default_factory=list)  # objects written
    # The first record that could not be read as a reading. The stream retries from it, so
    # nothing from it on was written (writing later records too would duplicate them then).
    retry_from: str | None = None


def shard_label(event_source_arn: str) -> str:
    """The stream's label (its creation time) from the stream ARN, as a key-safe token.

    A Lambda stream event names the stream but not the shard; sequence numbers are unique
    within a stream, so the label plus the batch's first and last numbers name it uniquely.
    """
    label = event_source_arn.rsplit("/stream/", 1)[-1]
    return re.sub(r"[^0-9A-Za-z]", "", label)


def lake_key(reading: Reading, batch_name: str) -> str:
    return (
        f"readings/date={reading.measured_at:%Y-%m-%d}/provider={reading.provider}"
        f"/{batch_name}.parquet"
    )


def write_to_lake(changes: Sequence[StreamChange], shard: str, store: LakeStore) -> LakeWrite:
    result = LakeWrite()
    readings: list[Reading] = []
    written = len(changes)
    for index, change in enumerate(changes):
        if change.inserted is None:
            continue
        try:
            readings.append(reading_from_item(change.inserted))
        except ValidationError as error:
            logger.error(
                "stream record is not a reading; retrying from it",
                extra={
                    "sequence_number": change.sequence_number,
                    "errors": error.errors(include_input=False)[:5],
                },
            )
            result.retry_from = change.sequence_number
            written = index
            break
    # counted even when zero, so the metric shows the writer alive on batches of overwrites
    metrics.add_metric(name="LakeRowsWritten", unit=MetricUnit.Count, value=len(readings))
    if not readings:
        return result
    batch_name = f"{shard}-{changes[0].sequence_number}-{changes[written - 1].sequence_number}"
    objects: dict[str, list[Reading]] = {}
    for reading in readings:
        objects.setdefault(lake_key(reading, batch_name), []).append(reading)
    for key, rows in objects.items():
        store.put_readings(key, rows)
        result.keys.append(key)
    logger.info("readings written to the lake", extra={"objects": result.keys})
    return result
