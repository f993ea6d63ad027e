"""`make demo`, forwarding phase: an endpoint that stops answering walks through Efento's
statuses on the compressed clock, is enabled again, and receives its backlog in order.

The dev stage declares two local endpoints (cdk.json `forwarding_endpoints`); the demo serves
them with `EndpointReceiver`s on free ports, which verify every delivery with the
`standardwebhooks` and `httpsig` libraries. Their URLs (and a short timeout) reach the
functions as environment overrides, the way the provider emulator's URL does.

The phase:
1. both endpoints answer 200: New -> OK, every delivery verified;
2. `local-receiver` stops answering (hangs past the timeout): five no-responses in a row ->
   Temporarily disabled; the events published meanwhile are kept in its backlog;
3. the six-hour hold passes on the compressed clock: enabled again automatically;
4. it answers 500 until thirty hours (shortened by configuration) pass without success:
   Disabled, and the events keep going to the backlog;
5. it answers 200 again and an operator enables it (`endpoints enable`): the backlog arrives
   in order of publication, none lost, none twice; every transition was published, stored
   with its time, and reads back.
"""

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from infra.config import CONTEXT_KEY, StageConfig, load_stage_config
from infra.constants import Output, forwarding_secret_name
from local.endpoint_receiver import EndpointReceiver, Mode
from local.runtime.stack import DrainScope, EmbeddedStack
from sensorhook.core.forwarding import EndpointStatus, render_endpoints
from sensorhook.dal.backlog import Backlog
from sensorhook.dal.endpoints_store import EndpointsStore
from sensorhook.dal.policy_machine import PolicyMachine
from sensorhook.logic.endpoint_admin import list_endpoints, request_action

# cdk.json read directly: importing the CDK app (aws_cdk, jsii's Node) costs seconds
CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
ENDPOINT_TIMEOUT_S = 1.0
# The thresholds the demo and the tests run: the seed's six-hour hold and retry schedule run on
# the machine's compressed clock; thirty hours are judged by wall time in the functions, so they
# are shortened by configuration instead.
STEP_FUNCTIONS_SPEEDUP = 3600.0
DEMO_POLICY = {
    "disable_after_seconds": 30,
    "retry_initial_seconds": 1,
    "retry_multiplier": 1,
    "retry_max_seconds": 1,
}
# the functions forwarding runs (their names end with these; `Forwarding.scope`)
FUNCTIONS = ("-forwarder", "-endpoint-policy")
# the key of the phase's own test events' detail: other phases' checks of the bus leave them out
TEST_EVENT_KEY = "demo_forwarding_phase"
# reading an endpoint's status is a DynamoDB read: often enough to see each transition (the
# machine's compressed clock checks every second), not so often that it slows the stack
STATUS_POLL_S = 0.2
CHECK_SECONDS = 3600  # the machine looks at a failing endpoint every hour: 1 s compressed
# New -> ... : what the phase makes the endpoint go through
EXPECTED_WALK = [
    "OK",  # answers 200
    "No response",  # hangs past the timeout
    "Temporarily disabled",  # five in a row
    "No response",  # enabled again after the hold, with the last answer it gave
    "Error",  # the backlog's first try meets a 500
    "Disabled",  # thirty hours (shortened) without success
    "New",  # an operator enables it: a fresh start
    "OK",  # the backlog is delivered
]


def dev_config() -> StageConfig:
    return load_stage_config(json.loads(CDK_JSON.read_text())["context"][CONTEXT_KEY], "dev")


class Checks(Protocol):
    def check(self, name: str, ok: bool, detail: str) -> None: ...


@dataclass
class Endpoints:
    """The dev stage's forwarding endpoints, served locally."""

    receivers: dict[str, EndpointReceiver]
    policy: dict[str, Any] = field(default_factory=lambda: dict(DEMO_POLICY))

    def environment(self) -> dict[str, str]:
        config = dev_config()
        endpoints = [
            endpoint.model_copy(
                update={
                    "url": self.receivers[endpoint.name].url,
                    "timeout_seconds": ENDPOINT_TIMEOUT_S,
                }
            )
            for endpoint in config.forwarding_endpoints
        ]
        return {
            "FORWARDING_ENDPOINTS": render_endpoints(endpoints),
            "FORWARDING_POLICY": json.dumps(self.policy),
            "POLICY_CHECK_SECONDS": str(CHECK_SECONDS),
        }

    def give_secrets(self, stack: EmbeddedStack) -> None:
        """Each receiver learns its endpoint's signing secret, as a user would copy it."""
        secrets = stack.client("secretsmanager")
        for name, receiver in self.receivers.items():
            document = json.loads(
                secrets.get_secret_value(SecretId=forwarding_secret_name("dev", name))[
                    "SecretString"
                ]
            )
            receiver.secret = document["secret"]

    def stop(self) -> None:
        for receiver in self.receivers.values():
            receiver.stop()


