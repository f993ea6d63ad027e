"""Gateway health and sensor silence judged by the real logic with a fake clock, a fake provider
API client (the `/health` sample, gateways as the API lists them), an in-memory store with the
conditional semantics of dal/health_store.py, and a recording publisher."""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sensorhook.dal.events import OutboundEvent
from sensorhook.dal.health_store import GatewayHealth, GatewayRecord, SensorRecord
from sensorhook.dal.webhook_secrets import SecretUnavailable
from sensorhook.logic.health import (
    GATEWAY_OFFLINE,
    GATEWAY_ONLINE,
    SENSOR_RESUMED,
    SENSOR_SILENT,
    HealthMonitor,
    HealthReport,
    HealthThresholds,
)
from sensorhook.observability import metrics
from sensorhook.providers.everactive_api.models import (
    ApiError,
    Gateway,
    Health,
    ProviderUnavailable,
    Sensor,
)
from tests.fixtures.loader import sample_json

NOW = datetime(2022, 6, 28, 20, 0, 0, tzinfo=UTC)
THRESHOLDS = HealthThresholds(
    gateway_offline_after=timedelta(seconds=900),
    sensor_silent_after_periods=3.0,
    default_sensor_period_s=60,
)
GATEWAY = "7C5BE61372C4"  # the gateway of the eversensors-list sample


class FakeApi:
    def __init__(self) -> None:
        self.health_body: dict[str, Any] = sample_json("everactive-ds/api/health.json")
        self.listed: list[dict[str, Any]] = []
        self.health_error: ApiError | None = None
        self.gateways_error: ApiError | None = None
        # every call needs a token, and a token needs the credentials
        self.credentials_error: SecretUnavailable | None = None

    def health(self) -> Health:
        if self.credentials_error:
            raise self.credentials_error
        if self.health_error:
            raise self.health_error
        return Health.model_validate(self.health_body)

    def gateways(self) -> Iterator[Gateway]:
        if self.credentials_error:
            raise self.credentials_error
        for gateway in self.listed:
            yield Gateway.model_validate(gateway)
        if self.gateways_error:  # after the first page, as a burst of 500s would
            raise self.gateways_error


@dataclass
class FakeStore:
    """dal/health_store.py's contract in memory: changes succeed only from the expected state."""

    records: dict[tuple[str, str], GatewayRecord] = field(default_factory=dict)
    sensor_records: list[SensorRecord] = field(default_factory=list)
    silent: dict[tuple[str, str], bool] = field(default_factory=dict)

    def gateways(self) -> list[GatewayRecord]:
        return list(self.records.values())

    def record_api_contact(self, provider: str, gateway_id: str, at: datetime | None) -> bool:
        known = self.records.get((provider, gateway_id))
        if known is None:
            self.records[(provider, gateway_id)] = GatewayRecord(
                provider=provider, gateway_id=gateway_id, api_last_contact_at=at
            )
            return True
        if at is None or (known.api_last_contact_at and known.api_last_contact_at >= at):
            return False
        self.records[(provider, gateway_id)] = known.model_copy(update={"api_last_contact_at": at})
        return True

    def change_gateway_health(
        self,
        provider: str,
        gateway_id: str,
        *,
        expected: GatewayHealth | None,
        health: GatewayHealth | None,
        changed_at: datetime,
    ) -> bool:
        known = self.records.get((provider, gateway_id)) or GatewayRecord(
            provider=provider, gateway_id=gateway_id
        )
        if known.health is not expected:
            return False
        self.records[(provider, gateway_id)] = known.model_copy(
            update={"health": health, "health_changed_at": changed_at}
        )
        return True

    def due_sensors(self, now: datetime) -> list[SensorRecord]:
        # every sensor: more than the due ones is within the contract (each is judged)
        return [
            s.model_copy(update={"silent": self.silent.get((s.provider, s.sensor_id), False)})
            for s in self.sensor_records
        ]

    def change_sensor_silence(
        self,
        provider: str,
        sensor_id: str,
        *,
        silent: bool,
        changed_at: datetime,
        last_measured_at: datetime,
    ) -> bool:
        if self.silent.get((provider, sensor_id), False) is silent:
            return False
        self.silent[(provider, sensor_id)] = silent
        return True

    def health_of(self, gateway_id: str, provider: str = "everactive") -> GatewayHealth | None:
        return self.records[(provider, gateway_id)].health


