"""The sensor_state table: per sensor, one item holding the newest reading of each metric and
channel, and when the sensor is next due to be judged silent.

Item (sort key `#latest`, under the sensor's series `provider#sensor_id`, which is where the
provider and sensor id are read from):

- `channels`: a map `metric#channel` -> the newest reading of that channel (its fields, without
  provider and sensor_id, which are the item's) and `state_at`, the time it is ordered by (the
  processor clamps a sensor clock running ahead). What the readings of one delivery at one
  instant share (`SOURCE_ATTRIBUTES`) is stored once in `sources`, which each entry names
  (`source`); a field with one value in every entry of a sensor of several channels (their
  status, their source) is stored once in `shared`. Fields are stored under short names
  (`STATE_FIELDS`, the readings table's and a few more): a machine-health sensor's 16 channels
  fit in under 1 KB, one write unit per write instead of two;
- `version`: bumped by every write; each write is conditional on the version it read
  (optimistic lock), so two writers merging into one sensor cannot lose each other's channels;
- `heard_at` (newest `state_at` of any channel), `period_s` (longest stated period),
  `batch_s` (how far the newest delivery's readings reach back from its newest one, when they
  do: a sensor that sends its measurements in batches) and the due index's keys `due_shard`
  and `due_at`: a time no later than when the sensor will be silent if nothing newer comes
  (`heard_at` + `sensor_silent_after_periods` expected intervals, `SilenceSchedule`). Gateway
  health Queries that index for what is due instead of scanning the table
  (dal/health_store.py); it takes the sensor's metrics from the channels' names
  (`latest_metrics`).

`#latest` items written before the short names (long field names, no `shared`, and
`provider`, `sensor_id` and `metrics` attributes) are read as they are and rewritten in this
layout by their sensor's next write (docs/architecture.md, "Sensor state").

Ordering is exact per channel: a reading replaces its channel's entry only when its `state_at`
is later than the stored one's, whatever the other channels hold. A write that would change
nothing is not made. One delivery costs one consistent GetItem and at most one PutItem per
sensor (before: one conditional PutItem per metric and channel).

Items of the earlier layout (one per `metric#channel`, sort key `metric#channel`) are no longer
written; `sensorhook migrate sensor-state` folds them into `#latest` (docs/architecture.md,
"Sensor state").
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.conditional_writes import written
from sensorhook.dal.readings_store import (
    PACKED_FIELDS,
    iso_ms,
    number,
    reading_attributes,
    reading_from_item,
)
from sensorhook.dal.wire_format import plain, plain_item

LATEST_SORT_KEY = "#latest"
DUE_INDEX = "due"
DUE_SHARD = "sensor"  # the due index's one partition value (docs/architecture.md, its limits)
# The due time of a sensor whose only metrics are reported on change (a steam trap's
# trap_state): its quiet says nothing, so it is never due. A date string sorts after any ISO time.
NEVER_DUE = "9999-12-31T23:59:59.999Z"
# Metrics reported only when something changes, never periodically: their quiet is no silence.
EVENT_STATE_METRICS = frozenset({"trap_state"})
# A write that lost its version race reads again and merges again; more losses than this in a
# row means a storm of writers on one sensor: the error goes to SQS, which retries the delivery.
MAX_WRITE_ATTEMPTS = 8
_OWN_ATTRIBUTES = ("provider", "sensor_id")
# What the readings of one delivery measured at one instant share: stored once per item
# (`sources`), not per channel
SOURCE_ATTRIBUTES = (
    "event_id",
    "received_at",
    "measured_at",
    "sensor_family",
    "gateway_id",
    "schema_name",
)
# A channel entry's and a source's fields by their short stored names (the readings table's,
# and the few only state holds); none is a long name, so an item of either layout reads alike.
STATE_FIELDS = {
    **PACKED_FIELDS,
    "measured_at": "m",
    "sensor_family": "y",
    "state_at": "a",
    "source": "k",
}
_LONG_FIELD = {short: name for name, short in STATE_FIELDS.items()}


class StateWriteContended(RuntimeError):
    """Every attempt to write a sensor's state lost to a concurrent writer."""


