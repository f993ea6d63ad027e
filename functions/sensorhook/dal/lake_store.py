"""The lake: canonical readings as Parquet objects under readings/ (read by Athena, DuckDB).

The Arrow schema is explicit, not inferred, so every object has the same column types
whatever the batch holds (an all-null column stays float64, not null-typed), and Athena's
table definition can rely on it.
"""

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

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


def readings_table(readings: Sequence[Reading]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in READING_SCHEMA.names}
    for reading in readings:
        for name, values in columns.items():
            values.append(getattr(reading, name))
    return pa.Table.from_pydict(columns, schema=READING_SCHEMA)


class LakeStore:
    def __init__(self, bucket_name: str, client: Any = None) -> None:
        self._bucket = bucket_name
        self._client = client or s3_client()

    def put_readings(self, key: str, readings: Sequence[Reading]) -> None:
        """Write one Parquet object (snappy) holding `readings`, replacing any at `key`."""
        sink = pa.BufferOutputStream()
        pq.write_table(readings_table(readings), sink, compression="snappy")
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=sink.getvalue().to_pybytes(),
            ContentType="application/vnd.apache.parquet",
        )
