"""Lambda's event source pollers for SQS and DynamoDB streams, as AWS runs them.

moto delivers SQS and stream records to Lambda itself, but not as AWS does: it invokes inside
the ``SendMessage``/``PutItem`` call of the producer, one SQS message per invocation, ignores
``ReportBatchItemFailures`` (a partial failure re-delivers the whole batch), ignores
``FilterCriteria`` and then forgets the stream records it delivered. The runtime therefore
detaches moto's delivery (see ``detach_moto_delivery``) and runs one poller thread per mapping
read from the deployed stack, honouring batch size and window, the queue's visibility timeout,
partial batch responses, filters and the queue's redrive policy (moto moves a message to the
DLQ when it is received more than ``maxReceiveCount`` times).

An idle poller costs nothing: it sleeps until its source gets a record (``SourceWakeups``
hooks moto's queues and stream shards) or ``idle_interval`` passes, rather than calling the
embedded AWS ten times a second per mapping; while its source holds messages it cannot receive
yet (in flight, delayed), it polls every ``poll_interval``.
"""

import base64
import contextlib
import copy
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, cast

from moto.awslambda.models import LambdaBackend
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import StreamShard
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.events.models import EventPattern
from moto.sqs.models import Queue, sqs_backends

from local.runtime.front_priority import FrontPriority
from local.runtime.lambda_runner import Invocation

log = logging.getLogger(__name__)

InvokeFunction = Callable[[str, dict[str, Any]], Invocation]
# While draining, a batching window closes as soon as nothing else runs (nothing more is on its
# way), and at the latest after this long: a window cut at once made the lake writer run once
# per handful of stream records (700 invocations and Parquet objects for the demo's 400
# requests), where AWS collects up to the batch size over the window.
FLUSH_WINDOW_S = 2.0
# The stack's activity: the number of invocations started so far, or None while any runs.
Activity = Callable[[], int | None]


def detach_moto_delivery() -> Callable[[], None]:
    """Keep moto's mappings (the API lists them) but stop moto from invoking through them.

    Returns the function that restores moto's behaviour.
    """
    original = LambdaBackend.create_event_source_mapping

    @wraps(original)
    def create_detached(self: LambdaBackend, spec: dict[str, Any]) -> Any:
        mapping = original(self, spec)
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
        for table in dynamodb_backends[self.account_id][self.region_name].tables.values():
            table.lambda_event_source_mappings.pop(mapping.function_arn, None)
        return mapping

    LambdaBackend.create_event_source_mapping = create_detached  # type: ignore[method-assign]

    def restore() -> None:
        LambdaBackend.create_event_source_mapping = original  # type: ignore[method-assign]

    return restore


class SourceWakeups:
    """Wakes the pollers of a queue or stream as soon as moto adds a record to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, list[threading.Event]] = {}

    def register(self, source_arn: str, event: threading.Event) -> None:
        with self._lock:
            self._waiting.setdefault(self._key(source_arn), []).append(event)

    def notify(self, source_arn: str) -> None:
        for event in self._waiting.get(self._key(source_arn), ()):
            event.set()

    @staticmethod
    def _key(source_arn: str) -> str:
        # a stream's ARN is its table's ARN + "/stream/<label>": wake by table
        return source_arn.split("/stream/", 1)[0]

    def install(self) -> Callable[[], None]:
        """Hook moto's ``Queue.add_message`` and ``StreamShard.add``; returns the undo."""
        add_message, add_record = Queue.add_message, StreamShard.add
        wakeups = self

        @wraps(add_message)
        def add_message_and_wake(queue: Queue, message: Any) -> None:
            add_message(queue, message)
            wakeups.notify(queue.queue_arn)

        @wraps(add_record)
        def add_record_and_wake(shard: StreamShard, old: Any, new: Any) -> None:
            add_record(shard, old, new)
            wakeups.notify(shard.table.table_arn)

        Queue.add_message = add_message_and_wake  # type: ignore[method-assign,assignment]
        StreamShard.add = add_record_and_wake  # type: ignore[method-assign,assignment]

        def restore() -> None:
            Queue.add_message = add_message  # type: ignore[method-assign]
            StreamShard.add = add_record  # type: ignore[method-assign]

        return restore


