"""Step Functions on the embedded AWS: moto's interpreter runs the template's state machines.

moto executes a state machine only while its `execute_state_machine` option is on, and then
only one held by its executing backend; the machines its CloudFormation creates live in the
plain backend. So the runtime turns the option on and re-creates each machine of the template
there from its resolved definition, under the same name (hence the same ARN, the one the
stack's outputs and the functions' environment already carry).

Task states reach the other services through boto3 on the moto server (`MOTO_PORT`), where the
in-process Lambda runner answers `lambda:invoke`, so a Lambda task runs the function's code in
this process as any other invocation does.

Waits and Retry intervals are divided by a speedup, as the schedules are, by patching moto's
interpreter alone: `time.sleep` stays as it is for everything else (patching it globally makes
the interpreter's own polling spin).
"""

import json
import time
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import requests
from moto.stepfunctions.models import stepfunctions_backends
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

STATE_MACHINE = "AWS::StepFunctions::StateMachine"


def enable_execution(aws_endpoint: str) -> Callable[[], None]:
    """Turn moto's execution of state machines on; returns what turns it off again."""

    def configure(execute: bool) -> None:
        requests.post(
            f"{aws_endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": execute}},
            timeout=10,
        ).raise_for_status()

    configure(True)
    return lambda: configure(False)


def adopt_state_machines(
    template: Mapping[str, Any],
    physical_ids: Mapping[str, str],
    stepfunctions: Any,
    account_id: str,
    region: str,
) -> dict[str, str]:
    """Re-create the template's state machines in moto's executing backend.

    Returns logical id -> ARN. The definition is the one moto's CloudFormation resolved (every
    `Fn::Join`, `Ref` and `Fn::GetAtt` replaced by the local resource it names); the type comes
    from the template, since moto's CloudFormation leaves every machine STANDARD.
    """
    deployed = stepfunctions_backends[account_id][region]
    arns: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != STATE_MACHINE:
            continue
        machine = deployed.describe_state_machine(physical_ids[logical_id])
        created = stepfunctions.create_state_machine(
            name=machine.name,
            definition=machine.definition,
            roleArn=machine.roleArn,
            type=resource["Properties"].get("StateMachineType", "STANDARD"),
        )
        arns[logical_id] = created["stateMachineArn"]
    return arns


def running_executions(
    account_id: str, region: str, covers: Callable[[str], bool] = lambda arn: True
) -> int:
    """How many executions of the machines `covers` (by ARN) are running now (for
    `EmbeddedStack.drain`)."""
    backend = stepfunctions_parser_backends[account_id][region]
    return sum(
        1
        for machine in list(backend.state_machines)
        if covers(str(machine.arn))
        for execution in list(machine.executions)
        if str(execution.status) == "RUNNING"
    )


def compress_time(speedup: float) -> Callable[[], None]:
    """Divide every Wait state's and Retry interval's duration by `speedup` inside moto's
    interpreter; returns what restores them. A Wait stays interruptible (a stopped execution
    ends it at once), as moto's own is."""
    if speedup <= 0:
        raise ValueError("speedup must be positive")
    original_wait = WaitFunction._wait_interval
    original_time = retrier_decl.time

    def wait_interval(self: WaitFunction, env: Environment, wait_seconds: int) -> None:
        deadline = time.monotonic() + max(wait_seconds, 0) / speedup
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    # the retrier calls `time.sleep(interval)`; only its module's `time` is replaced
    retrier_decl.time = SimpleNamespace(  # type: ignore[assignment]
        sleep=lambda seconds: time.sleep(max(seconds, 0) / speedup)
    )
    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]

    def restore() -> None:
        WaitFunction._wait_interval = original_wait  # type: ignore[method-assign]
        retrier_decl.time = original_time

    return restore


def wait_for_execution(
    stepfunctions: Any, execution_arn: str, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll until an execution is no longer RUNNING; returns `describe_execution`'s answer with
    `input` and `output` parsed. Raises TimeoutError with the last history events otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        described = stepfunctions.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            for field in ("input", "output"):
                if isinstance(described.get(field), str):
                    described[field] = json.loads(described[field])
            return dict(described)
        if time.monotonic() > deadline:
            events = stepfunctions.get_execution_history(
                executionArn=execution_arn, reverseOrder=True, maxResults=5
            )["events"]
            raise TimeoutError(
                f"{execution_arn} still running after {timeout} s; last events: "
                + ", ".join(event["type"] for event in events)
            )
        time.sleep(0.02)
