"""The lake: canonical readings (readings/) and gateway status history (gateway_status/) as
Parquet objects, read by Athena and DuckDB.

The Arrow schemas are explicit, not inferred, so every object has the same column types
whatever the batch holds (an all-null column stays float64, not null-typed), and the Glue
tables (infra/constructs/catalog.py) are derived from these very schemas.
"""

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sensorhook.core.normalized import GatewayStatus
from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import s3_client

READING_SCHEMA = pa.schema(
    [
        pa.field("provider", pa.string(), nullable=False),
        pa.field("sensor_id", pa.string(), nullable=False),
        pa.field("sensor_family", pa.string(), nullable=False),
        pa.field("gateway_id", pa.string()),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_code", pa.int32()),
        pa.field("measured_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("period_s", pa.int32()),
        pa.field("received_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("schema_name", pa.string()),
        pa.field("text_value", pa.string()),
        pa.field("future_dated", pa.bool_(), nullable=False),
    ]
)

# One row per gateway status report; `summary` is the report's flat fields as a JSON object.
GATEWAY_STATUS_SCHEMA = pa.schema(
    [
        pa.field("provider", pa.string(), nullable=False),
        pa.field("gateway_id", pa.string(), nullable=False),
        pa.field("reported_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("schema_name", pa.string(), nullable=False),
        pa.field("online", pa.bool_()),
        pa.field("summary", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("received_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    ]
)


def readings_table(readings: Sequence[Reading]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in READING_SCHEMA.names}
    for reading in readings:
        for name, values in columns.items():
            values.append(getattr(reading, name))
    return pa.Table.from_pydict(columns, schema=READING_SCHEMA)


def gateway_status_table(
    statuses: Sequence[GatewayStatus], *, event_id: str, received_at: datetime
) -> pa.Table:
    rows = [
        {
            **status.model_dump(exclude={"summary"}),
            "summary": json.dumps(status.summary, sort_keys=True, default=str),
            "event_id": event_id,
            "received_at": received_at,
        }
        for status in statuses
    ]
    return pa.Table.from_pylist(rows, schema=GATEWAY_STATUS_SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return bytes(sink.getvalue().to_pybytes())


class LakeStore:
    def __init__(self, bucket_name: str, client: Any = None) -> None:
        self._bucket = bucket_name
        self._client = client or s3_client()

    def put_readings(self, key: str, readings: Sequence[Reading]) -> None:
        """Write one Parquet object (snappy) holding `readings`, replacing any at `key`."""
        self.put_table(key, readings_table(readings))

    def put_gateway_statuses(
        self,
        key: str,
        statuses: Sequence[GatewayStatus],
        *,
        event_id: str,
        received_at: datetime,
    ) -> None:
        table = gateway_status_table(statuses, event_id=event_id, received_at=received_at)
        self.put_table(key, table)

    def put_table(self, key: str, table: pa.Table) -> None:
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=parquet_bytes(table),
            ContentType="application/vnd.apache.parquet",
        )

    def list_objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`."""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield entry["Key"], entry["Size"]

    def get_table(self, key: str) -> tuple[pa.Table, str | None]:
        """The object's rows and the version read (None when the bucket is not versioned)."""
        response = self._client.get_object(Bucket=self._bucket, Key=key)
        table = pq.read_table(pa.BufferReader(response["Body"].read()))
        return table, response.get("VersionId")

    def delete_versions(self, objects: Sequence[tuple[str, str | None]]) -> None:
        """Delete exactly the (key, version) pairs given, 1,000 per request (S3's limit).

        By version, so an object rewritten after it was read (a stream retry) keeps its new
        version. Raises if any was not deleted.
        """
        for start in range(0, len(objects), 1000):
            chunk = objects[start : start + 1000]
            response = self._client.delete_objects(
                Bucket=self._bucket,
                Delete={
                    "Objects": [
                        {"Key": key, "VersionId": version} if version else {"Key": key}
                        for key, version in chunk
                    ],
                    "Quiet": True,
                },
            )
            if response.get("Errors"):
                raise RuntimeError(f"objects not deleted: {response['Errors'][:5]}")