@dataclass
class RecordingPublisher:
    published: list[OutboundEvent] = field(default_factory=list)
    failures_left: int = 0

    def publish(self, events: Sequence[OutboundEvent]) -> int:
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("EventBridge kept rejecting the entry")
        self.published.extend(events)
        return len(events)

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        taken = [(e.detail_type, json.loads(e.detail)) for e in self.published]
        self.published.clear()
        return taken


@dataclass
class World:
    api: FakeApi = field(default_factory=FakeApi)
    store: FakeStore = field(default_factory=FakeStore)
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    now: datetime = NOW

    def run(self, *, after: timedelta = timedelta(0)) -> HealthReport:
        self.now += after
        monitor = HealthMonitor(
            self.api, self.store, self.publisher, THRESHOLDS, clock=lambda: self.now
        )
        return monitor.run()

    def table_gateway(self, gateway_id: str = GATEWAY, **fields: Any) -> None:
        self.store.records[("everactive", gateway_id)] = GatewayRecord(
            provider="everactive", gateway_id=gateway_id, **fields
        )

    def sensor(
        self,
        sensor_id: str,
        newest: datetime,
        *,
        provider: str = "efento",
        period_s: int | None,
        batch_s: int = 0,
        metrics: frozenset[str] = frozenset({"temperature"}),
    ) -> None:
        self.store.sensor_records.append(
            SensorRecord(
                provider=provider,
                sensor_id=sensor_id,
                newest_measured_at=newest,
                period_s=period_s,
                batch_s=batch_s,
                metrics=metrics,
            )
        )


@pytest.fixture
def world() -> Iterator[World]:
    yield World()
    metrics.clear_metrics()


def listed(gateway_id: str, last_seen: datetime) -> dict[str, Any]:
    """A gateway as the Data Services API lists it (last contact in unix seconds)."""
    return {"serialNumber": gateway_id, "name": "Boiler room", "lastSeen": last_seen.timestamp()}


@pytest.mark.parametrize(
    ("age_s", "health"),
    [(0, GatewayHealth.ONLINE), (900, GatewayHealth.ONLINE), (901, GatewayHealth.OFFLINE)],
)
def test_a_gateway_is_online_while_its_last_contact_is_within_the_threshold(
    world: World, age_s: int, health: GatewayHealth
) -> None:
    # Given a gateway the API last heard from age_s seconds ago
    world.api.listed = [listed(GATEWAY, NOW - timedelta(seconds=age_s))]

    # When the run judges it
    report = world.run()

    # Then it is online up to and including the threshold, offline after it
    assert world.store.health_of(GATEWAY) is health
    assert (report.gateways_online, report.gateways_offline) == (
        (1, 0) if health is GatewayHealth.ONLINE else (0, 1)
    )


@pytest.mark.parametrize(
    "contacts",
    [
        {"api": NOW - timedelta(minutes=2), "reported_at": NOW - timedelta(hours=2)},
        {"api": NOW - timedelta(hours=2), "reported_at": NOW - timedelta(minutes=2)},
        {"api": NOW - timedelta(hours=2), "last_reading_at": NOW - timedelta(minutes=2)},
    ],
    ids=["api-newest", "status-webhook-newest", "reading-newest"],
)
def test_last_contact_is_the_newest_of_the_api_and_the_table(
    world: World, contacts: dict[str, datetime]
) -> None:
    # Given a gateway whose only fresh contact is in one of the API, a status, or a reading
    api_contact = contacts.pop("api")
    world.table_gateway(GATEWAY, **contacts)
    world.api.listed = [listed(GATEWAY, api_contact)]

    # When the run judges it
    world.run()

    # Then that one fresh contact keeps it online, and the API's contact is remembered
    assert world.store.health_of(GATEWAY) is GatewayHealth.ONLINE
    assert world.store.records[("everactive", GATEWAY)].api_last_contact_at == api_contact
    assert world.publisher.take() == []


