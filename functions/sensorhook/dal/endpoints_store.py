"""The endpoints table: each forwarding endpoint's state and its status history.

One partition per endpoint (`endpoint` = its name):

- `entry = "state"`: status, when it took it, last attempt time and response code, the
  policy's counters, the backlog flag and the running policy execution: what Efento's webhook
  list shows, in one item per endpoint;
- `entry = "transition#<at>#<version>#<random>"`: one item per status change, written in the same
  transaction as the state change, so the history can be read back in order.

Every counter moves with one atomic UpdateItem; status changes are conditional on the status
they leave, so two writers never both apply the same transition.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from sensorhook.core.forwarding import EndpointStatus
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.conditional_writes import written
from sensorhook.dal.readings_store import iso_ms
from sensorhook.logic.endpoint_policy import EndpointRecord, Outcome

PARTITION_KEY = "endpoint"
SORT_KEY = "entry"
STATE_ENTRY = "state"
TRANSITION_PREFIX = "transition#"
_NAME = re.compile(r"#(\w+)")


def _time(value: dict[str, Any] | None) -> datetime | None:
    if value is None:
        return None
    return datetime.strptime(value["S"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _record(name: str, item: dict[str, Any] | None) -> EndpointRecord:
    if not item:
        return EndpointRecord(name=name)

    def number(key: str) -> int:
        return int(item[key]["N"]) if key in item else 0

    return EndpointRecord(
        name=name,
        status=EndpointStatus(item["status"]["S"]) if "status" in item else EndpointStatus.NEW,
        status_since=_time(item.get("status_since")),
        last_attempt_at=_time(item.get("last_attempt_at")),
        last_response_code=int(item["last_response_code"]["N"])
        if "last_response_code" in item
        else None,
        last_outcome=Outcome(item["last_outcome"]["S"]) if "last_outcome" in item else None,
        consecutive_no_responses=number("consecutive_no_responses"),
        failing_since=_time(item.get("failing_since")),
        last_success_at=_time(item.get("last_success_at")),
        backlog=item.get("backlog", {}).get("BOOL", False),
        backlog_version=number("backlog_version"),
        version=number("version"),
        policy_execution=item["policy_execution"]["S"] if "policy_execution" in item else None,
    )


@dataclass(frozen=True)
class AttemptSummary:
    """The attempts of one forwarder batch, in order: some successes, then at most one failure
    (a batch stops at its first failure)."""

    last_at: datetime
    last_outcome: Outcome
    last_response_code: int | None
    last_success_at: datetime | None
    failure_at: datetime | None  # the failure that ended the batch, if it did


@dataclass(frozen=True)
class Transition:
    endpoint: str
    at: datetime
    from_status: EndpointStatus
    to_status: EndpointStatus
    reason: str
    last_response_code: int | None

    def as_event_detail(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "from": self.from_status.value,
            "to": self.to_status.value,
            "at": iso_ms(self.at),
            "reason": self.reason,
            "last_response_code": self.last_response_code,
        }


class EndpointsStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = table_name
        self._client = client or dynamodb_client()

    def _key(self, name: str, entry: str = STATE_ENTRY) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": name}, SORT_KEY: {"S": entry}}

    def get(self, name: str) -> EndpointRecord:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(name), ConsistentRead=True
        )
        return _record(name, item.get("Item"))

    def list_states(self) -> list[EndpointRecord]:
        records = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="#entry = :state",
            ExpressionAttributeNames={"#entry": SORT_KEY},
            ExpressionAttributeValues={":state": {"S": STATE_ENTRY}},
            ConsistentRead=True,
        ):
            records += [_record(item[PARTITION_KEY]["S"], item) for item in page["Items"]]
        return sorted(records, key=lambda record: record.name)

    def _update(
        self,
        name: str,
        expression: str,
        values: dict[str, Any],
        condition: str | None = None,
    ) -> EndpointRecord:
        names = {f"#{name}": name for name in _NAME.findall(f"{expression} {condition or ''}")}
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(name),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if values:
            arguments["ExpressionAttributeValues"] = values
        if condition:
            arguments["ConditionExpression"] = condition
        item = self._client.update_item(**arguments)["Attributes"]
        return _record(name, item)

    def record_attempts(self, name: str, summary: AttemptSummary) -> EndpointRecord:
        """Fold one batch's attempts into the counters, atomically."""
        values: dict[str, Any] = {
            ":at": {"S": iso_ms(summary.last_at)},
            ":outcome": {"S": summary.last_outcome.value},
            ":one": {"N": "1"},
        }
        sets = ["#last_attempt_at = :at", "#last_outcome = :outcome"]
        removes = []
        adds = ["#version :one"]
        if summary.last_response_code is None:
            removes.append("#last_response_code")
        else:
            sets.append("#last_response_code = :code")
            values[":code"] = {"N": str(summary.last_response_code)}
        if summary.last_success_at is not None:
            sets.append("#last_success_at = :success_at")
            values[":success_at"] = {"S": iso_ms(summary.last_success_at)}
        if summary.failure_at is None:
            sets.append("#consecutive_no_responses = :zero")
            values[":zero"] = {"N": "0"}
            removes.append("#failing_since")
        else:
            values[":failure_at"] = {"S": iso_ms(summary.failure_at)}
            if summary.last_success_at is not None:
                sets.append("#failing_since = :failure_at")
            else:
                sets.append("#failing_since = if_not_exists(#failing_since, :failure_at)")
            if summary.last_outcome is Outcome.NO_RESPONSE:
                if summary.last_success_at is not None:
                    sets.append("#consecutive_no_responses = :one")
                else:
                    adds.append("#consecutive_no_responses :one")
            else:  # an answer, even an error, ends a run of no-responses
                sets.append("#consecutive_no_responses = :zero")
                values[":zero"] = {"N": "0"}
        expression = "SET " + ", ".join(sets) + " ADD " + ", ".join(adds)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        return self._update(name, expression, values)

    def mark_backlog(self, name: str) -> EndpointRecord:
        """Events were written to the backlog: deliver the backlog before anything newer."""
        return self._update(
            name,
            "SET #backlog = :true ADD #backlog_version :one, #version :one",
            {":true": {"BOOL": True}, ":one": {"N": "1"}},
        )

    def clear_backlog(self, name: str, seen_backlog_version: int) -> bool:
        """Clear the flag unless events were added since the (empty) backlog was listed."""
        return written(
            lambda: self._update(
                name,
                "SET #backlog = :false",
                {":false": {"BOOL": False}, ":seen": {"N": str(seen_backlog_version)}},
                condition="attribute_not_exists(#backlog_version) OR #backlog_version = :seen",
            )
        )

    def take_policy_lock(self, name: str, execution: str) -> bool:
        """Claim the endpoint for one policy execution; False if one is already running."""
        return written(
            lambda: self._update(
                name,
                "SET #policy_execution = :execution",
                {":execution": {"S": execution}},
                condition="attribute_not_exists(#policy_execution)",
            )
        )

    def replace_policy_lock(self, name: str, execution: str) -> EndpointRecord:
        """An operator's action takes the endpoint whatever ran before (that one was stopped)."""
        return self._update(
            name, "SET #policy_execution = :execution", {":execution": {"S": execution}}
        )

    def release_policy_lock(self, name: str, execution: str, seen_version: int) -> bool:
        """Let go, unless the forwarder wrote since the machine last looked (then look again)."""
        return written(
            lambda: self._update(
                name,
                "REMOVE #policy_execution",
                {":execution": {"S": execution}, ":seen": {"N": str(seen_version)}},
                condition="#policy_execution = :execution AND "
                "(attribute_not_exists(#version) OR #version = :seen)",
            )
        )

    def drop_policy_lock(self, name: str, execution: str) -> bool:
        """Let go whatever changed (an execution that could not start, or a final Disabled)."""
        return written(
            lambda: self._update(
                name,
                "REMOVE #policy_execution",
                {":execution": {"S": execution}},
                condition="#policy_execution = :execution",
            )
        )

    def transition(
        self,
        record: EndpointRecord,
        to_status: EndpointStatus,
        at: datetime,
        reason: str,
        *,
        enable: str | None = None,
    ) -> Transition | None:
        """Move `record` to `to_status` and store the history entry, in one transaction.

        Conditional on the status `record` holds, so a concurrent writer's change is not
        overwritten (None is returned; read again). `enable` = "automatic" ends a temporary
        disable (the no-response run starts again, the 30-hour clock keeps running);
        "operator" starts afresh (counters and last outcome cleared: status New).
        """
        values: dict[str, Any] = {
            ":to": {"S": to_status.value},
            ":since": {"S": iso_ms(at)},
            ":from": {"S": record.status.value},
        }
        sets = ["#status = :to", "#status_since = :since"]
        removes: list[str] = []
        if enable is not None:
            sets.append("#consecutive_no_responses = :zero")
            values[":zero"] = {"N": "0"}
        if enable == "operator":
            removes += ["#failing_since", "#last_outcome"]
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        names = {
            f"#{name}": name
            for name in (
                "status",
                "status_since",
                "consecutive_no_responses",
                "failing_since",
                "last_outcome",
            )
            if f"#{name}" in expression
        }
        condition = (
            "attribute_not_exists(#status) OR #status = :from"
            if record.status is EndpointStatus.NEW
            else "#status = :from"
        )
        names["#status"] = "status"
        change = Transition(
            endpoint=record.name,
            at=at,
            from_status=record.status,
            to_status=to_status,
            reason=reason,
            last_response_code=record.last_response_code,
        )
        history: dict[str, Any] = {
            # time, then the record's version, then a random tie-breaker: two changes in the
            # same millisecond never share a key (a Put would silently replace the first)
            **self._key(
                record.name,
                f"{TRANSITION_PREFIX}{iso_ms(at)}#{record.version:010d}#{uuid.uuid4().hex[:8]}",
            ),
            "from_status": {"S": record.status.value},
            "to_status": {"S": to_status.value},
            "at": {"S": iso_ms(at)},
            "reason": {"S": reason},
        }
        if record.last_response_code is not None:
            history["last_response_code"] = {"N": str(record.last_response_code)}
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._key(record.name),
                            "UpdateExpression": expression,
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": history}},
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                return None
            raise
        return change

    def history(self, name: str) -> list[Transition]:
        """Every status change of the endpoint, oldest first."""
        transitions = []
        for page in self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="#endpoint = :name AND begins_with(#entry, :prefix)",
            ExpressionAttributeNames={"#endpoint": PARTITION_KEY, "#entry": SORT_KEY},
            ExpressionAttributeValues={
                ":name": {"S": name},
                ":prefix": {"S": TRANSITION_PREFIX},
            },
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                at = _time(item["at"])
                assert at is not None  # noqa: S101 - written by `transition`, always present
                transitions.append(
                    Transition(
                        endpoint=name,
                        at=at,
                        from_status=EndpointStatus(item["from_status"]["S"]),
                        to_status=EndpointStatus(item["to_status"]["S"]),
                        reason=item["reason"]["S"],
                        last_response_code=int(item["last_response_code"]["N"])
                        if "last_response_code" in item
                        else None,
                    )
                )
        return transitions
