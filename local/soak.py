"""`make soak`: the local sandbox under steady traffic for a long run, memory and throughput.

Runs what `make local` runs (the stack on the embedded AWS, the emulator as the provider
delivering every 10 s, schedules 60x faster, the stack's own expiry on a compressed clock) and,
beside it, sends webhooks at a steady offered rate from a fixed pool of authentic deliveries,
cycled, so the stores reach a steady state: hot readings stay (each re-send refreshes their
TTL), what the stack expires (the raw archive's objects, idempotency records, gateway history)
goes as fast as it comes, and whatever memory still grows is the runtime's or moto's. Every
interval it prints the process's resident memory, the requests answered and their latency, what
the embedded AWS retains, the ingest queue's depth and the machine's load. Offer less than the
stack processes (the queue depth says so): a growing backlog slows moto's SQS and then the
receiver's enqueue, which answers 503 once it misses its deadline."""

import argparse
import gc
import itertools
import os
import random
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.constants import Output
from local.demo import WEBHOOK_SECRET_NAMES, _queue_depth
from local.emulator import (
    DeliveryFactory,
    FaultShares,
    Installation,
    Secrets,
    Sender,
    Stream,
    backdated_start,
)
from local.runtime.retention import Trimmed
from local.sandbox import (
    _deliver_periodically,
    add_retention_argument,
    sandbox,
)
from sensorhook.core.flavors import Flavor

# Signed v2020-07 deliveries carry a Date the receiver checks against a 300 s window, so a
# re-sent one would be refused: the cycled pool holds the header-authenticated flavors (the
# emulator's own periodic deliveries still include signed ones, freshly signed).
_POOL_FLAVORS = [
    Flavor.EVERACTIVE_DS_SENSOR_READING,
    Flavor.EVERACTIVE_DS_GATEWAY_STATUS,
    Flavor.EFENTO_MEASUREMENTS,
]


# A day of the stack's retention periods lasts 2 s here (60 s in `make local`): the longest
# chain the dev stage sets (a raw archive object's 180 days, then its delete marker's 180) ends
# after 12 minutes, so the stores level off within the warm-up and the summary's slope after it
# is the runtime's own.
SOAK_RETENTION_DAY_S = 2.0
SOAK_WARMUP_S = 780.0
# The pool is re-sent every 10 s at 5 req/s: well within the readings TTL (30 days: 60 s), so
# hot readings never expire and enter the lake again (re-sent 60 s apart, they expired between
# two copies and each copy was a new lake row); every other copy comes after its idempotency
# record's 7 days (14 s) and is processed again, as AWS does for a re-send after a week.
SOAK_POOL = 50


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(share * len(ordered)) - 1)] if ordered else float("nan")


class AllocationGrowth:
    """`--tracemalloc`: where the memory allocated between two moments of the run is held.

    Tracing starts at the first report line at or after the first of `at_s` (after warm-up,
    so the traffic before it runs at full speed), and a snapshot is taken at the first line at
    or after each of the others: what was allocated since tracing started and is still alive,
    grouped by the traceback that allocated it (`frames` deep), largest first.
    """

    def __init__(self, frames: int, at_s: list[float], top: int = 12) -> None:
        self.frames, self.pending, self.top = frames, sorted(at_s), top
        self.first: tracemalloc.Snapshot | None = None
        self.first_t = 0.0

    def observe(self, t: float) -> None:
        if not self.pending or t < self.pending[0]:
            return
        self.pending.pop(0)
        if self.first is None:
            tracemalloc.start(self.frames)
            self.first, self.first_t = tracemalloc.take_snapshot(), t
            print(f"tracemalloc: tracing from {t:.0f} s", flush=True)
            return
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        stats = snapshot.compare_to(self.first, "traceback")
        grown = sum(stat.size_diff for stat in stats)
        print(
            f"\ntracemalloc: {grown / 1e6:+.1f} MB traced between {self.first_t:.0f} s and "
            f"{t:.0f} s; the top {self.top} tracebacks by growth:",
            flush=True,
        )
        for stat in stats[: self.top]:
            print(f"  {stat.size_diff / 1e3:+9.1f} KB  {stat.count_diff:+7d} blocks", flush=True)
            for line in stat.traceback.format(most_recent_first=True):
                print(f"      {line}", flush=True)


def _type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"  # either may be a descriptor: formatted


class ObjectCensus:
    """`--census`: the live objects per type, counted by the garbage collector at each report
    line, against the count at the first line at or after `from_s` (cheap: no tracing)."""

    def __init__(self, from_s: float, top: int = 12) -> None:
        self.from_s, self.top = from_s, top
        self.first: Counter[str] | None = None

    @staticmethod
    def count() -> Counter[str]:
        gc.collect()
        return Counter(_type_name(type(o)) for o in gc.get_objects())

    def observe(self, t: float) -> None:
        if t < self.from_s:
            return
        counted = self.count()
        if self.first is None:
            self.first = counted
            print(f"census: {counted.total()} objects at {t:.0f} s", flush=True)
            return
        grown = counted.copy()
        grown.subtract(self.first)
        print(
            f"census at {t:.0f} s: {counted.total() - self.first.total():+d} objects; "
            + ", ".join(f"{name} {n:+d}" for name, n in grown.most_common(self.top)),
            flush=True,
        )


