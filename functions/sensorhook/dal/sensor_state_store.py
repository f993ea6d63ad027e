"""The sensor_state table: the newest reading of each sensor metric and channel.

Deliveries arrive out of order (retries, backfills, concurrent batches), so every write is
conditional on being newer than what is stored: an older reading never replaces a newer one.
UpdateItem rather than PutItem so attributes other features keep on the item survive.
"""

from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.readings_store import reading_attributes, reading_from_item

# Optional reading fields: removed from the item when the newer reading lacks them, so the
# stored state is exactly the newest reading.
_OPTIONAL_FIELDS = ("gateway_id", "value", "error_code", "period_s", "schema_name", "text_value")

_DESERIALIZER = TypeDeserializer()


class SensorStateStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()

    def update_latest(self, reading: Reading) -> bool:
        """Make `reading` the state of its (series, metric#channel) if it is newer.

        Returns False when a reading at the same instant or later is already stored.
        """
        attributes = reading_attributes(reading)
        # Attribute names are plain identifiers, so "#name"/":name" placeholders are safe and
        # sidestep DynamoDB's reserved words (value, status, ...).
        expression = "SET " + ", ".join(f"#{name} = :{name}" for name in attributes)
        removals = [name for name in _OPTIONAL_FIELDS if name not in attributes]
        if removals:
            expression += " REMOVE " + ", ".join(f"#{name}" for name in removals)
        names = {f"#{name}": name for name in (*attributes, *removals)}
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={
                    "series": {"S": reading.series_key},
                    "metric_channel": {"S": f"{reading.metric}#{reading.channel}"},
                },
                UpdateExpression=expression,
                ConditionExpression=(
                    "attribute_not_exists(#measured_at) OR #measured_at < :measured_at"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":{name}": value for name, value in attributes.items()},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

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
                if name not in ("series", "metric_channel")
            }
        )
