"""The recovery incidents table: one item per incident (`part` = "summary") and one per sensor
a backfill read (`part` = "sensor#<id>"), keyed by the incident's execution name.

Per-sensor items are written by the Map's iterations themselves, so the execution's state never
has to carry every sensor's result (docs/recovery.md, "Bounds").
"""

import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.wire_format import attribute_value, plain_item

PARTITION_KEY = "incident"
SORT_KEY = "part"
SUMMARY_PART = "summary"
SENSOR_PART_PREFIX = "sensor#"


class IncidentsStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()

    def put_part(self, incident: str, part: str, record: BaseModel) -> None:
        document = _numbers_as_decimals(record.model_dump_json(exclude_none=True))
        item = {name: attribute_value(value) for name, value in document.items()}
        item[PARTITION_KEY] = {"S": incident}
        item[SORT_KEY] = {"S": part}
        self._client.put_item(TableName=self._table_name, Item=item)

    def record_sensor(self, incident: str, part: str, result: BaseModel, *, api_calls: int) -> None:
        """A sensor's backfill attempt: its fields set (an `error` of an earlier attempt
        removed), and its API calls added to those of the earlier attempts."""
        document = _numbers_as_decimals(result.model_dump_json(exclude={"api_calls"}))
        names = {f"#{index}": name for index, name in enumerate(document)}
        kept = {key: name for key, name in names.items() if document[name] is not None}
        dropped = [key for key, name in names.items() if document[name] is None]
        update = "SET " + ", ".join(f"{key} = :{key[1:]}" for key in kept) + " ADD #calls :calls"
        if dropped:
            update += " REMOVE " + ", ".join(dropped)
        self._client.update_item(
            TableName=self._table_name,
            Key={PARTITION_KEY: {"S": incident}, SORT_KEY: {"S": part}},
            UpdateExpression=update,
            ExpressionAttributeNames={**names, "#calls": "api_calls"},
            ExpressionAttributeValues={
                **{f":{key[1:]}": attribute_value(document[name]) for key, name in kept.items()},
                ":calls": {"N": str(api_calls)},
            },
        )

    def parts(self, incident: str, prefix: str = "") -> list[dict[str, Any]]:
        """Every item of the incident whose part starts with `prefix`, as plain values."""
        condition = "#i = :i" + (" AND begins_with(#p, :p)" if prefix else "")
        values: dict[str, Any] = {":i": {"S": incident}}
        names = {"#i": PARTITION_KEY}
        if prefix:
            values[":p"] = {"S": prefix}
            names["#p"] = SORT_KEY
        items: list[dict[str, Any]] = []
        for page in self._client.get_paginator("query").paginate(
            TableName=self._table_name,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        ):
            items += [plain_item(item) for item in page.get("Items", [])]
        return items


def _numbers_as_decimals(document_json: str) -> dict[str, Any]:
    """A model's JSON as values DynamoDB's serializer takes (it refuses floats)."""
    document: dict[str, Any] = json.loads(document_json, parse_float=Decimal)
    return document