@contextlib.contextmanager
def local_endpoints(policy: Mapping[str, Any] | None = None) -> Iterator[Endpoints]:
    config = dev_config()
    receivers = {
        endpoint.name: EndpointReceiver(scheme=endpoint.signature_scheme.value).start()
        for endpoint in config.forwarding_endpoints
    }
    endpoints = Endpoints(receivers, {**DEMO_POLICY, **(policy or {})})
    try:
        yield endpoints
    finally:
        endpoints.stop()


@dataclass
class Forwarding:
    """Handles on the deployed forwarding, read from the stack outputs like a user would."""

    stack: EmbeddedStack

    @property
    def store(self) -> EndpointsStore:
        return EndpointsStore(
            self.stack.outputs[Output.ENDPOINTS_TABLE], self.stack.client("dynamodb")
        )

    @property
    def machine(self) -> PolicyMachine:
        return PolicyMachine(
            self.stack.outputs[Output.ENDPOINT_POLICY_STATE_MACHINE_ARN],
            self.stack.client("stepfunctions"),
        )

    @property
    def backlog(self) -> Backlog:
        return Backlog(self.stack.outputs[Output.BUCKET_NAME], self.stack.client("s3"))

    @property
    def scope(self) -> DrainScope:
        """What forwarding runs: its functions and the policy machine (`drain` waits for only
        these, so other phases may run beside this one)."""
        arn = self.stack.outputs[Output.ENDPOINT_POLICY_STATE_MACHINE_ARN]
        return DrainScope(
            functions=frozenset(
                function["FunctionName"]
                for page in self.stack.client("lambda").get_paginator("list_functions").paginate()
                for function in page["Functions"]
                if function["FunctionName"].endswith(FUNCTIONS)
            ),
            state_machines=frozenset({arn}),
        )

    def status(self, name: str) -> EndpointStatus:
        return self.store.get(name).status

    def wait_for(self, name: str, status: EndpointStatus, timeout: float = 60.0) -> float:
        """Seconds until the endpoint has `status`; raises TimeoutError naming what it has."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.status(name) is status:
                return time.monotonic() - started
            time.sleep(STATUS_POLL_S)
        raise TimeoutError(f"{name} still {self.status(name)} after {timeout} s, not {status}")

    def wait_until(
        self, condition: Callable[[], bool], timeout: float = 60.0, every_s: float = 0.05
    ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(every_s)
        return condition()

    def publish(self, detail_type: str, details: list[dict[str, Any]]) -> list[str]:
        """Put events on sensorhook's bus (as the processor does), one by one a few ms apart:
        the order of arrival is SQS's SentTimestamp, in milliseconds; returns their ids."""
        events = self.stack.client("events")
        ids: list[str] = []
        for detail in details:
            response = events.put_events(
                Entries=[
                    {
                        "Source": "sensorhook",
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail),
                        "EventBusName": self.stack.outputs[Output.EVENT_BUS_NAME],
                    }
                ]
            )
            ids.append(response["Entries"][0]["EventId"])
            time.sleep(0.003)
        return ids

    def enable(self, name: str) -> str:
        return request_action(self.store, self.machine, name, "enable")

    def disable(self, name: str) -> str:
        return request_action(self.store, self.machine, name, "disable")

    def listing(self) -> list[dict[str, Any]]:
        configured = self.stack.outputs[Output.FORWARDING_ENDPOINTS].split(",")
        return [view.as_dict() for view in list_endpoints(self.store, configured, self.backlog)]

    def history(self, name: str) -> list[str]:
        return [change.to_status.value for change in self.store.history(name)]


def is_test_event(event: Mapping[str, Any]) -> bool:
    """One of the events this phase put on the bus itself (not one the product published)."""
    return TEST_EVENT_KEY in event.get("detail", {})


def check_every_delivery_verifies(endpoints: Endpoints, result: Checks) -> None:
    """Every delivery either endpoint received in the whole run verifies with the libraries
    (`standardwebhooks`, `httpsig`): the phase's own events and every other phase's."""
    every = [d for r in endpoints.receivers.values() for d in r.deliveries]
    result.check(
        "forwarding: every delivery to either endpoint verifies (standardwebhooks, httpsig)",
        bool(every) and all(d.verified for d in every),
        f"{sum(d.verified for d in every)}/{len(every)} verified (every phase's events)",
    )


