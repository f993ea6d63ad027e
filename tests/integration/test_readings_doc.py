"""The boto3-only snippet of docs/readings.md, run as written against the readings table (moto)
holding packed items and an item of the old layout: it reads what `query_range` reads."""

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.readings_store import ReadingsStore
from tests.integration.conftest import Aws
from tests.integration.test_readings_store import (
    AT,
    READINGS_TABLE,
    mhm,
    put_old_layout,
    put_packed_before_sources,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "readings.md"


def snippet() -> Any:
    section = DOC.read_text().split("### With boto3 alone", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own doc
    return namespace["sensor_series"]


def test_the_documented_boto3_snippet_reads_what_query_range_reads(aws: Aws) -> None:
    # Given a sensor with one item of the old layout, one packed before the sources and two
    # packed instants (one of them merged from two deliveries)
    store = ReadingsStore(READINGS_TABLE)
    old = mhm()[0].model_copy(update={"measured_at": AT - timedelta(minutes=1)})
    put_old_layout(aws, old)
    store.put_readings(mhm(), ttl_days=90)
    later = [r.model_copy(update={"measured_at": AT + timedelta(minutes=1)}) for r in mhm()]
    store.put_readings(later, ttl_days=0)
    other = "everactive-ds-sensor-reading:other"
    store.put_readings(
        [r.model_copy(update={"event_id": other, "gateway_id": "GW-2"}) for r in later[:5]],
        ttl_days=0,
    )
    before_sources = [
        r.model_copy(update={"measured_at": AT + timedelta(minutes=2)}) for r in mhm()
    ]
    put_packed_before_sources(aws, before_sources)
    start, end = AT - timedelta(minutes=1), AT + timedelta(minutes=2)

    # When the snippet reads the series
    sensor_series = snippet()
    rows = list(
        sensor_series(
            READINGS_TABLE,
            "everactive",
            old.sensor_id,
            start.strftime("%Y-%m-%dT%H:%M:%S"),
            end.strftime("%Y-%m-%dT%H:%M:%S"),
            client=dynamodb_client(),
        )
    )

    # Then its rows are the readings query_range returns, field for field
    def plain(row: dict[str, Any]) -> dict[str, Any]:
        return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}

    read = [Reading.model_validate(plain(row)) for row in rows]
    assert len(read) == 49
    assert sum(r.event_id == other for r in read) == 5
    assert read == store.query_range("everactive", old.sensor_id, start, end)


def test_the_documented_boto3_snippet_reads_efento_buckets_as_query_range_does(
    aws: Aws, monkeypatch: Any
) -> None:
    # Given an Efento sensor with 12:00-12:04 stored an item per instant (before the buckets)
    # and 12:10-12:19 in two bucket items, one of them from a second delivery
    from datetime import UTC, datetime

    from sensorhook.core.flavors import Flavor
    from sensorhook.providers.registry import normalize
    from tests.integration.test_readings_buckets import batch

    day = datetime(2021, 5, 25, tzinfo=UTC)
    store = ReadingsStore(READINGS_TABLE)

    def delivery(first: datetime, minutes: int, event_id: str) -> list[Reading]:
        body = batch(first, minutes)
        received = first + timedelta(minutes=minutes)
        return normalize(
            Flavor.EFENTO_MEASUREMENTS, body, event_id=event_id, received_at=received
        ).readings

    with monkeypatch.context() as before_buckets:
        before_buckets.setattr("sensorhook.core.reading.BUCKETED_PROVIDERS", frozenset())
        store.put_readings(delivery(day.replace(hour=12), 5, "efento-measurements:a"), ttl_days=90)
    store.put_readings(
        delivery(day.replace(hour=12, minute=10), 7, "efento-measurements:b"), ttl_days=90
    )
    store.put_readings(
        delivery(day.replace(hour=12, minute=17), 3, "efento-measurements:c"), ttl_days=90
    )
    # from inside the first bucket (12:00-12:15) to inside the second
    start, end = day.replace(hour=12, minute=3), day.replace(hour=12, minute=18, second=30)

    # When the snippet reads the range
    rows = list(
        snippet()(
            READINGS_TABLE,
            "efento",
            "1234",
            start.strftime("%Y-%m-%dT%H:%M:%S"),
            end.strftime("%Y-%m-%dT%H:%M:%S"),
            client=dynamodb_client(),
        )
    )

    # Then its rows are the readings query_range returns, field for field
    def plain(row: dict[str, Any]) -> dict[str, Any]:
        # absent fields are left out of the rows (Efento names no gateway)
        row = {"gateway_id": None, "value": None, **row}
        return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}

    read = [Reading.model_validate(plain(row)) for row in rows]
    expected = store.query_range("efento", "1234", start, end)
    assert read == expected
    assert {r.measured_at.minute for r in read if r.metric == "temperature"} == {
        3,
        4,
        10,
        11,
        12,
        13,
        14,
        15,
        16,
        17,
        18,
    }
