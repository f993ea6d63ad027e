"""Lake object sizes at a realistic rate, before and after compaction (docs/athena.md).

    .venv/bin/python -m bench.lake_sizing [--sensors 1000] [--shards 4] [--minutes 1440]

Simulates one day of one provider's partition: `sensors` sensors, one reading a minute each,
written by the real lake writer code (one object per stream batch per shard: the readings
table's stream delivers each shard's records to its own invocation, at most
`lake_writer_batch_size` records or `lake_writer_batching_window_seconds` apart), then
compacted by the real compaction code. Objects are built in memory with the writers' own
Parquet encoding, so their sizes are the sizes S3 would hold.
"""

import argparse
import hashlib
import random
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from infra.config import StageConfig
from sensorhook.core.reading import Reading
from sensorhook.dal.lake_parquet import parquet_bytes, readings_table
from sensorhook.logic.compaction import one_row_per_identity
from sensorhook.logic.lake import READING_IDENTITY

DAY = datetime(2026, 3, 7, tzinfo=UTC)


def _mac(n: int) -> str:
    return ":".join(f"{b:02x}" for b in (0xBC, 0x5E, 0xA1, n >> 16 & 255, n >> 8 & 255, n & 255))


def minute_of_readings(minute: int, sensors: int, rng: random.Random) -> list[Reading]:
    at = DAY + timedelta(minutes=minute)
    event = hashlib.sha256(f"{minute}".encode()).hexdigest()
    return [
        Reading(
            provider="everactive",
            sensor_id=_mac(n),
            sensor_family="environmental",
            gateway_id=f"GW{n % 40:05d}",
            metric="temperature",
            channel="",
            value=round(293.15 + rng.gauss(0, 2), 2),
            unit="K",
            status="OK",
            measured_at=at,
            period_s=60,
            received_at=at + timedelta(seconds=rng.randint(1, 20)),
            event_id=f"everactive-ds-sensor-reading:{event[:24]}{n:06d}",
            schema_name="environmental-v1",
        )
        for n in range(sensors)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lake_sizing", description=__doc__)
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=4, help="readings stream shards")
    parser.add_argument("--minutes", type=int, default=1440, help="minutes of the day simulated")
    args = parser.parse_args(argv)
    defaults = StageConfig()
    rng = random.Random(7)  # noqa: S311
    per_shard_per_minute = args.sensors / args.shards
    # a batch closes at batch_size records or at the batching window, whichever comes first
    minutes_per_batch = max(
        1,
        min(
            defaults.lake_writer_batching_window_seconds // 60,
            int(defaults.lake_writer_batch_size // per_shard_per_minute),
        ),
    )
    started = time.perf_counter()
    sizes: list[int] = []
    tables: list[pa.Table] = []
    pending: dict[int, list[Reading]] = {shard: [] for shard in range(args.shards)}
    for minute in range(args.minutes):
        for number, reading in enumerate(minute_of_readings(minute, args.sensors, rng)):
            pending[number % args.shards].append(reading)
        if (minute + 1) % minutes_per_batch == 0 or minute == args.minutes - 1:
            for shard, readings in pending.items():
                if readings:
                    table = readings_table(readings)
                    sizes.append(len(parquet_bytes(table)))
                    tables.append(table)
                pending[shard] = []
    rows = sum(t.num_rows for t in tables)
    compacted = one_row_per_identity(pa.concat_tables(tables), READING_IDENTITY)
    max_rows = defaults.lake_compaction_max_rows
    after = [
        len(parquet_bytes(compacted.slice(start, max_rows)))
        for start in range(0, compacted.num_rows, max_rows)
    ]
    scale = 1440 / args.minutes
    mib = 1024 * 1024
    print(
        f"{args.sensors} sensors x 1 reading/min, {args.shards} stream shards, "
        f"{args.minutes} min simulated (x{scale:g} for a day); {rows} rows"
    )
    print(
        f"before compaction: {len(sizes)} objects, total {sum(sizes) / mib:.1f} MiB, "
        f"mean {sum(sizes) / len(sizes) / 1024:.1f} KiB, per sensor-day "
        f"{sum(sizes) / args.sensors / 1024 * scale:.1f} KiB in {len(sizes) * scale:.0f} objects"
    )
    print(
        f"after compaction:  {len(after)} objects, total {sum(after) / mib:.1f} MiB "
        f"({sum(after) / rows:.1f} bytes/row), per sensor-day "
        f"{sum(after) / args.sensors / 1024 * scale:.1f} KiB"
    )
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
