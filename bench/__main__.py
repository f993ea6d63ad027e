"""Print receiver CPU per request, processor CPU per reading, each beside its floor, the
cold-import time of each function's handler module, and what a delivery costs at AWS list
prices beside the architecture's floor (bench/cost.py, docs/cost.md).

Floors are measured in the same run, on the same bodies: the JSON parsing and the HMAC/SHA-256
work a request cannot avoid. Ratios say how much the real code costs on top of that. CPU time
(process_time) is used, not wall time, and the median of several rounds is printed, so a busy
machine moves the figures less; compare ratios across runs rather than absolute numbers.
"""

import argparse
import contextlib
import hashlib
import hmac
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.cold_start import print_cold_imports
from bench.workload import (
    BENCH_ENV,
    CONTEXT,
    HEADER_VALUE,
    ROOT,
    SECRETS,
    SIGNING_KEY,
    bodies,
    processor_batch,
    receiver_request,
)


def cpu_us_per_call(work: Callable[[], Any], calls: int, rounds: int) -> float:
    """Median over rounds of CPU microseconds per call (output silenced: logs go to stdout)."""
    per_call = []
    sink = io.StringIO()
    for _ in range(rounds):
        with contextlib.redirect_stdout(sink):
            start = time.process_time_ns()
            for _ in range(calls):
                work()
            elapsed = time.process_time_ns() - start
        sink.seek(0)
        sink.truncate()
        per_call.append(elapsed / calls / 1000)
    return statistics.median(per_call)


def receiver_figures(calls: int, rounds: int) -> list[tuple[str, float, float, int]]:
    from sensorhook.core.dedupe import canonical_json
    from sensorhook.core.flavors import Flavor
    from sensorhook.handlers import receiver

    rows = []
    for flavor, body in bodies().items():
        event = receiver_request(flavor, body)
        if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP:
            headers = event["headers"]
            signing = "\n".join(f"{k}: {headers[k]}" for k in ("date", "digest", "host"))

            def floor(body: bytes = body, signing: str = signing) -> None:
                json.loads(body)
                hashlib.sha256(body).digest()
                hmac.new(SIGNING_KEY.encode(), signing.encode(), hashlib.sha256).digest()
        else:

            def floor(body: bytes = body, signing: str = "") -> None:
                hmac.compare_digest(HEADER_VALUE.encode(), HEADER_VALUE.encode())
                hashlib.sha256(canonical_json(json.loads(body)).encode()).digest()

        response = receiver.handler(event, CONTEXT)
        if response["statusCode"] != 202:
            raise SystemExit(f"bench setup: {flavor} answered {response}")
        measured = cpu_us_per_call(
            lambda e=event: receiver.handler(e, CONTEXT),  # type: ignore[misc]
            calls,
            rounds,
        )
        rows.append((flavor.value, measured, cpu_us_per_call(floor, calls, rounds), len(body)))
    return rows


def processor_figures(batches: int, rounds: int) -> list[tuple[str, float, float, int]]:
    from datetime import UTC, datetime

    from sensorhook.handlers import processor
    from sensorhook.providers.registry import normalize

    rows = []
    for flavor, body in bodies().items():
        text = body.decode()
        event = processor_batch(flavor, body, 10)
        per_delivery = len(
            normalize(flavor, text, event_id="x", received_at=datetime.now(UTC)).readings
        )
        result = processor.handler(event, CONTEXT)
        if result["batchItemFailures"]:
            raise SystemExit(f"bench setup: {flavor} failed {result}")
        measured = cpu_us_per_call(
            lambda e=event: processor.handler(e, CONTEXT),  # type: ignore[misc]
            batches,
            rounds,
        )

        def floor(records: list[dict[str, Any]] = event["Records"]) -> None:
            for record in records:
                json.loads(json.loads(record["body"])["body"])

        floor_us = cpu_us_per_call(floor, batches, rounds)
        rows.append(
            (
                flavor.value,
                measured / len(event["Records"]),
                floor_us / len(event["Records"]),
                per_delivery,
            )
        )
    return rows


def cdk_context() -> dict[str, Any]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"]["sensorhook"])


