"""One run of the processor on the largest delivery accepted, in a fresh interpreter so its peak
RSS is the delivery's alone: `python -m bench.largest_delivery <chunk_readings>` prints JSON.

The AWS calls are answered in memory (bench.canned_aws), so the figures are the processor's own
memory and CPU; in AWS each call adds its latency (see docs/architecture.md, "Large deliveries").
"""

import contextlib
import io
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


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
        contextlib.redirect_stdout(io.StringIO()),
    ):
        processor.delivery_processor()  # clients and settings built: not the delivery's memory
        before_mb = _rss_mb()
        wall, cpu = time.perf_counter(), time.process_time()
        result = processor.handler({"Records": [record]}, CONTEXT)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        calls = len(aws_calls)
    if result["batchItemFailures"]:
        raise SystemExit(f"largest delivery failed: {result}")
    return {
        "body_bytes": len(body),
        "readings": 100_000,
        "chunk_readings": chunk_readings,
        "chunks": -(-100_000 // chunk_readings),
        "rss_before_mb": before_mb,
        "rss_peak_mb": _rss_mb(),
        "wall_s": wall,
        "cpu_s": cpu,
        "aws_calls": calls,
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
