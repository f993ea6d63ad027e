"""The sensor_state table: the newest reading of each sensor metric and channel.

Deliveries arrive out of order (retries, backfills, concurrent batches), so every write is
conditional on being newer than what is stored: an older reading never replaces a newer one.
The item IS the newest reading, so a conditional PutItem replaces it whole (nothing of an
older reading lingers) in one request that is also the cheapest to evaluate: an UpdateItem
with one SET clause per attribute cost about four times as much under moto.
"""

from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.conditional_writes import written
from sensorhook.dal.readings_store import iso_ms, reading_attributes, reading_from_item

_DESERIALIZER = TypeDeserializer()


class SensorStateStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()

    def update_latest(self, reading: Reading, state_at: datetime | None = None) -> bool:
        """Make `reading` the state of its (series, metric#channel) if its `state_at` is newer.

        `state_at` is the time the state is ordered and judged by (the caller clamps a sensor
        clock running ahead); `measured_at` stays as sent. An item written before `state_at`
        existed is ordered by its `measured_at`; without `state_at`, the reading is ordered by
        its `measured_at`. Returns False when a reading at the same
        instant or later is already stored.
        """
        item = reading_attributes(reading)
        item["series"] = {"S": reading.series_key}
        item["metric_channel"] = {"S": f"{reading.metric}#{reading.channel}"}
        item["state_at"] = {"S": iso_ms(state_at or reading.measured_at)}
        return written(
            lambda: self._client.put_item(
                TableName=self._table_name,
                Item=item,
                ConditionExpression=(
                    "(attribute_not_exists(#state_at)"
                    " AND (attribute_not_exists(#measured_at) OR #measured_at < :at))"
                    " OR #state_at < :at"
                ),
                ExpressionAttributeNames={"#state_at": "state_at", "#measured_at": "measured_at"},
                ExpressionAttributeValues={":at": item["state_at"]},
            )
        )

    def get(self, provider: str, sensor_id: str, metric: str, channel: str) -> Reading | None:
        """The stored state of one sensor metric and channel, if any."""
        response = self._client.get_item(
            TableName=self._table_name,
            Key={
                "series": {"S": f"{provider}#{sensor_id}"},
                "metric_channel": {"S": f"{metric}#{channel}"},
            },
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        return reading_from_item(
            {
                name: _DESERIALIZER.deserialize(value)
                for name, value in item.items()
                if name not in ("series", "metric_channel", "state_at")
            }
        )
