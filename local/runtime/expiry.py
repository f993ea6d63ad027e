"""AWS's expiry of the stack's own data, applied to the embedded AWS on a compressed clock.

moto stores what it is given for ever; AWS expires it by the rules the stack sets. The rules
are read from the synthesized template, never restated here:

- DynamoDB Time to Live (`TimeToLiveSpecification`): an item whose TTL attribute (epoch
  seconds) has passed is deleted. The deletion is a stream record like any other REMOVE, told
  apart, as in AWS, by `userIdentity` {"type": "Service", "principalId":
  "dynamodb.amazonaws.com"}; an item whose TTL was moved meanwhile is left alone.
- S3 lifecycle (`LifecycleConfiguration`): `ExpirationInDays` expires a current version (a
  delete marker on a versioned bucket) and removes an expired object delete marker (the
  key's only version) once the marker itself is that old, as S3 does for a rule with Days;
  `NoncurrentVersionExpiration` deletes a version that many days after it became noncurrent.
  Transitions and multipart aborts change nothing moto holds and are not applied.
- SQS `MessageRetentionPeriod` (4 days when unset) of a queue no function reads (the
  dead-letter queues, a stream's failure destination): a message older than that is dropped,
  so locally too the inbox's bodies outlive the dead-letter queue's messages, as the stack
  requires ("inbox-expire"). A queue a function reads is left to moto's real-time retention:
  its messages wait on real-time batching windows and visibility timeouts, and a compressed
  retention would drop work in flight that AWS would still deliver.
- Step Functions: a Standard execution is listed and described for 90 days after it closed.

Every period runs on the local clock `day_s`: one day of the stack's periods lasts `day_s`
seconds (86400: real time; the runtime applies none of this unless told a `day_s`). A TTL is a
point in time the function computed from the real clock, so an item's remaining life is
compressed from the moment the expirer first sees it (or sees its TTL change): the item lives
`(ttl - seen) * day_s / 86400` seconds from then. The other periods are counted from the
objects' own times (S3 `LastModified`, SQS `SentTimestamp`, an execution's stop date).
"""

import itertools
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.s3.models import FakeDeleteMarker, s3_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.models import stepfunctions_backends
from moto.utilities.utils import get_partition

from local.runtime.moto_fixes import STREAM_LOCK

log = logging.getLogger(__name__)

DAY_S = 86_400.0
# how DynamoDB marks the REMOVE stream records of its TTL deletions
TTL_USER_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
SQS_DEFAULT_RETENTION_S = 4 * DAY_S
# how long Step Functions lists a closed Standard execution
EXECUTION_RETENTION_DAYS = 90.0


@dataclass(frozen=True)
class TtlRule:
    table: str
    attribute: str


@dataclass(frozen=True)
class LifecycleRule:
    bucket: str
    rule_id: str
    prefix: str
    expiration_days: float | None
    noncurrent_days: float | None


@dataclass(frozen=True)
class QueueRetention:
    queue: str
    retention_s: float


@dataclass(frozen=True)
class ExpiryRules:
    ttl: tuple[TtlRule, ...] = ()
    lifecycle: tuple[LifecycleRule, ...] = ()
    queues: tuple[QueueRetention, ...] = ()

    @classmethod
    def from_template(
        cls, template: Mapping[str, Any], physical_ids: Mapping[str, str]
    ) -> "ExpiryRules":
        """The rules of the template's tables, buckets and queues, by their deployed names
        (`physical_ids`: logical id -> table name, bucket name, queue URL)."""
        ttl: list[TtlRule] = []
        lifecycle: list[LifecycleRule] = []
        queues: list[QueueRetention] = []
        resources = template.get("Resources", {})
        consumed = {
            source[0]
            for resource in resources.values()
            if resource.get("Type") == "AWS::Lambda::EventSourceMapping"
            and isinstance(
                source := resource["Properties"]["EventSourceArn"].get("Fn::GetAtt"), list
            )
        }
        for logical_id, resource in resources.items():
            properties = resource.get("Properties") or {}
            deployed = physical_ids.get(logical_id)
            if deployed is None:
                continue
            kind = resource.get("Type")
            if kind == "AWS::DynamoDB::Table":
                spec = properties.get("TimeToLiveSpecification") or {}
                if spec.get("Enabled") and spec.get("AttributeName"):
                    ttl.append(TtlRule(deployed, spec["AttributeName"]))
            elif kind == "AWS::S3::Bucket":
                rules = (properties.get("LifecycleConfiguration") or {}).get("Rules") or []
                lifecycle += _lifecycle_rules(deployed, rules)
            elif kind == "AWS::SQS::Queue" and logical_id not in consumed:
                retention = properties.get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION_S)
                queues.append(QueueRetention(deployed.rsplit("/", 1)[-1], float(retention)))
        return cls(tuple(ttl), tuple(lifecycle), tuple(queues))


def _lifecycle_rules(bucket: str, rules: Iterable[Mapping[str, Any]]) -> list[LifecycleRule]:
    parsed = []
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        noncurrent = rule.get("NoncurrentVersionExpiration") or {}
        prefix = rule.get("Prefix")
        if prefix is None:
            prefix = (rule.get("Filter") or {}).get("Prefix", "")
        parsed.append(
            LifecycleRule(
                bucket=bucket,
                rule_id=rule.get("Id", ""),
                prefix=prefix,
                expiration_days=_number(rule.get("ExpirationInDays")),
                noncurrent_days=_number(
                    noncurrent.get("NoncurrentDays", rule.get("NoncurrentVersionExpirationInDays"))
                ),
            )
        )
    return parsed


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class Expired:
    """Running totals of what the expirer removed."""

    items: int = 0
    current_versions: int = 0  # a delete marker put on top (a versioned bucket) or deleted
    noncurrent_versions: int = 0
    delete_markers: int = 0
    messages: int = 0
    executions: int = 0