def test_a_gateway_known_only_from_the_api_is_added_to_the_table(world: World) -> None:
    # Given an empty table and a gateway the API lists
    world.api.listed = [listed("GW-NEW", NOW - timedelta(minutes=1))]

    # When the run judges it
    world.run()

    # Then the table knows it with the API's contact
    record = world.store.records[("everactive", "GW-NEW")]
    assert record.api_last_contact_at == NOW - timedelta(minutes=1)
    assert record.health is GatewayHealth.ONLINE


def test_first_sighting_online_is_silent_and_first_sighting_offline_is_published(
    world: World,
) -> None:
    # Given two gateways never judged before, one heard recently and one an hour ago
    world.table_gateway("GW-UP", reported_at=NOW - timedelta(minutes=4))
    world.table_gateway("GW-DOWN", reported_at=NOW - timedelta(hours=1))

    # When the first run judges them
    report = world.run()

    # Then both states are stored, and only the offline one is news
    assert world.store.health_of("GW-UP") is GatewayHealth.ONLINE
    assert world.store.health_of("GW-DOWN") is GatewayHealth.OFFLINE
    assert [(t, d["gateway_id"]) for t, d in world.publisher.take()] == [
        (GATEWAY_OFFLINE, "GW-DOWN")
    ]
    assert report.events == [f"{GATEWAY_OFFLINE} everactive#GW-DOWN"]


def test_going_offline_and_coming_back_are_each_published_once_across_polls(
    world: World,
) -> None:
    # Given a gateway judged online, whose contact then stops advancing
    last_seen = NOW
    world.api.listed = [listed(GATEWAY, last_seen)]
    world.run()

    # When the five-minute polls go on past the threshold
    published = []
    for _ in range(6):
        world.run(after=timedelta(minutes=5))
        published += world.publisher.take()

    # Then exactly one gateway.offline was published, with the contact and threshold
    assert published == [
        (
            GATEWAY_OFFLINE,
            {
                "provider": "everactive",
                "gateway_id": GATEWAY,
                "health": "offline",
                "last_contact_at": "2022-06-28T20:00:00Z",
                "offline_after_s": 900,
                "detected_at": "2022-06-28T20:20:00Z",
            },
        )
    ]

    # When it is heard from again and polled several times
    world.api.listed = [listed(GATEWAY, world.now + timedelta(minutes=1))]
    published = []
    for _ in range(3):
        world.run(after=timedelta(minutes=5))
        published += world.publisher.take()

    # Then exactly one gateway.online was published
    assert [(t, d["health"], d["last_contact_at"]) for t, d in published] == [
        (GATEWAY_ONLINE, "online", "2022-06-28T20:31:00Z")
    ]


def test_a_change_another_run_stored_first_is_not_published_again(world: World) -> None:
    # Given a gateway this run reads as online, but another run already stored it offline
    world.table_gateway(reported_at=NOW - timedelta(hours=1), health=GatewayHealth.ONLINE)
    stale = world.store.gateways()
    world.store.change_gateway_health(
        "everactive",
        GATEWAY,
        expected=GatewayHealth.ONLINE,
        health=GatewayHealth.OFFLINE,
        changed_at=NOW,
    )
    world.store.gateways = lambda: stale  # type: ignore[method-assign]

    # When this run judges it offline
    report = world.run()

    # Then it publishes nothing: the other run owns that change
    assert world.publisher.take() == []
    assert report.gateways_offline == 1


