"""The lake's Parquet encoding: the Arrow schemas of its tables (readings/, gateway_status/),
rows -> Parquet bytes and back.

The Arrow schemas are explicit, not inferred, so every object has the same column types
whatever the batch holds (an all-null column stays float64, not null-typed), and the Glue
tables (infra/constructs/catalog.py) are derived from these very schemas.

pyarrow (with numpy, ~100 ms of a cold start) is imported here, apart from the S3 side
(dal/lake_store.py imports this module when it writes or reads an object); the processor
writes no Parquet and never loads it (tests/unit/test_cold_start.py guards that boundary). The
lake writer and the compactor, which write Parquet on every run, import it with their
handlers.
"""

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sensorhook.core.normalized import GatewayStatusRecord
from sensorhook.core.reading import Reading

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


def gateway_status_table(records: Sequence[GatewayStatusRecord]) -> pa.Table:
    rows = [
        {
            **record.status.model_dump(exclude={"summary"}),
            "summary": json.dumps(record.status.summary, sort_keys=True, default=str),
            "event_id": record.event_id,
            "received_at": record.received_at,
        }
        for record in records
    ]
    return pa.Table.from_pylist(rows, schema=GATEWAY_STATUS_SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return bytes(sink.getvalue().to_pybytes())


def parquet_table(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))
