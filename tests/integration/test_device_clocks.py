"""Device clocks running ahead: kept as sent, flagged and counted, but never trusted beyond
receipt plus the tolerance (default 300 s) for sensor state, gateway status and liveness."""

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.dal.gateways_store import GatewaysStore
from sensorhook.dal.health_store import HealthStore
from sensorhook.dal.sensor_state_store import SensorStateStore
from sensorhook.handlers import processor
from tests.fixtures.loader import sample_json
from tests.integration.conftest import TABLES, Aws
from tests.integration.test_processor import (
    GATEWAY_V3,
    MAC,
    RECEIVED_AT,
    envelope,
    mhm_measured_at,
    readings_store,
    run,
)

TOLERANCE = timedelta(seconds=300)
SENSOR_STATE_TABLE = TABLES["SENSOR_STATE_TABLE"][0]
GATEWAYS_TABLE = TABLES["GATEWAYS_TABLE"][0]


@pytest.fixture(autouse=True)
def fresh_processor(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    yield
    processor.delivery_processor.cache_clear()


def emf(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def future_dated_counts(out: str) -> list[object]:
    """FutureDatedReports of each EMF document that carries it (others carry other metrics)."""
    return [m["FutureDatedReports"] for m in emf(out) if "FutureDatedReports" in m]


def test_a_reading_from_a_clock_a_day_ahead_is_flagged_and_does_not_hold_the_state(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    state = SensorStateStore(SENSOR_STATE_TABLE)
    # Given a reading whose sensor clock runs a day ahead
    a_day_ahead = RECEIVED_AT + timedelta(days=1)
    capsys.readouterr()
    assert run(("m-1", mhm_measured_at(a_day_ahead, received_at=RECEIVED_AT))) == {
        "batchItemFailures": []
    }

    # Then it is stored with its time as sent, flagged, counted and published flagged
    [stored] = [
        r
        for r in readings_store().query_range("everactive", MAC, a_day_ahead, a_day_ahead)
        if r.metric == "temperature" and r.channel == "0"
    ]
    assert (stored.measured_at, stored.future_dated) == (a_day_ahead, True)
    assert future_dated_counts(capsys.readouterr().out) == [[16.0]]
    [event] = aws.published_events()
    assert {r["future_dated"] for r in event["detail"]["readings"]} == {True}
    # and the sensor's liveness counts it at receipt plus the tolerance, not a day ahead
    [sensor] = HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE).sensors()
    assert sensor.newest_measured_at == RECEIVED_AT + TOLERANCE

    # When the sensor's next, correct reading arrives ten minutes later
    ten_minutes_later = RECEIVED_AT + timedelta(minutes=10)
    run(("m-2", mhm_measured_at(ten_minutes_later, received_at=ten_minutes_later)))

    # Then it replaces the state (it is not refused for a day), unflagged
    current = state.get("everactive", MAC, "temperature", "0")
    assert current is not None
    assert (current.measured_at, current.future_dated) == (ten_minutes_later, False)
    [sensor] = HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE).sensors()
    assert sensor.newest_measured_at == ten_minutes_later


def test_a_reading_within_the_tolerance_is_neither_flagged_nor_clamped(aws: Aws) -> None:
    state = SensorStateStore(SENSOR_STATE_TABLE)
    slightly_ahead = RECEIVED_AT + TOLERANCE

    run(("m-1", mhm_measured_at(slightly_ahead, received_at=RECEIVED_AT)))

    current = state.get("everactive", MAC, "temperature", "0")
    assert current is not None
    assert (current.measured_at, current.future_dated) == (slightly_ahead, False)
    [sensor] = HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE).sensors()
    assert sensor.newest_measured_at == slightly_ahead


def test_a_gateway_status_dated_a_day_ahead_neither_sticks_nor_keeps_the_gateway_online(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    gateways = GatewaysStore(GATEWAYS_TABLE)
    reported = sample_json(GATEWAY_V3)  # reported at 2022-06-28T19:44:37Z
    received = RECEIVED_AT.replace(hour=19, minute=45, second=0)
    # Given a status whose gateway clock runs a day ahead, received at 19:45:00
    ahead = {**reported, "timestamp": "2022-06-29T19:44:37Z"}
    capsys.readouterr()
    run(
        (
            "g-1",
            envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, json.dumps(ahead), received_at=received),
        )
    )

    # Then it is kept as sent but ordered and judged at receipt plus the tolerance
    item = gateways.get("everactive", "SYN0001")
    assert item is not None
    assert (item["reported_at"], item["status_at"]) == (
        "2022-06-29T19:44:37.000Z",
        "2022-06-28T19:50:00.000Z",
    )
    assert future_dated_counts(capsys.readouterr().out) == [[1.0]]
    [record] = HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE).gateways()
    assert record.status_at == received + TOLERANCE

    # When its next, correct status arrives ten minutes later
    later = {**reported, "timestamp": "2022-06-28T19:54:37Z"}
    later["Services"] = {**reported["Services"], "online": True}
    run(
        (
            "g-2",
            envelope(
                Flavor.EVERACTIVE_DS_GATEWAY_STATUS,
                json.dumps(later),
                received_at=received + timedelta(minutes=10),
            ),
        )
    )

    # Then it replaces the day-ahead status
    item = gateways.get("everactive", "SYN0001")
    assert item is not None
    assert (item["reported_at"], item["online"]) == ("2022-06-28T19:54:37.000Z", True)
