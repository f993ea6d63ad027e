"""Compaction on moto S3, read through DuckDB with the catalog's views: a day's many small
objects end as one, and a reader querying at any moment of the compaction sees every reading
exactly once."""

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from local.lake_sql import LocalLake, mirror_bucket
from sensorhook.core.reading import Reading
from sensorhook.dal.lake_store import LakeStore
from sensorhook.handlers import lake_compactor
from sensorhook.logic.compaction import COMPACTED_PREFIX, compact_days, compact_partition
from sensorhook.logic.lake import READING_IDENTITY, READINGS_PREFIX, lake_key, partition_prefix
from tests.builders import lambda_context
from tests.integration.conftest import BUCKET, Aws

DAY = datetime(2026, 3, 7, tzinfo=UTC)
PARTITION = partition_prefix(READINGS_PREFIX, DAY.date(), "efento")
IDENTITY_SQL = ", ".join(READING_IDENTITY)


def _readings(batch: int, per_batch: int, *, sensors: int = 5) -> list[Reading]:
    return [
        Reading(
            provider="efento",
            sensor_id=f"point-{n % sensors}",
            sensor_family="efento",
            gateway_id="gw-1",
            metric="temperature",
            channel="1",
            value=float(batch * per_batch + n),
            unit="Cel",
            status="OK",
            measured_at=DAY + timedelta(minutes=batch * per_batch + n),
            period_s=60,
            received_at=DAY + timedelta(minutes=batch * per_batch + n, seconds=5),
            event_id=f"efento-measurements:{batch}",
        )
        for n in range(per_batch)
    ]


def _write_batches(store: LakeStore, batches: int, per_batch: int) -> set[tuple[Any, ...]]:
    """Objects as the lake writer names them; returns every reading's identity."""
    identities = set()
    for batch in range(batches):
        readings = _readings(batch, per_batch)
        store.put_readings(lake_key(readings[0], f"shard-{batch:05d}"), readings)
        identities |= {
            (r.provider, r.sensor_id, r.measured_at, r.metric, r.channel) for r in readings
        }
    return identities


@pytest.fixture
def store(aws: Aws) -> LakeStore:
    # the stack's bucket is versioned (infra/constructs/storage.py); so is this one
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return LakeStore(BUCKET, client=aws.s3)


class Reader:
    """Queries the lake as Athena would: list the partition, read every object listed (an
    object deleted in between fails the query, as Athena's does), then query the view."""

    def __init__(self, aws: Aws, root: Path) -> None:
        self.aws, self.root, self.runs = aws, root, 0
        self.seen_compacted_and_small = 0

    def query(self) -> tuple[int, set[tuple[Any, ...]]] | None:
        self.runs += 1
        snapshot = self.root / f"snapshot-{self.runs}"
        try:
            mirror_bucket(self.aws.s3, BUCKET, snapshot)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None  # the query failed and is retried; it returned nothing wrong
            raise
        names = [p.name for p in (snapshot / PARTITION).glob("*.parquet")]
        if any(n.startswith(COMPACTED_PREFIX) for n in names) and len(names) > 1:
            self.seen_compacted_and_small += 1
        with LocalLake(snapshot) as lake:
            rows = lake.query(
                f"SELECT {IDENTITY_SQL} FROM readings WHERE day = ?",  # noqa: S608
                [DAY.date().isoformat()],
            ).rows
        return len(rows), {(p, s, m.astimezone(UTC), metric, c) for p, s, m, metric, c in rows}


class SteppedStore(LakeStore):
    """Deletes one object version at a time and lets the reader query after every S3 write."""

    def __init__(self, client: Any, reader: Reader, expected: set[tuple[Any, ...]]) -> None:
        super().__init__(BUCKET, client=client)
        self.reader, self.expected, self.checks = reader, expected, 0

    def _check(self) -> None:
        answer = self.reader.query()
        assert answer is not None
        count, identities = answer
        assert identities == self.expected, "a reading is missing"
        assert count == len(self.expected), "a reading is seen twice"
        self.checks += 1

    def put_table(self, key: str, table: pa.Table) -> None:
        super().put_table(key, table)
        self._check()

    def delete_versions(self, objects: Sequence[tuple[str, str | None]]) -> None:
        for one in objects:
            super().delete_versions([one])
            self._check()


def test_a_days_small_objects_become_one_each_reading_once(aws: Aws, store: LakeStore) -> None:
    # Given 40 stream batches, one of them written again by a stream retry under another name
    expected = _write_batches(store, batches=40, per_batch=25)
    retried = _readings(3, 25)
    store.put_readings(lake_key(retried[0], "shard-retry"), retried)

    # When the partition is compacted
    result = compact_partition(store, PARTITION, READING_IDENTITY, max_rows=10_000)

    # Then one object holds every reading once, sorted, and the small objects are gone
    keys = [key for key, _ in store.list_objects(PARTITION)]
    assert result.objects_before == 41 and result.objects_after == 1 == len(keys)
    assert keys[0].rsplit("/", 1)[1].startswith(COMPACTED_PREFIX)
    assert result.duplicates_dropped == 25 and result.rows == len(expected) == 1000
    table, _ = store.get_table(keys[0])
    assert table.num_rows == 1000
    assert table.column("sensor_id").to_pylist() == sorted(table.column("sensor_id").to_pylist())