def largest_delivery(chunk_readings: int) -> dict[str, Any]:
    """The largest delivery accepted, processed in a fresh interpreter (bench/largest_delivery)."""
    env = {**os.environ, **BENCH_ENV}
    output = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.largest_delivery", str(chunk_readings)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, Any] = json.loads(output.splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="receiver requests per round")
    parser.add_argument("--batches", type=int, default=20, help="processor batches per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(BENCH_ENV)
    sys.path.insert(0, str(ROOT / "functions"))
    from bench.canned_aws import canned_aws

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpu; CPU time, median of "
        f"{args.rounds} rounds; AWS calls answered in memory (no network)\n"
    )
    with canned_aws(SECRETS) as aws_calls, contextlib.redirect_stdout(io.StringIO()):
        receiver_rows = receiver_figures(args.calls, args.rounds)
        processor_rows = processor_figures(args.batches, args.rounds)
        calls = len(aws_calls)

    print("receiver: CPU per request (handler end to end) vs floor (json + HMAC/SHA-256)")
    print(f"  {'flavor':32} {'bytes':>7} {'µs/req':>9} {'floor µs':>9} {'ratio':>6}")
    for flavor, measured, floor, size in receiver_rows:
        print(f"  {flavor:32} {size:7d} {measured:9.1f} {floor:9.1f} {measured / floor:6.1f}")
    print("\nprocessor: CPU per delivery and per reading (SQS batches of 10, handler end to end)")
    print("  vs floor (json parsing of envelope and body); gateway status yields no readings")
    print(
        f"  {'flavor':32} {'rdg/msg':>7} {'µs/msg':>9} {'µs/rdg':>9} {'floor µs/rdg':>12} "
        f"{'ratio':>6}"
    )
    for flavor, measured, floor, per_delivery in processor_rows:
        if per_delivery:
            per_reading, floor_reading = measured / per_delivery, floor / per_delivery
            print(
                f"  {flavor:32} {per_delivery:7d} {measured:9.1f} {per_reading:9.1f} "
                f"{floor_reading:12.2f} {per_reading / floor_reading:6.1f}"
            )
        else:
            print(
                f"  {flavor:32} {0:7d} {measured:9.1f} {'-':>9} {floor:12.2f} "
                f"{measured / floor:6.1f}"
            )
    print_cold_imports()
    print(f"\n({calls} AWS API calls were serialized and answered in memory)")
    from bench.cost import print_cost_report
    from infra.config import load_stage_config

    prod = load_stage_config(cdk_context(), "prod")
    print_cost_report(prod, CONTEXT, SECRETS)
    print_largest_delivery(prod.processor_memory_mb)


def print_largest_delivery(memory_mb: int) -> None:
    from sensorhook.core.settings import ProcessorSettings

    configured = ProcessorSettings.model_fields["chunk_readings"].default
    print(
        "\nlargest delivery accepted (Efento, 6 channels x 16,666 one-minute periods + 4 device"
        "\nreadings = 100,000 readings), processor handler end to end in a fresh interpreter,"
        "\nAWS answered in memory. Memory is the process's RSS, what Lambda holds against the"
        "\nfunction's memory: baseline once imported and built, peak while processing (the"
        "\nkernel's high-water mark, reset at the start); headroom vs the processor's configured"
        f"\nmemory_mb ({memory_mb} MB, prod, cdk.json). The second row is the same delivery stored"
        "\nin one chunk: what the chunking saves."
    )
    print(
        f"  {'chunk readings':>14} {'chunks':>6} {'baseline MB':>11} {'peak MB':>8} "
        f"{'growth MB':>9} {'headroom MB':>11} {'peak/memory':>11} {'wall s':>7} {'CPU s':>6} "
        f"{'AWS calls':>9}"
    )
    for row in (largest_delivery(configured), largest_delivery(100_000)):
        peak = row["rss_peak_mb"]
        print(
            f"  {row['chunk_readings']:14d} {row['chunks']:6d} {row['rss_baseline_mb']:11.1f} "
            f"{peak:8.1f} {peak - row['rss_baseline_mb']:9.1f} {memory_mb - peak:11.1f} "
            f"{peak / memory_mb:11.0%} {row['wall_s']:7.1f} {row['cpu_s']:6.1f} "
            f"{row['aws_calls']:9d}"
        )


if __name__ == "__main__":
    main()
