"""Authentic deliveries the stores cannot take (a key past DynamoDB's limits, text that would
push an item past 400 KB or an event past 256 KB) are quarantined before anything is written,
instead of failing on every retry after some of their records were stored."""

import json
from collections.abc import Iterator

import pytest

from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.archive import quarantine_key
from sensorhook.handlers import processor
from tests.fixtures.loader import fixture_text, sample_json
from tests.integration.conftest import Aws
from tests.integration.test_processor import GATEWAY_V3, MHM, envelope, item_count, run


@pytest.fixture(autouse=True)
def fresh_processor(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    yield
    processor.delivery_processor.cache_clear()


def sensor_id_past_the_partition_key_limit() -> IngestEnvelope:
    body = sample_json(MHM)
    body["macAddress"] = "01:" * 700  # 2,100 bytes: series "everactive#…" > 2,048
    return envelope(Flavor.EVERACTIVE_DS_SENSOR_READING, json.dumps(body))


def channel_past_the_sort_key_limit() -> IngestEnvelope:
    body = json.loads(fixture_text("efento/multi-channel-batch.json"))
    body["measurementsEvents"][0]["channelType"] = "T" * 1_100  # point "<time>#t…#1" > 1,024
    return envelope(Flavor.EFENTO_MEASUREMENTS, json.dumps(body))


def name_past_the_item_limit() -> IngestEnvelope:
    body = json.loads(fixture_text("efento/multi-channel-batch.json"))
    body["measurementPointName"] = "Boiler room " * 40_000  # 480 KB: an item past 400 KB
    return envelope(Flavor.EFENTO_MEASUREMENTS, json.dumps(body))


def facility_past_the_event_limit() -> IngestEnvelope:
    body = json.loads(fixture_text("everactive-v2020/steam-trap-state-change.json"))
    body["facility"] = "North plant " * 25_000  # 300 KB: an event past 256 KB
    return envelope(Flavor.EVERACTIVE_V2020_STEAM_TRAP, json.dumps(body))


def gateway_serial_past_the_partition_key_limit() -> IngestEnvelope:
    body = sample_json(GATEWAY_V3)
    body["serial"] = "SYN" * 700
    return envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, json.dumps(body))


@pytest.mark.parametrize(
    "unstorable",
    [
        sensor_id_past_the_partition_key_limit,
        channel_past_the_sort_key_limit,
        name_past_the_item_limit,
        facility_past_the_event_limit,
        gateway_serial_past_the_partition_key_limit,
    ],
)
def test_an_authentic_delivery_no_store_can_take_is_quarantined_before_any_write(
    aws: Aws, unstorable: object
) -> None:
    # Given an authentic delivery with something no store can take
    delivery = unstorable()  # type: ignore[operator]

    # When it is processed
    response = run(("m-1", delivery))

    # Then it is acknowledged and quarantined (kept, replayable), and nothing was written
    assert response == {"batchItemFailures": []}
    assert aws.object_keys("quarantine/") == [quarantine_key(delivery)]
    for table in ("READINGS_TABLE", "SENSOR_STATE_TABLE", "GATEWAYS_TABLE"):
        assert item_count(aws, table) == 0
    assert aws.published_events() == []
