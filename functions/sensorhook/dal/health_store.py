"""What the gateway-health run reads and remembers: gateways' contact times and health, sensors'
newest readings and silence.

Gateway health lives on the gateway's own item in the gateways table (`health`,
`health_changed_at`), next to the contact times the processor writes (`reported_at`,
`last_reading_at`) and the one the provider API gives (`api_last_contact_at`). Sensor silence
lives in the sensor_state table under the sensor's series with the sort key `#silence`: no
metric name is empty, so it never collides with a `metric#channel` item, and the processor's
whole-item PutItem of a reading never touches it.

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

SILENCE_SORT_KEY = "#silence"
# Every attribute the silence item's UpdateItem sets or tests (besides the key): infra allows
# the gateway-health role to write these and no others in sensor_state.
SILENCE_ATTRIBUTES = ("silent", "silence_changed_at", "last_measured_at")


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

    def sensors(self) -> list[SensorRecord]:
        """Every sensor with its newest reading time and silence flag, from one paginated,
        projected Scan of sensor_state (one item per sensor metric and channel)."""
        names = {
            f"#{name}": name
            for name in (
                "series",
                "metric_channel",
                "provider",
                "sensor_id",
                "measured_at",
                "state_at",
                "period_s",
                "silent",
            )
        }
        newest: dict[str, datetime] = {}
        identity: dict[str, tuple[str, str]] = {}
        periods: dict[str, int] = {}
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
            identity[series] = (fields["provider"], fields["sensor_id"])
            metrics.setdefault(series, set()).add(fields["metric_channel"].partition("#")[0])
            # state_at: measured_at clamped by the processor, so a sensor clock running ahead
            # does not keep the sensor looking alive (items written before it lack it)
            measured_at = datetime.fromisoformat(fields.get("state_at") or fields["measured_at"])
            newest[series] = max(newest.get(series, measured_at), measured_at)
            if fields.get("period_s") is not None:
                periods[series] = max(periods.get(series, 0), int(fields["period_s"]))
        return [
            SensorRecord(
                provider=identity[series][0],
                sensor_id=identity[series][1],
                newest_measured_at=newest[series],
                period_s=periods.get(series),
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
        """Flag the sensor silent (or heard again); False when it already was (another run)."""
        names = dict(zip(("#silent", "#changed", "#last"), SILENCE_ATTRIBUTES, strict=True))
        values: dict[str, Any] = {
            ":silent": {"BOOL": silent},
            ":changed": {"S": iso_ms(changed_at)},
            ":last": {"S": iso_ms(last_measured_at)},
        }
        if silent:
            values[":false"] = {"BOOL": False}
            condition = "attribute_not_exists(#silent) OR #silent = :false"
        else:
            values[":true"] = {"BOOL": True}
            condition = "#silent = :true"
        return self._conditional_update(
            self._sensor_state_table,
            key={
                "series": {"S": f"{provider}#{sensor_id}"},
                "metric_channel": {"S": SILENCE_SORT_KEY},
            },
            expression="SET #silent = :silent, #changed = :changed, #last = :last",
            condition=condition,
            names=names,
            values=values,
        )

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


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """String, boolean and (whole) number attributes as Python values: the only kinds read."""
    plain: dict[str, Any] = {}
    for name, value in item.items():
        ((kind, raw),) = value.items()
        plain[name] = int(Decimal(raw)) if kind == "N" else raw
    return plain
