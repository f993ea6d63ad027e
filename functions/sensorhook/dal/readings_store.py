"""The readings table: every canonical reading, keyed (series, point), queried by time range.

Items are written with the low-level client in DynamoDB's wire format: this is the hot path
of the processor, and boto3's resource layer would cost a TypeSerializer walk per attribute.
Numbers are written as the exact decimal text of the float (what `Decimal(repr(x))` prints),
so nothing is rounded on the way in.
"""

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import dynamodb_client

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

_BATCH_WRITE_MAX_ITEMS = 25
_UNPROCESSED_RETRIES = 8
_KEY_ATTRIBUTES = ("series", "point", "expires_at")
_DESERIALIZER = TypeDeserializer()


class UnprocessedWritesError(RuntimeError):
    """DynamoDB kept returning UnprocessedItems after every retry; the caller must retry."""


def iso_ms(moment: datetime) -> str:
    """Fixed-width UTC text (`2022-06-28T20:19:51.000Z`), so string order is time order and
    conditional writes can compare stored timestamps with `<`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def number(value: float | int) -> AttributeValue:
    return {"N": str(Decimal(repr(value)))}


def reading_attributes(reading: Reading) -> Item:
    """The reading's own fields as DynamoDB attributes; absent optional fields are omitted."""
    item: Item = {
        "provider": {"S": reading.provider},
        "sensor_id": {"S": reading.sensor_id},
        "sensor_family": {"S": reading.sensor_family},
        "metric": {"S": reading.metric},
        "channel": {"S": reading.channel},
        "unit": {"S": reading.unit},
        "status": {"S": reading.status},
        "measured_at": {"S": iso_ms(reading.measured_at)},
        "received_at": {"S": iso_ms(reading.received_at)},
        "event_id": {"S": reading.event_id},
    }
    if reading.gateway_id is not None:
        item["gateway_id"] = {"S": reading.gateway_id}
    if reading.value is not None:
        item["value"] = number(reading.value)
    if reading.error_code is not None:
        item["error_code"] = number(reading.error_code)
    if reading.period_s is not None:
        item["period_s"] = number(reading.period_s)
    if reading.schema_name is not None:
        item["schema_name"] = {"S": reading.schema_name}
    if reading.text_value is not None:
        item["text_value"] = {"S": reading.text_value}
    if reading.future_dated:
        item["future_dated"] = {"BOOL": True}
    return item


def reading_from_item(item: Mapping[str, Any]) -> Reading:
    """A reading back from a deserialized item (a Query result or a stream image)."""
    fields = {name: value for name, value in item.items() if name not in _KEY_ATTRIBUTES}
    fields.setdefault("gateway_id", None)
    fields.setdefault("value", None)
    return Reading.model_validate(fields)


class ReadingsStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()

    def put_readings(self, readings: Iterable[Reading], *, ttl_days: int) -> int:
        """Write every reading (BatchWriteItem, 25 a call); returns the number of items written.

        A reading stays hot `ttl_days` after it was received (0: forever), never after it was
        measured: a backfill of readings older than the TTL would otherwise expire at once, and
        its next copy would be an INSERT again, a second row in the lake. The same
        (series, point) twice in one call is written once (the last wins), because
        BatchWriteItem rejects duplicate keys in one request.
        """
        ttl_s = ttl_days * 86_400
        items: dict[tuple[str, str], Item] = {}
        for reading in readings:
            series, point = reading.series_key, reading.point_key
            item = reading_attributes(reading)
            item["series"] = {"S": series}
            item["point"] = {"S": point}
            if ttl_s:
                item["expires_at"] = {"N": str(int(reading.received_at.timestamp()) + ttl_s)}
            items[(series, point)] = item
        requests = [{"PutRequest": {"Item": item}} for item in items.values()]
        for start in range(0, len(requests), _BATCH_WRITE_MAX_ITEMS):
            self._write_all(requests[start : start + _BATCH_WRITE_MAX_ITEMS])
        return len(requests)

    def _write_all(self, requests: list[dict[str, Any]]) -> None:
        pending = {self._table_name: requests}
        for attempt in range(_UNPROCESSED_RETRIES):
            response = self._client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(0.05 * 2**attempt, 2.0))
        raise UnprocessedWritesError(
            f"{len(pending[self._table_name])} readings still unprocessed by BatchWriteItem"
        )

    def newest_before(self, provider: str, sensor_id: str, before: datetime) -> datetime | None:
        """When the sensor's newest reading measured before `before` (whole seconds) was
        measured; None when it has none. One Query reading one item."""
        response = self._client.query(
            TableName=self._table_name,
            KeyConditionExpression="series = :series AND point < :before",
            ExpressionAttributeValues={
                ":series": {"S": f"{provider}#{sensor_id}"},
                ":before": {"S": before.strftime("%Y-%m-%dT%H:%M:%SZ")},
            },
            ProjectionExpression="measured_at",
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        if not items:
            return None
        return datetime.fromisoformat(items[0]["measured_at"]["S"].replace("Z", "+00:00"))

    def query_range(
        self, provider: str, sensor_id: str, start: datetime, end: datetime
    ) -> list[Reading]:
        """Every reading of one sensor measured in [start, end] (whole seconds), oldest first."""
        return list(self._query(f"{provider}#{sensor_id}", start, end))

    def _query(self, series: str, start: datetime, end: datetime) -> Iterator[Reading]:
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table_name,
            KeyConditionExpression="series = :series AND point BETWEEN :start AND :end",
            ExpressionAttributeValues={
                ":series": {"S": series},
                ":start": {"S": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
                # every point of the end second sorts below this: "#" then metric text
                ":end": {"S": end.strftime("%Y-%m-%dT%H:%M:%SZ") + "#\uffff"},
            },
        )
        for page in pages:
            for item in page["Items"]:
                yield reading_from_item(
                    {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
                )
