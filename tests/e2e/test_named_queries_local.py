"""Every Athena named query, run locally through DuckDB (translated by sqlglot) on the lake a
demo-like flow left, against what DynamoDB holds for the same question."""

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from infra.constants import Output
from local.demo import _observe_bus, run_demo
from local.emulator import FaultShares, Installation
from local.lake_sql import (
    LocalLake,
    estimated_scan_bytes,
    mirror_bucket,
    named_queries,
    named_query,
)
from local.sandbox import sandbox
from sensorhook.core.reading import Reading
from sensorhook.dal.readings_store import ReadingsStore, readings_from_item

pytestmark = pytest.mark.slow

_DESERIALIZER = TypeDeserializer()
COVERED = {
    "latest_reading_per_sensor",
    "sensor_series",
    "steam_traps_failed_last_7_days",
    "gateways_offline",
    "gaps_per_sensor",
    "readings_per_provider_per_day",
}


def _scan(client: Any, table: str) -> list[dict[str, Any]]:
    items = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            items.append({k: _DESERIALIZER.deserialize(v) for k, v in item.items()})
    return items


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    provider_installation = Installation.create(
        seed=5, sensors=2, gateways=1, start=datetime.now(UTC) - timedelta(seconds=30)
    )
    with sandbox(provider_installation) as box:
        stack = box.stack
        stack.drain(timeout=60)
        run_demo(
            stack,
            box.secrets,
            _observe_bus(stack),
            count=80,
            rate=80,
            sensors=4,
            gateways=2,
            seed=23,
            shares=FaultShares(duplicate=0.15, stale_date=0.0, bad_signature=0.0, malformed=0.0),
        )
        stack.drain(timeout=60)
        dynamodb = stack.client("dynamodb")
        readings = [
            reading
            for item in _scan(dynamodb, stack.outputs[Output.READINGS_TABLE])
            for reading in readings_from_item(item)
        ]
        gateways = _scan(dynamodb, stack.outputs[Output.GATEWAYS_TABLE])
        lake_dir = tmp_path_factory.mktemp("lake")
        mirror_bucket(stack.client("s3"), stack.outputs[Output.BUCKET_NAME], lake_dir)
        store = ReadingsStore(stack.outputs[Output.READINGS_TABLE], client=dynamodb)
        busiest = Counter((r.provider, r.sensor_id) for r in readings).most_common(1)[0][0]
        first, last = min(r.measured_at for r in readings), max(r.measured_at for r in readings)
        series = store.query_range(*busiest, first, last)
        yield readings, gateways, lake_dir, busiest, series


@pytest.fixture
def lake(landed: Any) -> Any:
    with LocalLake(landed[2]) as local_lake:
        yield local_lake


def _days(readings: list[Reading]) -> tuple[str, str]:
    days = sorted(r.measured_at.date().isoformat() for r in readings)
    return days[0], days[-1]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def test_every_named_query_is_compared_here() -> None:
    assert {q.name for q in named_queries()} == COVERED


def test_readings_per_provider_per_day(landed: Any, lake: LocalLake) -> None:
    readings = landed[0]
    result = lake.run_named("readings_per_provider_per_day", _days(readings))

    expected = Counter((r.measured_at.date().isoformat(), r.provider) for r in readings)
    assert {(day, provider): n for day, provider, n in result.rows} == dict(expected)
    assert sum(expected.values()) == len(readings) > 0


def test_latest_reading_per_sensor(landed: Any, lake: LocalLake) -> None:
    readings = landed[0]
    result = lake.run_named("latest_reading_per_sensor", _days(readings))

    newest: dict[tuple[str, str, str, str], Reading] = {}
    for r in readings:
        key = (r.provider, r.sensor_id, r.metric, r.channel)
        if key not in newest or newest[key].measured_at < r.measured_at:
            newest[key] = r
    expected = {
        key: (r.measured_at, r.value, r.text_value, r.unit, r.status) for key, r in newest.items()
    }
    got = {
        (row["provider"], row["sensor_id"], row["metric"], row["channel"]): (
            _utc(row["measured_at"]),
            row["value"],
            row["text_value"],
            row["unit"],
            row["status"],
        )
        for row in result.as_dicts()
    }
    assert got == expected


def test_sensor_series(landed: Any, lake: LocalLake) -> None:
    _, _, _, (_, sensor_id), series = landed
    first, last = min(r.measured_at for r in series), max(r.measured_at for r in series)
    end = last + timedelta(seconds=1)
    result = lake.run_named(
        "sensor_series",
        [
            sensor_id,
            first.date().isoformat(),
            end.date().isoformat(),
            first.isoformat(),
            end.isoformat(),
        ],
    )

    got = [
        (_utc(row["measured_at"]), row["metric"], row["channel"], row["value"])
        for row in result.as_dicts()
    ]
    expected = sorted((r.measured_at, r.metric, r.channel, r.value) for r in series)
    assert got == expected and len(got) > 1


