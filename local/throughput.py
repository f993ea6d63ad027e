"""The demo's ingest phase at a higher count and rate: sustained req/s with the demo's checks.

`python -m local.throughput --count 2000 --rate 250` starts the sandbox as `make demo` does,
sends the emulator's stream (duplicates, stale dates, bad signatures, malformed bodies) through
the local HTTP API, drains, and runs every ingest check of the demo (nothing lost, nothing
doubled, lake and archive exact, one event set per delivery, answers as intended). It prints
the rate the stack answered at, the process's CPU time and the machine's load beside it.

The emulator sends from a process of its own, as the provider's cloud is another machine
(`--sender-in-process` keeps it in this one, where building payloads and its HTTP client take
the interpreter lock the stack's functions share). While the front answers, the stack's pollers
hold their batches (local/runtime/front_priority.py): the printed hold is theirs, summed.
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from local import demo
from local.emulator import FaultShares, Installation
from local.runtime.stack import EVERYTHING
from local.sandbox import sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="requests to send")
    parser.add_argument("--rate", type=float, default=250.0, help="requests per second offered")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="seconds")
    parser.add_argument(
        "--sender-in-process",
        action="store_true",
        help="send from this process's threads, sharing the stack's interpreter lock, instead "
        "of from a process of its own as a provider's cloud would",
    )
    args = parser.parse_args(argv)
    provider = Installation.create(
        seed=1007,
        sensors=3,
        gateways=2,
        start=datetime.now(UTC) - timedelta(seconds=30),
        reading_interval=timedelta(seconds=2),
        status_interval=timedelta(seconds=3),
    )
    with sandbox(provider, environment=demo.DEMO_ENVIRONMENT) as box:
        stack = box.stack
        stack.drain(timeout=60)
        observer = demo._observe_bus(stack)
        drain = stack.drain
        stack.drain = lambda timeout=30.0, scope=EVERYTHING: drain(  # type: ignore[method-assign]
            timeout=args.drain_timeout, scope=scope
        )
        cpu, wall = time.process_time(), time.perf_counter()
        result = demo.run_demo(
            stack,
            box.secrets,
            observer,
            count=args.count,
            rate=args.rate,
            sensors=6,
            gateways=2,
            seed=7,
            shares=FaultShares(duplicate=0.10, stale_date=0.05, bad_signature=0.05, malformed=0.05),
            sender_process=not args.sender_in_process,
        )
        summary = result.report.summary()
        print(
            f"sent {summary['sent']} in {summary['elapsed_s']} s: {summary['rate_per_s']} req/s "
            f"answered ({args.rate:g} offered); latency ms {summary['latency_ms']}; "
            f"responses {summary['responses_by_status']}"
        )
        print(
            ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.timings_s.items())
            + f"; process CPU {time.process_time() - cpu:.1f} s over "
            f"{time.perf_counter() - wall:.1f} s; load average {os.getloadavg()[0]:.1f}; "
            f"batches held for the front {stack.front_priority.held_s:.1f} s (all pollers)"
        )
        for check in result.checks:
            print(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        print("THROUGHPUT " + ("PASSED" if result.ok else "FAILED"))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
