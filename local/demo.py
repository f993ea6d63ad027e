"""`make demo`: sensorhook on this machine, checked end to end.

Starts the local sandbox (the stack the CDK app defines on an embedded AWS, the provider
emulator as Everactive's API) and goes through what a user would see in their first day:

1. control plane: the after-deploy run of the subscriptions function has created the webhooks
   declared in cdk.json in the provider (the emulator), with the receiver's headers and, for
   v2020-07, the generated signing secret stored where the receiver reads it; a second run
   plans nothing;
2. ingest: a realistic stream from the emulator (with duplicates, stale dates, bad signatures
   and malformed bodies) through the local HTTP API, drained, then read back with boto3 and
   checked against what the emulator knows it sent;
3. the provider delivers through the webhooks the reconciler registered;
4. a gateway goes offline and comes back: one `gateway.offline`, one `gateway.online`;
5. recovery (local/demo_recovery.py): the provider disables the readings webhook for a while,
   the machine recovers it and backfills the gap exactly once; an Efento gap is recorded exactly;
6. forwarding (local/demo_forwarding.py): an endpoint that stops answering walks through
   Efento's statuses and gets its backlog in order once enabled.

Phases that mostly wait run side by side: forwarding beside everything after the stack starts,
then the control plane (3, 4) beside recovery (docs/local-mode.md says why each check holds).

The ingest checks:

- every request got the answer its intent calls for (202, 401 or 400);
- DynamoDB holds exactly the readings of the accepted deliveries: none lost, none doubled;
- every Efento measurement the simulated sensors took is there, reconstructed from the
  compressed events, with its value and status;
- the Parquet lake holds each reading once; the raw archive holds every accepted request;
- the bus carried one event set per unique delivery; quarantine and DLQs are empty.

Exit status 0 only if every check holds.
"""

import argparse
import gzip
import io
import json
import random
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from infra.constants import Output
from local import demo_forwarding
from local.dashboard import DEFAULT_OUT as DASHBOARD_DIR
from local.dashboard import render_stack
from local.demo_recovery import ProviderDeliveries, check_recovery
from local.emulator import (
    DeliveryFactory,
    FaultShares,
    Installation,
    Secrets,
    Sender,
    SendReport,
    Stream,
    backdated_start,
    run_in_own_process,
)
from local.lake_sql import DEFAULT_LAKE_DIR as LAKE_DIR
from local.lake_sql import mirror_bucket
from local.runtime.stack import EVERYTHING, DrainScope, EmbeddedStack
from local.sandbox import Sandbox, sandbox
from sensorhook.core.flavors import Flavor
from sensorhook.dal.readings_store import readings_in
from sensorhook.providers.efento.normalize import metric_and_unit
from sensorhook.providers.registry import normalize

