"""A temporary tap on the event bus: an SQS queue and a rule sending matching events to it.

`sensorhook tail events` follows the bus through one, and `test-delivery` watches for its
delivery's events with one. Both are removed on the way out, Ctrl-C included; a tap left by a
killed process is named `sensorhook-cli-tap-*` (queue and rule) and holds nothing else.
"""

import contextlib
import json
import secrets
from collections.abc import Iterator
from typing import Any

from cli.target import Target
from infra.constants import EVENT_SOURCE, Output

TAP_PREFIX = "sensorhook-cli-tap-"


class BusTap:
    def __init__(self, target: Target, pattern: dict[str, Any] | None = None) -> None:
        self._target = target
        self._bus = target.output(Output.EVENT_BUS_NAME)
        self._pattern = pattern or {"source": [EVENT_SOURCE]}
        self.name = TAP_PREFIX + secrets.token_hex(4)
        self._queue_url: str | None = None
        self._rule_created = False

    def __enter__(self) -> "BusTap":
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _open(self) -> None:
        sqs = self._target.client("sqs")
        events = self._target.client("events")
        self._queue_url = sqs.create_queue(
            QueueName=self.name, Attributes={"MessageRetentionPeriod": "3600"}
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        rule_arn = events.put_rule(
            Name=self.name,
            EventBusName=self._bus,
            EventPattern=json.dumps(self._pattern),
            Description="sensorhook CLI: temporary tap (tail events / test-delivery)",
        )["RuleArn"]
        self._rule_created = True
        sqs.set_queue_attributes(
            QueueUrl=self._queue_url,
            Attributes={
                "Policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": queue_arn,
                                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                            }
                        ],
                    }
                )
            },
        )
        events.put_targets(
            Rule=self.name, EventBusName=self._bus, Targets=[{"Id": "tap", "Arn": queue_arn}]
        )

    def receive(self, wait_s: int = 1) -> list[dict[str, Any]]:
        """Events that arrived, waiting up to `wait_s` seconds for the first."""
        sqs = self._target.client("sqs")
        response = sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s
        )
        messages = response.get("Messages", [])
        if messages:
            sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ],
            )
        return [json.loads(message["Body"]) for message in messages]

    def events(self, wait_s: int = 1) -> Iterator[dict[str, Any]]:
        """Every event, as it comes; stops only when the caller stops iterating."""
        while True:
            yield from self.receive(wait_s)

    def close(self) -> None:
        events = self._target.client("events")
        if self._rule_created:
            with contextlib.suppress(Exception):
                events.remove_targets(Rule=self.name, EventBusName=self._bus, Ids=["tap"])
            events.delete_rule(Name=self.name, EventBusName=self._bus)
            self._rule_created = False
        if self._queue_url is not None:
            self._target.client("sqs").delete_queue(QueueUrl=self._queue_url)
            self._queue_url = None
