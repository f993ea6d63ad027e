"""The fault drill (`make faults`): the demo's traffic with a share of AWS calls failing.

1. The local sandbox starts (as `make demo` does) and the after-deploy reconcile settles.
2. A `FaultInjector` starts failing `share` of the DynamoDB, S3, SQS, EventBridge and Secrets
   Manager requests the functions make. The ingest queue's visibility timeout is cut to seconds
   so SQS retries within the drill (deployed: 6 processor timeouts).
3. The emulator's stream (the demo's mix of flavors, with provider duplicates) is sent; every
   request the receiver answered 503 is re-sent, as Everactive retries (for Efento, which never
   resends, this stands for pulling the gap from its API).
4. Everything drains with the faults on: botocore retries, the processor's partial batch
   failures, SQS redeliveries, the DLQ after `dlq_max_receive_count` receives.
5. The faults stop and the DLQ is redriven to the ingest queue, as docs/operations.md says (moto
   has no StartMessageMoveTask: the drill moves the messages, attributes included, itself).
6. What landed is counted: readings lost or extra in DynamoDB, readings twice in the lake,
   gateway status reports missing from their history or not once in the lake, events
   published twice per dedupe id (`dedupe_id` when events carry one, else type,
   delivery, sensor and first reading), deliveries without their events, quarantined objects.

`lost_response` faults (the service acted, its answer was lost) are opt-in: a lost `PutEvents`
answer makes botocore publish again, which EventBridge cannot tell apart (at-least-once, as in
AWS; docs/events.md).
"""

import argparse
import io
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq

from infra.constants import Output
from local.demo import WEBHOOK_SECRET_NAMES, _drain_queue, _observe_bus, _paginate, _queue_depth
from local.emulator import (
    DeliveryFactory,
    FaultShares,
    Installation,
    Secrets,
    Sender,
    SendReport,
    Stream,
    backdated_start,
)
from local.emulator.sender import SendResult
from local.faults import KINDS, LOST_RESPONSE, FaultInjector
from local.runtime.stack import EmbeddedStack
from local.sandbox import sandbox
from sensorhook.core.flavors import Flavor
from sensorhook.dal.readings_store import is_gateway_history, iso_ms, readings_in
from sensorhook.providers.registry import normalize

_PUBLISHED_TYPES = ("readings.received", "steam_trap.state_changed")


@dataclass
class DrillFigures:
    requests: int = 0  # HTTP requests to the webhooks, re-sends included
    refused_503: int = 0  # answers 503 (each re-sent)
    faults: dict[str, Any] = field(default_factory=dict)
    accepted_deliveries: int = 0
    expected_readings: int = 0
    stored_readings: int = 0
    lost: int = 0  # readings of accepted deliveries missing from DynamoDB
    extra: int = 0  # readings in DynamoDB that no accepted delivery carried
    doubled_in_lake: int = 0  # readings with more than one Parquet row
    lake_rows: int = 0
    # gateway status reports (gateway, report time) of accepted deliveries, their history items
    # in the readings table and their rows in the lake's gateway_status/
    expected_gateway_statuses: int = 0
    stored_gateway_statuses: int = 0
    gateway_status_rows: int = 0
    gateway_statuses_doubled_in_lake: int = 0
    events: int = 0
    published_twice: int = 0  # publication keys seen more than once on the bus
    deliveries_without_events: int = 0  # accepted deliveries with readings but no event
    quarantined: int = 0
    dead_lettered: int = 0  # messages in the DLQ once the faulty drain settled
    redriven: int = 0
    dlq_left: int = 0
    never_accepted: int = 0  # requests still not 202 after every re-send
    elapsed_s: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.extra
            or self.doubled_in_lake
            or self.lake_rows != self.stored_readings
            or self.stored_gateway_statuses != self.expected_gateway_statuses
            or self.gateway_status_rows != self.stored_gateway_statuses
            or self.gateway_statuses_doubled_in_lake
            or self.published_twice
            or self.deliveries_without_events
            or self.dlq_left
            or self.never_accepted
        )

    def lines(self) -> list[str]:
        faults = self.faults
        return [
            f"requests           {self.requests} ({self.refused_503} answered 503 and re-sent; "
            f"{self.accepted_deliveries} accepted, {self.never_accepted} never accepted)",
            f"AWS requests       {faults.get('aws_requests')} made by the functions",
            f"faults injected    {faults.get('faults_injected')}: {faults.get('by_kind')}, "
            f"{faults.get('by_service')}",
            f"readings           {self.stored_readings} stored of {self.expected_readings} "
            f"expected; {self.lake_rows} Parquet rows",
            f"lost               {self.lost}",
            f"gateway statuses   {self.stored_gateway_statuses} stored of "
            f"{self.expected_gateway_statuses} expected; {self.gateway_status_rows} Parquet rows, "
            f"{self.gateway_statuses_doubled_in_lake} twice in the lake",
            f"doubled            {self.extra} extra in DynamoDB, {self.doubled_in_lake} twice in "
            "the lake",
            f"events             {self.events} published, {self.published_twice} published "
            f"twice per dedupe id, {self.deliveries_without_events} deliveries without events",
            f"quarantined        {self.quarantined}",
            f"dead-lettered      {self.dead_lettered}",
            f"redriven           {self.redriven} (left in the DLQ: {self.dlq_left})",
        ]