PROJECT_DIR = Path(__file__).resolve().parents[1]
EVENT_SOURCE = "sensorhook"
INGEST_DETAIL_TYPES = {"readings.received", "steam_trap.state_changed"}
GATEWAY_DETAIL_TYPES = {"gateway.offline", "gateway.online"}
WEBHOOK_SECRET_NAMES = (
    "V2020_SIGNING_SECRET_ARN",
    "DS_HEADER_SECRET_ARN",
    "EFENTO_HEADER_SECRET_ARN",
)
# the demo's provider installation reports every few seconds, so a gateway's silence shows in
# seconds rather than the deployed 15 minutes
GATEWAY_OFFLINE_AFTER_S = 8
# the ingest phase's stream is backdated by design (hours of readings sent in seconds): its
# newest reading is hours old while gateways are online, which is what a silent subscription
# looks like, so the demo judges silence only after this long (recovery is shown in phase 5)
SUBSCRIPTION_SILENT_AFTER_S = 30 * 86_400
# the demo's endpoint stays in Error this long before Disabled (the stage's thirty hours, judged
# by wall time): its walk reaches Error about 12 s after its first failure (five no-responses,
# the six-hour hold on the compressed clock), so 20 s leaves it in Error for a while
DEMO_FORWARDING_POLICY = {"disable_after_seconds": 20}
DEMO_ENVIRONMENT = {
    "GATEWAY_OFFLINE_AFTER_SECONDS": str(GATEWAY_OFFLINE_AFTER_S),
    "SUBSCRIPTION_SILENT_AFTER_SECONDS": str(SUBSCRIPTION_SILENT_AFTER_S),
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DemoResult:
    report: SendReport
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _observe_bus(
    stack: EmbeddedStack, name: str = "demo-bus-observer", detail_types: list[str] | None = None
) -> str:
    """Subscribe a queue to everything sensorhook publishes (or only `detail_types`), as a
    downstream consumer would. A phase running beside others reads its own queue: reading one
    deletes what it read."""
    sqs, events = stack.client("sqs"), stack.client("events")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    bus = stack.outputs[Output.EVENT_BUS_NAME]
    pattern: dict[str, list[str]] = {"source": [EVENT_SOURCE]}
    if detail_types:
        pattern["detail-type"] = detail_types
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    return str(queue_url)


def _drain_queue(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(json.loads(message["Body"]) for message in batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )


def _queue_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _expected_points(report: SendReport) -> tuple[set[tuple[str, str]], Counter[str]]:
    """Readings keys the accepted deliveries mean, and the events each unique delivery should
    publish: sensorhook's own normalization applied to exactly what the emulator sent."""
    points: set[tuple[str, str]] = set()
    events: Counter[str] = Counter()
    seen: set[str] = set()
    for result in report.delivered():
        delivery = result.delivery
        if delivery.event_id is None or delivery.event_id in seen:
            continue
        seen.add(delivery.event_id)
        normalized = normalize(
            delivery.flavor,
            delivery.body.decode(),
            event_id=delivery.event_id,
            received_at=datetime.now(UTC),
        )
        points.update((r.series_key, r.point_key) for r in normalized.readings)
        if normalized.readings:
            events["readings.received"] += 1
        events["steam_trap.state_changed"] += len(normalized.steam_trap_changes)
    return points, events


def _efento_points(report: SendReport) -> dict[tuple[str, str], tuple[float | None, str]]:
    """Every measurement the simulated Efento sensors took, keyed as the readings table keys it."""
    expected: dict[tuple[str, str], tuple[float | None, str]] = {}
    for sample in report.expected_samples().values():
        if not sample.quantity.isupper():  # Efento channel types; Everactive uses body fields
            continue
        metric, _ = metric_and_unit(sample.quantity)
        at = sample.measured_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        value = None if sample.status in ("MISSING", "ERROR") else sample.value
        expected[(f"efento#{sample.sensor_id}", f"{at}#{metric}#{sample.channel}")] = (
            None if value is None else float(value),
            sample.status,
        )
    return expected


def _read_back(stack: EmbeddedStack, observer_url: str, result: DemoResult) -> None:
    dynamodb, s3, sqs = stack.client("dynamodb"), stack.client("s3"), stack.client("sqs")
    outputs = stack.outputs
    bucket = outputs[Output.BUCKET_NAME]
    report = result.report

    items = _paginate(dynamodb, "scan", "Items", TableName=outputs[Output.READINGS_TABLE])
    by_key = {(r.series_key, r.point_key): r for r in readings_in(items)}  # packed items unpacked
    stored = Counter(by_key)
    expected, expected_events = _expected_points(report)
    lost, extra = expected - set(stored), set(stored) - expected
    result.check(
        "DynamoDB holds exactly the readings of the accepted deliveries",
        not lost and not extra,
        f"{len(stored)} stored, {len(expected)} expected, {len(lost)} lost, {len(extra)} extra",
    )
    efento = _efento_points(report)
    wrong = [
        key
        for key, (value, status) in efento.items()
        if key not in by_key
        or by_key[key].status != status
        or (value is None) != (by_key[key].value is None)
        or (value is not None and abs(float(by_key[key].value or 0.0) - value) > 1e-9)
    ]
    result.check(
        "every Efento measurement is reconstructed with its value and status",
        bool(efento) and not wrong,
        f"{len(efento) - len(wrong)}/{len(efento)} per-period measurements match",
    )

    objects = list(_paginate(s3, "list_objects_v2", "Contents", Bucket=bucket))
    keys_by_prefix = Counter(obj["Key"].split("/", 1)[0] for obj in objects)
    raw_lines = 0
    lake_rows: Counter[tuple[str, str, str, str]] = Counter()
    for obj in objects:
        key = obj["Key"]
        if key.startswith("raw/"):
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            raw_lines += len(gzip.decompress(data).splitlines())
        elif key.startswith("readings/") and key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
            for row in table.select(["provider", "sensor_id", "metric", "channel"]).to_pylist():
                lake_rows[(row["provider"], row["sensor_id"], row["metric"], row["channel"])] += 1
    accepted = len(report.delivered())
    result.check(
        "the raw archive holds every accepted request",
        raw_lines == accepted,
        f"{raw_lines} archived lines, {accepted} accepted requests",
    )
    result.check(
        "the Parquet lake holds each reading once",
        sum(lake_rows.values()) == len(stored),
        f"{sum(lake_rows.values())} Parquet rows, {len(stored)} readings",
    )

    # the forwarding phase, running beside this one, puts its own test events on the bus
    published = [
        e
        for e in _drain_queue(sqs, observer_url)
        if e["detail-type"] in INGEST_DETAIL_TYPES and not demo_forwarding.is_test_event(e)
    ]
    by_type = Counter(event["detail-type"] for event in published)
    unique = {(e["detail-type"], e["detail"].get("event_id")): e for e in published}
    unique_by_type = Counter(event["detail-type"] for event in unique.values())
    result.check(
        "one event set per unique delivery on the bus",
        unique_by_type == expected_events,
        f"published {dict(by_type)}, expected per delivery {dict(expected_events)}",
    )
    dlq = _queue_depth(sqs, outputs[Output.DLQ_URL])
    lake_failures = _queue_depth(sqs, outputs[Output.LAKE_WRITER_FAILURES_QUEUE_URL])
    result.check(
        "nothing in quarantine or the dead-letter queues",
        keys_by_prefix["quarantine"] == 0 and dlq == 0 and lake_failures == 0,
        f"quarantine {keys_by_prefix['quarantine']}, DLQ {dlq}, lake failures {lake_failures}",
    )
    unexpected = report.unexpected()
    result.check(
        "every request got the answer its intent calls for",
        not unexpected,
        f"{len(report.sent) - len(unexpected)}/{len(report.sent)} as expected"
        + (f"; first surprise: {unexpected[0].outcome}" if unexpected else ""),
    )
    result.figures.update(
        {
            "readings_in_dynamodb": len(stored),
            "sensor_state_items": sum(
                item["metric_channel"]["S"] != "#silence"
                for item in _paginate(
                    dynamodb, "scan", "Items", TableName=outputs[Output.SENSOR_STATE_TABLE]
                )
            ),
            "gateways": len(
                list(_paginate(dynamodb, "scan", "Items", TableName=outputs[Output.GATEWAYS_TABLE]))
            ),
            "raw_objects": keys_by_prefix["raw"],
            "raw_lines": raw_lines,
            "parquet_objects": keys_by_prefix["readings"],
            "parquet_rows": sum(lake_rows.values()),
            "events_on_bus": dict(by_type),
            "quarantined": keys_by_prefix["quarantine"],
            "dlq_messages": dlq,
            "duplicates_dropped": accepted - len(report.expected_event_ids()),
        }
    )


def check_subscriptions(box: Sandbox, result: DemoResult) -> None:
    """What the after-deploy run of the subscriptions function did in the provider."""
    stack, provider = box.stack, box.provider
    ours = [w for w in provider.webhooks.values() if w["callbackUrl"].startswith(stack.api_url)]
    event_types = Counter(w["eventType"] for w in ours if w["enabled"])
    result.check(
        "the after-deploy reconcile created the declared Data Services webhooks",
        event_types == Counter({"sensor_reading": 1, "gateway_status": 1}),
        f"enabled webhooks pointing at this stack: {dict(event_types)}",
    )
    signing = json.loads(
        stack.client("secretsmanager").get_secret_value(
            SecretId=box.secrets["V2020_SIGNING_SECRET_ARN"]["arn"]
        )["SecretString"]
    )
    v2020 = list(provider.v2020_subscriptions.values())
    result.check(
        "the v2020-07 subscription's generated secret is where the receiver reads it",
        len(v2020) == 1 and v2020[0]["id"] in signing["keys"],
        f"{len(v2020)} subscription(s); signing keys for {sorted(signing['keys'])}",
    )
    second = box.invoke(Output.SUBSCRIPTIONS_FUNCTION_NAME, {})
    changes = {kind: n for kind, n in second["applied"].items() if n}
    result.check(
        "a second reconcile changes nothing",
        not changes and not second["errors"],
        f"applied {changes or 'nothing'}, unchanged {second['unchanged']}, "
        f"manual (Efento) {second['manual']}, errors {second['errors'] or 'none'}",
    )


def check_provider_deliveries(
    box: Sandbox, result: DemoResult, scope: DrainScope = EVERYTHING
) -> None:
    """The provider posts what its installation produced to the registered webhooks (before
    anything else delivers it: the check needs the deliveries to make)."""
    report = box.provider.deliver()
    box.stack.drain(timeout=120, scope=scope)
    statuses = Counter(r.outcome for r in report.sent)
    result.check(
        "the provider's deliveries through the registered webhooks are accepted",
        bool(report.sent) and statuses == Counter({"202": len(report.sent)}),
        f"{len(report.sent)} deliveries by flavor "
        f"{dict(Counter(r.delivery.flavor.value for r in report.sent))}: {dict(statuses)}",
    )


def _wait_until(condition: Callable[[], bool], timeout: float, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every_s)
    return True


def _health_events(sqs: Any, observer_url: str, gateway_id: str) -> list[str]:
    return [
        event["detail-type"]
        for event in _drain_queue(sqs, observer_url)
        if event["detail-type"] in GATEWAY_DETAIL_TYPES
        and event["detail"]["gateway_id"] == gateway_id
    ]


def check_gateway_goes_offline_and_back(
    box: Sandbox,
    installation: Installation,
    observer_url: str,
    result: DemoResult,
    scope: DrainScope = EVERYTHING,
    *,
    quiet: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> None:
    """One gateway stops reporting, then comes back: one event each way, however many polls
    (drains wait for `scope`, inside `quiet()`: a phase beside this one pauses its deliveries).
    `observer_url` is a queue that only this check reads."""
    sqs = box.stack.client("sqs")

    def drain() -> None:
        with quiet():
            box.stack.drain(timeout=60, scope=scope)

    # the gateway with the fewest sensors (its sensors go quiet with it): the recovery phase
    # beside this one backfills what the others measure
    sensors_of = Counter(sensor.gateway.serial for sensor in installation.eversensors)
    serial = min(installation.gateways, key=lambda gateway: sensors_of[gateway.serial]).serial
    box.provider.deliver()
    box.invoke(Output.GATEWAY_HEALTH_FUNCTION_NAME)
    _health_events(sqs, observer_url, serial)  # whatever the first sighting published

    box.provider.take_gateway_offline(serial)
    gateway = box.provider.cloud.gateway_states[serial]
    # until its silence is longer than the threshold (the threshold is judged against `now`)
    last_contact = gateway.last_contact or datetime.now(UTC)
    silent_until = last_contact + timedelta(seconds=GATEWAY_OFFLINE_AFTER_S + 0.5)
    time.sleep(max(0.0, (silent_until - datetime.now(UTC)).total_seconds()))
    box.provider.deliver()  # the other gateway keeps reporting
    polls = [box.invoke(Output.GATEWAY_HEALTH_FUNCTION_NAME) for _ in range(3)]
    drain()
    offline = _health_events(sqs, observer_url, serial)
    result.check(
        "a gateway that stopped reporting is reported offline once",
        offline == ["gateway.offline"],
        f"gateway {serial}: {offline or 'no event'} over {len(polls)} polls "
        f"(+ the compressed schedule's); online/offline now "
        f"{polls[-1].get('gateways_online')}/{polls[-1].get('gateways_offline')}",
    )
    box.provider.bring_gateway_online(serial)
    back_at = datetime.now(UTC)

    def reported_again() -> bool:
        box.provider.cloud.advance()
        return gateway.last_contact is not None and gateway.last_contact > back_at

    _wait_until(reported_again, timeout=installation.status_interval.total_seconds() * 5)
    box.provider.deliver()
    drain()
    polls = [box.invoke(Output.GATEWAY_HEALTH_FUNCTION_NAME) for _ in range(3)]
    drain()
    online = _health_events(sqs, observer_url, serial)
    result.check(
        "and back online once when it reports again",
        online == ["gateway.online"],
        f"gateway {serial}: {online or 'no event'} over {len(polls)} polls",
    )


def run_demo(
    stack: EmbeddedStack,
    secrets: dict[str, Any],
    observer_url: str,
    *,
    count: int,
    rate: float,
    sensors: int,
    gateways: int,
    seed: int,
    shares: FaultShares,
    scope: DrainScope = EVERYTHING,
    sender_process: bool = False,
) -> DemoResult:
    """Drive the running stack with the emulator's stream and check what landed (the drain
    waits for `scope`: the forwarding phase may run beside this one). With `sender_process`
    the emulator sends from a process of its own (local/throughput.py)."""
    flavors = list(Flavor)
    installation = Installation.create(
        seed=seed,
        sensors=sensors,
        gateways=gateways,
        start=backdated_start(datetime.now(UTC), count=count, sensors=sensors, flavors=flavors),
    )
    webhook_secrets = {name: secrets[name] for name in WEBHOOK_SECRET_NAMES}
    factory = DeliveryFactory(
        secrets=Secrets.model_validate({"webhook_secrets": webhook_secrets}),
        base_url=stack.api_url,
    )
    stream = Stream(installation, factory, flavors, shares, rng=random.Random(seed))  # noqa: S311
    if sender_process:
        report = run_in_own_process(stream, count=count, rate=rate)
    else:
        sender = Sender()
        try:
            report = sender.run(stream, count=count, rate=rate)
        finally:
            sender.close()
    result = DemoResult(report=report)
    result.timings_s["send"] = report.elapsed_s
    started = time.perf_counter()
    stack.drain(timeout=120, scope=scope)
    result.timings_s["drain"] = time.perf_counter() - started
    started = time.perf_counter()
    _read_back(stack, observer_url, result)
    result.timings_s["read_back"] = time.perf_counter() - started
    return result


class _Beside(threading.Thread):
    """A phase run in a thread beside others; `join` raises its error on the caller's thread."""

    def __init__(self, name: str, phase: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._phase = phase
        self._error: BaseException | None = None
        self.elapsed_s = 0.0

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self._phase()
        except BaseException as error:  # raised on the joining thread
            self._error = error
        finally:
            self.elapsed_s = time.perf_counter() - started

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self._error is not None:
            raise self._error


class _ForwardingPhase(_Beside):
    """The forwarding phase, beside every phase after the stack starts: it mostly waits for wall
    time (its endpoint fails for `DEMO_FORWARDING_POLICY`'s seconds before Disabled).

    They cannot disturb each other's checks: forwarding publishes only `steam_trap.*` test
    events, marked as its own (the ingest phase leaves them out of its count of the bus), and
    counts only the ids it published; the other phases read only the detail types and ids they
    caused from the bus observer; each drains only its own part of the stack (`DrainScope`), so
    neither waits for (nor mistakes as settled) the other's work. Its checks and figures are
    kept apart and reported in the usual order."""

    def __init__(self, box: Sandbox) -> None:
        self.result = DemoResult(report=SendReport(results=[], elapsed_s=0.0))
        self.scope = demo_forwarding.Forwarding(box.stack).scope
        super().__init__("demo-forwarding", lambda: self._run(box))

    def _run(self, box: Sandbox) -> None:
        self.result.figures["forwarding"] = demo_forwarding.run(
            box.stack, box.endpoints, self.result
        )


def run_later_phases(
    box: Sandbox,
    installation: Installation,
    observer_url: str,
    result: DemoResult,
    forwarding: _ForwardingPhase,
) -> None:
    """Control plane and recovery, on a stack the ingest phase has read back, beside each other
    and beside the forwarding phase (started before ingest); their checks are reported in the
    usual order, the last forwarding check once every phase has ended.

    The control plane reads its gateway events from a queue of its own; the recovery phase's
    provider deliveries pause while either phase drains (`ProviderDeliveries`); the provider's
    first deliveries are the control plane's, checked before the recovery phase starts."""
    stack = box.stack
    rest = forwarding.scope.rest()
    gateway_observer = _observe_bus(stack, "demo-gateway-observer", sorted(GATEWAY_DETAIL_TYPES))
    control_plane = DemoResult(report=result.report)
    recovery = DemoResult(report=result.report)
    deliveries = ProviderDeliveries(box)
    sqs = stack.client("sqs")
    started = time.perf_counter()
    recovering = _Beside(
        "demo-recovery",
        lambda: check_recovery(
            box,
            box.secrets,
            lambda: _drain_queue(sqs, observer_url),
            recovery,
            rest,
            deliveries=deliveries,
        ),
    )
    try:
        check_provider_deliveries(box, control_plane, rest)
        recovering.start()
        check_gateway_goes_offline_and_back(
            box, installation, gateway_observer, control_plane, rest, quiet=deliveries.paused
        )
        result.timings_s["control plane"] = time.perf_counter() - started
    finally:
        if recovering.ident is not None:  # started
            recovering.join()
        forwarding.join()
    result.timings_s["recovery (beside it)"] = recovering.elapsed_s
    result.timings_s["forwarding (beside ingest and both)"] = forwarding.elapsed_s
    result.timings_s["control plane + recovery"] = time.perf_counter() - started
    stack.drain(timeout=60)  # every phase's events forwarded, for the last forwarding check
    checks = forwarding.result.checks
    last = DemoResult(report=result.report)
    demo_forwarding.check_every_delivery_verifies(box.endpoints, last)
    checks[1:1] = last.checks  # where it was reported before it ran last
    for phase in (control_plane, forwarding.result, recovery):
        result.checks.extend(phase.checks)
        result.figures.update(phase.figures)


def print_result(result: DemoResult, stack_start_s: float, stack: EmbeddedStack) -> None:
    summary = result.report.summary()
    print("\nrequests")
    print(
        f"  sent {summary['sent']} in {summary['elapsed_s']} s ({summary['rate_per_s']}/s), "
        f"latency p50 {summary['latency_ms']['p50']} ms, p99 {summary['latency_ms']['p99']} ms"
    )
    print(f"  by flavor:  {summary['by_flavor']}")
    print(f"  by intent:  {summary['by_intent']}")
    print(f"  responses:  {summary['responses_by_status']}")
    print("\nwhat landed")
    for name, value in result.figures.items():
        print(f"  {name.replace('_', ' '):24} {value}")
    print("\nchecks")
    for check in result.checks:
        print(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    timings = {"stack start": stack_start_s, **result.timings_s}
    print("\ntime: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    print("  in-process Lambda invocations (embedded AWS calls included):")
    for name, stats in sorted(stack.lambdas.stats.items()):
        mean_ms = stats.seconds / stats.count * 1000
        print(
            f"    {name:32} {stats.count:5d} calls {stats.seconds:7.1f} s  "
            f"mean {mean_ms:7.1f} ms  errors {stats.errors}"
        )
    print("\nDEMO " + ("PASSED" if result.ok else "FAILED"))


def keep_lake(stack: EmbeddedStack) -> None:
    """Leave a copy of the lake for `python -m local.lake_sql` (docs/athena.md)."""
    target = LAKE_DIR
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(DASHBOARD_DIR, ignore_errors=True)  # a new embedded CloudWatch: start over
    copied = mirror_bucket(stack.client("s3"), stack.outputs[Output.BUCKET_NAME], target)
    print(
        f"\nthe lake ({copied} objects) is in {target}: `.venv/bin/python -m local.lake_sql --list`"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="requests to send")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--sensors", type=int, default=6)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duplicates", type=float, default=0.10, help="share of duplicates")
    parser.add_argument("--stale", type=float, default=0.05, help="share of stale dates")
    parser.add_argument("--bad-auth", type=float, default=0.05, help="share of bad signatures")
    parser.add_argument("--malformed", type=float, default=0.05, help="share of broken JSON")
    args = parser.parse_args(argv)
    shares = FaultShares(
        duplicate=args.duplicates,
        stale_date=args.stale,
        bad_signature=args.bad_auth,
        malformed=args.malformed,
    )
    # The provider's own installation, behind its API and the webhooks it will register; its
    # devices report every few seconds so that a gateway going quiet shows within the demo.
    # The control plane takes its one-sensor gateway offline while the recovery phase runs
    # beside it, which backfills the three other sensors.
    provider_installation = Installation.create(
        seed=args.seed + 1000,
        sensors=4,
        gateways=3,
        start=datetime.now(UTC) - timedelta(seconds=30),
        reading_interval=timedelta(seconds=2),
        status_interval=timedelta(seconds=3),
    )
    print("starting the local sandbox from the CDK app (first run synthesizes: ~10 s)…", flush=True)
    started = time.perf_counter()
    with sandbox(
        provider_installation,
        environment=DEMO_ENVIRONMENT,
        forwarding_policy=DEMO_FORWARDING_POLICY,
    ) as box:
        stack = box.stack
        stack.drain(timeout=60)  # the after-deploy reconcile
        stack_start_s = time.perf_counter() - started
        print(
            f"  webhooks at {stack.api_url}, AWS at {stack.aws_endpoint}, "
            f"provider emulator at {box.provider.base_url}",
            flush=True,
        )
        observer_url = _observe_bus(stack)
        result = DemoResult(report=SendReport(results=[], elapsed_s=0.0))
        check_subscriptions(box, result)
        forwarding = _ForwardingPhase(box)
        forwarding.start()  # beside every phase from here on
        try:
            ingest = run_demo(
                stack,
                box.secrets,
                observer_url,
                count=args.count,
                rate=args.rate,
                sensors=args.sensors,
                gateways=args.gateways,
                seed=args.seed,
                shares=shares,
                scope=forwarding.scope.rest(),
            )
        except BaseException:
            forwarding.join()
            raise
        ingest.checks[:0] = result.checks
        run_later_phases(box, provider_installation, observer_url, ingest, forwarding)
        print_result(ingest, stack_start_s, stack)
        started = time.perf_counter()
        keep_lake(stack)
        charts = render_stack(stack.client("logs"), stack.client("cloudwatch"))
        print(f"the dashboard's widgets, drawn from the embedded CloudWatch: {charts[0]}")
        print(f"time: lake copy and dashboard {time.perf_counter() - started:.1f} s")
    return 0 if ingest.ok else 1


if __name__ == "__main__":
    sys.exit(main())
