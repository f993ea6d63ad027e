"""What the gateway-health run reads and remembers: gateways' contact times and health, sensors'
newest readings and silence.

Gateway health lives on the gateway's own item in the gateways table (`health`,
`health_changed_at`), next to the contact times the processor writes (`reported_at`,
`last_reading_at`) and the one the provider API gives (`api_last_contact_at`). Sensor silence
lives in the sensor_state table under the sensor's series with the sort key `#silence`, beside
the processor's `#latest` item (dal/sensor_state_store.py), which it never touches.

A run reads only the sensors that are due (`due_sensors`): the sensor_state table's sparse,
keys-only `due` index holds each `#latest` item under its `due_at` (no later than when it will
be silent if nothing newer comes) and each silence item while it is flagged silent (under a
time before any other, so it is read on every run until the sensor is heard again). The cost
of a run grows with the sensors overdue or silent, not with the installation.

Every state change is a conditional update on the state read before it, so of two runs that
saw the same transition only one wins it, and only the winner publishes the event.
"""

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from sensorhook.core.timestamps import UtcDatetime
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.conditional_writes import written
from sensorhook.dal.gateways_store import gateway_key
from sensorhook.dal.readings_store import iso_ms
from sensorhook.dal.sensor_state_store import (
    DUE_INDEX,
    DUE_SHARD,
    LATEST_SORT_KEY,
    latest_metrics,
)

SILENCE_SORT_KEY = "#silence"
# Every attribute the silence item's UpdateItem sets, removes or tests (besides the key): infra
# allows the gateway-health role to write these and no others in sensor_state.
SILENCE_ATTRIBUTES = ("silent", "silence_changed_at", "last_measured_at", "due_shard", "due_at")
# A silent sensor's silence item sits in the due index before every due time, so each run reads
# it and notices the sensor heard again (its `#latest` item then no longer due).
ALWAYS_DUE = "0000-01-01T00:00:00.000Z"
# What a run reads of each due sensor's `#latest` item (BatchGetItem: the due index holds keys
# only, so the processor's writes that leave `due_at` alone cost the index nothing). The
# provider and sensor id come from the series, the metrics from the channels' names
# (`latest_metrics`); a read is billed on the item's size whatever it projects.
_JUDGED_ATTRIBUTES = ("series", "heard_at", "period_s", "batch_s", "channels")
_BATCH_GET_MAX_KEYS = 100
_UNPROCESSED_RETRIES = 8


