"""A three-day outage: the recovery machine reads each sensor's gap in at least three readings-API
windows (24 h at most each) and stores every reading of it once (embedded AWS, synthesized
machine, Lambda tasks in process)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from infra.constants import Output
from local.emulator import Installation
from local.runtime.step_functions import wait_for_execution
from local.sandbox import Sandbox, sandbox
from sensorhook.dal.queue import IngestQueue
from sensorhook.dal.readings_store import readings_in
from sensorhook.logic.backfill import backfill_envelope

pytestmark = pytest.mark.slow

OUTAGE = timedelta(days=3, hours=2)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    installation = Installation.create(
        seed=31,
        sensors=2,
        gateways=1,
        start=datetime.now(UTC) - OUTAGE,
        reading_interval=timedelta(hours=1),
        status_interval=timedelta(hours=1),
    )
    with sandbox(
        installation,
        schedule_speedup=1.0,
        step_functions_speedup=100.0,
        batching_window_cap=0.5,
        provider_history=OUTAGE + timedelta(days=1),
    ) as running:
        running.stack.drain(timeout=60)
        yield running


def test_a_three_day_gap_is_read_in_windows_and_stored_once(box: Sandbox) -> None:
    stack, provider = box.stack, box.provider
    macs = [sensor.mac for sensor in provider.installation.eversensors]
    provider.cloud.advance()
    # Given each sensor's first reading stored three days ago, nothing since (its webhook
    # was disabled by the provider all that time)
    queue = IngestQueue(stack.outputs[Output.INGEST_QUEUE_URL], client=stack.client("sqs"))
    for mac in macs:
        first = provider.cloud.readings(mac)[0]
        queue.send(backfill_envelope(first, received_at=datetime.now(UTC), request_id="seed"))
    stack.drain(timeout=60)
    provider.disable_subscription("sensor_reading")
    # When the reconciler notices and the machine recovers
    sfn = stack.client("stepfunctions")
    machine = stack.outputs[Output.RECOVERY_STATE_MACHINE_ARN]
    box.invoke(Output.SUBSCRIPTIONS_FUNCTION_NAME)
    [execution] = [
        e
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
        if e["name"].startswith("ds-sensor-readings-")
    ]
    described = wait_for_execution(sfn, execution["executionArn"], timeout=240)
    stack.drain(timeout=120)
    # Then every sensor was read in at least three windows
    assert described["status"] == "SUCCEEDED"
    dynamodb = stack.client("dynamodb")
    parts = dynamodb.query(
        TableName=stack.outputs[Output.INCIDENTS_TABLE],
        KeyConditionExpression="incident = :i AND begins_with(part, :p)",
        ExpressionAttributeValues={":i": {"S": execution["name"]}, ":p": {"S": "sensor#"}},
    )["Items"]
    assert {p["sensor_id"]["S"] for p in parts} == set(macs)
    assert all(int(p["windows"]["N"]) >= 3 for p in parts), parts
    assert all("error" not in p for p in parts)
    # and every reading the installation measured is stored, each from one delivery
    for mac in macs:
        measured = {r["readingDate"][:19] for r in provider.cloud.readings(mac)}
        stored: dict[str, set[str]] = {}
        for page in dynamodb.get_paginator("query").paginate(
            TableName=stack.outputs[Output.READINGS_TABLE],
            KeyConditionExpression="series = :s",
            ExpressionAttributeValues={":s": {"S": f"everactive#{mac}"}},
        ):
            for reading in readings_in(page["Items"]):
                second = reading.measured_at.strftime("%Y-%m-%dT%H:%M:%S")
                stored.setdefault(second, set()).add(reading.event_id)
        assert len(measured) >= 72
        assert measured <= set(stored), sorted(measured - set(stored))[:3]
        assert {len(ids) for ids in stored.values()} == {1}
    incident = described["output"]["incident"]
    assert incident["windows_read"] >= 3 * len(macs)
    assert incident["readings_recovered"] >= 72 * len(macs) - len(macs)
