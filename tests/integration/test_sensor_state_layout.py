"""The `#latest` item's stored layout: short field names, what every channel shares stored
once, the sensor's identity and metrics read from its key and channel names, so a
machine-health sensor's state is one write unit; and items written before it still read the
same, by the processor and by gateway health, until their sensor's next write rewrites them."""

from datetime import UTC, datetime, timedelta
from typing import Any

from bench.cost import stored_bytes
from sensorhook.core.flavors import Flavor
from sensorhook.core.reading import Reading
from sensorhook.dal.health_store import HealthStore
from sensorhook.dal.sensor_state_store import LATEST_SORT_KEY, SensorStateStore
from sensorhook.providers.registry import normalize
from tests.fixtures.loader import sample_text
from tests.integration.conftest import TABLES, Aws

SENSOR_STATE_TABLE = TABLES["SENSOR_STATE_TABLE"][0]
GATEWAYS_TABLE = TABLES["GATEWAYS_TABLE"][0]
RECEIVED_AT = datetime(2022, 6, 28, 20, 20, 3, tzinfo=UTC)


def mhm_readings(received_at: datetime = RECEIVED_AT) -> list[Reading]:
    delivery = normalize(
        Flavor.EVERACTIVE_DS_SENSOR_READING,
        sample_text("everactive-ds/sensor-reading-mhm.json"),
        # the length of a real event id: the item's largest value
        event_id="everactive-ds-sensor-reading:" + "f4" * 32,
        received_at=received_at,
    )
    return delivery.readings


def latest_item(aws: Aws, series: str) -> dict[str, Any]:
    item: dict[str, Any] = aws.dynamodb.get_item(
        TableName=SENSOR_STATE_TABLE,
        Key={"series": {"S": series}, "metric_channel": {"S": LATEST_SORT_KEY}},
    )["Item"]
    return item


def written_before_short_names(readings: list[Reading]) -> dict[str, Any]:
    """The `#latest` item as the layout before short names wrote it (long field names, the
    sensor's provider, sensor_id and metrics as attributes, no `shared`)."""
    first = readings[0]
    source = {
        "event_id": {"S": first.event_id},
        "received_at": {"S": "2022-06-28T20:20:03.000Z"},
        "measured_at": {"S": "2022-06-28T20:19:51.000Z"},
        "sensor_family": {"S": first.sensor_family},
        "schema_name": {"S": first.schema_name},
    }
    if first.gateway_id is not None:
        source["gateway_id"] = {"S": first.gateway_id}
    channels = {}
    for reading in readings:
        entry: dict[str, Any] = {
            "unit": {"S": reading.unit},
            "status": {"S": reading.status},
            "source": {"S": "0"},
        }
        if reading.value is not None:
            entry["value"] = {"N": repr(reading.value)}
        channels[f"{reading.metric}#{reading.channel}"] = {"M": entry}
    return {
        "series": {"S": first.series_key},
        "metric_channel": {"S": LATEST_SORT_KEY},
        "provider": {"S": first.provider},
        "sensor_id": {"S": first.sensor_id},
        "version": {"N": "3"},
        "channels": {"M": channels},
        "sources": {"M": {"0": {"M": source}}},
        "heard_at": {"S": "2022-06-28T20:19:51.000Z"},
        "metrics": {"SS": sorted({reading.metric for reading in readings})},
        "due_shard": {"S": "sensor"},
        "due_at": {"S": "2022-06-28T20:22:51.000Z"},
    }


def test_a_machine_health_sensors_state_is_under_one_kb_and_reads_back_whole(aws: Aws) -> None:
    readings = mhm_readings()
    store = SensorStateStore(SENSOR_STATE_TABLE)

    assert store.update([(reading, reading.measured_at) for reading in readings]) == 16

    # one write unit: under 1 KB by DynamoDB's rules
    assert stored_bytes(latest_item(aws, readings[0].series_key)) < 1024
    # and every channel reads back as the reading it holds
    state = store.read(readings[0].provider, readings[0].sensor_id)
    for reading in readings:
        assert state.reading(reading.metric, reading.channel) == reading


def test_an_item_written_before_short_names_reads_the_same_and_is_rewritten_by_the_next_write(
    aws: Aws,
) -> None:
    # Given a sensor's state as the earlier layout stored it
    readings = mhm_readings()
    aws.dynamodb.put_item(TableName=SENSOR_STATE_TABLE, Item=written_before_short_names(readings))
    store = SensorStateStore(SENSOR_STATE_TABLE)
    first = readings[0]

    # Then the processor reads every channel as it was stored
    state = store.read(first.provider, first.sensor_id)
    assert state.version == 3
    for reading in readings:
        assert state.reading(reading.metric, reading.channel) == reading

    # and gateway health reads the sensor, its metrics and when it was last heard
    health = HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE)
    for record in (health.due_sensors(RECEIVED_AT + timedelta(hours=1))[0], health.sensors()[0]):
        assert (record.provider, record.sensor_id) == (first.provider, first.sensor_id)
        assert record.metrics == {reading.metric for reading in readings}
        assert record.newest_measured_at == first.measured_at

    # When one channel moves forward
    later = first.model_copy(
        update={"measured_at": first.measured_at + timedelta(minutes=1), "value": 1.5}
    )
    assert store.update([(later, later.measured_at)], read=state) == 1

    # Then the item is in the new layout, holds the other 15 channels as they were, and
    # health still reads the sensor the same
    item = latest_item(aws, first.series_key)
    assert "provider" not in item and "metrics" not in item and "shared" in item
    state = store.read(first.provider, first.sensor_id)
    assert state.reading(first.metric, first.channel) == later
    for reading in readings[1:]:
        assert state.reading(reading.metric, reading.channel) == reading
    (record,) = health.sensors()
    assert (record.provider, record.sensor_id) == (first.provider, first.sensor_id)
    assert record.metrics == {reading.metric for reading in readings}
    assert record.newest_measured_at == later.measured_at


def test_fields_shared_by_every_channel_are_stored_once_and_a_differing_one_per_channel(
    aws: Aws,
) -> None:
    # Given a machine-health delivery whose last channel is in error
    readings = mhm_readings()
    readings[-1] = readings[-1].model_copy(update={"status": "ERROR", "error_code": 7})
    store = SensorStateStore(SENSOR_STATE_TABLE)
    store.update([(reading, reading.measured_at) for reading in readings])

    # Then the OK status is the sensor's shared one and the error only its channel's own
    item = latest_item(aws, readings[0].series_key)
    assert "s" not in item["shared"]["M"]
    state = store.read(readings[0].provider, readings[0].sensor_id)
    for reading in readings:
        assert state.reading(reading.metric, reading.channel) == reading
