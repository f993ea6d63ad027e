"""Starting and stopping the endpoint policy's executions (Step Functions)."""

import contextlib
import json
from typing import Any

from sensorhook.dal.aws_clients import stepfunctions_client


class PolicyMachine:
    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self._arn = state_machine_arn
        self._client = client or stepfunctions_client()

    def start(self, execution_name: str, endpoint: str, action: str = "evaluate") -> str:
        response = self._client.start_execution(
            stateMachineArn=self._arn,
            name=execution_name,
            input=json.dumps({"endpoint": endpoint, "action": action}),
        )
        return str(response["executionArn"])

    def stop(self, execution_name: str, cause: str) -> None:
        arn = self._arn.replace(":stateMachine:", ":execution:") + f":{execution_name}"
        with contextlib.suppress(self._client.exceptions.ExecutionDoesNotExist):
            self._client.stop_execution(executionArn=arn, cause=cause)
