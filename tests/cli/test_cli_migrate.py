"""`sensorhook migrate sensor-state`: per-channel items of the layout before folded into one
`#latest` item per sensor, by the processor's own per-channel ordering, after a dry run."""

import json
from datetime import UTC, datetime, timedelta

from infra.constants import Output
from sensorhook.core.reading import Reading
from sensorhook.dal.health_store import ALWAYS_DUE, SILENCE_SORT_KEY
from sensorhook.dal.readings_store import iso_ms, reading_attributes
from sensorhook.dal.sensor_state_store import SensorStateStore
from tests.builders import efento_temperature_reading
from tests.cli.conftest import Stack

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def reading(sensor_id: str, metric: str, at: datetime, value: float) -> Reading:
    return efento_temperature_reading(
        sensor_id,
        metric,
        at,
        value,
        received_at=at,
        event_id=f"efento:{sensor_id}:{metric}:{at.isoformat()}",
    )


def put_legacy(stack: Stack, legacy: Reading, *, with_state_at: bool = True) -> None:
    """A state item as the processor wrote it before `#latest` (one per metric and channel)."""
    item = reading_attributes(legacy)
    item["series"] = {"S": legacy.series_key}
    item["metric_channel"] = {"S": f"{legacy.metric}#{legacy.channel}"}
    if with_state_at:
        item["state_at"] = {"S": iso_ms(legacy.measured_at)}
    stack.dynamodb.put_item(TableName=stack.table(Output.SENSOR_STATE_TABLE), Item=item)


def seed(stack: Stack) -> SensorStateStore:
    table = stack.table(Output.SENSOR_STATE_TABLE)
    state = SensorStateStore(table, stack.dynamodb)
    # a sensor known only by the layout before, flagged silent by gateway health back then
    put_legacy(stack, reading("a", "temperature", T0, 20.0))
    put_legacy(stack, reading("a", "humidity", T0, 50.0), with_state_at=False)
    stack.dynamodb.put_item(
        TableName=table,
        Item={
            "series": {"S": "efento#a"},
            "metric_channel": {"S": SILENCE_SORT_KEY},
            "silent": {"BOOL": True},
        },
    )
    # a sensor the new release already wrote: its newer temperature must stay, its older
    # humidity must take the old item's newer one
    put_legacy(stack, reading("b", "temperature", T0, 20.0))
    put_legacy(stack, reading("b", "humidity", T0 + timedelta(minutes=5), 55.0))
    state.update_latest(reading("b", "temperature", T0 + timedelta(minutes=10), 25.0))
    state.update_latest(reading("b", "humidity", T0 - timedelta(minutes=5), 45.0))
    return state


def items(stack: Stack) -> list[str]:
    scanned = stack.dynamodb.scan(TableName=stack.table(Output.SENSOR_STATE_TABLE))["Items"]
    return sorted(f"{i['series']['S']} {i['metric_channel']['S']}" for i in scanned)


def test_a_dry_run_counts_and_changes_nothing(stack: Stack, sensorhook) -> None:  # type: ignore[no-untyped-def]
    seed(stack)
    before = items(stack)

    result = sensorhook("migrate", "sensor-state", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "dry_run": True,
        "sensors": 2,
        "legacy_items": 4,
        "channels_moved_forward": 3,  # a's two, b's humidity (not b's older temperature)
        "silent_indexed": 1,
        "legacy_items_deleted": 0,
    }
    assert items(stack) == before
    said = sensorhook("migrate", "sensor-state", "--dry-run")
    assert said.exit_code == 0, said.output
    assert "2 sensors, 4 per-channel items: would move 3 channels forward" in said.output
    assert items(stack) == before


def test_the_migration_folds_by_channel_indexes_silence_and_is_safe_to_run_again(
    stack: Stack,
    sensorhook,  # type: ignore[no-untyped-def]
) -> None:
    state = seed(stack)

    result = sensorhook("migrate", "sensor-state", "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["channels_moved_forward"] == 3
    assert items(stack) == [
        "efento#a #latest",
        "efento#a #silence",
        "efento#b #latest",
    ]
    a = state.read("efento", "a")
    assert (a.reading("temperature", "1").value, a.reading("humidity", "1").value) == (20.0, 50.0)  # type: ignore[union-attr]
    b = state.read("efento", "b")
    assert (b.reading("temperature", "1").value, b.reading("humidity", "1").value) == (25.0, 55.0)  # type: ignore[union-attr]
    silence = stack.dynamodb.get_item(
        TableName=stack.table(Output.SENSOR_STATE_TABLE),
        Key={"series": {"S": "efento#a"}, "metric_channel": {"S": SILENCE_SORT_KEY}},
    )["Item"]
    assert silence["due_at"] == {"S": ALWAYS_DUE}

    again = sensorhook("migrate", "sensor-state", "--yes", "--json")
    assert json.loads(again.output) == {
        "dry_run": False,
        "sensors": 0,
        "legacy_items": 0,
        "channels_moved_forward": 0,
        "silent_indexed": 0,
        "legacy_items_deleted": 0,
    }
