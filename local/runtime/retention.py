"""Bounds on what the embedded AWS retains, so a long local run keeps its memory flat.

moto keeps everything for ever, in memory: one CloudWatch Logs stream per invocation with every
line the function printed, every event an EventBridge archive matched, every record a DynamoDB
stream ever carried. AWS expires them (log retention, archive retention, a stream's 24 hours);
moto does not, so a `make local` left running grows by the minute. A `Janitor` thread trims
them every few seconds to what a person or a poller can still need:

- log groups keep their newest `log_streams_per_group` streams (one per invocation: the recent
  invocations stay readable with `aws logs`), and of those only the ones created in the last
  `log_stream_age_s` beyond the newest `log_streams_any_age`: a function invoked every few
  seconds by a compressed schedule would otherwise take most of an hour to reach the count,
  and the process's memory would grow all that time;
- EventBridge archives keep their newest `archived_events` events;
- a DynamoDB stream shard drops the records every open iterator has read (the runtime's poller
  holds one iterator per stream, see `pollers.py`), and keeps at most `stream_records` records
  when nothing reads it; in whole steps of `stream_trim_step`;
- an SQS queue remembers the receipt handles of its newest `deleted_receipt_handles` deleted
  messages (moto keeps every one, so that deleting a message twice succeeds): a late second
  delete still succeeds, as in AWS within a handle's lifetime.

Tables, queues and buckets are the user's data and are never trimmed.
"""

import itertools
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.events.models import events_backends
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.models import stepfunctions_backends
from moto.utilities.utils import get_partition

from local.runtime.expiry import Expirer
from local.runtime.moto_fixes import STREAM_LOCK

log = logging.getLogger(__name__)


@dataclass
class RetentionBounds:
    log_streams_per_group: int = 200
    log_streams_any_age: int = 20
    log_stream_age_s: float = 600.0
    archived_events: int = 1000
    stream_records: int = 10_000
    # trimmed in whole steps, so the shard's list is shifted rarely (under the lock that
    # numbers new records, moto_fixes.STREAM_LOCK)
    stream_trim_step: int = 250
    deleted_receipt_handles: int = 1_000


@dataclass
class Trimmed:
    log_streams: int = 0
    archived_events: int = 0
    stream_records: int = 0
    deleted_receipt_handles: int = 0