def test_gaps_per_sensor(landed: Any, lake: LocalLake) -> None:
    readings = landed[0]
    result = lake.run_named("gaps_per_sensor", _days(readings))

    by_series: dict[tuple[str, str, str, str], list[Reading]] = defaultdict(list)
    for r in readings:
        by_series[(r.provider, r.sensor_id, r.metric, r.channel)].append(r)
    expected = set()
    for key, series in by_series.items():
        series.sort(key=lambda r: r.measured_at)
        for before, after in pairwise(series):
            seconds = (after.measured_at - before.measured_at).total_seconds()
            if seconds > 2 * (after.period_s or 60):
                expected.add((*key, before.measured_at, after.measured_at, int(seconds)))
    got = {
        (row[0], row[1], row[2], row[3], _utc(row[4]), _utc(row[5]), int(row[6]))
        for row in result.rows
    }
    assert got == expected


def test_steam_traps_failed_last_7_days(landed: Any, lake: LocalLake) -> None:
    readings = landed[0]
    result = lake.run_named("steam_traps_failed_last_7_days")

    now = datetime.now(UTC)
    by_trap: dict[tuple[str, str], list[Reading]] = defaultdict(list)
    for r in readings:
        if r.metric == "trap_state" and r.measured_at.date() >= (now - timedelta(days=37)).date():
            by_trap[(r.provider, r.sensor_id)].append(r)
    expected = set()
    for (provider, sensor_id), states in by_trap.items():
        states.sort(key=lambda r: r.measured_at)
        previous = None
        for r in states:
            changed = previous is None or previous != r.text_value
            if r.measured_at >= now - timedelta(days=7) and r.text_value != "Good" and changed:
                expected.add((provider, sensor_id, r.measured_at, previous, r.text_value))
            previous = r.text_value
    got = {(row[0], row[1], _utc(row[2]), row[3], row[4]) for row in result.rows}
    assert got == expected
    assert by_trap, "the flow sent no steam trap state changes: the comparison would be empty"


def test_gateways_offline(landed: Any, lake: LocalLake) -> None:
    gateways = landed[1]
    reported = [datetime.fromisoformat(g["reported_at"]) for g in gateways if g.get("reported_at")]
    start, end = min(reported), max(reported) + timedelta(seconds=1)
    result = lake.run_named(
        "gateways_offline",
        [start.date().isoformat(), end.date().isoformat(), start.isoformat(), end.isoformat()],
    )

    got = {(row["provider"], row["gateway_id"]): row for row in result.as_dicts()}
    offline_now = {
        (g["provider"], g["gateway_id"]): datetime.fromisoformat(g["reported_at"])
        for g in gateways
        if g.get("online") is False
    }
    # every gateway DynamoDB holds as offline is listed, its latest offline report the one
    # DynamoDB holds; none is listed that never reported itself offline
    for key, at in offline_now.items():
        assert _utc(got[key]["last_offline_at"]) == at
    latest = {
        (g["provider"], g["gateway_id"]): datetime.fromisoformat(g["reported_at"])
        for g in gateways
        if g.get("reported_at")
    }
    for key, row in got.items():
        assert _utc(row["last_offline_at"]) <= latest[key]
        assert row["offline_reports"] >= 1
    assert got, "the flow sent no offline gateway status: the comparison would be empty"


def test_a_named_query_never_sees_a_reading_twice(landed: Any, lake: LocalLake) -> None:
    readings = landed[0]
    first_day, last_day = _days(readings)
    total = lake.query(
        "SELECT count(*) FROM readings WHERE day BETWEEN ? AND ?", [first_day, last_day]
    )
    assert total.rows == [(len(readings),)]
    assert date.fromisoformat(first_day) <= date.fromisoformat(last_day)
    assert Path(landed[2], "readings").is_dir()


def test_the_scan_estimate_counts_only_the_columns_a_query_reads(landed: Any) -> None:
    lake_dir = landed[2]
    everything = sum(p.stat().st_size for p in Path(lake_dir, "readings").rglob("*.parquet"))
    narrow = estimated_scan_bytes(lake_dir, "SELECT sum(value) FROM readings_files")
    per_day = estimated_scan_bytes(lake_dir, named_query("readings_per_provider_per_day").sql)
    assert 0 < narrow < per_day < everything
