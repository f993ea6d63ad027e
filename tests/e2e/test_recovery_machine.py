"""The recovery state machine as synthesized, executing on the embedded AWS (moto) with its
Lambda tasks in process, started the way AWS starts it: by the reconciler's own run.

The emulator plays the provider: it disables the Data Services `sensor_reading` webhook while
its installation keeps measuring, serves the gap through its readings API, and injects the
faults (4xx, 429/5xx bursts, a token lapsing mid-run). A background loop delivers whatever the
installation produces to the enabled webhooks, as the provider does, so deliveries resume by
themselves once the machine re-enabled the subscription.
"""

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.constants import Output
from local.demo import _drain_queue, _observe_bus
from local.emulator import Installation
from local.runtime.step_functions import wait_for_execution
from local.sandbox import Sandbox, sandbox
from sensorhook.dal.readings_store import readings_in

pytestmark = pytest.mark.slow

# dev's Retry intervals (60 s doubling, full jitter) and its 15-minute confirm wait (60 s polls)
# take 0.6 s doubling and 9 s: long enough for the first delivery after re-enabling to arrive
SPEEDUP = 100.0
READINGS = "ds-sensor-readings"


@dataclass
class World:
    box: Sandbox
    observer_url: str
    operator_url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    delivering: threading.Event = field(default_factory=threading.Event)

    def settle(self) -> None:
        """Drain the stack with the provider's deliveries paused (drain waits for quiet)."""
        self.delivering.clear()
        try:
            self.box.stack.drain(timeout=60)
        finally:
            self.delivering.set()

    @property
    def sfn(self) -> Any:
        return self.box.stack.client("stepfunctions")

    @property
    def machine_arn(self) -> str:
        return self.box.stack.outputs[Output.RECOVERY_STATE_MACHINE_ARN]

    def observed(self) -> list[dict[str, Any]]:
        self.events += _drain_queue(self.box.stack.client("sqs"), self.observer_url)
        return self.events

    def executions(self) -> list[dict[str, Any]]:
        return self.sfn.list_executions(stateMachineArn=self.machine_arn)["executions"]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def incident(self, execution_name: str) -> dict[str, Any]:
        """The incident's summary item as the table keeps it."""
        item = self.box.stack.client("dynamodb").get_item(
            TableName=self.box.stack.outputs[Output.INCIDENTS_TABLE],
            Key={"incident": {"S": execution_name}, "part": {"S": "summary"}},
        )["Item"]
        return {name: next(iter(value.values())) for name, value in item.items()}

    def subscription_row(self, name: str) -> dict[str, Any]:
        item = self.box.stack.client("dynamodb").get_item(
            TableName=self.box.stack.outputs[Output.SUBSCRIPTIONS_TABLE],
            Key={"name": {"S": name}},
        )["Item"]
        return {key: next(iter(value.values())) for key, value in item.items()}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    installation = Installation.create(
        seed=23,
        sensors=3,
        gateways=1,
        start=datetime.now(UTC) - timedelta(seconds=20),
        reading_interval=timedelta(seconds=2),
        status_interval=timedelta(seconds=3),
    )
    # the schedules stay on their deployed minutes: every reconcile here is the test's own
    with sandbox(
        installation,
        schedule_speedup=1.0,
        step_functions_speedup=SPEEDUP,
        batching_window_cap=0.5,
    ) as box:
        box.stack.drain(timeout=60)  # the after-deploy reconcile registered the webhooks
        stack = box.stack
        sqs, sns = stack.client("sqs"), stack.client("sns")
        operator_url = sqs.create_queue(QueueName="operator-inbox")["QueueUrl"]
        sns.subscribe(
            TopicArn=stack.outputs[Output.RECOVERY_TOPIC_ARN],
            Protocol="sqs",
            Endpoint=sqs.get_queue_attributes(QueueUrl=operator_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"],
        )
        world = World(box, _observe_bus(stack), operator_url)
        stopping = threading.Event()

        def deliver() -> None:
            while not stopping.wait(0.5):
                if world.delivering.wait(0.5) and not stopping.is_set():
                    box.provider.deliver()

        delivering = threading.Thread(target=deliver, daemon=True)
        delivering.start()
        world.delivering.set()
        # every sensor has readings stored before any outage: a gap starts at the newest one
        deadline = time.monotonic() + 90
        macs = [sensor.mac for sensor in installation.eversensors]
        while time.monotonic() < deadline and not all(
            _stored_reading_times(world, mac) for mac in macs
        ):
            time.sleep(1)
        world.settle()
        try:
            yield world
        finally:
            stopping.set()
            delivering.join()


def _reconcile_and_wait(world: World, *, timeout: float = 120) -> list[dict[str, Any]]:
    """Run the reconciler (as its schedule would); wait for every execution it started."""
    before = {e["executionArn"] for e in world.executions()}
    world.box.invoke(Output.SUBSCRIPTIONS_FUNCTION_NAME)
    started = [e for e in world.executions() if e["executionArn"] not in before]
    done = [wait_for_execution(world.sfn, e["executionArn"], timeout) for e in started]
    world.settle()
    return done


def _readings_api_gap(world: World, since: datetime, until: datetime) -> dict[str, list[str]]:
    """Per sensor, the reading times the installation measured in [since, until]."""
    measured: dict[str, list[str]] = {}
    for sensor in world.box.provider.installation.eversensors:
        for reading in world.box.provider.cloud.readings(sensor.mac):
            if since.timestamp() <= reading["timestamp"] <= until.timestamp():
                measured.setdefault(sensor.mac, []).append(reading["readingDate"])
    return measured


def _stored_reading_times(world: World, mac: str) -> set[str]:
    client = world.box.stack.client("dynamodb")
    times: set[str] = set()
    for page in client.get_paginator("query").paginate(
        TableName=world.box.stack.outputs[Output.READINGS_TABLE],
        KeyConditionExpression="series = :s",
        ExpressionAttributeValues={":s": {"S": f"everactive#{mac}"}},
    ):
        times |= {r.measured_at.strftime("%Y-%m-%dT%H:%M:%SZ") for r in readings_in(page["Items"])}
    return times


def _published_readings(world: World) -> Counter[tuple[str, str, str, str]]:
    """How often each reading (sensor, time, metric, channel) was published."""
    published: Counter[tuple[str, str, str, str]] = Counter()
    for event in world.observed():
        if event["detail-type"] == "readings.received":
            for reading in event["detail"]["readings"]:
                published[
                    (
                        reading["sensor_id"],
                        reading["measured_at"][:19],
                        reading["metric"],
                        reading["channel"],
                    )
                ] += 1
    return published


def _task_attempts(history: list[dict[str, Any]], state: str) -> tuple[int, int]:
    """(invocations, failed invocations) of one Task state."""
    current, scheduled, failed = None, 0, 0
    for event in history:
        if event["type"] == "TaskStateEntered":
            current = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "LambdaFunctionScheduled" and current == state:
            scheduled += 1
        elif event["type"] == "LambdaFunctionFailed" and current == state:
            failed += 1
    return scheduled, failed


def test_recovered_on_the_first_try_backfills_the_gap_exactly_once(world: World) -> None:
    # Given the provider disabled the readings webhook while the installation kept measuring
    disabled_at = datetime.now(UTC)
    world.box.provider.disable_subscription("sensor_reading")
    time.sleep(8)  # about four readings per sensor go undelivered
    # When the reconciler notices
    (execution,) = _reconcile_and_wait(world)
    # Then one execution recovered it, re-enabling on the first attempt
    assert execution["status"] == "SUCCEEDED"
    assert execution["name"].startswith(f"{READINGS}-")
    history = world.history(execution["executionArn"])
    assert _task_attempts(history, "ReEnable") == (1, 0)
    output = execution["output"]
    # (the detecting run had already re-enabled it: the machine's reconcile found it right)
    assert output["reenabled"]["status"] in ("active", "re-enabled")
    assert all(hook["enabled"] for hook in world.box.provider.webhooks.values())
    # deliveries resumed before the gap was read up to the plan's end
    assert output["confirmation"]["confirmed"] is True
    # every reading measured during the outage is stored, and published exactly once
    plan_end = datetime.fromisoformat(output["plan"]["end"])
    gap = _readings_api_gap(world, disabled_at, plan_end)
    assert sum(len(times) for times in gap.values()) >= 6, gap
    published = _published_readings(world)
    for mac, times in gap.items():
        assert set(times) <= _stored_reading_times(world, mac)
        for reading_time in times:
            counts = [n for key, n in published.items() if key[:2] == (mac, reading_time[:19])]
            assert counts, f"{mac} {reading_time} never published"
            assert set(counts) == {1}, f"{mac} {reading_time} published {counts}"
    # the incident record says what was done
    record = world.incident(execution["name"])
    assert record["outcome"] == "recovered"
    assert record["cause"] == "disabled_by_provider"
    assert int(record["readings_recovered"]) >= 6
    assert int(record["windows_read"]) >= 1
    assert int(record["api_calls"]) > int(record["windows_read"])
    assert set(record["readings_recovered_per_sensor"]) == set(gap)
    recovered = [e for e in world.observed() if e["detail-type"] == "subscription.recovered"]
    assert [e["detail"]["execution"] for e in recovered] == [execution["name"]]
    # and the subscription's incident is closed
    assert "incident_id" not in world.subscription_row(READINGS)


def test_a_reading_that_also_arrives_by_webhook_is_stored_and_published_once(
    world: World,
) -> None:
    # Given an outage whose readings the machine backfills
    disabled_at = datetime.now(UTC)
    world.box.provider.disable_subscription("sensor_reading")
    time.sleep(4)
    (execution,) = _reconcile_and_wait(world)
    assert execution["status"] == "SUCCEEDED"
    plan_end = datetime.fromisoformat(execution["output"]["plan"]["end"])
    gap = _readings_api_gap(world, disabled_at, plan_end)
    # When the provider also delivers every gap reading by webhook afterwards
    target = next(
        t for t in world.box.provider.registered_targets() if t.flavor.value.endswith("reading")
    )
    from local.emulator.api.server import _delivery  # the provider's own request builder
    from local.emulator.installation import Payload
    from local.emulator.sender import Sender

    bodies = [
        r
        for s in world.box.provider.installation.eversensors
        for r in world.box.provider.cloud.readings(s.mac)
        if r["readingDate"] in set(gap.get(s.mac, ()))
    ]
    deliveries = [
        _delivery(Payload(target.flavor, body, "sensor_reading"), target) for body in bodies
    ]
    report = Sender(concurrency=4).run(deliveries, count=len(deliveries))
    world.settle()
    # Then they were accepted, and yet each reading is published exactly once
    assert {r.outcome for r in report.sent} == {"202"}
    published = _published_readings(world)
    for body in bodies:
        counts = [
            n
            for key, n in published.items()
            if key[:2] == (body["macAddress"], body["readingDate"][:19])
        ]
        assert counts and set(counts) == {1}, (body["macAddress"], body["readingDate"], counts)


def test_a_second_start_of_the_same_incident_is_a_no_op(world: World) -> None:
    # Given an incident being recovered
    world.box.provider.disable_subscription("sensor_reading")
    before = {e["executionArn"] for e in world.executions()}
    world.box.invoke(Output.SUBSCRIPTIONS_FUNCTION_NAME)
    # When the reconciler runs again before it ended, and the same name is started by hand
    world.box.invoke(Output.SUBSCRIPTIONS_FUNCTION_NAME)
    started = [e for e in world.executions() if e["executionArn"] not in before]
    assert len(started) == 1
    (execution,) = started
    with pytest.raises(world.sfn.exceptions.ExecutionAlreadyExists):
        world.sfn.start_execution(
            stateMachineArn=world.machine_arn, name=execution["name"], input="{}"
        )
    described = wait_for_execution(world.sfn, execution["executionArn"], 120)
    world.settle()
    # Then one recovery ran, and a later run after it closed starts nothing new
    assert described["status"] == "SUCCEEDED"
    world.box.invoke(Output.SUBSCRIPTIONS_FUNCTION_NAME)
    later = [e["name"] for e in world.executions() if e["executionArn"] not in before]
    assert later == [execution["name"]]


def test_recovered_after_retries_with_backoff(world: World) -> None:
    # Given a provider API refusing the next 8 calls (400s are not retried by the client: a
    # failed reconcile makes exactly one list call per API), so the detecting run fails
    # (2 calls) and so does the first re-enable attempt of each of the 3 incidents (6 calls)
    world.box.provider.fail_next(400, 8)
    # When the reconciler runs
    executions = _reconcile_and_wait(world)
    # Then every subscription it could not reconcile got its incident, each recovered
    assert sorted(e["name"].rsplit("-", 1)[0] for e in executions) == [
        "ds-gateway-status",
        READINGS,
        "v2020-steam-traps",
    ]
    assert {e["status"] for e in executions} == {"SUCCEEDED"}
    attempts = [_task_attempts(world.history(e["executionArn"]), "ReEnable") for e in executions]
    assert sum(failed for _, failed in attempts) == 3
    assert all(scheduled == failed + 1 for scheduled, failed in attempts)
    for execution in executions:
        assert world.incident(execution["name"])["cause"] == "reconcile_failed"
    # a steam-trap subscription has nothing the API could give back: said so, not faked
    traps = next(e for e in executions if e["name"].startswith("v2020"))
    assert "cannot" in world.incident(traps["name"])["not_recoverable"]


def test_backfill_rides_out_429_and_500_bursts_and_a_token_expiring_mid_run(
    world: World,
) -> None:
    # Given a backfill started on its own (the operator CLI's input) over the last minute
    now = datetime.now(UTC)
    macs = [s.mac for s in world.box.provider.installation.eversensors]
    provider = world.box.provider
    provider.requests.clear()
    # and a provider that throttles, then fails, and lets its tokens lapse in the middle
    provider.fail_next(429, 3, retry_after_s=0)
    provider.fail_next(500, 6)
    provider.expire_tokens_after(12)
    name = f"{READINGS}-backfill-{now:%H%M%S}"
    execution = world.sfn.start_execution(
        stateMachineArn=world.machine_arn,
        name=name,
        input=json.dumps(
            {
                "subscription": READINGS,
                "provider": "everactive-ds",
                "event_type": "sensor_reading",
                "incident_id": f"backfill-{now:%H%M%S}",
                "cause": "operator_backfill",
                "detected_at": now.isoformat(),
                "backfill": {
                    "sensors": macs,
                    "start": (now - timedelta(minutes=1)).isoformat(),
                    "end": now.isoformat(),
                },
            }
        ),
    )
    described = wait_for_execution(world.sfn, execution["executionArn"], 120)
    world.settle()
    # Then it read every sensor completely
    assert described["status"] == "SUCCEEDED"
    statuses = Counter(status for _, _, status in provider.requests)
    assert statuses[429] == 3 and statuses[500] == 6 and statuses[401] >= 1
    record = world.incident(name)
    assert record["failed_sensors"] == []
    gap = _readings_api_gap(world, now - timedelta(minutes=1), now - timedelta(seconds=1))
    for mac, times in gap.items():
        assert set(times) <= _stored_reading_times(world, mac)
    assert int(record["readings_recovered"]) >= sum(len(times) for times in gap.values())


def _forget_sensor(world: World, mac: str) -> None:
    """Remove a sensor from the readings and sensor_state tables: as for a sensor newly
    installed, the stores have never heard of it."""
    client = world.box.stack.client("dynamodb")
    for output, sort_key in (
        (Output.READINGS_TABLE, "point"),
        (Output.SENSOR_STATE_TABLE, "metric_channel"),
    ):
        table = world.box.stack.outputs[output]
        for page in client.get_paginator("query").paginate(
            TableName=table,
            KeyConditionExpression="series = :s",
            ExpressionAttributeValues={":s": {"S": f"everactive#{mac}"}},
        ):
            for item in page["Items"]:
                client.delete_item(
                    TableName=table, Key={"series": item["series"], sort_key: item[sort_key]}
                )


def test_a_sensor_first_heard_during_the_outage_is_backfilled_too(world: World) -> None:
    # (late in the module: the readings forgotten here stay known to the idempotency store,
    # so a later backfill over them would not store them again)
    # Given a sensor the stores have never heard of (its first readings come in the outage)
    disabled_at = datetime.now(UTC)
    world.box.provider.disable_subscription("sensor_reading")
    world.settle()  # what was delivered before the outage has landed: forget it all
    mac = world.box.provider.installation.eversensors[0].mac
    _forget_sensor(world, mac)
    time.sleep(4)
    # When the reconciler notices and the machine recovers
    (execution,) = _reconcile_and_wait(world)
    assert execution["status"] == "SUCCEEDED"
    plan_end = datetime.fromisoformat(execution["output"]["plan"]["end"])
    gap = _readings_api_gap(world, disabled_at, plan_end)
    # Then its readings of the hole were read back as well (it is planned from where the
    # subscription's deliveries stopped) and stored
    assert len(gap[mac]) >= 2, gap
    assert set(gap[mac]) <= _stored_reading_times(world, mac), execution["output"]["plan"]


def test_gives_up_marks_the_subscription_disabled_and_tells_the_operator(world: World) -> None:
    # Given a provider that refuses every call from now on
    world.box.provider.fail_next(400, 10_000)
    try:
        executions = _reconcile_and_wait(world)
    finally:
        world.box.provider.clear_failures()
    readings = next(e for e in executions if e["name"].startswith(READINGS))
    # Then the machine retried every attempt and gave up
    assert readings["status"] == "FAILED"
    assert readings["error"] == "SubscriptionDisabled"
    history = world.history(readings["executionArn"])
    assert _task_attempts(history, "ReEnable") == (6, 6)  # dev: recovery_attempts 6
    # the subscription is marked disabled, for an operator
    row = world.subscription_row(READINGS)
    assert row["status"] == "disabled" and "gave_up_at" in row and "incident_id" not in row
    # the event and the operator's notification
    disabled = [
        e["detail"]
        for e in world.observed()
        if e["detail-type"] == "subscription.disabled" and e["detail"]["subscription"] == READINGS
    ]
    assert len(disabled) == 1 and disabled[0]["outcome"] == "gave_up"
    notes = _drain_queue(world.box.stack.client("sqs"), world.operator_url)
    assert any(READINGS in json.dumps(note) for note in notes)
    # and the next reconcile starts nothing for it while it waits for the operator
    before = {e["executionArn"] for e in world.executions()}
    world.box.invoke(Output.SUBSCRIPTIONS_FUNCTION_NAME)
    started = [e for e in world.executions() if e["executionArn"] not in before]
    assert not [e for e in started if e["name"].startswith(READINGS)]
    assert world.subscription_row(READINGS)["status"] == "disabled"
