"""The gateways table: each gateway's latest reported status and when it last relayed a reading.

Both halves are conditional on time, like sensor state, so late or replayed deliveries never
move a gateway backwards. They are separate writes because they advance independently: a
status message does not mean readings flowed, and readings do not carry a status.

A gateway relays many sensors' readings, each a delivery, and its last relayed reading only
needs to be fresh compared with the offline threshold (15 minutes by default), not to the
second: a store writes a gateway's `last_reading_at` at most once per `contact_every` of its
readings' times (the processor: `GATEWAY_CONTACT_EVERY_SECONDS`, one minute by default, at
most a tenth of the offline threshold), not once per delivery. A gateway behind 50 sensors
reporting each minute costs a write a minute per processor instance instead of 50 (a
conditional write that moves nothing is still billed).
"""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sensorhook.core.normalized import GatewayStatus
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.conditional_writes import written
from sensorhook.dal.readings_store import iso_ms
from sensorhook.dal.wire_format import attribute_value, plain_item


def gateway_key(provider: str, gateway_id: str) -> str:
    return f"{provider}#{gateway_id}"


def _dynamodb_map(summary: dict[str, object]) -> dict[str, Any]:
    """The summary as a DynamoDB map; floats become exact decimals via their JSON text."""
    document = json.loads(json.dumps(summary, default=str), parse_float=Decimal)
    return attribute_value(document)


class GatewaysStore:
    def __init__(
        self, table_name: str, client: Any = None, *, contact_every: timedelta = timedelta(0)
    ) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()
        self._contact_every = contact_every
        # what this store last knew stored as each gateway's last_reading_at
        self._contact_stored: dict[tuple[str, str], datetime] = {}

    def update_status(self, status: GatewayStatus, status_at: datetime | None = None) -> bool:
        """Record `status` unless a status at the same `status_at` or later is stored.

        `reported_at` is kept as the gateway sent it; `status_at` is the time the caller orders
        and judges liveness by (a gateway clock running ahead is clamped). An item written
        before `status_at` existed is ordered by its `reported_at`; without `status_at`, the
        status is ordered by its `reported_at`.
        """
        attributes: dict[str, Any] = {
            "provider": {"S": status.provider},
            "gateway_id": {"S": status.gateway_id},
            "reported_at": {"S": iso_ms(status.reported_at)},
            "status_at": {"S": iso_ms(status_at or status.reported_at)},
            "schema": {"S": status.schema_name},
            "summary": _dynamodb_map(status.summary),
        }
        if status.online is not None:
            attributes["online"] = {"BOOL": status.online}
        # every name through a placeholder: "online", "schema" and others are reserved words
        expression = "SET " + ", ".join(f"#{name} = :{name}" for name in attributes)
        if status.online is None:
            expression += " REMOVE #online"
        return self._conditional_update(
            gateway_key(status.provider, status.gateway_id),
            expression,
            condition=(
                "(attribute_not_exists(#status_at)"
                " AND (attribute_not_exists(#reported_at) OR #reported_at < :status_at))"
                " OR #status_at < :status_at"
            ),
            names={f"#{name}": name for name in (*attributes, "online")},
            values={f":{name}": value for name, value in attributes.items()},
        )

    def advance_last_reading_at(self, provider: str, gateway_id: str, at: datetime) -> bool:
        """Move `last_reading_at` forward to `at` (when sensorhook received a reading the gateway
        relayed); never backwards. Not written (False) while `at` is less than `contact_every`
        past what this store last stored or found stored."""
        key = (provider, gateway_id)
        stored = self._contact_stored.get(key)
        if stored is not None and (at <= stored or at - stored < self._contact_every):
            return False
        moved = self._conditional_update(
            gateway_key(provider, gateway_id),
            "SET #provider = :provider, #gateway_id = :gateway_id, #last_reading_at = :at",
            condition="attribute_not_exists(#last_reading_at) OR #last_reading_at < :at",
            names={
                "#provider": "provider",
                "#gateway_id": "gateway_id",
                "#last_reading_at": "last_reading_at",
            },
            values={
                ":provider": {"S": provider},
                ":gateway_id": {"S": gateway_id},
                ":at": {"S": iso_ms(at)},
            },
        )
        # written, or already as new or newer: either way the item holds `at` or later
        self._contact_stored[key] = at
        return moved

    def get(self, provider: str, gateway_id: str) -> dict[str, Any] | None:
        """The gateway's item as plain Python values (numbers as Decimal), if any."""
        response = self._client.get_item(
            TableName=self._table_name,
            Key={"gateway": {"S": gateway_key(provider, gateway_id)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        return plain_item(item)

    def _conditional_update(
        self,
        gateway: str,
        expression: str,
        *,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        return written(
            lambda: self._client.update_item(
                TableName=self._table_name,
                Key={"gateway": {"S": gateway}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        )
