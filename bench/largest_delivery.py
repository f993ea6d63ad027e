"""One run of the processor on the largest delivery accepted, in a fresh interpreter:
`python -m bench.largest_delivery <chunk_readings>` prints JSON.

Memory is the process's resident set, as Lambda counts it against the function's memory: the
baseline once everything is imported and the processor's parts are built, and the peak while
the delivery is processed. The peak is the kernel's high-water mark (VmHWM), reset to the
baseline just before processing (`/proc/self/clear_refs`), so an earlier peak (imports, the
batch being built) is not mistaken for the delivery's. The baseline carries what the bench
imports besides the function (the batch builder, the canned AWS), so it is somewhat above the
function's own in AWS: the headroom printed is on the safe side. Request bodies and logs are
not kept (the canned AWS drops each body once answered; logs go to /dev/null).

The AWS calls are answered in memory (bench.canned_aws), so the figures are the processor's own
memory and CPU; in AWS each call adds its latency (see docs/architecture.md, "Large deliveries").
"""

import contextlib
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux; reported in kB)."""
    found = re.search(rf"^{field}:\s+(\d+) kB$", Path("/proc/self/status").read_text(), re.M)
    if found is None:
        raise SystemExit(f"/proc/self/status has no {field}: Linux only")
    return int(found[1]) / 1024


def _reset_peak_rss() -> None:
    """Set the high-water mark (VmHWM) to the current RSS (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(chunk_readings: int) -> dict[str, Any]:
    from bench.__main__ import BENCH_ENV, CONTEXT, SECRETS

    os.environ.update({**BENCH_ENV, "CHUNK_READINGS": str(chunk_readings)})
    sys.path.insert(0, str(ROOT / "functions"))
    from bench.canned_aws import canned_aws
    from sensorhook.core.dedupe import event_id_for
    from sensorhook.core.envelope import IngestEnvelope
    from sensorhook.core.flavors import Flavor
    from sensorhook.handlers import processor
    from tests.builders import largest_efento_batch

    batch = largest_efento_batch()
    body = json.dumps(batch, separators=(",", ":"))
    flavor = Flavor.EFENTO_MEASUREMENTS
    envelope = IngestEnvelope(
        flavor=flavor,
        event_id=event_id_for(flavor, batch),
        received_at=datetime.now(UTC),
        request_id="bench-largest",
        body=body,
    )
    record = {
        "messageId": "largest",
        "receiptHandle": "r",
        "body": envelope.model_dump_json(),
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:ingest",
        "awsRegion": "eu-west-1",
    }
    with (
        canned_aws(SECRETS, keep_requests=False) as aws_calls,
        open(os.devnull, "w") as logs,  # logs go to stdout; kept in memory they would count
        contextlib.redirect_stdout(logs),
    ):
        processor.delivery_processor()  # clients and settings built: not the delivery's memory
        _reset_peak_rss()
        baseline_mb = _status_mb("VmRSS")
        wall, cpu = time.perf_counter(), time.process_time()
        result = processor.handler({"Records": [record]}, CONTEXT)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak_mb = _status_mb("VmHWM")
        calls = len(aws_calls)
    if result["batchItemFailures"]:
        raise SystemExit(f"largest delivery failed: {result}")
    return {
        "body_bytes": len(body),
        "readings": 100_000,
        "chunk_readings": chunk_readings,
        "chunks": -(-100_000 // chunk_readings),
        "rss_baseline_mb": baseline_mb,
        "rss_peak_mb": peak_mb,
        "wall_s": wall,
        "cpu_s": cpu,
        "aws_calls": calls,
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
