"""Forwarding figures on the local sandbox: deliveries per second to one healthy endpoint, the
latency a delivery adds from the bus to the endpoint, and the state transitions each incident
costs (Step Functions bills per transition).

`python -m bench.forwarding` (or `make bench-forwarding`). Wall-clock figures on this machine's
embedded AWS (moto's server in this process, functions run in process, one poller per queue):
compare them between runs on the same machine, not with AWS.
"""

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.constants import Output, forwarding_queue_name
from local.demo_forwarding import ENDPOINT_TIMEOUT_S, Forwarding
from local.emulator import Installation
from local.endpoint_receiver import Mode
from local.sandbox import Sandbox, sandbox
from sensorhook.core.forwarding import EndpointStatus

ENDPOINT = "local-receiver"


def throughput(box: Sandbox, forwarding: Forwarding, count: int) -> dict[str, float]:
    """Events sent straight to the endpoint's queue, as the bus rule would (10 per request, so
    the embedded EventBridge's own pace is not what is measured), timed at the endpoint."""
    receiver = box.endpoints.receivers[ENDPOINT]
    sqs = box.stack.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=forwarding_queue_name("dev", ENDPOINT))["QueueUrl"]
    ids: set[str] = set()
    for first in range(0, count, 10):
        batch = []
        for n in range(first, min(count, first + 10)):
            event_id = str(uuid.uuid4())
            ids.add(event_id)
            event = {
                "version": "0",
                "id": event_id,
                "detail-type": "steam_trap.state_changed",
                "source": "sensorhook",
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "detail": {"n": n},
            }
            batch.append({"Id": str(n), "MessageBody": json.dumps(event)})
        sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)

    def arrivals() -> list[float]:
        return sorted(d.at for d in receiver.ok_deliveries() if d.delivery_id in ids)

    forwarding.wait_until(lambda: len(arrivals()) >= count, 600)
    seen = arrivals()
    span = seen[-1] - seen[0]
    return {
        "events": count,
        "first_to_last_delivery_s": round(span, 2),
        "deliveries_per_s": round((len(seen) - 1) / span, 1) if span else 0.0,
    }


def latency(box: Sandbox, forwarding: Forwarding, samples: int) -> dict[str, float]:
    """One event at a time on an idle endpoint: PutEvents call -> request at the endpoint."""
    receiver = box.endpoints.receivers[ENDPOINT]
    seconds = []
    for n in range(samples):
        sent = time.monotonic()
        [event_id] = forwarding.publish("steam_trap.state_changed", [{"latency_sample": n}])

        def arrived(event_id: str = event_id) -> list[Any]:
            return [d for d in receiver.deliveries if d.delivery_id == event_id]

        forwarding.wait_until(lambda: bool(arrived()), 30)
        arrival = arrived()[0]
        seconds.append(arrival.at - sent)
        time.sleep(0.2)
    seconds.sort()
    return {
        "samples": samples,
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "p90_ms": round(seconds[int(len(seconds) * 0.9) - 1] * 1000, 1),
        "max_ms": round(seconds[-1] * 1000, 1),
    }


def transitions(box: Sandbox, execution_arns: list[str]) -> int:
    """State transitions as Step Functions bills them: every state entered."""
    client = box.stack.client("stepfunctions")
    total = 0
    for arn in execution_arns:
        for page in client.get_paginator("get_execution_history").paginate(executionArn=arn):
            total += sum(1 for e in page["events"] if e["type"].endswith("StateEntered"))
    return total


def executions(box: Sandbox) -> list[str]:
    client = box.stack.client("stepfunctions")
    arn = box.stack.outputs[Output.ENDPOINT_POLICY_STATE_MACHINE_ARN]
    return [e["executionArn"] for e in client.list_executions(stateMachineArn=arn)["executions"]]


def incidents(box: Sandbox, forwarding: Forwarding) -> dict[str, Any]:
    receiver = box.endpoints.receivers[ENDPOINT]
    figures: dict[str, Any] = {}
    box.stack.drain(timeout=120)
    seen = set(executions(box))

    def incident() -> dict[str, Any]:
        box.stack.drain(timeout=120)
        new = [arn for arn in executions(box) if arn not in seen]
        seen.update(new)
        return {"executions": len(new), "transitions": transitions(box, new)}

    # an outage: five no-responses, the six-hour hold (compressed), enabled again, healthy
    receiver.mode, receiver.hang_s = Mode.HANG, ENDPOINT_TIMEOUT_S * 3
    forwarding.publish("steam_trap.state_changed", [{"incident": "outage"}])
    forwarding.wait_for(ENDPOINT, EndpointStatus.TEMPORARILY_DISABLED, 120)
    receiver.mode = Mode.OK
    forwarding.wait_for(ENDPOINT, EndpointStatus.OK, 120)
    figures["no response x5 -> temporarily disabled -> re-enabled -> OK"] = incident()
    # a short error spell: Error, then OK on the next retry
    receiver.mode = Mode.ERROR
    forwarding.publish("steam_trap.state_changed", [{"incident": "error"}])
    forwarding.wait_for(ENDPOINT, EndpointStatus.ERROR, 60)
    receiver.mode = Mode.OK
    forwarding.wait_for(ENDPOINT, EndpointStatus.OK, 60)
    figures["error -> OK"] = incident()
    # 410: Disabled, then an operator's enable delivers the backlog
    receiver.mode = Mode.GONE
    forwarding.publish("steam_trap.state_changed", [{"incident": "gone", "n": n} for n in range(5)])
    forwarding.wait_for(ENDPOINT, EndpointStatus.DISABLED, 60)
    receiver.mode = Mode.OK
    box.stack.drain(timeout=120)
    forwarding.enable(ENDPOINT)
    forwarding.wait_for(ENDPOINT, EndpointStatus.OK, 60)
    figures["410 -> disabled -> operator enable, 5 kept events -> OK"] = incident()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="events for the throughput run")
    parser.add_argument("--latency-samples", type=int, default=30)
    args = parser.parse_args()
    installation = Installation.create(
        seed=3, sensors=1, gateways=1, start=datetime.now(UTC) - timedelta(minutes=5)
    )
    with sandbox(installation) as box:
        box.stack.drain(timeout=120)
        forwarding = Forwarding(box.stack)
        print("forwarding to one healthy local endpoint (Standard Webhooks, verified)")
        print(f"  throughput: {throughput(box, forwarding, args.count)}")
        box.stack.drain(timeout=120)
        print(f"  added latency bus -> endpoint: {latency(box, forwarding, args.latency_samples)}")
        print("state transitions per incident (all executions it started):")
        for name, figure in incidents(box, forwarding).items():
            print(f"  {name}: {figure}")


if __name__ == "__main__":
    main()