class RecentHandles(dict[str, None]):
    """The set of deleted receipt handles moto keeps per queue, holding only the newest
    `limit` (moto uses `in` and `update` on it)."""

    def __init__(self, handles: Iterable[str], limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0
        self.update(handles)

    def update(self, handles: Iterable[str]) -> None:  # type: ignore[override]
        for handle in handles:
            self[handle] = None
        excess = len(self) - self.limit
        if excess > 0:
            for handle in list(itertools.islice(self, excess)):  # oldest first
                del self[handle]
            self.dropped += excess


@dataclass
class Retained:
    """What the embedded AWS holds right now, for `make soak`'s report."""

    log_streams: int = 0
    log_events: int = 0
    archived_events: int = 0
    stream_records: int = 0
    # the user's data, never trimmed: every version of every object, every item
    s3_objects: int = 0
    dynamodb_items: int = 0


@dataclass
class Janitor:
    account_id: str
    region: str
    bounds: RetentionBounds = field(default_factory=RetentionBounds)
    every_s: float = 5.0
    trimmed: Trimmed = field(default_factory=Trimmed)
    # the stack's own expiry rules on a compressed clock (expiry.py), when the run asks for it
    expirer: Expirer | None = None

    def __post_init__(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention-janitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.wait(self.every_s):
            try:
                self.trim()
            except Exception:  # moto's structures changed under us: try again next round
                log.exception("trimming the embedded AWS failed")

    def trim(self) -> Trimmed:
        """Trim once; returns the running totals."""
        self._trim_logs()
        self._trim_archives()
        self._trim_streams()
        self._bound_deleted_handles()
        if self.expirer is not None:
            self.expirer.expire()
        return self.trimmed

    def retained(self) -> Retained:
        held = Retained()
        for group in list(logs_backends[self.account_id][self.region].groups.values()):
            streams = list(group.streams.values())
            held.log_streams += len(streams)
            held.log_events += sum(len(stream.events) for stream in streams)
        for archive in list(events_backends[self.account_id][self.region].archives.values()):
            held.archived_events += len(archive.events)
        for table in list(dynamodb_backends[self.account_id][self.region].tables.values()):
            if table.stream_shard is not None:
                held.stream_records += len(table.stream_shard.items)
            held.dynamodb_items += len(table)
        for bucket in list(
            s3_backends[self.account_id][get_partition(self.region)].buckets.values()
        ):
            # moto keeps each key's versions (and delete markers) in a list: dict's own values
            held.s3_objects += sum(len(versions) for versions in list(dict.values(bucket.keys)))
        return held

    def census(self) -> dict[str, int]:
        """Everything the embedded AWS holds, store by store, for `make soak --census`: what
        grows is named here before it is looked for below the Python objects."""
        held: Counter[str] = Counter()
        account, region = self.account_id, self.region
        for bucket in list(s3_backends[account][get_partition(region)].buckets.values()):
            for key, versions in list(dict.items(bucket.keys)):
                prefix = key.split("/", 1)[0] if "/" in key else "(top)"
                held[f"s3 {bucket.name}/{prefix}"] += len(versions)
        for table in list(dynamodb_backends[account][region].tables.values()):
            for item in list(table.all_items()):
                # by the hash key's first `#` part: the provider of a readings item, the
                # function of an idempotency record
                kind = str(item.hash_key.value)
                kind = kind.split("#", 1)[0][:48] if "#" in kind else "items"
                held[f"dynamodb {table.name} {kind}"] += 1
            if table.stream_shard is not None:
                held[f"stream records {table.name}"] += len(table.stream_shard.items)
        for queue in list(sqs_backends[account][region].queues.values()):
            held[f"sqs {queue.name} messages"] += len(queue._messages)
            held[f"sqs {queue.name} deleted handles"] += len(queue.deleted_messages)
        for machine in list(stepfunctions_backends[account][region].state_machines):
            held[f"stepfunctions {machine.name} executions"] += len(machine.executions)
        for group in list(logs_backends[account][region].groups.values()):
            held["logs streams"] += len(group.streams)
            held["logs events"] += sum(len(s.events) for s in list(group.streams.values()))
        for archive in list(events_backends[account][region].archives.values()):
            held[f"events archive {archive.name}"] += len(archive.events)
        watch = cloudwatch_backends[account][region]
        held["cloudwatch metric data"] += len(watch.metric_data) + sum(
            len(page) for page in list(watch.paged_metric_data.values())
        )
        return dict(held)

    def _trim_logs(self) -> None:
        bounds = self.bounds
        aged = utcnow() - timedelta(seconds=bounds.log_stream_age_s)  # moto's clock: naive UTC
        for group in list(logs_backends[self.account_id][self.region].groups.values()):
            names = list(group.streams)  # insertion order: oldest first
            over_count = len(names) - bounds.log_streams_per_group
            any_age = min(bounds.log_streams_any_age, bounds.log_streams_per_group)
            for n, name in enumerate(names[: max(0, len(names) - any_age)]):
                stream = group.streams.get(name)
                if n >= over_count and stream is not None and stream.creation_time >= aged:
                    break  # this stream and every newer one are within both bounds
                group.streams.pop(name, None)
                self.trimmed.log_streams += 1

    def _trim_archives(self) -> None:
        keep = self.bounds.archived_events
        for archive in list(events_backends[self.account_id][self.region].archives.values()):
            excess = len(archive.events) - keep
            if excess > 0:
                del archive.events[:excess]
                self.trimmed.archived_events += excess

    def _bound_deleted_handles(self) -> None:
        for queue in list(sqs_backends[self.account_id][self.region].queues.values()):
            handles: Any = queue.deleted_messages
            if not isinstance(handles, RecentHandles):
                # once per queue; a delete moto finishes meanwhile may miss the copy, and only a
                # second delete of that one message would then be refused
                handles = RecentHandles(handles, self.bounds.deleted_receipt_handles)
                queue.deleted_messages = handles
            self.trimmed.deleted_receipt_handles += handles.dropped
            handles.dropped = 0

    def _trim_streams(self) -> None:
        iterators = list(
            dynamodbstreams_backends[self.account_id][self.region].shard_iterators.values()
        )
        for table in list(dynamodb_backends[self.account_id][self.region].tables.values()):
            shard = table.stream_shard
            if shard is None:
                continue
            readers = [it.sequence_number for it in iterators if it.stream_shard is shard]
            end = shard.starting_sequence_number + len(shard.items)
            read_up_to = min(readers) if readers else end - self.bounds.stream_records
            drop = min(len(shard.items), read_up_to - shard.starting_sequence_number)
            drop -= drop % self.bounds.stream_trim_step
            if drop > 0:
                # sequence numbers stay as they were: the shard's start moves with what it drops
                # (under the lock that numbers new records, so none is numbered in between)
                with STREAM_LOCK:
                    del shard.items[:drop]
                    shard.starting_sequence_number += drop
                self.trimmed.stream_records += drop
