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

    def chunks_done(self, event_id: str, *, unrecorded_order: str) -> tuple[int, str | None]:
        """How many chunks are stored, and the order they were cut in (`unrecorded_order`
        for a record that names none: written before orders were recorded); (0, None) when
        the delivery is not part-stored."""
        response = self._client.get_item(
            TableName=self._table_name,
            Key={"id": {"S": _PREFIX + event_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return 0, None
        order = item["chunk_order"]["S"] if "chunk_order" in item else unrecorded_order
        return int(item["chunks_done"]["N"]), order

    def record(self, event_id: str, chunks_done: int, order: str) -> None:
        self._client.put_item(
            TableName=self._table_name,
            Item={
                "id": {"S": _PREFIX + event_id},
                "chunks_done": {"N": str(chunks_done)},
                "chunk_order": {"S": order},
                "expiration": {"N": str(int(time.time()) + self._ttl_seconds)},
            },
        )

    def clear(self, event_id: str) -> None:
        """Forget a finished delivery: once its idempotency record expires, the same delivery
        again must be stored from its first chunk, not skipped."""
        self._client.delete_item(TableName=self._table_name, Key={"id": {"S": _PREFIX + event_id}})