def run(stack: EmbeddedStack, endpoints: Endpoints, result: Checks) -> dict[str, Any]:
    """The demo's forwarding phase; returns its figures. `check_every_delivery_verifies` is
    its last check, made once every phase beside it has ended."""
    forwarding = Forwarding(stack)
    scope = forwarding.scope
    name = "local-receiver"
    receiver = endpoints.receivers[name]
    figures: dict[str, Any] = {}

    # 1. healthy: New -> OK, every delivery signed and verified
    started = time.monotonic()
    healthy = forwarding.publish(
        "steam_trap.state_changed", [{"n": n, TEST_EVENT_KEY: "healthy"} for n in range(20)]
    )
    wanted = set(healthy)

    def healthy_delivered() -> list[str]:
        return [d.delivery_id for d in receiver.ok_deliveries() if d.delivery_id in wanted]

    forwarding.wait_until(lambda: len(healthy_delivered()) >= len(healthy), 60)
    figures["healthy: 20 events delivered in s"] = round(time.monotonic() - started, 2)
    result.check(
        "forwarding: a healthy endpoint gets every event once, signed (standardwebhooks verifies)",
        sorted(healthy_delivered()) == sorted(healthy),
        f"{len(healthy_delivered())}/{len(healthy)} delivered",
    )
    forwarding.wait_for(name, EndpointStatus.OK, 30)

    # 2. it stops answering: five no-responses in a row -> Temporarily disabled
    receiver.mode = Mode.HANG
    receiver.hang_s = ENDPOINT_TIMEOUT_S * 3
    during_outage = forwarding.publish(
        "steam_trap.state_changed", [{"n": n, TEST_EVENT_KEY: "outage"} for n in range(3)]
    )
    forwarding.wait_for(name, EndpointStatus.TEMPORARILY_DISABLED, 60)
    more = forwarding.publish(
        "steam_trap.state_changed", [{"n": n, TEST_EVENT_KEY: "held"} for n in range(3)]
    )

    # 3. the six-hour hold passes on the compressed clock -> enabled again; now answering 500
    receiver.mode = Mode.ERROR
    forwarding.wait_until(lambda: forwarding.status(name).enabled, 60, STATUS_POLL_S)
    reenabled = forwarding.status(name)

    # 4. thirty hours (shortened) without success -> Disabled; events keep going to the backlog
    forwarding.wait_for(name, EndpointStatus.DISABLED, 90)
    while_disabled = forwarding.publish(
        "steam_trap.state_changed", [{"n": n, TEST_EVENT_KEY: "disabled"} for n in range(4)]
    )
    stack.drain(timeout=60, scope=scope)
    kept = forwarding.backlog.count(name)

    # 5. it answers again; an operator enables it: the backlog arrives in order
    receiver.mode = Mode.OK
    backlog_ids = during_outage + more + while_disabled
    started = time.monotonic()
    forwarding.enable(name)
    forwarding.wait_until(
        lambda: {d.delivery_id for d in receiver.ok_deliveries()} >= set(backlog_ids), 60
    )
    stack.drain(timeout=60, scope=scope)
    figures["backlog delivered after enable in s"] = round(time.monotonic() - started, 2)
    arrivals = [
        d.delivery_id for d in receiver.ok_deliveries() if d.delivery_id in set(backlog_ids)
    ]
    history = forwarding.history(name)
    result.check(
        "forwarding: an endpoint that stops answering walks through Efento's statuses",
        history == EXPECTED_WALK and reenabled.enabled,
        " -> ".join(["New", *history]),
    )
    result.check(
        "forwarding: the backlog is kept while disabled and delivered in order once enabled",
        arrivals == backlog_ids and kept > 0,
        f"{kept} kept in S3 while disabled; {len(arrivals)} of {len(backlog_ids)} delivered after "
        f"enable, {'in order' if arrivals == backlog_ids else 'OUT OF ORDER'}, "
        f"{len(arrivals) - len(set(arrivals))} twice",
    )
    figures["transitions"] = " -> ".join(["New", *history])
    figures["endpoints"] = [
        {
            k: v
            for k, v in row.items()
            if k in ("name", "status", "last_attempt_at", "last_response_code")
        }
        for row in forwarding.listing()
    ]
    return figures