class StoreGrowth:
    """What each store of the embedded AWS holds (`Janitor.census`) at the first report line
    at or after warm-up and at the end, and its growth per minute in between."""

    def __init__(self, census: Callable[[], dict[str, int]], from_s: float) -> None:
        self.census, self.from_s = census, from_s
        self.first: tuple[float, dict[str, int]] | None = None
        self.last: tuple[float, dict[str, int]] | None = None

    def observe(self, t: float) -> None:
        if t < self.from_s:
            return
        counted = (t, self.census())
        if self.first is None:
            self.first = counted
        self.last = counted

    def report(self) -> None:
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return
        (t0, first), (t1, last) = self.first, self.last
        minutes = (t1 - t0) / 60
        print(f"  stores              at {t0:.0f} s, at {t1:.0f} s, growth per minute")
        for name in sorted(set(first) | set(last)):
            start, end = first.get(name, 0), last.get(name, 0)
            print(f"    {name:60s} {start:7d} -> {end:7d} {(end - start) / minutes:+8.1f}/min")


def soak(
    duration_s: float,
    rate: float,
    interval_s: float,
    pool_size: int,
    seed: int,
    *,
    warmup_s: float = SOAK_WARMUP_S,
    retention_day_s: float | None = SOAK_RETENTION_DAY_S,
    observers: Sequence[Callable[[float], None]] = (),
) -> int:
    provider = Installation.create(
        seed=seed, sensors=3, gateways=2, start=datetime.now(UTC) - timedelta(hours=1)
    )
    rows: list[dict[str, Any]] = []
    stores: StoreGrowth | None = None
    with sandbox(provider, batching_window_cap=1.0, retention_day_s=retention_day_s or None) as box:
        stack = box.stack
        stopping = threading.Event()
        delivering = threading.Thread(
            target=_deliver_periodically, args=(box, 10.0, stopping), daemon=True
        )
        delivering.start()
        installation = Installation.create(
            seed=seed + 1,
            sensors=20,
            gateways=4,
            start=backdated_start(
                datetime.now(UTC), count=pool_size, sensors=20, flavors=_POOL_FLAVORS
            ),
        )
        secrets = Secrets.model_validate(
            {"webhook_secrets": {name: box.secrets[name] for name in WEBHOOK_SECRET_NAMES}}
        )
        stream = Stream(
            installation,
            DeliveryFactory(secrets=secrets, base_url=stack.api_url),
            _POOL_FLAVORS,
            FaultShares(duplicate=0.0, stale_date=0.0, bad_signature=0.0, malformed=0.0),
            rng=random.Random(seed),  # noqa: S311 - reproducible traffic
        )
        pool = list(itertools.islice(stream, pool_size))
        deliveries = itertools.cycle(pool)
        sender = Sender()
        sqs = stack.client("sqs")
        print(
            f"soak: {duration_s:.0f} s at {rate:g} req/s offered, a pool of {len(pool)} "
            f"deliveries cycled; a line every {interval_s:.0f} s",
            flush=True,
        )
        print(
            f"{'t (s)':>6} {'RSS MB':>8} {'sent':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'non-202':>7} {'log streams':>11} {'log events':>10} {'archived':>8} "
            f"{'stream recs':>11} {'S3 objects':>10} {'items':>6} {'queued':>6} {'load':>5}",
            flush=True,
        )
        stores = StoreGrowth(stack.janitor.census, min(warmup_s, duration_s / 2))
        observers = [*observers, stores.observe]
        started = time.monotonic()
        rows.append({"t": 0.0, "rss": rss_mb()})
        statuses: Counter[str] = Counter()
        try:
            while time.monotonic() - started < duration_s:
                report = sender.run(deliveries, duration_s=interval_s, rate=rate)
                latencies = [r.latency_s * 1000 for r in report.sent if r.latency_s is not None]
                held = stack.janitor.retained()
                statuses.update(r.outcome for r in report.sent)
                row = {
                    "t": time.monotonic() - started,
                    "rss": rss_mb(),
                    "sent": len(report.sent),
                    "rate": len(report.sent) / report.elapsed_s,
                    "p50": _percentile(latencies, 0.5),
                    "p99": _percentile(latencies, 0.99),
                    "bad": sum(r.status != 202 for r in report.sent),
                    "load": os.getloadavg()[0],
                    "queued": _queue_depth(sqs, stack.outputs[Output.INGEST_QUEUE_URL]),
                    **held.__dict__,
                }
                rows.append(row)
                print(
                    f"{row['t']:6.0f} {row['rss']:8.1f} {row['sent']:6d} {row['rate']:7.1f} "
                    f"{row['p50']:7.1f} {row['p99']:7.1f} {row['bad']:7d} "
                    f"{held.log_streams:11d} {held.log_events:10d} {held.archived_events:8d} "
                    f"{held.stream_records:11d} {held.s3_objects:10d} {held.dynamodb_items:6d} "
                    f"{row['queued']:6d} {row['load']:5.1f}",
                    flush=True,
                )
                for observe in observers:  # --tracemalloc, --census
                    observe(row["t"])
        finally:
            stopping.set()
            sender.close()
        s3 = stack.client("s3")
        objects = [
            o
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=stack.outputs["BucketName"]
            )
            for o in page.get("Contents", [])
        ]
        trimmed = stack.janitor.trimmed
        expirer = stack.janitor.expirer
    code = _summary(rows, statuses, trimmed, objects, warmup_s)
    if expirer is not None:
        expired = expirer.expired.__dict__.items()
        print(
            f"  expired             a day lasting {expirer.day_s:g} s: "
            + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in expired)
        )
    if stores is not None:
        stores.report()
    return code