class GatewayHealth(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class GatewayRecord(BaseModel):
    """A gateway as the gateways table knows it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    provider: str
    gateway_id: str
    reported_at: UtcDatetime | None = None  # newest gateway_status webhook, as the gateway dated it
    # reported_at clamped to its receipt plus the processor's tolerance: what liveness uses
    status_at: UtcDatetime | None = None
    last_reading_at: UtcDatetime | None = None  # newest reading relayed
    api_last_contact_at: UtcDatetime | None = None  # newest contact the provider API gave
    health: GatewayHealth | None = None  # None: never judged yet
    health_changed_at: UtcDatetime | None = None


class SensorRecord(BaseModel):
    """A sensor (one series) as the sensor_state table knows it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    provider: str
    sensor_id: str
    newest_measured_at: UtcDatetime  # across every metric and channel
    period_s: int | None = None  # the longest stated measurement period, when any is stated
    batch_s: int = 0  # how far its newest delivery reached back (a sensor sending batches)
    metrics: frozenset[str] = frozenset()  # the metric names it has items for
    silent: bool = False


class HealthStore:
    def __init__(self, gateways_table: str, sensor_state_table: str, client: Any = None) -> None:
        self._gateways_table = gateways_table
        self._sensor_state_table = sensor_state_table
        self._client = client or dynamodb_client()

    # gateways

    def gateways(self) -> list[GatewayRecord]:
        """Every gateway item (a paginated Scan: the table holds one item per gateway)."""
        names = {
            f"#{name}": name
            for name in (
                "provider",
                "gateway_id",
                "reported_at",
                "status_at",
                "last_reading_at",
                "api_last_contact_at",
                "health",
                "health_changed_at",
            )
        }
        return [
            GatewayRecord.model_validate(_plain(item))
            for item in self._scan(self._gateways_table, names, consistent=True)
        ]

    def record_api_contact(self, provider: str, gateway_id: str, at: datetime | None) -> bool:
        """Create the gateway's item if missing and move `api_last_contact_at` forward to `at`."""
        names = {"#provider": "provider", "#gateway_id": "gateway_id"}
        values: dict[str, Any] = {":provider": {"S": provider}, ":gateway_id": {"S": gateway_id}}
        expression = "SET #provider = :provider, #gateway_id = :gateway_id"
        if at is None:
            names["#gateway"] = "gateway"
            condition = "attribute_not_exists(#gateway)"
        else:
            names["#api"] = "api_last_contact_at"
            values[":at"] = {"S": iso_ms(at)}
            expression += ", #api = :at"
            condition = "attribute_not_exists(#api) OR #api < :at"
        return self._conditional_update(
            self._gateways_table,
            key={"gateway": {"S": gateway_key(provider, gateway_id)}},
            expression=expression,
            condition=condition,
            names=names,
            values=values,
        )

    def change_gateway_health(
        self,
        provider: str,
        gateway_id: str,
        *,
        expected: GatewayHealth | None,
        health: GatewayHealth | None,
        changed_at: datetime,
    ) -> bool:
        """Set the gateway's health from `expected` (None: never judged) to `health` (None:
        forget it, to undo a change whose event could not be published).

        False when the stored health is not `expected`: another run changed it first.
        """
        names = {
            "#health": "health",
            "#changed": "health_changed_at",
            "#provider": "provider",
            "#gateway_id": "gateway_id",
        }
        values: dict[str, Any] = {
            ":provider": {"S": provider},
            ":gateway_id": {"S": gateway_id},
        }
        if health is None:
            expression = "SET #provider = :provider, #gateway_id = :gateway_id "
            expression += "REMOVE #health, #changed"
        else:
            values[":health"] = {"S": health.value}
            values[":changed"] = {"S": iso_ms(changed_at)}
            expression = (
                "SET #provider = :provider, #gateway_id = :gateway_id, "
                "#health = :health, #changed = :changed"
            )
        if expected is None:
            condition = "attribute_not_exists(#health)"
        else:
            values[":expected"] = {"S": expected.value}
            condition = "#health = :expected"
        return self._conditional_update(
            self._gateways_table,
            key={"gateway": {"S": gateway_key(provider, gateway_id)}},
            expression=expression,
            condition=condition,
            names=names,
            values=values,
        )

    # sensors

    def due_sensors(self, now: datetime) -> list[SensorRecord]:
        """Every sensor due at `now` (its `due_at` passed) and every sensor flagged silent: a
        Query of the due index (keys only), then their `#latest` items by key. What a health
        run must judge, and no more."""
        due: set[str] = set()
        silent: set[str] = set()
        pages = self._client.get_paginator("query").paginate(
            TableName=self._sensor_state_table,
            IndexName=DUE_INDEX,
            KeyConditionExpression="#shard = :shard AND #due <= :now",
            ExpressionAttributeNames={"#shard": "due_shard", "#due": "due_at"},
            ExpressionAttributeValues={":shard": {"S": DUE_SHARD}, ":now": {"S": iso_ms(now)}},
        )
        for page in pages:
            for item in page["Items"]:
                series = item["series"]["S"]
                (silent if item["metric_channel"]["S"] == SILENCE_SORT_KEY else due).add(series)
        return [
            SensorRecord(
                provider=_provider_and_sensor(fields["series"])[0],
                sensor_id=_provider_and_sensor(fields["series"])[1],
                newest_measured_at=datetime.fromisoformat(fields["heard_at"]),
                period_s=fields.get("period_s"),
                batch_s=fields.get("batch_s", 0),
                metrics=frozenset(latest_metrics(fields["channels"])),
                silent=fields["series"] in silent,
            )
            for fields in self._latest_items(sorted(due | silent))
        ]

    def _latest_items(self, series: list[str]) -> Iterator[dict[str, Any]]:
        """The `#latest` items of these series (eventually consistent, as the Scan was)."""
        names = {f"#{name}": name for name in _JUDGED_ATTRIBUTES}
        for start in range(0, len(series), _BATCH_GET_MAX_KEYS):
            request: dict[str, Any] = {
                self._sensor_state_table: {
                    "Keys": [
                        {"series": {"S": one}, "metric_channel": {"S": LATEST_SORT_KEY}}
                        for one in series[start : start + _BATCH_GET_MAX_KEYS]
                    ],
                    "ProjectionExpression": ", ".join(names),
                    "ExpressionAttributeNames": names,
                }
            }
            for _attempt in range(_UNPROCESSED_RETRIES):
                response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._sensor_state_table, []):
                    yield _plain(item)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            if request:
                raise RuntimeError("sensor_state kept returning UnprocessedKeys; the run retries")

    def sensors(self) -> list[SensorRecord]:
        """Every sensor with its newest reading time and silence flag, from one paginated,
        projected Scan of sensor_state: for the operator's status and a recovery's backfill,
        never for a scheduled health run (`due_sensors`). Reads both the `#latest` items and
        any per-channel items of the layout before them not yet migrated."""
        names = {
            f"#{name}": name
            for name in (
                "series",
                "metric_channel",
                "measured_at",
                "state_at",
                "period_s",
                "batch_s",
                "silent",
                "heard_at",
                "channels",
            )
        }
        newest: dict[str, datetime] = {}
        identity: dict[str, tuple[str, str]] = {}
        periods: dict[str, int] = {}
        batches: dict[str, int] = {}
        metrics: dict[str, set[str]] = {}
        silent: dict[str, bool] = {}
        # eventually consistent: half the read cost, and a reading a second late only delays
        # a judgement to the next run (flags are written conditionally, so never doubled)
        for item in self._scan(self._sensor_state_table, names, consistent=False):
            fields = _plain(item)
            series = fields["series"]
            if fields["metric_channel"] == SILENCE_SORT_KEY:
                silent[series] = bool(fields.get("silent", False))
                continue
            identity[series] = _provider_and_sensor(series)
            if fields["metric_channel"] == LATEST_SORT_KEY:
                metrics.setdefault(series, set()).update(latest_metrics(fields["channels"]))
                measured_at = datetime.fromisoformat(fields["heard_at"])
                batches[series] = int(fields.get("batch_s", 0))
            else:  # an item of the earlier layout, one per metric and channel
                metrics.setdefault(series, set()).add(fields["metric_channel"].partition("#")[0])
                # state_at: measured_at clamped by the processor (items before it lack it)
                measured_at = datetime.fromisoformat(
                    fields.get("state_at") or fields["measured_at"]
                )
            newest[series] = max(newest.get(series, measured_at), measured_at)
            if fields.get("period_s") is not None:
                periods[series] = max(periods.get(series, 0), int(fields["period_s"]))
        return [
            SensorRecord(
                provider=identity[series][0],
                sensor_id=identity[series][1],
                newest_measured_at=newest[series],
                period_s=periods.get(series),
                batch_s=batches.get(series, 0),
                metrics=frozenset(metrics[series]),
                silent=silent.get(series, False),
            )
            for series in newest
        ]

    def change_sensor_silence(
        self,
        provider: str,
        sensor_id: str,
        *,
        silent: bool,
        changed_at: datetime,
        last_measured_at: datetime,
    ) -> bool:
        """Flag the sensor silent (or heard again); False when it already was (another run).

        A silent sensor's item enters the due index (read on every run until it is heard
        again); a sensor heard again leaves it."""
        names = dict(
            zip(("#silent", "#changed", "#last", "#shard", "#due"), SILENCE_ATTRIBUTES, strict=True)
        )
        values: dict[str, Any] = {
            ":silent": {"BOOL": silent},
            ":changed": {"S": iso_ms(changed_at)},
            ":last": {"S": iso_ms(last_measured_at)},
        }
        expression = "SET #silent = :silent, #changed = :changed, #last = :last"
        if silent:
            values[":false"] = {"BOOL": False}
            values[":shard"] = {"S": DUE_SHARD}
            values[":always"] = {"S": ALWAYS_DUE}
            expression += ", #shard = :shard, #due = :always"
            condition = "attribute_not_exists(#silent) OR #silent = :false"
        else:
            values[":true"] = {"BOOL": True}
            expression += " REMOVE #shard, #due"
            condition = "#silent = :true"
        return self._conditional_update(
            self._sensor_state_table,
            key={
                "series": {"S": f"{provider}#{sensor_id}"},
                "metric_channel": {"S": SILENCE_SORT_KEY},
            },
            expression=expression,
            condition=condition,
            names=names,
            values=values,
        )

    def index_silent_sensors(self, *, dry_run: bool) -> int:
        """Put every sensor flagged silent before the due index existed into it (a one-off of
        the migration, logic/state_migration.py); how many (would be) put."""
        names = {"#silent": "silent", "#due": "due_at", "#sort": "metric_channel"}
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._sensor_state_table,
            FilterExpression="#sort = :silence AND #silent = :true AND attribute_not_exists(#due)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":silence": {"S": SILENCE_SORT_KEY},
                ":true": {"BOOL": True},
            },
        )
        indexed = 0
        for page in pages:
            for item in page["Items"]:
                indexed += dry_run or self._conditional_update(
                    self._sensor_state_table,
                    key={"series": item["series"], "metric_channel": item["metric_channel"]},
                    expression="SET #shard = :shard, #due = :always",
                    condition="#silent = :true AND attribute_not_exists(#due)",
                    names={"#silent": "silent", "#due": "due_at", "#shard": "due_shard"},
                    values={
                        ":true": {"BOOL": True},
                        ":shard": {"S": DUE_SHARD},
                        ":always": {"S": ALWAYS_DUE},
                    },
                )
        return indexed

    def _scan(
        self, table: str, names: dict[str, str], *, consistent: bool
    ) -> Iterator[dict[str, Any]]:
        pages = self._client.get_paginator("scan").paginate(
            TableName=table,
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
            ConsistentRead=consistent,
        )
        for page in pages:
            yield from page["Items"]

    def _conditional_update(
        self,
        table: str,
        *,
        key: dict[str, Any],
        expression: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        return written(
            lambda: self._client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        )


def _provider_and_sensor(series: str) -> tuple[str, str]:
    """A sensor_state series (`provider#sensor_id`; a provider holds no `#`) split."""
    provider, _, sensor_id = series.partition("#")
    return provider, sensor_id


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """String, string set, boolean and (whole) number attributes as Python values; a map
    (`channels`) stays as stored, only its names are read."""
    plain: dict[str, Any] = {}
    for name, value in item.items():
        ((kind, raw),) = value.items()
        plain[name] = int(Decimal(raw)) if kind == "N" else raw
    return plain
