"""The sensor_state table's `#latest` item on moto: exact per-channel ordering under concurrent
writers, one read per sensor and delivery, and gateway health reading only what is due."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.health_store import HealthStore
from sensorhook.dal.sensor_state_store import (
    MAX_WRITE_ATTEMPTS,
    SensorStateStore,
    SilenceSchedule,
    StateWriteContended,
)
from tests.builders import efento_temperature_reading, largest_efento_batch
from tests.fixtures.loader import fixture_text
from tests.integration.conftest import TABLES, Aws
from tests.integration.test_processor import envelope, run

SENSOR_STATE_TABLE = TABLES["SENSOR_STATE_TABLE"][0]
GATEWAYS_TABLE = TABLES["GATEWAYS_TABLE"][0]
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def reading(metric: str, at: datetime, value: float, *, sensor_id: str = "s-1") -> Reading:
    return efento_temperature_reading(
        sensor_id,
        metric,
        at,
        value,
        received_at=at + timedelta(seconds=5),
        event_id=f"efento:{metric}:{at.isoformat()}",
    )


class RacingClient:
    """The real (moto) client, but a concurrent writer's PutItem lands between this writer's
    read and its own write, once: what two processor invocations on one sensor do."""

    def __init__(self, client: Any, concurrent: Callable[[], None]) -> None:
        self._client = client
        self._concurrent: Callable[[], None] | None = concurrent
        self.puts = 0

    def get_item(self, **request: Any) -> Any:
        return self._client.get_item(**request)

    def put_item(self, **request: Any) -> Any:
        self.puts += 1
        if self._concurrent is not None:
            concurrent, self._concurrent = self._concurrent, None
            concurrent()
        return self._client.put_item(**request)


def test_a_concurrent_write_of_another_channel_is_kept_not_overwritten(aws: Aws) -> None:
    plain = SensorStateStore(SENSOR_STATE_TABLE)
    plain.update_latest(reading("temperature", T0, 20.0))
    # Given another writer stores a newer humidity while this one merges its temperature
    racing = RacingClient(
        dynamodb_client(),
        lambda: plain.update_latest(reading("humidity", T0 + timedelta(minutes=2), 55.0)),
    )
    writer = SensorStateStore(SENSOR_STATE_TABLE, racing)

    # When this writer's newer temperature is written from its (now stale) read
    assert writer.update_latest(reading("temperature", T0 + timedelta(minutes=1), 21.0))

    # Then its first write lost the version race, and the retry kept both channels
    assert racing.puts == 2
    state = plain.read("efento", "s-1")
    assert state.reading("temperature", "1").value == 21.0  # type: ignore[union-attr]
    assert state.reading("humidity", "1").value == 55.0  # type: ignore[union-attr]
    assert state.version == 3


def test_an_older_reading_racing_a_newer_one_of_its_channel_never_replaces_it(aws: Aws) -> None:
    plain = SensorStateStore(SENSOR_STATE_TABLE)
    # Given a writer that read the sensor empty, and meanwhile a newer temperature is stored
    racing = RacingClient(
        dynamodb_client(),
        lambda: plain.update_latest(reading("temperature", T0 + timedelta(minutes=5), 25.0)),
    )
    writer = SensorStateStore(SENSOR_STATE_TABLE, racing)

    # When the writer's older temperature is written
    assert not writer.update_latest(reading("temperature", T0, 20.0))

    # Then the newer one stays: the merge from a fresh read found nothing newer to write
    state = plain.read("efento", "s-1")
    assert state.reading("temperature", "1").value == 25.0  # type: ignore[union-attr]
    assert racing.puts == 1


def test_a_channel_moves_forward_though_another_channel_of_the_sensor_is_newer(aws: Aws) -> None:
    store = SensorStateStore(SENSOR_STATE_TABLE)
    store.update_latest(reading("humidity", T0, 50.0))
    store.update_latest(reading("temperature", T0 + timedelta(hours=1), 20.0))

    # When a humidity older than the temperature but newer than the stored humidity arrives
    assert store.update_latest(reading("humidity", T0 + timedelta(minutes=30), 51.0))

    # Then it is the humidity's state (a sensor-level condition would have refused it)
    assert store.get("efento", "s-1", "humidity", "1").value == 51.0  # type: ignore[union-attr]


def test_a_reading_at_the_stored_instant_does_not_replace_it_and_writes_nothing(
    aws: Aws,
) -> None:
    store = SensorStateStore(SENSOR_STATE_TABLE)
    store.update_latest(reading("temperature", T0, 20.0))
    counting = RacingClient(dynamodb_client(), lambda: None)

    assert not SensorStateStore(SENSOR_STATE_TABLE, counting).update_latest(
        reading("temperature", T0, 99.0)
    )

    assert counting.puts == 0
    assert store.get("efento", "s-1", "temperature", "1").value == 20.0  # type: ignore[union-attr]


def test_a_sensor_contended_on_every_attempt_fails_the_write_for_sqs_to_retry(aws: Aws) -> None:
    plain = SensorStateStore(SENSOR_STATE_TABLE)
    at = iter(T0 + timedelta(seconds=n) for n in range(1, 100))

    class AlwaysRaced(RacingClient):
        def put_item(self, **request: Any) -> Any:
            plain.update_latest(reading("humidity", next(at), 50.0))  # someone always wins
            return super().put_item(**request)

    writer = SensorStateStore(SENSOR_STATE_TABLE, AlwaysRaced(dynamodb_client(), lambda: None))

    with pytest.raises(StateWriteContended):
        writer.update_latest(reading("temperature", T0, 20.0))
    assert plain.get("efento", "s-1", "temperature", "1") is None
    assert MAX_WRITE_ATTEMPTS == 8


def test_an_efento_delivery_reads_each_sensors_state_once(aws: Aws) -> None:
    # Given a multi-channel Efento batch (five channels of one measurement point)
    batch = envelope(Flavor.EFENTO_MEASUREMENTS, fixture_text("efento/multi-channel-batch.json"))
    reads: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == SENSOR_STATE_TABLE:
            reads.append(params["Key"]["metric_channel"]["S"])

    client = dynamodb_client()
    client.meta.events.register("provide-client-params.dynamodb.GetItem", count)
    try:
        # When it is processed
        assert run(("e-1", batch)) == {"batchItemFailures": []}
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.GetItem", count)

    # Then gap detection and the state merge shared one GetItem (five before, one per channel)
    assert reads == ["#latest"]


def test_due_at_is_never_later_than_silence_and_moves_once_per_threshold() -> None:
    schedule = SilenceSchedule(silent_after_periods=3.0, default_period_s=60)
    threshold = timedelta(minutes=3)
    stored: str | None = None
    moves = 0
    # a sensor a minute apart, sometimes late by up to 50 s
    for n in range(300):
        heard = T0 + timedelta(minutes=n, seconds=(n * 37) % 50)
        due = schedule.due_at(stored, heard, 60, {"temperature"})
        assert due <= (heard + threshold).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        moves += due != stored
        stored = due
    assert 300 / 4 < moves <= 300 / 2  # about every third reading, never every one
    assert schedule.due_at(None, T0, None, {"trap_state"}).startswith("9999")


def test_a_sensor_sending_batches_is_due_a_batch_after_its_newest_reading(aws: Aws) -> None:
    # Given an Efento sensor measuring each minute and transmitting every 15 minutes: two
    # channels, 15 measurements each, received 5 s after the last, processed by the processor
    health = HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE)
    batch = largest_efento_batch(channels=2, points=15, period_s=60)
    received_at = datetime.fromisoformat(batch["measurementsReceivedAt"])
    delivery = envelope(Flavor.EFENTO_MEASUREMENTS, json.dumps(batch), received_at=received_at)
    assert run(("e-1", delivery)) == {"batchItemFailures": []}

    # Then it is not due while its next batch is not (14 minutes on), nor at its silence
    # threshold: three expected intervals of a minute and its batch (14 min 5 s, first
    # measurement to the device readings at receipt), 45 min 15 s after its newest reading
    threshold = timedelta(seconds=3 * (60 + 845))
    assert health.due_sensors(received_at + timedelta(minutes=14)) == []
    assert health.due_sensors(received_at + threshold - timedelta(seconds=1)) == []
    [due] = health.due_sensors(received_at + threshold)
    assert (due.sensor_id, due.newest_measured_at, due.period_s, due.batch_s) == (
        "4242",
        received_at,
        60,
        845,
    )


def test_only_the_delivery_bringing_the_newest_reading_sets_the_batch(aws: Aws) -> None:
    store = SensorStateStore(SENSOR_STATE_TABLE)
    # Given a sensor whose newest delivery reached back 14 minutes
    store.update([(reading("temperature", T0, 20.0), T0)], oldest=T0 - timedelta(minutes=14))
    assert store.read("efento", "s-1").batch_s == 840

    # When a late delivery brings a new channel's older readings, reaching back an hour
    late = T0 - timedelta(minutes=5)
    assert store.update([(reading("humidity", late, 40.0), late)], oldest=T0 - timedelta(hours=1))

    # Then the batch is still the newest delivery's; the next one in order sets its own
    assert store.read("efento", "s-1").batch_s == 840
    store.update(
        [(reading("temperature", T0 + timedelta(minutes=1), 20.5), T0 + timedelta(minutes=1))]
    )
    assert store.read("efento", "s-1").batch_s == 0


def sensors_heard_at(count: int, heard: datetime) -> list[str]:
    store = SensorStateStore(SENSOR_STATE_TABLE)
    ids = [f"s-{heard:%H%M%S}-{n}" for n in range(count)]
    for sensor_id in ids:
        store.update_latest(reading("temperature", heard, 20.0, sensor_id=sensor_id))
    return ids


def test_health_reads_only_the_sensors_due_and_the_silent_ones(aws: Aws) -> None:
    now = T0 + timedelta(hours=1)
    health = HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE)
    # Given 40 sensors heard a minute ago, 2 heard 10 minutes ago (3 periods: overdue), and
    # one flagged silent earlier that has been heard again since
    sensors_heard_at(40, now - timedelta(minutes=1))
    overdue = sensors_heard_at(2, now - timedelta(minutes=10))
    [resumed] = sensors_heard_at(1, now - timedelta(seconds=30))
    health.change_sensor_silence(
        "efento", resumed, silent=True, changed_at=now, last_measured_at=now
    )

    # When a health run asks what is due
    due = health.due_sensors(now)

    # Then it gets exactly the overdue ones and the silent one, each as stored
    assert sorted((s.sensor_id, s.silent) for s in due) == sorted(
        [(sensor_id, False) for sensor_id in overdue] + [(resumed, True)]
    )
    assert {s.newest_measured_at for s in due if not s.silent} == {now - timedelta(minutes=10)}
    # and the silent one leaves the index once it is flagged heard again
    health.change_sensor_silence(
        "efento", resumed, silent=False, changed_at=now, last_measured_at=now
    )
    assert sorted(s.sensor_id for s in health.due_sensors(now)) == sorted(overdue)
    # while the operator's view still sees every sensor
    assert len(health.sensors()) == 43


def test_health_judges_a_sensor_silent_on_time_through_the_index(aws: Aws) -> None:
    health = HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE)
    # Given a sensor heard at T0, then at T0 + 1 and + 2 minutes (its due_at not moved since T0)
    for minutes in (0, 1, 2):
        SensorStateStore(SENSOR_STATE_TABLE).update_latest(
            reading("temperature", T0 + timedelta(minutes=minutes), 20.0)
        )

    # Then it is due once its newest reading is three periods old, not before it was heard
    assert health.due_sensors(T0 + timedelta(minutes=1, seconds=59)) == []
    [due] = health.due_sensors(T0 + timedelta(minutes=5))
    assert due.newest_measured_at == T0 + timedelta(minutes=2)
