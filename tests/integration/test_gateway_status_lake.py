"""Gateway status reports reach the lake (gateway_status/), so Athena can query them over time."""

import io
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.handlers import processor
from tests.fixtures.loader import sample_text
from tests.integration.conftest import BUCKET, Aws
from tests.integration.test_processor import GATEWAY_V3, envelope, run


@pytest.fixture(autouse=True)
def fresh_processor(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    yield
    processor.delivery_processor.cache_clear()


def _lake_rows(aws: Aws) -> tuple[list[str], list[dict[str, object]]]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="gateway_status/").get("Contents", [])
    keys = [entry["Key"] for entry in listed]
    rows: list[dict[str, object]] = []
    for key in keys:
        body = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        rows.extend(pq.read_table(io.BytesIO(body)).to_pylist())
    return keys, rows


def test_a_gateway_status_lands_in_the_lake_once_under_its_reported_day(aws: Aws) -> None:
    # Given the real v3 gateway status, delivered twice (a provider re-send)
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))

    # When the processor handles both
    assert run(("g-1", status)) == {"batchItemFailures": []}
    assert run(("g-2", status)) == {"batchItemFailures": []}

    # Then one row, in the partition of the day it was reported, with the report's fields
    keys, rows = _lake_rows(aws)
    assert len(keys) == 1
    assert keys[0].startswith("gateway_status/date=2022-06-28/provider=everactive/")
    (row,) = rows
    assert row["gateway_id"] == "SYN0001"
    assert row["online"] is False
    assert row["schema_name"] == "gateway_status_v3.schema.json"
    assert row["event_id"] == status.event_id
    assert '"mqtt_queue_size": 88' in str(row["summary"])