def publication_key(event: dict[str, Any]) -> str:
    """What makes two published events the same publication: the event's `dedupe_id` when it
    carries one, else its type, delivery, sensor and first reading (docs/events.md)."""
    detail = event.get("detail", {})
    if detail.get("dedupe_id"):
        return str(detail["dedupe_id"])
    first = (detail.get("readings") or [{}])[0]
    return json.dumps(
        [
            event.get("detail-type"),
            detail.get("event_id"),
            detail.get("sensor_id"),
            first.get("measured_at"),
            first.get("metric"),
            first.get("channel"),
        ]
    )


def run_drill(
    *,
    count: int = 400,
    rate: float = 50.0,
    share: float = 0.10,
    kinds: tuple[str, ...] = KINDS,
    seed: int = 7,
    every_attempt: bool = False,
    visibility_timeout_s: int = 2,
    max_resends: int = 20,
) -> DrillFigures:
    injector = FaultInjector(share=0.0, kinds=kinds, seed=seed, every_attempt=every_attempt)
    # before the sandbox starts: the functions' session, created at their first invocation,
    # takes the hooks
    uninstall = injector.install()
    figures = DrillFigures()
    provider = Installation.create(
        seed=seed + 1000, sensors=1, gateways=1, start=datetime.now(UTC) - timedelta(hours=1)
    )
    try:
        with sandbox(provider, schedule_speedup=0, batching_window_cap=0.5) as box:
            stack = box.stack
            stack.drain(timeout=60)  # the after-deploy reconcile, before any fault
            sqs = stack.client("sqs")
            queue_url, dlq_url = (
                stack.outputs[Output.INGEST_QUEUE_URL],
                stack.outputs[Output.DLQ_URL],
            )
            sqs.set_queue_attributes(
                QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(visibility_timeout_s)}
            )
            observer_url = _observe_bus(stack)

            injector.share = share
            began = time.monotonic()
            results = _send_until_accepted(
                stack,
                secrets=box.secrets,
                figures=figures,
                count=count,
                rate=rate,
                seed=seed,
                max_resends=max_resends,
            )
            figures.elapsed_s["send"] = time.monotonic() - began
            began = time.monotonic()
            stack.drain(timeout=900)
            figures.elapsed_s["drain with faults"] = time.monotonic() - began

            injector.share = 0.0  # the incident is over
            figures.faults = injector.figures()
            began = time.monotonic()
            figures.dead_lettered = _queue_depth(sqs, dlq_url)
            for _ in range(5):
                moved = _redrive(sqs, dlq_url, queue_url)
                if not moved:
                    break
                figures.redriven += moved
                stack.drain(timeout=900)
            figures.dlq_left = _queue_depth(sqs, dlq_url)
            figures.elapsed_s["redrive"] = time.monotonic() - began
            _count_what_landed(stack, observer_url, results, figures)
    finally:
        uninstall()
    return figures


def _send_until_accepted(
    stack: EmbeddedStack,
    *,
    secrets: dict[str, Any],
    figures: DrillFigures,
    count: int,
    rate: float,
    seed: int,
    max_resends: int,
) -> list[SendResult]:
    flavors = list(Flavor)
    installation = Installation.create(
        seed=seed,
        sensors=6,
        gateways=2,
        start=backdated_start(datetime.now(UTC), count=count, sensors=6, flavors=flavors),
    )
    factory = DeliveryFactory(
        secrets=Secrets.model_validate(
            {"webhook_secrets": {name: secrets[name] for name in WEBHOOK_SECRET_NAMES}}
        ),
        base_url=stack.api_url,
    )
    shares = FaultShares(duplicate=0.10, stale_date=0.0, bad_signature=0.0, malformed=0.0)
    stream = Stream(installation, factory, flavors, shares, rng=random.Random(seed))  # noqa: S311
    sender = Sender()
    try:
        results = list(sender.run(stream, count=count, rate=rate).results)
        figures.requests = len(results)
        for _ in range(max_resends):
            refused = [index for index, result in enumerate(results) if result.status != 202]
            if not refused:
                break
            time.sleep(0.5)  # a provider backs off before it retries
            for index in refused:
                figures.refused_503 += results[index].status == 503
                results[index] = sender.send(results[index].delivery, results[index].seq)
                figures.requests += 1
    finally:
        sender.close()
    figures.refused_503 += sum(result.status == 503 for result in results)
    figures.never_accepted = sum(result.status != 202 for result in results)
    return results