@dataclass
class Expirer:
    account_id: str
    region: str
    rules: ExpiryRules
    day_s: float = DAY_S
    expired: Expired = field(default_factory=Expired)
    # (table, hash key, range key) -> (the TTL seen, the local time it expires at)
    _deadlines: dict[tuple[str, Any, Any], tuple[str, float]] = field(default_factory=dict)

    def scale(self) -> float:
        """Local seconds per real second of a retention period."""
        return self.day_s / DAY_S

    def period_s(self, days: float) -> float:
        return days * self.day_s

    def expire(self, now: float | None = None) -> Expired:
        """Apply every rule once at `now` (epoch seconds); returns the running totals."""
        now = time.time() if now is None else now
        self._expire_items(now)
        self._expire_objects(now)
        self._expire_messages(now)
        self._expire_executions(now)
        return self.expired

    # -- DynamoDB TTL ----------------------------------------------------------------------

    def _expire_items(self, now: float) -> None:
        tables = dynamodb_backends[self.account_id][self.region].tables
        seen: set[tuple[str, Any, Any]] = set()
        for rule in self.rules.ttl:
            table = tables.get(rule.table)
            if table is None:
                continue
            for item in list(table.all_items()):
                ttl = item.attrs.get(rule.attribute)
                if ttl is None or ttl.type != "N":
                    continue  # AWS ignores an item without a numeric TTL
                key = (rule.table, item.hash_key, item.range_key)
                seen.add(key)
                known = self._deadlines.get(key)
                if known is None or known[0] != ttl.value:
                    known = (ttl.value, now + max(0.0, float(ttl.value) - now) * self.scale())
                    self._deadlines[key] = known
                if now >= known[1] and self._delete_item(table, rule, item, ttl.value):
                    seen.discard(key)
        for key in set(self._deadlines) - seen:
            del self._deadlines[key]

    def _delete_item(self, table: Any, rule: TtlRule, item: Any, ttl: str) -> bool:
        """Delete `item` if it still holds the TTL it expired by; its REMOVE record carries
        the service's identity, as a TTL deletion's does in AWS."""
        with STREAM_LOCK:  # the stream record appended below is this deletion's
            current = table.get_item(item.hash_key, item.range_key)
            held = current.attrs.get(rule.attribute) if current is not None else None
            if held is None or held.value != ttl:
                return False  # deleted, or its TTL moved, since it was read
            shard = table.stream_shard
            records_before = len(shard.items) if shard is not None else 0
            table.delete_item(item.hash_key, item.range_key)
            if shard is not None and len(shard.items) > records_before:
                shard.items[-1].record["userIdentity"] = dict(TTL_USER_IDENTITY)
        self.expired.items += 1
        return True

    # -- S3 lifecycle ----------------------------------------------------------------------

    def _expire_objects(self, now: float) -> None:
        s3 = s3_backends[self.account_id][get_partition(self.region)]
        for rule in self.rules.lifecycle:
            bucket = s3.buckets.get(rule.bucket)
            if bucket is None:
                continue
            for name in list(bucket.keys):
                if name.startswith(rule.prefix):
                    self._apply(s3, rule, name, now)

    def _apply(self, s3: Any, rule: LifecycleRule, name: str, now: float) -> None:
        """One key's versions (oldest first, the last current) under one rule."""
        bucket = s3.buckets[rule.bucket]
        versions = list(bucket.keys.getlist(name, []))
        if rule.noncurrent_days is not None:
            limit = self.period_s(rule.noncurrent_days)
            # a version became noncurrent when the next one was created
            for version, successor in itertools.pairwise(versions):
                if now - _epoch(successor.last_modified) >= limit:
                    s3.delete_object(bucket.name, name, version_id=version.version_id)
                    if isinstance(version, FakeDeleteMarker):
                        self.expired.delete_markers += 1
                    else:
                        self.expired.noncurrent_versions += 1
            versions = list(bucket.keys.getlist(name, []))
        if rule.expiration_days is None or not versions:
            return
        current = versions[-1]
        if now - _epoch(current.last_modified) < self.period_s(rule.expiration_days):
            return
        if isinstance(current, FakeDeleteMarker):
            if len(versions) == 1:  # an expired object delete marker
                s3.delete_object(bucket.name, name, version_id=current.version_id)
                self.expired.delete_markers += 1
            return
        s3.delete_object(bucket.name, name)  # versioned: a delete marker; else deleted
        self.expired.current_versions += 1

    # -- SQS retention ---------------------------------------------------------------------

    def _expire_messages(self, now: float) -> None:
        queues = sqs_backends[self.account_id][self.region].queues
        for retention in self.rules.queues:
            queue = queues.get(retention.queue)
            if queue is None:
                continue
            oldest_ms = (now - retention.retention_s * self.scale()) * 1000
            kept = [m for m in list(queue._messages) if int(m.sent_timestamp or 0) >= oldest_ms]
            dropped = len(queue._messages) - len(kept)
            if dropped > 0:
                queue._messages = kept
                self.expired.messages += dropped

    # -- Step Functions --------------------------------------------------------------------

    def _expire_executions(self, now: float) -> None:
        limit = self.period_s(EXECUTION_RETENTION_DAYS)
        for machine in list(stepfunctions_backends[self.account_id][self.region].state_machines):
            closed = [
                execution
                for execution in list(machine.executions)
                if execution.stop_date is not None and now - _epoch(execution.stop_date) >= limit
            ]
            for execution in closed:
                machine.executions.remove(execution)
            self.expired.executions += len(closed)


def _epoch(moment: datetime) -> float:
    """moto's times: naive UTC (S3) or aware (Step Functions)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
