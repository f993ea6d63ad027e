"""The endpoints' backlog in S3: events kept while an endpoint is not enabled.

`forwarding-backlog/<endpoint>/<arrival ms, 15 digits>-<event id>.json` holds the bus event
exactly as the endpoint's queue received it. Keys sort by arrival, and S3 lists in key order,
so the backlog is delivered in order of arrival; a message SQS hands out twice writes the same
key twice. S3 keeps it as long as needed: no queue retention applies.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sensorhook.dal.aws_clients import s3_client

BACKLOG_PREFIX = "forwarding-backlog/"


@dataclass(frozen=True)
class BacklogEntry:
    key: str
    body: str


def backlog_key(endpoint: str, arrived_at_ms: int, event_id: str) -> str:
    safe_id = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in event_id)
    return f"{BACKLOG_PREFIX}{endpoint}/{arrived_at_ms:015d}-{safe_id}.json"


class Backlog:
    def __init__(self, bucket: str, client: Any = None) -> None:
        self._bucket = bucket
        self._client = client or s3_client()

    def keep(self, endpoint: str, arrived_at_ms: int, event_id: str, body: str) -> str:
        key = backlog_key(endpoint, arrived_at_ms, event_id)
        self._client.put_object(
            Bucket=self._bucket, Key=key, Body=body.encode(), ContentType="application/json"
        )
        return key

    def oldest(self, endpoint: str, limit: int) -> Iterator[BacklogEntry]:
        """Up to `limit` entries, oldest first."""
        response = self._client.list_objects_v2(
            Bucket=self._bucket, Prefix=f"{BACKLOG_PREFIX}{endpoint}/", MaxKeys=limit
        )
        for entry in response.get("Contents", []):
            body = self._client.get_object(Bucket=self._bucket, Key=entry["Key"])["Body"].read()
            yield BacklogEntry(entry["Key"], body.decode())

    def count(self, endpoint: str) -> int:
        total = 0
        for page in self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=f"{BACKLOG_PREFIX}{endpoint}/"
        ):
            total += page.get("KeyCount", 0)
        return total

    def delivered(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=key)
