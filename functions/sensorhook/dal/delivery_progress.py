"""How many chunks of a large delivery are stored: one item per unfinished delivery, kept in
the idempotency table beside Powertools' records (`progress#<event_id>` cannot collide with
their `<function>#<hash>` ids) and expiring with the same TTL attribute.
"""

import time
from typing import Any

from sensorhook.dal.aws_clients import dynamodb_client

_PREFIX = "progress#"


class DeliveryProgress:
    def __init__(self, table_name: str, *, ttl_seconds: int, client: Any = None) -> None:
        self._table_name = table_name
        self._ttl_seconds = ttl_seconds
        self._client = client or dynamodb_client()

    def chunks_done(self, event_id: str) -> int:
        response = self._client.get_item(
            TableName=self._table_name,
            Key={"id": {"S": _PREFIX + event_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return int(item["chunks_done"]["N"]) if item else 0

    def record(self, event_id: str, chunks_done: int) -> None:
        self._client.put_item(
            TableName=self._table_name,
            Item={
                "id": {"S": _PREFIX + event_id},
                "chunks_done": {"N": str(chunks_done)},
                "expiration": {"N": str(int(time.time()) + self._ttl_seconds)},
            },
        )

    def clear(self, event_id: str) -> None:
        """Forget a finished delivery: once its idempotency record expires, the same delivery
        again must be stored from its first chunk, not skipped."""
        self._client.delete_item(TableName=self._table_name, Key={"id": {"S": _PREFIX + event_id}})