def _redrive(sqs: Any, dlq_url: str, queue_url: str) -> int:
    """Move every message of the DLQ back to the ingest queue, attributes included."""
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=message["Body"],
                MessageAttributes={
                    name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
                    for name, value in message.get("MessageAttributes", {}).items()
                },
            )
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1


def _count_what_landed(
    stack: EmbeddedStack, observer_url: str, results: list[SendResult], figures: DrillFigures
) -> None:
    dynamodb, s3, sqs = stack.client("dynamodb"), stack.client("s3"), stack.client("sqs")
    report = SendReport(results=results, elapsed_s=0.0)
    expected: set[tuple[str, str]] = set()
    expected_statuses: set[tuple[str, str, str]] = set()
    with_events: set[str] = set()
    for result in report.delivered():
        delivery = result.delivery
        normalized = normalize(
            delivery.flavor,
            delivery.body.decode(),
            event_id=str(delivery.event_id),
            received_at=datetime.now(UTC),
        )
        expected.update((r.series_key, r.point_key) for r in normalized.readings)
        expected_statuses.update(
            (s.provider, s.gateway_id, iso_ms(s.reported_at)) for s in normalized.gateway_statuses
        )
        if normalized.readings or normalized.steam_trap_changes:
            with_events.add(str(delivery.event_id))
    figures.accepted_deliveries = len(report.delivered())

    items = list(
        _paginate(dynamodb, "scan", "Items", TableName=stack.outputs[Output.READINGS_TABLE])
    )
    stored = {(r.series_key, r.point_key) for r in readings_in(items)}  # packed items unpacked
    figures.expected_readings, figures.stored_readings = len(expected), len(stored)
    figures.lost, figures.extra = len(expected - stored), len(stored - expected)
    statuses = {
        (i["provider"]["S"], i["gateway_id"]["S"], i["point"]["S"])
        for i in items
        if is_gateway_history(i)
    }
    figures.expected_gateway_statuses = len(expected_statuses)
    figures.stored_gateway_statuses = len(statuses & expected_statuses)

    bucket = stack.outputs[Output.BUCKET_NAME]
    rows: Counter[tuple[str, ...]] = Counter()
    status_rows: Counter[tuple[str, str, str]] = Counter()
    columns = ["provider", "sensor_id", "measured_at", "metric", "channel"]
    for obj in _paginate(s3, "list_objects_v2", "Contents", Bucket=bucket):
        key = obj["Key"]
        if key.startswith("quarantine/"):
            figures.quarantined += 1
        elif key.startswith("readings/") and key.endswith(".parquet"):
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            for row in pq.read_table(io.BytesIO(data)).select(columns).to_pylist():
                rows[tuple(str(row[name]) for name in columns)] += 1
        elif key.startswith("gateway_status/") and key.endswith(".parquet"):
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            table = pq.read_table(io.BytesIO(data)).select(
                ["provider", "gateway_id", "reported_at"]
            )
            for row in table.to_pylist():
                identity = (row["provider"], row["gateway_id"], iso_ms(row["reported_at"]))
                status_rows[identity] += 1
    figures.lake_rows = sum(rows.values())
    figures.doubled_in_lake = sum(1 for n in rows.values() if n > 1)
    figures.gateway_status_rows = sum(status_rows.values())
    figures.gateway_statuses_doubled_in_lake = sum(1 for n in status_rows.values() if n > 1)

    published = [
        event
        for event in _drain_queue(sqs, observer_url)
        if event["detail-type"] in _PUBLISHED_TYPES
    ]
    figures.events = len(published)
    keys = Counter(publication_key(event) for event in published)
    figures.published_twice = sum(1 for n in keys.values() if n > 1)
    seen = {str(event["detail"].get("event_id")) for event in published}
    figures.deliveries_without_events = len(with_events - seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make faults", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="webhook requests to send")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--share", type=float, default=0.10, help="share of AWS calls failing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--lost-responses",
        action="store_true",
        help="also lose the answers of calls the service applied (at-least-once, as in AWS)",
    )
    parser.add_argument(
        "--every-attempt",
        action="store_true",
        help="a call chosen to fail fails all its retries too (an outage, not a blip)",
    )
    args = parser.parse_args(argv)
    kinds = (*KINDS, LOST_RESPONSE) if args.lost_responses else KINDS
    print(
        f"fault drill: {args.count} webhook requests; {args.share:.0%} of the functions' DynamoDB, "
        f"S3, SQS, EventBridge and Secrets Manager requests fail ({', '.join(kinds)})"
        + ("; every attempt of a failing call fails" if args.every_attempt else ""),
        flush=True,
    )
    figures = run_drill(
        count=args.count,
        rate=args.rate,
        share=args.share,
        kinds=kinds,
        seed=args.seed,
        every_attempt=args.every_attempt,
    )
    print()
    for line in figures.lines():
        print("  " + line)
    print(
        "  time               "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in figures.elapsed_s.items())
    )
    print("\nFAULT DRILL " + ("PASSED" if figures.ok else "FAILED"))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
