"""Starting the recovery state machine (Step Functions StartExecution).

The execution name is the incident's identity (logic/incidents.py): Step Functions refuses a
second execution of a Standard machine under a name it has seen in the last 90 days, so a
repeated start of one incident never runs a second recovery.
"""

from typing import Any

from sensorhook.dal.aws_clients import stepfunctions_client


class RecoveryExecutions:
    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self._state_machine_arn = state_machine_arn
        self._client = client or stepfunctions_client()

    def ended(self, name: str) -> bool:
        """Whether the execution of that name has ended (succeeded, failed, timed out or
        aborted); False while it runs or when there is none."""
        execution_arn = (
            self._state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        )
        try:
            status = self._client.describe_execution(executionArn=execution_arn)["status"]
        except self._client.exceptions.ExecutionDoesNotExist:
            return False
        return str(status) != "RUNNING"

    def start(self, name: str, input_json: str) -> bool:
        """True when this call started the execution; False when one of that name exists
        (running or finished). Any other failure raises."""
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine_arn, name=name, input=input_json
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            return False
        return True