def test_an_event_that_cannot_be_published_undoes_its_change_so_the_next_run_retries(
    world: World,
) -> None:
    # Given a gateway judged online that has gone quiet, and EventBridge failing once
    world.table_gateway(reported_at=NOW - timedelta(hours=1), health=GatewayHealth.ONLINE)
    world.publisher.failures_left = 1

    # When a run tries to publish its gateway.offline
    with pytest.raises(RuntimeError):
        world.run()

    # Then the change is undone, and the next run publishes it
    assert world.store.health_of(GATEWAY) is GatewayHealth.ONLINE
    world.run(after=timedelta(minutes=5))
    assert [t for t, _ in world.publisher.take()] == [GATEWAY_OFFLINE]


@pytest.mark.parametrize(
    "failure",
    ["unhealthy", "health-error", "gateways-error"],
)
def test_a_failing_or_unhealthy_provider_takes_no_gateway_offline(
    world: World, failure: str
) -> None:
    # Given a gateway judged online whose last contact is old, and a provider in trouble
    world.table_gateway(reported_at=NOW - timedelta(hours=1), health=GatewayHealth.ONLINE)
    world.api.listed = [listed(GATEWAY, NOW - timedelta(hours=1))]
    if failure == "unhealthy":
        world.api.health_body = {"ok": False, "version": "89accb09"}
    elif failure == "health-error":
        world.api.health_error = ProviderUnavailable(500, None, "HTTP 500")
    else:
        world.api.gateways_error = ProviderUnavailable(500, None, "HTTP 500")

    # When the run judges it
    report = world.run()

    # Then the gateway stays online, nothing is published, and the trouble is reported
    assert world.store.health_of(GATEWAY) is GatewayHealth.ONLINE
    assert world.publisher.take() == []
    assert report.gateways_deferred == 1
    assert report.provider_ok is {"unhealthy": False, "health-error": None}.get(failure, True)
    assert (report.gateways_online, report.gateways_offline) == (1, 0)
    assert (report.api_error is not None) is (failure != "unhealthy")


def test_a_failing_provider_still_lets_a_gateway_come_back_online(world: World) -> None:
    # Given an offline gateway that just sent a status webhook, while the API answers 500
    world.table_gateway(reported_at=NOW - timedelta(minutes=1), health=GatewayHealth.OFFLINE)
    world.api.gateways_error = ProviderUnavailable(500, None, "HTTP 500")

    # When the run judges it
    world.run()

    # Then sensorhook's own evidence is enough to publish it online
    assert [t for t, _ in world.publisher.take()] == [GATEWAY_ONLINE]


def test_the_provider_version_is_reported(world: World) -> None:
    report = world.run()

    assert (report.provider_ok, report.provider_version) == (True, "89accb09")


@pytest.mark.parametrize(
    ("period_s", "silent_after_s"),
    [(None, 180), (60, 180), (300, 900)],
    ids=["no-period-default-60s", "efento-60s", "explicit-300s"],
)
def test_a_sensor_is_silent_after_the_configured_number_of_its_periods(
    world: World, period_s: int | None, silent_after_s: int
) -> None:
    # Given a sensor whose newest reading is exactly at its silence threshold
    world.sensor("282c02424eed", NOW - timedelta(seconds=silent_after_s), period_s=period_s)

    # When runs judge it at the threshold and one second after
    at_threshold = world.run()
    after_threshold = world.run(after=timedelta(seconds=1))

    # Then it is silent only past periods x its period (60 s when none is stated)
    assert (at_threshold.sensors_silent, after_threshold.sensors_silent) == (0, 1)
    [(detail_type, detail)] = world.publisher.take()
    assert detail_type == SENSOR_SILENT
    assert (detail["expected_period_s"], detail["silent_after_s"]) == (
        period_s or 60,
        silent_after_s,
    )


