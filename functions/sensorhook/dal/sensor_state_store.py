"""The sensor_state table: the newest reading of each sensor metric and channel.

Deliveries arrive out of order (retries, backfills, concurrent batches), so every write is
conditional on being newer than what is stored: an older reading never replaces a newer one.
The item IS the newest reading, so a conditional PutItem replaces it whole (nothing of an
older reading lingers) in one request that is also the cheapest to evaluate: an UpdateItem
with one SET clause per attribute cost about four times as much under moto.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.readings_store import reading_attributes, reading_from_item

_DESERIALIZER = TypeDeserializer()
# below botocore's default connection pool (10), so no request waits for a connection
_CONCURRENT_WRITES = 8


@cache
def _writers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_CONCURRENT_WRITES, thread_name_prefix="state")


class SensorStateStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()

    def update_latest_many(self, readings: Sequence[Reading]) -> int:
        """`update_latest` for readings of distinct state items; returns how many became state.

        The writes are independent (one item each), so they run concurrently: a delivery of
        16 metrics then waits about two DynamoDB round trips instead of sixteen. The first
        failure is raised once all have finished.
        """
        if len(readings) <= 1:
            return sum(self.update_latest(reading) for reading in readings)
        return sum(_writers().map(self.update_latest, readings))

    def update_latest(self, reading: Reading) -> bool:
        """Make `reading` the state of its (series, metric#channel) if it is newer.

        Returns False when a reading at the same instant or later is already stored.
        """
        item = reading_attributes(reading)
        item["series"] = {"S": reading.series_key}
        item["metric_channel"] = {"S": f"{reading.metric}#{reading.channel}"}
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(#at) OR #at < :at",
                ExpressionAttributeNames={"#at": "measured_at"},
                ExpressionAttributeValues={":at": item["measured_at"]},
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