def test_compacted_objects_hold_at_most_max_rows(aws: Aws, store: LakeStore) -> None:
    _write_batches(store, batches=10, per_batch=25)

    result = compact_partition(store, PARTITION, READING_IDENTITY, max_rows=100)

    assert result.objects_after == 3  # 250 rows: 100 + 100 + 50
    assert result.rows == 250


def test_readers_during_compaction_see_every_reading_exactly_once(aws: Aws, tmp_path: Path) -> None:
    # Given a day in 12 small objects, one reading written twice (a retried stream batch)
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    plain = LakeStore(BUCKET, client=aws.s3)
    expected = _write_batches(plain, batches=12, per_batch=10)
    again = _readings(0, 10)
    plain.put_readings(lake_key(again[0], "shard-retry"), again)
    reader = Reader(aws, tmp_path)
    stepped = SteppedStore(aws.s3, reader, expected)

    # When compaction runs, with a reader querying after each of its writes and deletes
    stepped._check()
    compact_partition(stepped, PARTITION, READING_IDENTITY, max_rows=10_000)

    # Then every query saw each reading once, including while small and compacted objects
    # were both there (one put, then 13 single deletes)
    assert stepped.checks == 1 + 1 + 13
    assert reader.seen_compacted_and_small >= 12


def test_a_reader_running_alongside_compaction_never_sees_a_reading_twice_or_misses_one(
    aws: Aws, tmp_path: Path
) -> None:
    # Given a day in 30 small objects, and a reader querying in a loop on another thread
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    plain = LakeStore(BUCKET, client=aws.s3)
    expected = _write_batches(plain, batches=30, per_batch=10)
    reader = Reader(aws, tmp_path)
    answers: list[tuple[int, set[tuple[Any, ...]]]] = []
    done = threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            answer = reader.query()
            if answer is not None:
                answers.append(answer)

    thread = threading.Thread(target=read_until_done)
    thread.start()
    try:
        # When compaction deletes the small objects one by one while the reader reads
        slow = SlowDeletes(aws.s3)
        compact_partition(slow, PARTITION, READING_IDENTITY, max_rows=10_000)
    finally:
        done.set()
        thread.join()
    final = reader.query()
    assert final is not None
    answers.append(final)

    # Then every answer held each reading exactly once
    assert len(answers) >= 2
    for count, identities in answers:
        assert identities == expected
        assert count == len(expected)


class SlowDeletes(LakeStore):
    """One version per request, so the window between the first and last delete is wide."""

    def __init__(self, client: Any) -> None:
        super().__init__(BUCKET, client=client)

    def delete_versions(self, objects: Sequence[tuple[str, str | None]]) -> None:
        for one in objects:
            super().delete_versions([one])


def test_an_object_rewritten_after_it_was_read_keeps_its_new_rows(
    aws: Aws, store: LakeStore
) -> None:
    # Given a batch object that a stream retry rewrites, with more readings, while the
    # compactor is between reading it and deleting it
    first = _readings(0, 5)
    key = lake_key(first[0], "shard-00000")
    store.put_readings(key, first)
    store.put_readings(lake_key(first[0], "shard-00001"), _readings(1, 5))

    class RetryDuringCompaction(LakeStore):
        def put_table(self, put_key: str, table: pa.Table) -> None:
            super().put_table(put_key, table)
            if put_key.rsplit("/", 1)[1].startswith(COMPACTED_PREFIX):
                store.put_readings(key, _readings(0, 8))  # the retry: same batch, 3 more

    # When the compaction finishes
    compact_partition(
        RetryDuringCompaction(BUCKET, client=aws.s3), PARTITION, READING_IDENTITY, max_rows=100
    )

    # Then the retry's object is still there (only the version read was deleted)
    remaining = {key for key, _ in store.list_objects(PARTITION)}
    assert key in remaining
    table, _ = store.get_table(key)
    assert table.num_rows == 8


def test_the_scheduled_handler_compacts_the_days_before_today(
    aws: Aws, store: LakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given small objects for yesterday and today
    now = datetime.now(UTC)
    for day in (now - timedelta(days=1), now):
        for batch in range(3):
            reading = _readings(batch, 1)[0].model_copy(
                update={"measured_at": day.replace(microsecond=0) - timedelta(seconds=batch)}
            )
            store.put_readings(lake_key(reading, f"b{batch}"), [reading])
    monkeypatch.setenv("COMPACTION_DAYS_BACK", "2")
    lake_compactor.lake_store.cache_clear()
    from sensorhook.core.settings import lake_compactor_settings

    lake_compactor_settings.cache_clear()

    # When the daily schedule fires
    result = lake_compactor.handler({}, lambda_context())

    # Then yesterday is one object and today is untouched
    def count(day: datetime) -> int:
        return len(
            list(store.list_objects(partition_prefix(READINGS_PREFIX, day.date(), "efento")))
        )

    assert count(now - timedelta(days=1)) == 1
    assert count(now) == 3
    assert result["objects_before"] == 3 and result["objects_after"] == 1
    lake_compactor.lake_store.cache_clear()
    lake_compactor_settings.cache_clear()


def test_compact_days_covers_every_table_and_provider(aws: Aws, store: LakeStore) -> None:
    results = compact_days(store, [DAY.date()], max_rows=10)
    prefixes = {r.prefix for r in results}
    assert {p.split("date=")[0] for p in prefixes} == {"readings/", "gateway_status/"}
    assert len(prefixes) == 4


@pytest.fixture(autouse=True)
def _no_leftover_caches() -> Iterator[None]:
    yield
    lake_compactor.lake_store.cache_clear()