def _slope(rows: list[dict[str, Any]], key: str) -> float:
    """Least-squares growth of `key` per minute over `rows`."""
    ts, ys = [row["t"] / 60 for row in rows], [float(row[key]) for row in rows]
    mean_t, mean_y = sum(ts) / len(ts), sum(ys) / len(ys)
    spread = sum((t - mean_t) ** 2 for t in ts)
    return sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True)) / spread


def _summary(
    rows: list[dict[str, Any]],
    statuses: Counter[str],
    trimmed: Trimmed,
    objects: list[dict[str, Any]],
    warmup_s: float,
) -> int:
    measured = rows[1:]
    if not measured:
        return 1
    first, last = measured[0], measured[-1]
    total = sum(row["sent"] for row in measured)
    bad = sum(row["bad"] for row in measured)
    print("\nsummary")
    print(
        f"  RSS                 start {rows[0]['rss']:.1f} MB, after the first interval "
        f"{first['rss']:.1f} MB, end {last['rss']:.1f} MB"
    )
    settled = [row for row in measured if row["t"] >= warmup_s]
    if len(settled) >= 2:
        print(
            f"  after warm-up       from {settled[0]['t']:.0f} s: RSS {settled[0]['rss']:.1f} -> "
            f"{settled[-1]['rss']:.1f} MB, {_slope(settled, 'rss'):+.2f} MB/min (least squares); "
            f"per minute {_slope(settled, 's3_objects'):+.0f} S3 objects, "
            f"{_slope(settled, 'dynamodb_items'):+.0f} items, "
            f"{_slope(settled, 'log_streams'):+.0f} log streams, "
            f"{_slope(settled, 'log_events'):+.0f} log events; req/s "
            f"{min(r['rate'] for r in settled):.1f} to {max(r['rate'] for r in settled):.1f}"
        )
    print(
        f"  throughput          first interval {first['rate']:.1f} req/s, last "
        f"{last['rate']:.1f} req/s; p99 {first['p99']:.1f} -> {last['p99']:.1f} ms"
    )
    print(f"  requests            {total} sent, {bad} not 202: {dict(statuses)}")
    print(
        f"  machine load        1-min load average {min(r['load'] for r in measured):.1f} to "
        f"{max(r['load'] for r in measured):.1f} on {os.cpu_count()} CPUs (shared)"
    )
    print(
        f"  trimmed             {trimmed.log_streams} log streams, "
        f"{trimmed.archived_events} archived events, {trimmed.stream_records} stream records, "
        f"{trimmed.deleted_receipt_handles} deleted SQS receipt handles"
    )
    print(
        f"  bucket              {len(objects)} objects, "
        f"{sum(o['Size'] for o in objects) / 1e6:.1f} MB (raw archive: every attempt); by "
        "prefix: "
        + ", ".join(
            f"{prefix} {n}"
            for prefix, n in Counter(o["Key"].split("/")[0] for o in objects).most_common()
        )
    )
    return 0 if bad == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1800, help="seconds")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second offered")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report line")
    parser.add_argument("--pool", type=int, default=SOAK_POOL, help="distinct deliveries cycled")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--warmup",
        type=float,
        default=SOAK_WARMUP_S,
        help="seconds after which memory must be flat: the summary's slope starts there",
    )
    add_retention_argument(parser, SOAK_RETENTION_DAY_S)
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="FRAMES",
        help="trace allocations FRAMES deep and print what grew between snapshots (slow)",
    )
    parser.add_argument(
        "--snapshots",
        default="180,720",
        help="seconds into the run of the tracemalloc snapshots, comma-separated",
    )
    parser.add_argument(
        "--census",
        type=float,
        default=None,
        metavar="FROM_S",
        help="count live objects per type at every line from FROM_S seconds on, print growth",
    )
    args = parser.parse_args(argv)
    observers = []
    if args.census is not None:
        observers.append(ObjectCensus(args.census).observe)
    if args.tracemalloc:
        snapshots = [float(t) for t in args.snapshots.split(",")]
        observers.append(AllocationGrowth(args.tracemalloc, snapshots).observe)
    return soak(
        args.duration,
        args.rate,
        args.interval,
        args.pool,
        args.seed,
        warmup_s=args.warmup,
        retention_day_s=args.retention_day_s,
        observers=observers,
    )


if __name__ == "__main__":
    sys.exit(main())
