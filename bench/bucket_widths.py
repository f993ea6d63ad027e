"""What the readings table's writes cost an Efento sensor per delivery, by how often it sends
and by the width of its time buckets (docs/readings.md, docs/cost.md "Efento in time buckets"):
`python -m bench.bucket_widths`.

The sensor of the cost model (bench/workload.py, `efento_as_it_reports`: 2 channels measured
every minute, the device's readings at the receipt) sends a batch every 1, 5, 15 or 60
minutes. Its batches are stored by the real `ReadingsStore` (requests recorded, nothing sent),
each UpdateItem applied to the item the earlier ones left and billed, as DynamoDB does, on the
larger of the item before and after it (bench/cost.py). Figures are per delivery at steady
state (the first quarter of the deliveries left out), averaged over 12 starts of the first
batch within the quarter hour. Width 0 is an item per instant (the layout before the buckets).
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

SENDS_EVERY_MIN = (1, 5, 15, 60)
WIDTHS_S = (0, 300, 600, 900)
STARTS_S = (0, 53, 127, 211, 293, 347, 421, 499, 577, 641, 733, 811)


class _Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> None:
        self.requests.append(request)


def _batch(first: datetime, minutes: int) -> str:
    """The cost model's Efento batch from `first`, `minutes` measurements a channel."""
    from bench.workload import efento_as_it_reports

    payload = json.loads(efento_as_it_reports(first))
    last = (first + timedelta(minutes=minutes - 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload["lastMeasurementTimestamp"] = last
    received = first + timedelta(minutes=minutes - 1, seconds=4)
    payload["measurementsReceivedAt"] = received.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for channel in payload["measurementsEvents"]:
        channel["events"] = [event for event in channel["events"] if event["timestamp"] <= last]
    return json.dumps(payload)


def per_delivery(width_s: int, minutes: int, start_s: int) -> tuple[float, float]:
    """Write units and UpdateItem calls per delivery, steady state."""
    from bench.cost import applied_update, write_units
    from sensorhook.core import reading
    from sensorhook.core.flavors import Flavor
    from sensorhook.dal import readings_store
    from sensorhook.dal.readings_store import ReadingsStore
    from sensorhook.providers.registry import normalize

    # the width under test, where the store and its key read it
    reading.BUCKETED_PROVIDERS = frozenset({"efento"} if width_s else ())
    reading.BUCKET_S = readings_store.BUCKET_S = width_s or reading.BUCKET_S
    first = datetime(2026, 11, 2, 12, tzinfo=UTC) + timedelta(seconds=start_s)
    count = max(8, 240 // minutes)
    stored: dict[str, dict[str, Any]] = {}
    units, calls = [], []
    for n in range(count):
        at = first + timedelta(minutes=minutes * n)
        readings = normalize(
            Flavor.EFENTO_MEASUREMENTS,
            _batch(at, minutes),
            event_id=f"efento-measurements:{n:064x}",
            received_at=at + timedelta(minutes=minutes),
        ).readings
        recorder = _Recorder()
        ReadingsStore("readings", recorder, writers=1).put_readings(readings, ttl_days=90)
        billed = 0
        for request in recorder.requests:
            key = json.dumps(request["Key"], sort_keys=True)
            before = stored.get(key)
            stored[key] = applied_update(before, request)
            billed += max(write_units(stored[key]), write_units(before) if before else 0)
        units.append(billed)
        calls.append(len(recorder.requests))
    steady = slice(count // 4, None)
    return (
        sum(units[steady]) / len(units[steady]),
        sum(calls[steady]) / len(calls[steady]),
    )


def main() -> None:
    import os
    import sys

    from bench.workload import BENCH_ENV, ROOT

    os.environ.update(BENCH_ENV)
    sys.path.insert(0, str(ROOT / "functions"))
    print("readings table, Efento sensor of the cost model: write units (UpdateItem calls) per")
    print("delivery, mean over 12 starts within the quarter hour; width 0: an item per instant")
    print(f"  {'sends every':>12}" + "".join(f"{w or 'instant':>16}" for w in WIDTHS_S))
    for minutes in SENDS_EVERY_MIN:
        cells = []
        for width in WIDTHS_S:
            starts = STARTS_S if minutes > 1 else (0,)
            runs = [per_delivery(width, minutes, start) for start in starts]
            units = sum(run[0] for run in runs) / len(runs)
            calls = sum(run[1] for run in runs) / len(runs)
            cells.append(f"{units:8.2f} ({calls:5.2f})")
        print(f"  {minutes:>8} min" + "".join(f"{cell:>16}" for cell in cells))


if __name__ == "__main__":
    main()
