"""`make demo`, recovery phase: a provider outage recovered with an exact backfill, and an
Efento gap recorded exactly (docs/recovery.md).

1. The emulator's provider disables the Data Services `sensor_reading` webhook for a while; its
   installation keeps measuring (and keeps delivering everything else).
2. The reconciler's schedule fires (as EventBridge would): it notices, opens an incident and
   starts the recovery state machine, which re-enables the webhook, waits for the first
   delivery, reads the gap through the readings API and puts it on the ingest queue.
3. Every reading the installation measured during the outage must be in DynamoDB, and have
   been published, exactly once.
4. An Efento measurement point loses a whole batch and has MISSING periods in the next one:
   each gap must be published as `readings.gap_detected`, exactly.
"""

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from infra.constants import SUBSCRIPTIONS_SCHEDULE_RULE_ID, Output
from local.emulator import DeliveryFactory, Installation, Secrets, Sender
from local.runtime.stack import EVERYTHING, DrainScope
from local.runtime.step_functions import wait_for_execution
from local.sandbox import Sandbox
from sensorhook.dal.readings_store import readings_in

OUTAGE_S = 8.0  # the installation reports every 2 s: four readings per sensor go undelivered
DEMO_WEBHOOK_SECRETS = (
    "V2020_SIGNING_SECRET_ARN",
    "DS_HEADER_SECRET_ARN",
    "EFENTO_HEADER_SECRET_ARN",
)


class Result(Protocol):
    figures: dict[str, Any]

    def check(self, name: str, ok: bool, detail: str) -> None: ...


class ProviderDeliveries:
    """The provider posting what its installation produces every `every_s`, as it does in AWS,
    while `running()`. A drain pauses it (`paused()`, from any phase running beside this one):
    the stack settles only when no new work arrives. A pause waits for a delivery under way."""

    def __init__(self, box: Sandbox, every_s: float = 0.5) -> None:
        self._box = box
        self._every_s = every_s
        self._changed = threading.Condition()
        self._pauses = 0

    @contextmanager
    def running(self) -> Iterator[None]:
        stopping = threading.Event()

        def deliver() -> None:
            while not stopping.wait(self._every_s):
                with self._changed:
                    while self._pauses and not stopping.is_set():
                        self._changed.wait(0.1)
                    if not stopping.is_set():
                        self._box.provider.deliver()

        thread = threading.Thread(target=deliver, name="provider-deliveries", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stopping.set()
            thread.join()

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._changed:
            self._pauses += 1
        try:
            yield
        finally:
            with self._changed:
                self._pauses -= 1
                self._changed.notify_all()


def _settle(box: Sandbox, deliveries: ProviderDeliveries, scope: DrainScope) -> None:
    with deliveries.paused():
        box.stack.drain(timeout=120, scope=scope)


def _published(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """How many readings.received events carried each (sensor, reading second)."""
    counts: Counter[tuple[str, str]] = Counter()
    for event in events:
        if event["detail-type"] == "readings.received":
            seen = {(r["sensor_id"], r["measured_at"][:19]) for r in event["detail"]["readings"]}
            counts.update(seen)
    return counts


def _stored(box: Sandbox, mac: str) -> Counter[str]:
    """Per reading second, how many distinct deliveries (event ids) the stored rows came from."""
    client = box.stack.client("dynamodb")
    sources: dict[str, set[str]] = {}
    for page in client.get_paginator("query").paginate(
        TableName=box.stack.outputs[Output.READINGS_TABLE],
        KeyConditionExpression="series = :s",
        ExpressionAttributeValues={":s": {"S": f"everactive#{mac}"}},
    ):
        for reading in readings_in(page["Items"]):
            second = reading.measured_at.strftime("%Y-%m-%dT%H:%M:%S")
            sources.setdefault(second, set()).add(reading.event_id)
    return Counter({second: len(ids) for second, ids in sources.items()})


def _incident_fields(item: dict[str, Any]) -> dict[str, Any]:
    """What tells why a recovery did or did not start, from a subscriptions table item."""
    shown = ("name", "status", "incident_id", "gave_up_at", "last_error")
    return {key: next(iter(value.values())) for key, value in item.items() if key in shown}


def check_recovery(
    box: Sandbox,
    secrets: dict[str, Any],
    drain_events: Any,
    result: Result,
    scope: DrainScope = EVERYTHING,
    *,
    deliveries: ProviderDeliveries | None = None,
) -> None:
    """`drain_events()` returns the bus events observed since it was last called; drains wait
    for `scope` (the rest of the stack may be busy with a phase running beside this one);
    `deliveries` are the provider's, shared with a phase beside this one that pauses them for
    its own drains."""
    stack, provider = box.stack, box.provider
    deliveries = deliveries or ProviderDeliveries(box)
    sfn = stack.client("stepfunctions")
    machine = stack.outputs[Output.RECOVERY_STATE_MACHINE_ARN]
    drain_events()
    with deliveries.running():
        _settle(box, deliveries, scope)
        # taken before the outage: the compressed schedule may notice it (and start the
        # recovery) before the demo fires the schedule itself
        before = {
            e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]
        }
        disabled_at = datetime.now(UTC)
        provider.disable_subscription("sensor_reading")
        time.sleep(OUTAGE_S)
        started = time.perf_counter()
        stack.fire_schedule(SUBSCRIPTIONS_SCHEDULE_RULE_ID)
        new: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60  # the scheduled invocation runs asynchronously
        while not new and time.monotonic() < deadline:
            time.sleep(0.5)
            new = [
                e
                for e in sfn.list_executions(stateMachineArn=machine)["executions"]
                if e["executionArn"] not in before
            ]
        described = [wait_for_execution(sfn, e["executionArn"], timeout=180) for e in new]
        elapsed = time.perf_counter() - started
        _settle(box, deliveries, scope)
    events = drain_events()
    earlier = sfn.list_executions(stateMachineArn=machine)["executions"]
    subscription = stack.client("dynamodb").scan(
        TableName=stack.outputs[Output.SUBSCRIPTIONS_TABLE]
    )["Items"]
    result.check(
        "a disabled subscription is noticed and recovered by one execution",
        len(described) == 1 and described[0]["status"] == "SUCCEEDED",
        f"{[(d['name'], d['status']) for d in described]} in {elapsed:.1f} s; executions "
        f"{[(e['name'], e['status']) for e in earlier]}; subscriptions "
        f"{[_incident_fields(item) for item in subscription]}",
    )
    if len(described) != 1 or described[0]["status"] != "SUCCEEDED":
        return
    execution = described[0]
    output = execution["output"]
    plan_end = datetime.fromisoformat(output["plan"]["end"])
    gap = {
        sensor.mac: [
            r["readingDate"][:19]
            for r in provider.cloud.readings(sensor.mac)
            if disabled_at.timestamp() <= r["timestamp"] <= plan_end.timestamp()
        ]
        for sensor in provider.installation.eversensors
    }
    published = _published(events)
    measured = sum(len(times) for times in gap.values())
    missing, doubled = [], []
    for mac, times in gap.items():
        stored = _stored(box, mac)
        for second in times:
            if stored.get(second + "Z", 0) == 0 and stored.get(second, 0) == 0:
                missing.append((mac, second))
            if published[(mac, second)] != 1:
                doubled.append((mac, second, published[(mac, second)]))
    ok = measured > 0 and not missing and not doubled
    # on a failure, what tells a hole in the plan from one in the reading back
    windows = {
        item["sensor_id"]: f"{item['start']}..{item['end']}"
        for item in output["plan"]["items"]
        if item["sensor_id"] in gap
    }
    result.check(
        "every reading measured during the outage is in DynamoDB and published exactly once",
        ok,
        f"{measured} readings measured while the webhook was disabled; missing {missing[:3]}, "
        f"published other than once {doubled[:3]}"
        + (
            ""
            if ok
            else f"; disabled at {disabled_at.isoformat()}, detected at "
            f"{output['detected_at']}, deliveries confirmed "
            f"{output.get('confirmation', {}).get('confirmed')}, planned {windows}"
        ),
    )
    history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)[
        "events"
    ]
    transitions = sum(1 for event in history if event["type"].endswith("StateEntered"))
    incident = output.get("incident", {})
    recovered = [e for e in events if e["detail-type"] == "subscription.recovered"]
    result.check(
        "the incident is recorded and subscription.recovered published",
        incident.get("outcome") == "recovered" and len(recovered) == 1,
        f"incident {incident.get('incident_id')}: cause {incident.get('cause')}, "
        f"{incident.get('readings_recovered')} readings over {incident.get('sensors')} sensors",
    )
    result.figures["recovery incident"] = (
        f"{incident.get('duration_s')} s detected to closed, {incident.get('windows_read')} "
        f"windows, {incident.get('api_calls')} API calls, {transitions} state transitions, "
        f"deliveries confirmed {incident.get('deliveries_confirmed')}"
    )
    check_efento_gap(box, secrets, drain_events, result, scope)