def test_a_sensor_sending_batches_is_silent_only_after_its_periods_and_its_batch(
    world: World,
) -> None:
    # Given an Efento sensor measuring each minute and transmitting every 15 minutes, heard
    # 12 minutes ago: its newest delivery reached back 14 minutes (batch_s 840)
    world.sensor("282c02424eed", NOW - timedelta(minutes=12), period_s=60, batch_s=840)

    # When runs judge it while its next batch is not yet due, at its threshold (3 x (60 + 840)
    # s = 45 minutes) and one second past it
    waiting = world.run()
    at_threshold = world.run(after=timedelta(minutes=33))
    after_threshold = world.run(after=timedelta(seconds=1))

    # Then it is silent only past the threshold (three minutes would call it silent for 12 of
    # every 15, and resumed on every batch)
    assert [r.sensors_silent for r in (waiting, at_threshold, after_threshold)] == [0, 0, 1]
    [(detail_type, detail)] = world.publisher.take()
    assert detail_type == SENSOR_SILENT
    assert (detail["expected_period_s"], detail["silent_after_s"]) == (60, 2700)


def test_silence_and_resumption_are_each_published_once(world: World) -> None:
    # Given an Efento sensor, period 60 s, last heard 10 minutes ago
    world.sensor("282c02424eed", NOW - timedelta(minutes=10), period_s=60)

    # When several runs pass
    for _ in range(3):
        world.run(after=timedelta(minutes=5))
    silent = world.publisher.take()

    # Then one sensor.silent was published, with what a consumer needs
    assert silent == [
        (
            SENSOR_SILENT,
            {
                "provider": "efento",
                "sensor_id": "282c02424eed",
                "silent": True,
                "last_measured_at": "2022-06-28T19:50:00Z",
                "expected_period_s": 60,
                "silent_after_s": 180,
                "detected_at": "2022-06-28T20:05:00Z",
            },
        )
    ]

    # When a reading arrives and several runs pass
    world.store.sensor_records = [
        world.store.sensor_records[0].model_copy(update={"newest_measured_at": world.now})
    ]
    for _ in range(2):
        world.run(after=timedelta(seconds=30))

    # Then one sensor.resumed was published
    assert [(t, d["silent"], d["last_measured_at"]) for t, d in world.publisher.take()] == [
        (SENSOR_RESUMED, False, "2022-06-28T20:15:00Z")
    ]


def test_a_failing_provider_silences_only_the_other_providers_sensors(world: World) -> None:
    # Given an Everactive and an Efento sensor both quiet for an hour, and the API down
    world.sensor(
        "bc:5e:a1:00:00:00:5e:13", NOW - timedelta(hours=1), provider="everactive", period_s=None
    )
    world.sensor("282c02424eed", NOW - timedelta(hours=1), period_s=60)
    world.api.health_error = ProviderUnavailable(None, None, "timed out")

    # When the run judges them
    report = world.run()

    # Then only the Efento sensor is published silent
    assert [(t, d["sensor_id"]) for t, d in world.publisher.take()] == [
        (SENSOR_SILENT, "282c02424eed")
    ]
    assert (report.sensors_silent, report.sensors_deferred) == (1, 1)


