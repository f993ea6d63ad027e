"""Compaction: a lake partition's many small objects -> a few large ones, without a reader
ever missing a row (docs/athena.md, "Files sized for Athena" and "Exactly once").

Per partition (`<table>/date=…/provider=…/`):

1. list the objects and read each one, noting the version read;
2. write the rows, one per identity, sorted (so Parquet statistics prune well), into new
   `compacted-<digest>-<n>.parquet` objects of at most `max_rows` rows;
3. only then delete exactly the versions read.

Between 2 and 3 a reader sees each row twice; the Athena views (`readings`, `gateway_status`)
keep one row per identity, so queries see it once. Objects that arrive after the listing are
not touched and are compacted by a later run. A run that dies between 2 and 3 leaves
duplicates the views hide and the next run removes (the earlier compacted object is an input
like any other).
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
from aws_lambda_powertools.metrics import MetricUnit

from sensorhook.core.flavors import Flavor
from sensorhook.dal.lake_store import LakeStore
from sensorhook.logic.lake import (
    FIRST_RECEIVED,
    GATEWAY_STATUS_IDENTITY,
    GATEWAY_STATUS_PREFIX,
    READING_IDENTITY,
    READINGS_PREFIX,
    partition_prefix,
)
from sensorhook.observability import logger, metrics

COMPACTED_PREFIX = "compacted-"


@dataclass(frozen=True)
class CompactedTable:
    prefix: str
    identity: tuple[str, ...]


COMPACTED_TABLES = (
    CompactedTable(READINGS_PREFIX, READING_IDENTITY),
    CompactedTable(GATEWAY_STATUS_PREFIX, GATEWAY_STATUS_IDENTITY),
)


@dataclass
class PartitionCompaction:
    prefix: str
    objects_before: int = 0
    bytes_before: int = 0
    objects_after: int = 0
    bytes_after: int = 0
    rows: int = 0
    duplicates_dropped: int = 0
    written: list[str] = field(default_factory=list)


def one_row_per_identity(table: pa.Table, identity: Sequence[str]) -> pa.Table:
    """The first received row of each identity, sorted by identity."""
    ordered = table.sort_by([(name, "ascending") for name in FIRST_RECEIVED])
    numbered = ordered.append_column("_row", pa.array(range(ordered.num_rows), pa.int64()))
    firsts = numbered.group_by(list(identity), use_threads=False).aggregate([("_row", "min")])
    kept = ordered.take(firsts["_row_min"])
    return kept.sort_by([(name, "ascending") for name in identity])


def compact_partition(
    store: LakeStore, prefix: str, identity: Sequence[str], *, max_rows: int
) -> PartitionCompaction:
    result = PartitionCompaction(prefix)
    listed = list(store.list_objects(prefix))
    result.objects_before = len(listed)
    result.bytes_before = sum(size for _, size in listed)
    if len(listed) < 2:  # nothing to merge
        result.objects_after, result.bytes_after = result.objects_before, result.bytes_before
        return result
    tables, read = [], []
    for key, _ in listed:
        table, version = store.get_table(key)
        tables.append(table)
        read.append((key, version))
    rows = pa.concat_tables(tables, promote_options="default")
    kept = one_row_per_identity(rows, identity)
    result.rows = kept.num_rows
    result.duplicates_dropped = rows.num_rows - kept.num_rows
    digest = hashlib.sha256("\n".join(sorted(key for key, _ in listed)).encode()).hexdigest()[:16]
    for number, start in enumerate(range(0, max(kept.num_rows, 1), max_rows)):
        key = f"{prefix}{COMPACTED_PREFIX}{digest}-{number}.parquet"
        store.put_table(key, kept.slice(start, max_rows))
        result.written.append(key)
    # Only now: until the compacted objects exist, the small ones are the only copy.
    store.delete_versions(read)
    after = list(store.list_objects(prefix))
    result.objects_after = len(after)
    result.bytes_after = sum(size for _, size in after)
    return result


def compact_days(
    store: LakeStore, days: Sequence[date], *, max_rows: int
) -> list[PartitionCompaction]:
    """Every table's partitions of `days`, for every provider."""
    results = []
    providers = sorted({flavor.provider for flavor in Flavor})
    for table in COMPACTED_TABLES:
        for day in days:
            for provider in providers:
                prefix = partition_prefix(table.prefix, day, provider)
                result = compact_partition(store, prefix, table.identity, max_rows=max_rows)
                if result.objects_before:
                    logger.info("partition compacted", extra=vars(result))
                results.append(result)
    metrics.add_metric(
        name="LakeObjectsCompacted",
        unit=MetricUnit.Count,
        value=sum(r.objects_before - r.objects_after for r in results),
    )
    return results
