"""`sensorhook readings`: one sensor's series over a time range, read from a deployed stack's
readings table (moto) holding packed items and an item of the layout before the packing."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from infra.constants import READINGS_PARTITION_KEY, READINGS_SORT_KEY, Output
from sensorhook.core.reading import Reading
from sensorhook.dal.readings_store import ReadingsStore, reading_attributes
from tests.cli.conftest import Stack

TABLE = "sensorhook-dev-readings"
SENSOR = "4242"
AT = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def _reading(minute: int, channel: str, metric: str = "temperature") -> Reading:
    return Reading(
        provider="efento",
        sensor_id=SENSOR,
        sensor_family="efento",
        gateway_id=None,
        metric=metric,
        channel=channel,
        value=20.0 + minute,
        unit="Cel",
        status="OK",
        measured_at=AT + timedelta(minutes=minute),
        period_s=60,
        received_at=AT + timedelta(minutes=minute, seconds=5),
        event_id=f"efento-measurements:{minute}",
    )


@pytest.fixture
def readings(stack: Stack) -> list[Reading]:
    """Three minutes of two channels (packed), a humidity reading, and one item of the old
    layout a minute before them."""
    stack.dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": READINGS_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": READINGS_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": READINGS_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": READINGS_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    stack.add_outputs({Output.READINGS_TABLE: TABLE})
    packed = [_reading(minute, channel) for minute in range(3) for channel in ("1", "2")]
    packed.append(_reading(1, "3", metric="humidity"))
    ReadingsStore(TABLE, stack.dynamodb).put_readings(packed, ttl_days=90)
    old = _reading(-1, "1")
    item = reading_attributes(old) | {
        "series": {"S": old.series_key},
        "point": {"S": old.point_key},
    }
    stack.dynamodb.put_item(TableName=TABLE, Item=item)
    return [old, *packed]


def test_readings_prints_the_series_over_the_range_oldest_first(
    readings: list[Reading], sensorhook
) -> None:
    result = sensorhook(
        "readings",
        SENSOR,
        "--provider",
        "efento",
        "--from",
        "2026-11-29T09:59",
        "--to",
        "2026-11-29T10:01",
        "--json",
    )

    assert result.exit_code == 0, result.output
    printed = [Reading.model_validate(row) for row in json.loads(result.stdout)]
    expected = sorted(
        (r for r in readings if r.measured_at <= AT + timedelta(minutes=1)),
        key=lambda r: (r.measured_at, r.metric, r.channel),
    )
    assert printed == expected


def test_readings_filters_a_metric_and_finds_the_provider_itself(
    readings: list[Reading], sensorhook
) -> None:
    result = sensorhook(
        "readings",
        SENSOR,
        "--from",
        "2026-11-29T09:00",
        "--to",
        "2026-11-29T11:00",
        "--metric",
        "humidity",
    )

    assert result.exit_code == 0, result.output
    assert "humidity" in result.stdout and "temperature" not in result.stdout
    assert "1 reading(s)" in result.stdout


def test_readings_refuses_a_range_that_ends_before_it_starts(
    readings: list[Reading], sensorhook
) -> None:
    result = sensorhook("readings", SENSOR, "--from", "2026-11-29T11:00", "--to", "2026-11-29")

    assert result.exit_code != 0
    assert "--from must not be after --to" in result.output
