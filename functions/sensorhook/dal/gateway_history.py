"""Gateway status history: one item per gateway report, in the readings table beside the
readings, so its stream brings each report to the lake writer (gateway_status/ in the lake,
docs/athena.md) like a reading.

An item is keyed series=`gateway_status#<provider>#<gateway_id>`, point=`iso_ms(reported_at)`:
the gateway and its report time, the delivery's dedupe key (docs/architecture.md, "Dedupe
keys"). No sensor's series starts with `gateway_status#` (a reading's series starts with its
provider), so a sensor's Query never meets one, and `readings_from_item` holds none for a
reading. The item holds the lake row's fields: the report's (`summary` as the JSON text the
lake stores), the event id and receipt of the delivery that brought it first, and
`expires_at` (receipt + the readings TTL, like readings).

It is written once, by a conditional PutItem: a second copy of the report (an SQS
redelivery, a provider re-send with other relay bytes, the same delivery twice in one batch,
concurrent copies) finds it there and writes nothing, so the stream carries one INSERT per
report and the lake one row. The gateway status flavor keeps no Powertools idempotency record:
this write is its dedupe record (sensorhook.logic.process).
"""

import json
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sensorhook.core.normalized import GatewayStatus, GatewayStatusRecord
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.conditional_writes import written
from sensorhook.dal.readings_store import GATEWAY_HISTORY_PREFIX, Item, iso_ms

# One process never writes one report from two threads at once: the local mode's embedded AWS
# (moto) checks a condition and writes in separate steps (as dal/readings_store.py says).
_ITEM_LOCKS = tuple(threading.Lock() for _ in range(16))


def history_series(provider: str, gateway_id: str) -> str:
    return f"{GATEWAY_HISTORY_PREFIX}{provider}#{gateway_id}"


def summary_text(summary: Mapping[str, object]) -> str:
    """The summary as the lake stores it: JSON, keys sorted."""
    return json.dumps(summary, sort_keys=True, default=str)


def history_item(
    status: GatewayStatus, *, event_id: str, received_at: datetime, ttl_s: int
) -> Item:
    item: Item = {
        "series": {"S": history_series(status.provider, status.gateway_id)},
        "point": {"S": iso_ms(status.reported_at)},
        "provider": {"S": status.provider},
        "gateway_id": {"S": status.gateway_id},
        "schema_name": {"S": status.schema_name},
        "summary": {"S": summary_text(status.summary)},
        "event_id": {"S": event_id},
        "received_at": {"S": iso_ms(received_at)},
    }
    if status.online is not None:
        item["online"] = {"BOOL": status.online}
    if ttl_s:
        item["expires_at"] = {"N": str(int(received_at.timestamp()) + ttl_s)}
    return item


def record_from_item(item: Mapping[str, Any]) -> GatewayStatusRecord:
    """The record back from a deserialized item (a stream image)."""
    return GatewayStatusRecord(
        status=GatewayStatus(
            provider=item["provider"],
            gateway_id=item["gateway_id"],
            reported_at=item["point"],
            schema_name=item["schema_name"],
            online=item.get("online"),
            summary=json.loads(item["summary"]),
        ),
        event_id=item["event_id"],
        received_at=item["received_at"],
    )


class GatewayHistoryStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table_name = table_name
        self._client = client or dynamodb_client()

    def put(
        self, status: GatewayStatus, *, event_id: str, received_at: datetime, ttl_days: int
    ) -> bool:
        """Store the report unless it is stored: True if this call stored it, False if a copy
        was there (its first copy stays, with that delivery's event id and receipt)."""
        item = history_item(
            status, event_id=event_id, received_at=received_at, ttl_s=ttl_days * 86_400
        )
        lock = _ITEM_LOCKS[hash((item["series"]["S"], item["point"]["S"])) % len(_ITEM_LOCKS)]
        with lock:
            return written(
                lambda: self._client.put_item(
                    TableName=self._table_name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(series)",
                )
            )