@dataclass(frozen=True, slots=True)
class SilenceSchedule:
    """When a sensor is due to be judged silent: the same figures gateway health judges by.

    A sensor is expected again one interval after its newest reading: its measurement period,
    plus its batch when it sends its measurements in batches (an Efento sensor measuring each
    minute and transmitting every 15 minutes is next heard about 15 minutes after its newest
    measurement, not one minute). Silent after `silent_after_periods` such intervals."""

    silent_after_periods: float = 3.0
    default_period_s: int = 60

    def silent_after(self, period_s: int | None, batch_s: int = 0) -> timedelta:
        interval_s = (period_s or self.default_period_s) + batch_s
        return timedelta(seconds=self.silent_after_periods * interval_s)

    def due_at(
        self,
        stored: str | None,
        heard_at: datetime,
        period_s: int | None,
        metrics: set[str],
        batch_s: int = 0,
    ) -> str:
        """The sensor's `due_at` after a write: never later than its silence (`heard_at` plus
        its threshold), so health misses nothing; early is allowed (health judges by the exact
        `heard_at`, and an early sensor costs it one read). The stored one is kept until the
        sensor's own newest reading reaches it: the index entry then moves once per threshold
        (every third reading by default) instead of on every reading, since each move costs
        the index two writes (docs/cost.md, "Gateway health")."""
        if metrics <= EVENT_STATE_METRICS:
            return NEVER_DUE
        silent_at = iso_ms(heard_at + self.silent_after(period_s, batch_s))
        if stored is not None and iso_ms(heard_at) < stored <= silent_at:
            return stored
        return silent_at


@dataclass
class SensorState:
    """One sensor's stored state as read: its channels in wire format, by `metric#channel`."""

    provider: str
    sensor_id: str
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int | None = None  # None: no `#latest` item yet
    due_at: str | None = None  # as stored
    batch_s: int = 0  # as stored: how far the newest delivery reached back from its newest

    @property
    def series(self) -> str:
        return f"{self.provider}#{self.sensor_id}"

    def measured_at(self, metric: str, channel: str) -> datetime | None:
        entry = self.channels.get(f"{metric}#{channel}")
        return datetime.fromisoformat(entry["measured_at"]["S"]) if entry else None

    def reading(self, metric: str, channel: str) -> Reading | None:
        entry = self.channels.get(f"{metric}#{channel}")
        if entry is None:
            return None
        return channel_reading(self.provider, self.sensor_id, f"{metric}#{channel}", entry)

    def merged(
        self, readings: Iterable[tuple[Reading, datetime]], oldest: datetime | None = None
    ) -> tuple["SensorState", int]:
        """This state with each reading in its channel where it is newer (by its `state_at`,
        strictly: a reading at the same instant does not replace the stored one); and how many
        channels changed. `oldest` is the `state_at` of the delivery's oldest reading of this
        sensor (None: a delivery of one instant): when the delivery brings the sensor's newest
        reading, how far back it reached is the sensor's batch."""
        readings = list(readings)
        heard_before = self.heard_at
        channels = dict(self.channels)
        changed: set[str] = set()
        for reading, at in readings:
            metric_channel = f"{reading.metric}#{reading.channel}"
            at_text = iso_ms(at)
            stored = channels.get(metric_channel)
            if stored is not None and entry_state_at(stored) >= at_text:
                continue
            entry = {
                name: value
                for name, value in reading_attributes(reading).items()
                if name not in (*_OWN_ATTRIBUTES, "metric", "channel")
            }
            if at_text != entry["measured_at"]["S"]:  # else ordered by its measured_at
                entry["state_at"] = {"S": at_text}
            channels[metric_channel] = entry
            changed.add(metric_channel)
        batch_s = self.batch_s
        newest = max(at for _, at in readings)
        if changed and (heard_before is None or iso_ms(newest) > heard_before):
            batch_s = int((newest - min(oldest or newest, newest)).total_seconds())
        merged = SensorState(
            self.provider, self.sensor_id, channels, self.version, self.due_at, batch_s
        )
        return merged, len(changed)

    @property
    def heard_at(self) -> str | None:
        """The newest `state_at` of any channel (ISO text), None for a sensor never heard."""
        return max(map(entry_state_at, self.channels.values()), default=None)

    def item(self, schedule: SilenceSchedule) -> dict[str, Any]:
        """The `#latest` item for this state, one version on."""
        heard_at = self.heard_at
        if heard_at is None:
            raise ValueError(f"{self.series}: a state without channels has no item")
        periods = [int(e["period_s"]["N"]) for e in self.channels.values() if "period_s" in e]
        period_s = max(periods) if periods else None
        metrics = latest_metrics(self.channels)
        due_at = schedule.due_at(
            self.due_at, datetime.fromisoformat(heard_at), period_s, metrics, self.batch_s
        )
        channels, sources, shared = _compacted(self.channels)
        item: dict[str, Any] = {
            "series": {"S": self.series},
            "metric_channel": {"S": LATEST_SORT_KEY},
            "version": {"N": str((self.version or 0) + 1)},
            "channels": {"M": {name: {"M": entry} for name, entry in channels.items()}},
            "sources": {"M": {name: {"M": source} for name, source in sources.items()}},
            "heard_at": {"S": heard_at},
            "due_shard": {"S": DUE_SHARD},
            "due_at": {"S": due_at},
        }
        if shared:
            item["shared"] = {"M": shared}
        if period_s is not None:
            item["period_s"] = number(period_s)
        if self.batch_s:  # only batching sensors store one: the others' items stay as small
            item["batch_s"] = number(self.batch_s)
        return item