def test_unreadable_api_credentials_defer_everactive_and_still_judge_efento(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the credentials secret still as CDK created it (no client id: unreadable), an
    # Everactive gateway and sensor and an Efento sensor all quiet for an hour
    world.api.credentials_error = SecretUnavailable(
        "arn:aws:secretsmanager:eu-west-1:1:secret:ds-api: not a valid ClientCredentials"
    )
    world.table_gateway(reported_at=NOW - timedelta(hours=1), health=GatewayHealth.ONLINE)
    world.sensor(
        "bc:5e:a1:00:00:00:5e:13", NOW - timedelta(hours=1), provider="everactive", period_s=None
    )
    world.sensor("282c02424eed", NOW - timedelta(hours=1), period_s=60)

    # When the run judges them
    report = world.run()

    # Then it does not raise: Everactive is deferred as when the API is down, Efento is judged,
    # and the failure is counted where the provider-API alarm looks
    assert [(t, d["sensor_id"]) for t, d in world.publisher.take()] == [
        (SENSOR_SILENT, "282c02424eed")
    ]
    assert (report.provider_ok, report.gateways_deferred, report.sensors_deferred) == (None, 1, 1)
    assert report.api_error is not None and "ClientCredentials" in report.api_error
    assert world.store.health_of(GATEWAY) is GatewayHealth.ONLINE
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    errors = [line for line in emf if "ProviderApiErrors" in line]
    assert [(line["ProviderApiErrors"], line["flavor"]) for line in errors] == [
        ([1.0], "data-services"),  # /health and /evergateways
        ([1.0], "data-services"),
    ]


@pytest.mark.parametrize(
    ("metrics_", "silent"),
    [
        (frozenset({"trap_state"}), False),
        (frozenset({"trap_state", "temperature"}), True),
    ],
    ids=["steam-trap-only", "steam-trap-and-readings"],
)
def test_a_series_with_only_a_state_reported_on_change_is_never_silent(
    world: World, metrics_: frozenset[str], silent: bool
) -> None:
    # Given a v2020-07 steam trap whose state last changed an hour ago, alone or beside
    # periodic readings of the same sensor
    world.sensor(
        "ca:fe:00:01:02:03",
        NOW - timedelta(hours=1),
        provider="everactive",
        period_s=None,
        metrics=metrics_,
    )

    # When the run judges it
    report = world.run()

    # Then only a sensor with periodic metrics can be silent
    assert report.sensors_silent == int(silent)
    assert [t for t, _ in world.publisher.take()] == ([SENSOR_SILENT] if silent else [])


def test_a_steam_trap_flagged_silent_earlier_is_published_resumed_once(world: World) -> None:
    # Given a steam trap known only by its state, flagged silent before the rule existed
    world.sensor(
        "ca:fe:00:01:02:03",
        NOW - timedelta(hours=1),
        provider="everactive",
        period_s=None,
        metrics=frozenset({"trap_state"}),
    )
    world.store.silent[("everactive", "ca:fe:00:01:02:03")] = True

    # When two runs judge it
    world.run()
    world.run(after=timedelta(minutes=5))

    # Then one sensor.resumed clears the false alarm
    assert [t for t, _ in world.publisher.take()] == [SENSOR_RESUMED]


class _Silence:
    def __init__(self) -> None:
        self.told: list[str] = []

    def provider_silent(self, provider: str, now: datetime) -> None:
        self.told.append(provider)


@pytest.mark.parametrize(
    ("provider_ahead", "expected"),
    [(timedelta(minutes=10), ["everactive"]), (timedelta(minutes=2), [])],
)
def test_a_recovery_is_asked_for_when_the_provider_holds_readings_not_delivered(
    world: World, provider_ahead: timedelta, expected: list[str]
) -> None:
    # Given an online gateway and a sensor whose newest stored reading is older than the
    # provider's own last reading of it (threshold: 3 periods of 60 s)
    world.api.listed = [listed(GATEWAY, NOW)]
    world.sensor("aa:bb", NOW - timedelta(minutes=20), provider="everactive", period_s=60)
    sensors = [
        {
            "macAddress": "aa:bb",
            "lastReading": {
                "timestamp": (NOW - timedelta(minutes=20) + provider_ahead).timestamp()
            },
        },
        {"macAddress": "never:stored", "lastReading": {"timestamp": NOW.timestamp()}},
    ]
    world.api.sensors = lambda: iter(Sensor.model_validate(s) for s in sensors)  # type: ignore[attr-defined]
    silence = _Silence()
    # When gateway health runs
    HealthMonitor(
        world.api,
        world.store,
        world.publisher,
        THRESHOLDS,
        clock=lambda: NOW,
        silent_providers=silence,
    ).run()
    # Then it asks for a recovery only when the provider is ahead beyond the threshold
    assert silence.told == expected