def check_efento_gap(
    box: Sandbox,
    secrets: dict[str, Any],
    drain_events: Any,
    result: Result,
    scope: DrainScope = EVERYTHING,
) -> None:
    installation: Installation = box.provider.installation
    gap = installation.efento_gap()
    factory = DeliveryFactory(
        secrets=Secrets.model_validate(
            {"webhook_secrets": {name: secrets[name] for name in DEMO_WEBHOOK_SECRETS}}
        ),
        base_url=box.stack.api_url,
    )
    drain_events()
    for payload in gap.sent:  # in order, as Efento sends them
        Sender().run([factory.authentic(payload)], count=1)
        box.stack.drain(timeout=60, scope=scope)
    recorded = {
        (
            e["detail"]["kind"],
            e["detail"]["channel"],
            e["detail"]["first_missing_at"][:19],
            e["detail"]["last_missing_at"][:19],
            e["detail"]["missing_periods"],
        )
        for e in drain_events()
        if e["detail-type"] == "readings.gap_detected"
        and e["detail"]["measurement_point"] == str(gap.point.point_id)
    }
    expected = {
        (kind, str(channel.number), first.isoformat()[:19], last.isoformat()[:19], periods)
        for channel in gap.point.channels
        for kind, (first, last, periods) in (
            ("between_batches", gap.lost),
            ("missing_status", gap.missing),
        )
    }
    result.check(
        "an Efento gap is recorded exactly (lost batch and MISSING periods, per channel)",
        recorded == expected,
        f"point {gap.point.point_id}: expected {sorted(expected)[:2]}…, recorded "
        f"{sorted(recorded)[:2]}… ({len(recorded)}/{len(expected)})",
    )