def latest_metrics(channels: Iterable[str]) -> set[str]:
    """The metrics of a `#latest` item's channel names (`metric#channel`)."""
    return {name.partition("#")[0] for name in channels}


def state_from_item(provider: str, sensor_id: str, item: Mapping[str, Any]) -> SensorState:
    """A `#latest` item (wire format, as GetItem or a Scan returns it) as the state it holds."""
    sources = {name: _long_names(value["M"]) for name, value in item["sources"]["M"].items()}
    shared = _long_names(item.get("shared", {}).get("M", {}))
    return SensorState(
        provider,
        sensor_id,
        {
            name: _expanded({**shared, **_long_names(value["M"])}, sources)
            for name, value in item["channels"]["M"].items()
        },
        int(item["version"]["N"]),
        item["due_at"]["S"],
        int(item.get("batch_s", {"N": "0"})["N"]),
    )


def _long_names(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Stored fields under their long names; the long names of items written before the
    short ones stay as they are."""
    return {_LONG_FIELD.get(name, name): value for name, value in fields.items()}


def _short_names(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {STATE_FIELDS[name]: value for name, value in fields.items()}


def _compacted(
    channels: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, Any]]:
    """The channel entries with what they share stored once, under short names: the delivery's
    identity and the measuring instant (SOURCE_ATTRIBUTES), common to the readings of one
    delivery taken at one time, go into a `sources` map that each entry names by a short key;
    then a field every entry holds with one value (their status, their source) goes into
    `shared`, when there are several entries. The readers see whole entries (`_expanded`)."""
    keys: dict[tuple[tuple[str, Any], ...], str] = {}
    sources: dict[str, dict[str, Any]] = {}
    compact: dict[str, dict[str, Any]] = {}
    for name, entry in channels.items():
        source = {a: entry[a] for a in SOURCE_ATTRIBUTES if a in entry}
        # in SOURCE_ATTRIBUTES' order, so equal sources have equal identities
        identity = tuple((a, _frozen(v)) for a, v in source.items())
        if identity not in keys:
            keys[identity] = str(len(keys))
            sources[keys[identity]] = _short_names(source)
        fields = {a: v for a, v in entry.items() if a not in SOURCE_ATTRIBUTES}
        compact[name] = _short_names({**fields, "source": {"S": keys[identity]}})
    shared: dict[str, Any] = {}
    if len(compact) > 1:
        first, *others = compact.values()
        shared = {
            field: value
            for field, value in first.items()
            if all(other.get(field) == value for other in others)
        }
        compact = {
            name: {field: value for field, value in entry.items() if field not in shared}
            for name, entry in compact.items()
        }
    return compact, sources, shared


def _frozen(value: Any) -> Any:
    """An attribute value (wire format) as a hashable value equal to another's exactly when
    the two are equal: what tells sources apart (was a `json.dumps` of each attribute of each
    channel, over 100 calls per machine-health delivery)."""
    if isinstance(value, dict):
        if len(value) == 1:  # every source attribute: {"S": text}
            ((kind, inner),) = value.items()
            if isinstance(inner, str):
                return ((kind, inner),)
        return tuple(sorted((name, _frozen(inner)) for name, inner in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(inner) for inner in value)
    return value


def _expanded(entry: Mapping[str, Any], sources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A compacted channel entry with its source's attributes back in."""
    expanded = {name: value for name, value in entry.items() if name != "source"}
    expanded.update(sources[entry["source"]["S"]])
    return expanded


def entry_state_at(entry: Mapping[str, Any]) -> str:
    """A channel entry's ordering time (ISO text); an entry folded in from an item of the
    earlier layout written before `state_at` existed is ordered by its `measured_at`."""
    return str(entry.get("state_at", entry["measured_at"])["S"])


def channel_reading(
    provider: str, sensor_id: str, metric_channel: str, entry: Mapping[str, Any]
) -> Reading:
    """A channel's entry (wire format) back as the reading it holds."""
    metric, _, channel = metric_channel.partition("#")
    fields = {name: plain(value) for name, value in entry.items() if name != "state_at"}
    return reading_from_item(
        {
            **fields,
            "provider": provider,
            "sensor_id": sensor_id,
            "metric": metric,
            "channel": channel,
        }
    )


class SensorStateStore:
    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        schedule: SilenceSchedule | None = None,
    ) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()
        self._schedule = schedule or SilenceSchedule()

    def read(self, provider: str, sensor_id: str) -> SensorState:
        """The sensor's state (empty when it has none), by one consistent GetItem."""
        response = self._client.get_item(
            TableName=self._table_name,
            Key={
                "series": {"S": f"{provider}#{sensor_id}"},
                "metric_channel": {"S": LATEST_SORT_KEY},
            },
            ProjectionExpression="#channels, #sources, #shared, #version, #due_at, #batch_s",
            ExpressionAttributeNames={
                "#channels": "channels",
                "#sources": "sources",
                "#shared": "shared",
                "#version": "version",
                "#due_at": "due_at",
                "#batch_s": "batch_s",
            },
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return SensorState(provider, sensor_id)
        return state_from_item(provider, sensor_id, item)

    def update(
        self,
        readings: Sequence[tuple[Reading, datetime]],
        *,
        read: SensorState | None = None,
        oldest: datetime | None = None,
    ) -> int:
        """Merge one sensor's readings (each with its `state_at`) into its state; returns how
        many channels moved forward (0: nothing was newer, nothing written).

        `read` is the state the caller already read for this sensor (the processor reads it
        before, for gap detection); it is only a first guess: a write made since is detected by
        the version and merged again from a fresh read. `oldest` is the `state_at` of the
        delivery's oldest reading of the sensor (`readings` hold only each channel's newest):
        how far back a batch reaches (`SensorState.merged`).
        """
        if not readings:
            return 0
        first = readings[0][0]
        state = read or self.read(first.provider, first.sensor_id)
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            merged, changed = state.merged(readings, oldest)
            if not changed:
                return 0
            if self._put(merged):
                return changed
            state = self.read(first.provider, first.sensor_id)
        raise StateWriteContended(f"{state.series}: {MAX_WRITE_ATTEMPTS} writes lost the race")

    def update_latest(self, reading: Reading, state_at: datetime | None = None) -> bool:
        """Make `reading` its channel's state if its `state_at` (default: `measured_at`) is
        newer than the stored one's. False when a reading at the same instant or later is
        already stored."""
        return self.update([(reading, state_at or reading.measured_at)]) == 1

    def get(self, provider: str, sensor_id: str, metric: str, channel: str) -> Reading | None:
        """The stored state of one sensor metric and channel, if any."""
        return self.read(provider, sensor_id).reading(metric, channel)

    def legacy_items(self) -> Iterator[dict[str, Any]]:
        """Every item of the layout before `#latest` (one per metric and channel; their sort
        keys never start with `#`), deserialized, from a paginated Scan: the migration's input
        (logic/state_migration.py). A Scan returns a series' items together."""
        pages = self._client.get_paginator("scan").paginate(TableName=self._table_name)
        for page in pages:
            for item in page["Items"]:
                if not item["metric_channel"]["S"].startswith("#"):
                    yield plain_item(item)

    def delete_legacy(self, series: str, metric_channels: Sequence[str]) -> int:
        """Delete a series' items of the layout before (never a `#` item); how many."""
        for metric_channel in metric_channels:
            if metric_channel.startswith("#"):
                raise ValueError(f"{metric_channel!r} is not an item of the layout before")
            self._client.delete_item(
                TableName=self._table_name,
                Key={"series": {"S": series}, "metric_channel": {"S": metric_channel}},
            )
        return len(metric_channels)

    def _put(self, state: SensorState) -> bool:
        """Write the item if nobody wrote one since `state` was read."""
        if state.version is None:
            condition = "attribute_not_exists(#version)"
            values: dict[str, Any] = {}
        else:
            condition = "#version = :read"
            values = {":read": {"N": str(state.version)}}
        return written(
            lambda: self._client.put_item(
                TableName=self._table_name,
                Item=state.item(self._schedule),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#version": "version"},
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        )