class RecordFilter:
    """A mapping's ``FilterCriteria``: a record passes if any pattern matches (none: all pass)."""

    def __init__(self, criteria: dict[str, Any] | None) -> None:
        self._patterns = [
            EventPattern.load(entry["Pattern"]) for entry in (criteria or {}).get("Filters", [])
        ]

    def accepts(self, record: dict[str, Any]) -> bool:
        if not self._patterns:
            return True
        candidate = dict(record)
        body = record.get("body")
        if isinstance(body, str):
            with contextlib.suppress(ValueError):
                candidate["body"] = json.loads(body)  # Lambda filters on a JSON body's fields
        return any(pattern.matches_event(cast(Any, candidate)) for pattern in self._patterns)


def failed_item_ids(invocation: Invocation, report_item_failures: bool) -> set[str] | None:
    """The ids a batch response reports as failed; None means the whole batch failed."""
    if invocation.errored:
        return None
    if not report_item_failures:
        return set()
    result = invocation.result()
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return set()
    ids = {item.get("itemIdentifier") for item in failures if isinstance(item, dict)}
    if None in ids or "" in ids:
        return None  # AWS treats a malformed response as a failure of the whole batch
    return {str(item) for item in ids}


class Poller(threading.Thread):
    """A stoppable polling thread that records when it last saw its source empty."""

    def __init__(
        self,
        name: str,
        invoke: InvokeFunction,
        poll_interval: float,
        *,
        source_arn: str,
        wakeups: SourceWakeups | None,
        idle_interval: float,
        activity: Activity | None = None,
        priority: FrontPriority | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._activity = activity
        self._priority = priority
        self._last_activity: int | None = None
        self._invoke = invoke
        self._poll_interval = poll_interval
        self._stopping = threading.Event()
        self._flushing = threading.Event()
        # set when the source may have something: a record arrived, `drain` asks, or stopping
        self._wake = threading.Event()
        # without wakeups nothing tells the poller about new records: poll as often as when busy
        self._idle_interval = idle_interval if wakeups is not None else poll_interval
        if wakeups is not None:
            wakeups.register(source_arn, self._wake)
        self.quiet_since = 0.0  # monotonic start time of the last poll that found nothing to do

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Poll now rather than at the end of the idle wait."""
        self._wake.set()

    def flush(self, flushing: bool = True) -> None:
        """While flushing, a batching window closes once nothing else runs (or after
        ``FLUSH_WINDOW_S``): ``drain`` wants results soon, in batches as AWS would make them."""
        if flushing:
            self._flushing.set()
        else:
            self._flushing.clear()

    def _window_over(self, opened: float, deadline: float) -> bool:
        now = time.monotonic()
        if now >= deadline or self._stopping.is_set():
            return True
        if not self._flushing.is_set():
            return False
        return self._others_quiet() or now >= opened + FLUSH_WINDOW_S

    def _others_quiet(self) -> bool:
        """No invocation ran since the previous look (without `activity`: always)."""
        if self._activity is None:
            return True
        seen, self._last_activity = self._last_activity, self._activity()
        return seen is not None and seen == self._last_activity

    def run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            self._wake.clear()  # a record added from here on wakes the wait below
            self._hold_for_front()
            try:
                busy = self.poll_once()
            except Exception:
                log.exception("poller failed; retrying", extra={"poller": self.name})
                busy = False
                self._stopping.wait(1.0)
            if busy:
                self.quiet_since = 0.0
            else:
                self.quiet_since = started
                self._wake.wait(self._idle_interval)

    def poll_once(self) -> bool:
        """Poll and deliver once; return True if anything was found."""
        raise NotImplementedError

    def _hold_for_front(self) -> None:
        """Wait while the HTTP front is busy (front_priority.py): before polling, and again
        before invoking, since a burst that began during the batching window is busy by its
        end (the records held meanwhile are well inside their visibility timeout)."""
        if self._priority is not None:
            # a drain asked for while the batch is held ends the hold
            self._priority.wait_turn(self._stopping, released=self._flushing)


class SqsPoller(Poller):
    def __init__(
        self,
        mapping: dict[str, Any],
        *,
        sqs: Any,
        invoke: InvokeFunction,
        poll_interval: float,
        region: str,
        window_cap: float | None = None,
        wakeups: SourceWakeups | None = None,
        idle_interval: float = 1.0,
        activity: Activity | None = None,
        priority: FrontPriority | None = None,
    ) -> None:
        super().__init__(
            f"sqs-poller:{mapping['UUID']}",
            invoke,
            poll_interval,
            source_arn=mapping["EventSourceArn"],
            wakeups=wakeups,
            idle_interval=idle_interval,
            activity=activity,
            priority=priority,
        )
        self._mapping = mapping
        self._sqs = sqs
        self._region = region
        self._queue_arn: str = mapping["EventSourceArn"]
        self._queue_url: str = sqs.get_queue_url(QueueName=self._queue_arn.rsplit(":", 1)[1])[
            "QueueUrl"
        ]
        self._batch_size = int(mapping.get("BatchSize") or 10)
        self._window = min(
            float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
            float("inf") if window_cap is None else window_cap,
        )
        self._filter = RecordFilter(mapping.get("FilterCriteria"))
        self._report_item_failures = "ReportBatchItemFailures" in mapping.get(
            "FunctionResponseTypes", []
        )

    def poll_once(self) -> bool:
        messages = self._receive_batch()
        if not messages:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            pending = any(int(count) for count in attributes.values())
            if pending:  # in flight or delayed: look again soon, without spinning
                self._stopping.wait(self._poll_interval)
            return pending
        records = [self._record(message) for message in messages]
        selected = [record for record in records if self._filter.accepts(record)]
        # Lambda deletes messages its filter drops, as if they had been processed.
        done = [record for record in records if record not in selected]
        if selected:
            self._hold_for_front()
            outcome = self._invoke(self._mapping["FunctionArn"], {"Records": selected})
            failed = failed_item_ids(outcome, self._report_item_failures)
            if failed is None:
                log.info(
                    "batch failed; messages return after the visibility timeout",
                    extra={"queue": self._queue_arn, "count": len(selected)},
                )
            else:
                done += [record for record in selected if record["messageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
                    for index, record in enumerate(done[start : start + 10])
                ],
            )
        return True

    def _receive_batch(self) -> list[dict[str, Any]]:
        # The window opens with the first message; an empty queue answers at once.
        opened, deadline = time.monotonic(), float("inf")
        messages: list[dict[str, Any]] = []
        while len(messages) < self._batch_size:
            received = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(10, self._batch_size - len(messages)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages and not received:
                break
            if not messages:
                opened = time.monotonic()
                deadline = opened + self._window
            messages += received
            if self._window_over(opened, deadline):
                break
            if not received:
                self._stopping.wait(min(self._poll_interval, max(0.0, deadline - time.monotonic())))
        return messages

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": (
                        base64.b64encode(value["BinaryValue"]).decode()
                        if "BinaryValue" in value
                        else None
                    ),
                    "stringListValues": value.get("StringListValues", []),
                    "binaryListValues": value.get("BinaryListValues", []),
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }


class DynamoDbStreamPoller(Poller):
    """Reads the table's stream shard in order; a failed batch is retried before moving on."""

    def __init__(
        self,
        mapping: dict[str, Any],
        *,
        streams: Any,
        sqs: Any,
        invoke: InvokeFunction,
        poll_interval: float,
        region: str,
        account_id: str,
        window_cap: float | None = None,
        wakeups: SourceWakeups | None = None,
        idle_interval: float = 1.0,
        activity: Activity | None = None,
        priority: FrontPriority | None = None,
    ) -> None:
        super().__init__(
            f"stream-poller:{mapping['UUID']}",
            invoke,
            poll_interval,
            source_arn=mapping["EventSourceArn"],
            wakeups=wakeups,
            idle_interval=idle_interval,
            activity=activity,
            priority=priority,
        )
        self._mapping = mapping
        self._streams = streams
        self._sqs = sqs
        self._region = region
        self._account_id = account_id
        self._stream_arn: str = mapping["EventSourceArn"]
        self._batch_size = int(mapping.get("BatchSize") or 100)
        self._window = min(
            float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
            float("inf") if window_cap is None else window_cap,
        )
        self._filter = RecordFilter(mapping.get("FilterCriteria"))
        self._report_item_failures = "ReportBatchItemFailures" in mapping.get(
            "FunctionResponseTypes", []
        )
        self._max_retries = int(mapping.get("MaximumRetryAttempts", -1))
        self._on_failure: str | None = (
            mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        )
        shard = streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"][
            0
        ]
        self._shard_id: str = shard["ShardId"]
        self._iterator: str = streams.get_shard_iterator(
            StreamArn=self._stream_arn,
            ShardId=self._shard_id,
            ShardIteratorType=mapping.get("StartingPosition") or "LATEST",
        )["ShardIterator"]
        self._pending: list[dict[str, Any]] = []
        self._attempts = 0

    def poll_once(self) -> bool:
        if not self._pending:
            self._pending = self._read_batch()
        if not self._pending:
            return False
        selected = [record for record in self._pending if self._filter.accepts(record)]
        if not selected:
            self._pending = []
            return True
        self._hold_for_front()
        outcome = self._invoke(self._mapping["FunctionArn"], {"Records": selected})
        failed = failed_item_ids(outcome, self._report_item_failures)
        if failed is not None and not failed:
            self._pending, self._attempts = [], 0
            return True
        self._attempts += 1
        if 0 <= self._max_retries < self._attempts:
            self._give_up(selected)
            self._pending, self._attempts = [], 0
            return True
        if failed:
            # Lambda checkpoints before the first reported failure and retries from there.
            first = min(
                index
                for index, record in enumerate(self._pending)
                if record["dynamodb"]["SequenceNumber"] in failed
            )
            self._pending = self._pending[first:]
        self._stopping.wait(min(0.1 * 2**self._attempts, 5.0))
        return True

    def _read_batch(self) -> list[dict[str, Any]]:
        opened, deadline = time.monotonic(), float("inf")  # opens with the first record, as for SQS
        records: list[dict[str, Any]] = []
        while len(records) < self._batch_size:
            # Read in process, as Lambda's own poller reads the stream inside AWS: through the
            # server each call cost ~10 ms of CPU, mostly moto serializing the records.
            backend = dynamodbstreams_backends[self._account_id][self._region]
            response = backend.get_records(self._iterator, self._batch_size - len(records))
            # moto keeps every iterator it ever issued; drop the used one so a long session
            # does not grow without bound.
            backend.shard_iterators.pop(self._iterator, None)
            self._iterator = response["NextShardIterator"]
            if not records and not response["Records"]:
                break
            if not records:
                opened = time.monotonic()
                deadline = opened + self._window
            records += [self._record(record) for record in response["Records"]]
            if self._window_over(opened, deadline):
                break
            if not response["Records"]:
                self._stopping.wait(min(self._poll_interval, max(0.0, deadline - time.monotonic())))
        return records

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = copy.deepcopy(record["dynamodb"])  # moto's own record: the handler gets a copy
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            if created.tzinfo is None:  # moto's clock is naive UTC
                created = created.replace(tzinfo=UTC)
            change["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self._region,
            "dynamodb": change,
            "eventSourceARN": self._stream_arn,
        }

    def _give_up(self, records: list[dict[str, Any]]) -> None:
        sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        log.warning(
            "stream batch discarded after its retries",
            extra={"stream": self._stream_arn, "sequence_numbers": sequence_numbers},
        )
        if self._on_failure and self._on_failure.startswith("arn:aws:sqs:"):
            queue_name = self._on_failure.rsplit(":", 1)[1]
            queue_url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            self._sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=json.dumps(
                    {
                        "requestContext": {
                            "condition": "RetryAttemptsExhausted",
                            "functionArn": self._mapping["FunctionArn"],
                        },
                        "DDBStreamBatchInfo": {
                            "shardId": self._shard_id,
                            "startSequenceNumber": sequence_numbers[0],
                            "endSequenceNumber": sequence_numbers[-1],
                            "batchSize": len(records),
                            "streamArn": self._stream_arn,
                        },
                    }
                ),
            )
