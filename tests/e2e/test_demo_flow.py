"""End to end on the local sandbox: the demo flow, then read back as a user would (boto3)."""

import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow.parquet as pq
import pytest

from infra.constants import Output
from local.demo import (
    DEMO_ENVIRONMENT,
    DemoResult,
    _efento_points,
    _observe_bus,
    check_gateway_goes_offline_and_back,
    check_provider_deliveries,
    check_subscriptions,
    run_demo,
)
from local.emulator import FaultShares, Installation, SendReport
from local.sandbox import sandbox
from sensorhook.dal.health_store import SILENCE_SORT_KEY
from sensorhook.dal.readings_store import ReadingsStore, iso_ms, readings_in
from sensorhook.dal.sensor_state_store import LATEST_SORT_KEY, state_from_item

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    provider_installation = Installation.create(
        seed=99,
        sensors=3,
        gateways=2,
        start=datetime.now(UTC) - timedelta(seconds=30),
        reading_interval=timedelta(seconds=2),
        status_interval=timedelta(seconds=3),
    )
    with sandbox(
        provider_installation,
        environment=DEMO_ENVIRONMENT,
    ) as box:
        box.stack.drain(timeout=60)
        observer_url = _observe_bus(box.stack)
        control = DemoResult(report=SendReport(results=[], elapsed_s=0.0))
        check_subscriptions(box, control)
        result = run_demo(
            box.stack,
            box.secrets,
            observer_url,
            count=150,
            rate=80,
            sensors=4,
            gateways=2,
            seed=11,
            shares=FaultShares(duplicate=0.15, stale_date=0.05, bad_signature=0.05, malformed=0.05),
        )
        yield box, provider_installation, observer_url, control, result


@pytest.fixture(scope="module")
def landed(demo):
    box, _, _, _, result = demo
    return box.stack, result


def test_the_after_deploy_reconcile_made_the_declared_subscriptions_true(demo):
    # Given a fresh deploy whose cdk.json declares Data Services and v2020-07 subscriptions
    _, _, _, control, _ = demo
    # Then the provider holds them, the v2020 secret reached the receiver, and a rerun is a no-op
    failing = [f"{c.name}: {c.detail}" for c in control.checks if not c.ok]
    assert not failing
    assert len(control.checks) == 3


def test_the_provider_delivers_through_the_registered_webhooks_and_gateways_are_watched(demo):
    # Given the webhooks the reconciler registered in the provider
    box, installation, observer_url, _, _ = demo
    result = DemoResult(report=SendReport(results=[], elapsed_s=0.0))
    # When the provider delivers, and then one gateway goes quiet and comes back
    check_provider_deliveries(box, result)
    check_gateway_goes_offline_and_back(box, installation, observer_url, result)
    # Then its deliveries are accepted and each transition is published exactly once
    failing = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert not failing
    assert len(result.checks) == 3


def test_every_demo_check_holds(landed):
    # Given the emulator's stream with duplicates, stale dates, bad auth and broken JSON
    _, result = landed
    # Then every check of the demo holds, and each fault kind really occurred
    failing = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert not failing
    intents = result.report.summary()["by_intent"]
    assert {"accepted", "duplicate", "rejected-401", "rejected-400"} <= set(intents)
    assert result.figures["duplicates_dropped"] == intents["duplicate"]


def test_a_sensor_time_range_query_returns_each_measurement_once(landed):
    # Given an Efento measurement point the emulator simulated
    stack, result = landed
    expected = _efento_points(result.report)
    by_series: dict[str, list[str]] = defaultdict(list)
    for series, point in expected:
        by_series[series].append(point)
    series, points = max(by_series.items(), key=lambda item: len(item[1]))
    points.sort()
    # When the user queries the readings table for that sensor over its time range, with the
    # documented one-call read (docs/readings.md)
    provider, sensor_id = series.split("#", 1)
    first, last = (
        datetime.fromisoformat(p.split("#")[0].replace("Z", "+00:00"))
        for p in (points[0], points[-1])
    )
    store = ReadingsStore(stack.outputs[Output.READINGS_TABLE], client=stack.client("dynamodb"))
    # Then every simulated measurement is there once (plus the point's device readings)
    stored = [r.point_key for r in store.query_range(provider, sensor_id, first, last)]
    assert len(stored) == len(set(stored))
    assert set(points) <= set(stored)


def test_sensor_state_holds_the_newest_reading_of_each_metric(landed):
    stack, _ = landed
    dynamodb = stack.client("dynamodb")
    newest: dict[tuple[str, str], str] = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=stack.outputs[Output.READINGS_TABLE]
    ):
        for reading in readings_in(page["Items"]):
            key = (reading.series_key, f"{reading.metric}#{reading.channel}")
            newest[key] = max(newest.get(key, ""), iso_ms(reading.measured_at))
    state = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=stack.outputs[Output.SENSOR_STATE_TABLE]
    ):
        for item in page["Items"]:
            if item["metric_channel"]["S"] == SILENCE_SORT_KEY:
                continue  # the health run's silence flag, not a reading (docs/health.md)
            # (changed on purpose: one `#latest` item per sensor, an entry per metric#channel)
            assert item["metric_channel"]["S"] == LATEST_SORT_KEY
            # (changed on purpose: the item no longer stores provider and sensor_id, its
            # series is them, docs/architecture.md "Sensor state")
            provider, _, sensor_id = item["series"]["S"].partition("#")
            held = state_from_item(provider, sensor_id, item)
            for metric_channel, entry in held.channels.items():
                state[(item["series"]["S"], metric_channel)] = entry["measured_at"]["S"]
    assert state == newest


def test_the_parquet_lake_answers_sql_like_athena_would(landed):
    # Given the Parquet objects in the bucket, read with DuckDB as Athena would read them
    stack, result = landed
    s3 = stack.client("s3")
    bucket = stack.outputs[Output.BUCKET_NAME]
    tables = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="readings/"):
        for obj in page.get("Contents", []):
            assert "/date=" in obj["Key"] and "/provider=" in obj["Key"]
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            tables.append(pq.read_table(io.BytesIO(body)))
    lake = tables[0].__class__.from_batches([b for t in tables for b in t.to_batches()])
    # When counting readings per provider and duplicates per key
    con = duckdb.connect()
    con.register("readings", lake)
    per_provider = dict(
        con.execute("select provider, count(*) from readings group by 1").fetchall()
    )
    doubled = con.execute(
        "select count(*) from (select provider, sensor_id, measured_at, metric, channel "
        "from readings group by all having count(*) > 1)"
    ).fetchone()
    # Then the lake matches DynamoDB and holds no reading twice
    assert doubled == (0,)
    readings_now = sum(
        sum(1 for _ in readings_in(page["Items"]))
        for page in stack.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=stack.outputs[Output.READINGS_TABLE])
    )
    assert sum(per_provider.values()) == readings_now >= result.figures["readings_in_dynamodb"]
    assert set(per_provider) == {"everactive", "efento"}
    assert lake.schema.field("measured_at").type.tz == str(UTC)
