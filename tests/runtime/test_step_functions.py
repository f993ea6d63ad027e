"""Step Functions on the embedded AWS: the probe app's synthesized state machine executes in
moto with its Lambda task run in process, Retry and Wait on a compressed clock."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.runtime import EmbeddedStack
from local.runtime.stack import DrainScope
from local.runtime.step_functions import wait_for_execution

pytestmark = pytest.mark.slow

PROBE_APP = Path(__file__).parent / "probe_app"
SPEEDUP = 300.0  # the machine's 10 + 20 s of retries and 10 min wait take about 2 s


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(PROBE_APP, step_functions_speedup=SPEEDUP) as running:
        yield running


def _start(stack: EmbeddedStack, name: str, fail_times: int) -> str:
    response = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.outputs["StateMachineArn"],
        name=name,
        input=json.dumps({"id": name, "fail_times": fail_times}),
    )
    return str(response["executionArn"])


def _history(stack: EmbeddedStack, execution_arn: str) -> list[dict]:
    return stack.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]


def _item(stack: EmbeddedStack, pk: str) -> dict | None:
    item = stack.client("dynamodb").get_item(
        TableName=stack.outputs["TableName"], Key={"pk": {"S": pk}}
    )
    return item.get("Item")


def test_the_machine_in_the_outputs_is_the_one_that_executes(stack: EmbeddedStack) -> None:
    # Given the probe app deployed
    # Then its one state machine was re-created where moto executes it, under the same ARN
    assert list(stack.state_machine_arns.values()) == [stack.outputs["StateMachineArn"]]


def test_retried_lambda_task_waits_and_service_task_run_on_a_compressed_clock(
    stack: EmbeddedStack,
) -> None:
    # Given a task that fails twice before it succeeds
    began = time.monotonic()
    execution = _start(stack, "retried", fail_times=2)
    # When the execution ends
    result = wait_for_execution(stack.client("stepfunctions"), execution, timeout=60)
    elapsed = time.monotonic() - began
    # Then the Lambda ran in process three times (two retries), the output carries its answer,
    # the DynamoDB service task wrote its item, and the 630 s of waits took far less
    assert result["status"] == "SUCCEEDED", _history(stack, execution)[-3:]
    assert result["output"]["flaky"] == {"id": "retried", "calls": 3}
    failed = [e for e in _history(stack, execution) if e["type"] == "LambdaFunctionFailed"]
    assert len(failed) == 2
    assert _item(stack, "done#retried") is not None
    assert elapsed < 630 / 10


def test_a_task_that_keeps_failing_is_caught(stack: EmbeddedStack) -> None:
    # Given a task that fails more often than its retries allow
    execution = _start(stack, "hopeless", fail_times=10)
    # When the execution ends
    result = wait_for_execution(stack.client("stepfunctions"), execution, timeout=60)
    # Then it took the Catch path after 3 attempts, and never reached the later states
    assert result["status"] == "FAILED"
    assert result.get("error") == "GaveUp"
    assert _item(stack, "calls#hopeless")["calls"] == {"N": "3"}
    assert _item(stack, "done#hopeless") is None


def test_a_second_start_with_the_same_name_and_input_is_the_same_execution(
    stack: EmbeddedStack,
) -> None:
    # Given an execution started by name
    first = _start(stack, "once", fail_times=0)
    # When it is started again with the same name and input, as StartExecution allows
    second = _start(stack, "once", fail_times=0)
    # Then it is one execution, and the task ran once
    assert first == second
    wait_for_execution(stack.client("stepfunctions"), first, timeout=60)
    assert _item(stack, "calls#once")["calls"] == {"N": "1"}


def test_drain_waits_for_running_executions(stack: EmbeddedStack) -> None:
    # Given an execution in its (compressed) ten-minute wait
    execution = _start(stack, "drained", fail_times=0)
    # When the stack is drained
    stack.drain(timeout=60)
    # Then the execution has ended
    status = stack.client("stepfunctions").describe_execution(executionArn=execution)["status"]
    assert status == "SUCCEEDED"


def test_a_drain_scoped_to_the_rest_of_the_stack_does_not_wait_for_the_machine(
    stack: EmbeddedStack,
) -> None:
    # Given an execution in its (compressed) ten-minute wait, and the machine with every
    # function as one part of the stack (as the demo's forwarding phase scopes its own)
    functions = stack.client("lambda").list_functions()["Functions"]
    machine = DrainScope(
        functions=frozenset(f["FunctionName"] for f in functions),
        state_machines=frozenset({stack.outputs["StateMachineArn"]}),
    )
    execution = _start(stack, "scoped", fail_times=0)
    sfn = stack.client("stepfunctions")
    # When the rest of the stack is drained
    stack.drain(timeout=60, scope=machine.rest())
    # Then that drain did not wait for the execution; a drain of the machine's part does
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    stack.drain(timeout=60, scope=machine)
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
