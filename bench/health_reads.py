"""Gateway health's sensor read on moto, side by side: the Scan of one item per metric and
channel (the layout before `#latest`), the Scan of `#latest` items (`sensorhook status`, a
backfill), and the due index Query a scheduled run makes. CPU time, median of 5.

    python -m bench.health_reads [sensors]   (default 500 machine-health sensors, 16 channels)

moto evaluates a Query by walking the index, so the last figure still grows with the
installation here; in AWS it reads only the entries due (docs/health.md).
"""

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = 16
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
KEYS = [
    {"AttributeName": "series", "KeyType": "HASH"},
    {"AttributeName": "metric_channel", "KeyType": "RANGE"},
]


def _median_ms(read: Callable[[], list[Any]], rounds: int = 5) -> tuple[float, int]:
    times: list[float] = []
    found = 0
    for _ in range(rounds):
        began = time.process_time()
        found = len(read())
        times.append((time.process_time() - began) * 1000)
    return sorted(times)[rounds // 2], found


def main() -> None:
    sensors = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    sys.path.insert(0, str(ROOT / "functions"))
    from bench.workload import BENCH_ENV

    os.environ.update(BENCH_ENV)
    import boto3
    from moto import mock_aws

    from sensorhook.core.reading import Reading
    from sensorhook.dal.health_store import HealthStore
    from sensorhook.dal.readings_store import iso_ms, reading_attributes
    from sensorhook.dal.sensor_state_store import DUE_INDEX, SensorState, SilenceSchedule

    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="legacy",
            KeySchema=KEYS,
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"}
                for name in ("series", "metric_channel")
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName="latest",
            KeySchema=KEYS,
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"}
                for name in ("series", "metric_channel", "due_shard", "due_at")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": DUE_INDEX,
                    "KeySchema": [
                        {"AttributeName": "due_shard", "KeyType": "HASH"},
                        {"AttributeName": "due_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(sensors):
            readings = [
                Reading(
                    provider="everactive",
                    sensor_id=f"sensor-{n}",
                    sensor_family="vibration-electrical",
                    metric=f"metric{c}",
                    channel="0",
                    unit="Cel",
                    status="OK",
                    value=21.5,
                    measured_at=NOW - timedelta(seconds=30),
                    received_at=NOW,
                    event_id=f"everactive-ds-sensor-reading:{n:064d}",
                    gateway_id="SYN0001",
                )
                for c in range(CHANNELS)
            ]
            for reading in readings:
                item = reading_attributes(reading)
                item["series"] = {"S": reading.series_key}
                item["metric_channel"] = {"S": f"{reading.metric}#{reading.channel}"}
                item["state_at"] = {"S": iso_ms(reading.measured_at)}
                dynamodb.put_item(TableName="legacy", Item=item)
            state, _ = SensorState("everactive", f"sensor-{n}").merged(
                [(reading, reading.measured_at) for reading in readings]
            )
            dynamodb.put_item(TableName="latest", Item=state.item(SilenceSchedule()))
        before, known = _median_ms(lambda: HealthStore("-", "legacy", dynamodb).sensors())
        scan, _ = _median_ms(lambda: HealthStore("-", "latest", dynamodb).sensors())
        due, judged = _median_ms(lambda: HealthStore("-", "latest", dynamodb).due_sensors(NOW))
    print(
        f"gateway health's sensor read, {known} sensors x {CHANNELS} channels, all reporting "
        "(moto, CPU ms, median of 5)"
    )
    print(f"  scan of per-channel items (before)  {before:9.1f}")
    print(f"  scan of #latest items               {scan:9.1f}")
    print(f"  due index query (a run, after)      {due:9.1f}   ({judged} sensors due)")


if __name__ == "__main__":
    main()
