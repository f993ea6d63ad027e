"""Efento measurement batches: exact extrapolation (the seed's four worked examples) and mapping."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.providers.efento import normalize as efento_normalize
from sensorhook.providers.efento.normalize import MAX_READINGS_PER_DELIVERY
from sensorhook.providers.registry import InvalidPayload, normalize
from tests.fixtures.loader import fixture_json, fixture_text

RECEIVED_AT = datetime(2021, 5, 25, 12, 10, tzinfo=UTC)
EVENT_ID = "efento-measurements:abc"


def _normalize(body: str) -> NormalizedDelivery:
    return normalize(Flavor.EFENTO_MEASUREMENTS, body, event_id=EVENT_ID, received_at=RECEIVED_AT)


def _at(hhmm: str) -> datetime:
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime(2021, 5, 25, hour, minute, tzinfo=UTC)


def _channel_points(delivery: NormalizedDelivery, metric: str = "temperature") -> list[tuple]:
    return [
        (r.measured_at, r.value, r.status, r.error_code)
        for r in delivery.readings
        if r.metric == metric
    ]


def test_example_1_value_change_repeats_each_value_until_the_next_event():
    # Given the seed's first example: period 60, 12:00 = 20 and 12:03 = 21, batch to 12:04
    body = fixture_text("efento/example-1-value-change.json")

    # When it is normalized
    delivery = _normalize(body)

    # Then every minute is reconstructed with the value in force
    assert _channel_points(delivery) == [
        (_at("12:00"), 20.0, "OK", None),
        (_at("12:01"), 20.0, "OK", None),
        (_at("12:02"), 20.0, "OK", None),
        (_at("12:03"), 21.0, "OK", None),
        (_at("12:04"), 21.0, "OK", None),
    ]


def test_example_2_period_change_stops_the_old_period_at_the_next_event():
    # Given the seed's second example: 12:00 = 20 (period 180), 12:01 = 20 (period 60), 12:03 = 21
    body = fixture_text("efento/example-2-period-change.json")

    # When it is normalized
    delivery = _normalize(body)

    # Then the 180 s period yields only 12:00, the 60 s period fills 12:01 and 12:02
    assert _channel_points(delivery) == [
        (_at("12:00"), 20.0, "OK", None),
        (_at("12:01"), 20.0, "OK", None),
        (_at("12:02"), 20.0, "OK", None),
        (_at("12:03"), 21.0, "OK", None),
    ]
    assert [r.period_s for r in delivery.readings if r.metric == "temperature"] == [180, 60, 60, 60]


def test_example_3_error_status_has_no_value_and_keeps_the_error_code():
    # Given the seed's third example: 12:00 = 20 OK, 12:01 = 10000 ERROR, 12:05 = 20 OK
    body = fixture_text("efento/example-3-status-change.json")

    # When it is normalized
    delivery = _normalize(body)

    # Then 12:01..12:04 are ERROR readings without a value and with error code 10000
    assert _channel_points(delivery) == [
        (_at("12:00"), 20.0, "OK", None),
        (_at("12:01"), None, "ERROR", 10000),
        (_at("12:02"), None, "ERROR", 10000),
        (_at("12:03"), None, "ERROR", 10000),
        (_at("12:04"), None, "ERROR", 10000),
        (_at("12:05"), 20.0, "OK", None),
    ]


def test_example_4_single_event_fills_the_whole_batch():
    # Given the seed's fourth example: one event 11:00 = 20, period 60, batch 11:00..11:42
    body = fixture_text("efento/example-4-single-event.json")

    # When it is normalized
    delivery = _normalize(body)

    # Then the 43 measurements 11:00, 11:01, ..., 11:42 all read 20
    assert _channel_points(delivery) == [
        (_at("11:00") + timedelta(minutes=minute), 20.0, "OK", None) for minute in range(43)
    ]


def test_readings_carry_point_id_channel_unit_and_delivery_identity():
    # Given the first worked example
    delivery = _normalize(fixture_text("efento/example-1-value-change.json"))

    # When its temperature readings are inspected
    reading = next(r for r in delivery.readings if r.metric == "temperature")

    # Then they are keyed on the measurement point and channel and carry the delivery identity
    assert reading.provider == "efento"
    assert reading.sensor_id == "1234"
    assert reading.sensor_family == "efento"
    assert reading.channel == "1"
    assert reading.unit == "Cel"
    assert reading.gateway_id is None
    assert reading.event_id == EVENT_ID
    assert reading.received_at == RECEIVED_AT


def test_battery_signal_name_and_serial_become_readings_at_received_time():
    # Given a batch with battery, signal strength, name and serial number
    delivery = _normalize(fixture_text("efento/example-1-value-change.json"))

    # When the device readings are picked out
    device = {r.metric: r for r in delivery.readings if r.metric != "temperature"}

    # Then each is a reading at measurementsReceivedAt
    assert set(device) == {
        "battery_ok",
        "signal_strength",
        "measurement_point_name",
        "serial_number",
    }
    assert {r.measured_at for r in device.values()} == {datetime(2021, 5, 25, 12, 4, 7, tzinfo=UTC)}
    assert (device["battery_ok"].value, device["battery_ok"].text_value) == (1.0, "OK")
    assert (device["signal_strength"].value, device["signal_strength"].unit) == (-71.0, "dBm")
    assert device["measurement_point_name"].text_value == "Cold room 1"
    assert device["serial_number"].text_value == "282C02424EEB"


def test_multi_channel_batch_maps_types_missing_statuses_and_timestamp_spellings():
    # Given five channels, a MISSING event, an unknown channel type and every timestamp spelling
    body = fixture_text("efento/multi-channel-batch.json")

    # When it is normalized
    delivery = _normalize(body)

    # Then each channel type maps to its metric and canonical unit, unknown types keep their name
    by_channel = {(r.channel, r.metric, r.unit) for r in delivery.readings if r.channel}
    assert by_channel == {
        ("1", "temperature", "Cel"),
        ("2", "humidity", "%RH"),
        ("3", "pressure", "hPa"),
        ("4", "co2", "ppm"),
        ("5", "vibration_rms", ""),
    }
    # And MISSING readings have no value, other statuses pass through with their value
    assert _channel_points(delivery) == [
        (datetime(2021, 5, 25, 8, 0, tzinfo=UTC), 21.5, "OK", None),
        (datetime(2021, 5, 25, 8, 5, tzinfo=UTC), None, "MISSING", None),
        (datetime(2021, 5, 25, 8, 10, tzinfo=UTC), None, "MISSING", None),
    ]
    assert [(r.value, r.status) for r in delivery.readings if r.channel == "5"] == [
        (3.2, "OK_ACCURACY_LOW"),
        (3.2, "OK_ACCURACY_LOW"),
    ]
    # And a unix-seconds event lands on the same grid as the ISO ones
    assert [r.measured_at.minute for r in delivery.readings if r.channel == "2"] == [0, 10]
    battery = next(r for r in delivery.readings if r.metric == "battery_ok")
    assert (battery.value, battery.text_value) == (0.0, "LOW")
    assert battery.measured_at == datetime(2021, 5, 25, 8, 10, 12, 345000, tzinfo=UTC)


@pytest.mark.parametrize(
    "spelling",
    [
        "2021-05-25T12:00:00Z",
        "2021-05-25T12:00:00",
        "2021-05-25 12:00:00",
        "2021-05-25T12:00:00.000Z",
        "2021-05-25T14:00:00+02:00",
        1621944000,
        "1621944000",
    ],
)
def test_timestamp_spellings_all_mean_the_same_instant(spelling: Any):
    # Given the first example with its start timestamps in another spelling
    batch = fixture_json("efento/example-1-value-change.json")
    batch["firstMeasurementTimestamp"] = spelling
    batch["measurementsEvents"][0]["events"][0]["timestamp"] = spelling

    # When it is normalized
    delivery = _normalize(json.dumps(batch))

    # Then the reconstruction is the same as with the fixture's own spelling
    assert _channel_points(delivery) == _channel_points(
        _normalize(fixture_text("efento/example-1-value-change.json"))
    )


def test_unknown_fields_are_tolerated():
    # Given a batch with fields the document does not list, at every level
    batch = fixture_json("efento/example-1-value-change.json")
    batch["newTopLevel"] = {"x": 1}
    batch["measurementsEvents"][0]["unit"] = "C"
    batch["measurementsEvents"][0]["events"][0]["quality"] = "good"

    # When it is normalized
    delivery = _normalize(json.dumps(batch))

    # Then it yields the same readings as without them
    assert _channel_points(delivery) == _channel_points(
        _normalize(fixture_text("efento/example-1-value-change.json"))
    )


@pytest.mark.parametrize("wrap", [lambda b: [b], lambda b: {"measurements": [b]}])
def test_list_and_wrapped_batches_read_like_a_single_batch(wrap):
    # Given the first example as a list, or wrapped in {"measurements": [...]}
    batch = fixture_json("efento/example-1-value-change.json")

    # When it is normalized
    delivery = _normalize(json.dumps(wrap(batch)))

    # Then it yields the same readings as the bare batch
    assert delivery == _normalize(json.dumps(batch))


def test_missing_required_field_is_invalid_and_names_only_the_location():
    # Given a batch without its measurement point id
    batch = fixture_json("efento/example-1-value-change.json")
    del batch["measurementPointId"]

    # When it is normalized
    with pytest.raises(InvalidPayload) as raised:
        _normalize(json.dumps(batch))

    # Then the message names the flavor and the missing field, not the body
    assert str(raised.value) == "efento-measurements: measurementPointId: missing"


@pytest.mark.parametrize(
    ("period", "error"), [(0, "greater_than"), (-60, "greater_than"), (10**15, "less_than_equal")]
)
def test_period_out_of_range_is_invalid(period: int, error: str):
    # Given an event whose period would never advance, or leap past any date
    batch = fixture_json("efento/example-4-single-event.json")
    batch["measurementsEvents"][0]["events"][0]["period"] = period

    # When / Then it is refused as invalid
    with pytest.raises(InvalidPayload, match=rf"events\.0\.period: {error}"):
        _normalize(json.dumps(batch))


def test_batch_that_would_explode_is_invalid_without_expanding():
    # Given a 1 s period over a whole year (31.5 million points)
    batch = fixture_json("efento/example-4-single-event.json")
    batch["measurementsEvents"][0]["events"][0]["period"] = 1
    batch["lastMeasurementTimestamp"] = "2022-05-25 11:00:00"

    # When / Then it is refused, naming the bound
    with pytest.raises(InvalidPayload, match=str(MAX_READINGS_PER_DELIVERY)):
        _normalize(json.dumps(batch))


def test_batch_at_the_bound_is_accepted(monkeypatch: pytest.MonkeyPatch):
    # Given a bound of 100 readings (the real one is too slow to reach in a unit test)
    monkeypatch.setattr(efento_normalize, "MAX_READINGS_PER_DELIVERY", 100)
    # And a batch of exactly 100: 96 one-second points plus the 4 device readings
    batch = fixture_json("efento/example-4-single-event.json")
    batch["measurementsEvents"][0]["events"][0]["period"] = 1
    batch["lastMeasurementTimestamp"] = (_at("11:00") + timedelta(seconds=95)).isoformat()

    # When it is normalized
    delivery = _normalize(json.dumps(batch))

    # Then every point is there
    assert len(delivery.readings) == 100
    # And one point more is refused
    batch["lastMeasurementTimestamp"] = (_at("11:00") + timedelta(seconds=96)).isoformat()
    with pytest.raises(InvalidPayload, match="101"):
        _normalize(json.dumps(batch))


def test_last_before_first_is_invalid():
    # Given a batch whose time range runs backwards
    batch = fixture_json("efento/example-1-value-change.json")
    batch["lastMeasurementTimestamp"] = "2021-05-25 11:00:00"

    # When / Then it is refused
    with pytest.raises(InvalidPayload, match="before firstMeasurementTimestamp"):
        _normalize(json.dumps(batch))


def test_event_before_the_batch_contributes_only_points_inside_it():
    # Given a state carried over: an event at 11:58 (period 60) in a batch starting at 12:00
    batch = fixture_json("efento/example-1-value-change.json")
    batch["measurementsEvents"][0]["events"][0]["timestamp"] = "2021-05-25 11:58:00"

    # When it is normalized
    delivery = _normalize(json.dumps(batch))

    # Then its points start at the batch start, on its own grid
    assert [p[0] for p in _channel_points(delivery)][:3] == [
        _at("12:00"),
        _at("12:01"),
        _at("12:02"),
    ]


def test_bad_timestamp_is_invalid_without_echoing_it():
    # Given an event timestamp that is no date at all
    batch = fixture_json("efento/example-1-value-change.json")
    batch["measurementsEvents"][0]["events"][0]["timestamp"] = "secret-looking-text"

    # When / Then it is refused with a location and type only
    with pytest.raises(InvalidPayload) as raised:
        _normalize(json.dumps(batch))
    assert "secret-looking-text" not in str(raised.value)
    assert "measurementsEvents.0.events.0.timestamp: value_error" in str(raised.value)


def test_timestamp_without_a_utc_instant_is_invalid():
    # Given a batch start in year 1 at +01:00, which lies before the first representable UTC instant
    batch = fixture_json("efento/example-1-value-change.json")
    batch["firstMeasurementTimestamp"] = "0001-01-01T00:00:00+01:00"

    # When / Then it is refused rather than crashing the processor
    with pytest.raises(InvalidPayload, match=r"^efento-measurements: a date is out of range$"):
        _normalize(json.dumps(batch))
