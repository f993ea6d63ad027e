"""Gateway health and sensor silence end to end: the real API client against the provider
emulator over loopback HTTP, real tables and bus in moto, events read back through a bus rule.

Each run is a scheduled poll; the emulator's clock and the monitor's move together.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from local.emulator.api import DEMO_API_CREDENTIALS, ProviderApi
from local.emulator.installation import Installation
from sensorhook.core import settings
from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import Flavor
from sensorhook.dal.events import EventPublisher
from sensorhook.dal.gateways_store import GatewaysStore
from sensorhook.dal.health_store import SILENCE_SORT_KEY, HealthStore
from sensorhook.dal.sensor_state_store import SensorStateStore
from sensorhook.handlers import gateway_health
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
from sensorhook.providers.everactive_api import ApiFlavor, ClientCredentials, EveractiveApi
from sensorhook.providers.registry import normalize
from tests.builders import SettableClock, lambda_context
from tests.fixtures.loader import fixture_text, sample_text
from tests.integration.conftest import BUS, REGION, TABLES, Aws

GATEWAYS_TABLE = TABLES["GATEWAYS_TABLE"][0]
SENSOR_STATE_TABLE = TABLES["SENSOR_STATE_TABLE"][0]
START = datetime(2022, 6, 28, 19, 0, 0, tzinfo=UTC)
RECEIVED_AT = datetime(2022, 6, 28, 20, 20, 3, tzinfo=UTC)  # the MHM sample's delivery
MHM_MAC = "01:01:01:ff:fe:00:0c:fe"
THRESHOLDS = HealthThresholds(
    gateway_offline_after=timedelta(seconds=900),
    sensor_silent_after_periods=3.0,
    default_sensor_period_s=60,
)
DS_CLIENT = "demo-ds-client"


@dataclass
class Emulated:
    aws: Aws
    provider: ProviderApi
    clock: SettableClock
    monitor: HealthMonitor

    def poll(self, *, after: timedelta = timedelta(0)) -> HealthReport:
        self.clock.now += after
        return self.monitor.run()

    def published(self) -> list[tuple[str, dict[str, Any]]]:
        return [(e["detail-type"], e["detail"]) for e in self.aws.published_events()]

    def gateway_item(self, gateway_id: str) -> dict[str, Any] | None:
        return GatewaysStore(GATEWAYS_TABLE).get("everactive", gateway_id)


@pytest.fixture(autouse=True)
def no_stray_metrics() -> Iterator[None]:
    """Runs outside the handler add metrics nothing flushes; keep them out of the EMF checks."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def emulated(aws: Aws) -> Iterator[Emulated]:
    clock = SettableClock(RECEIVED_AT)
    installation = Installation.create(seed=11, sensors=3, gateways=2, start=START)
    with ProviderApi(installation, clock=clock) as provider:
        client = EveractiveApi(
            flavor=ApiFlavor.DATA_SERVICES,
            base_url=provider.ds_api_base_url,
            token_url=provider.ds_token_url,
            credentials=lambda: ClientCredentials.model_validate(
                {"client_id": DS_CLIENT, "client_secret": DEMO_API_CREDENTIALS[DS_CLIENT]}
            ),
            sleep=lambda _seconds: None,
            max_attempts=3,
            page_size=1,  # every gateway on its own page: all pages are walked
            utc_now=clock,
        )
        monitor = HealthMonitor(
            client,
            HealthStore(GATEWAYS_TABLE, SENSOR_STATE_TABLE),
            EventPublisher(BUS),
            THRESHOLDS,
            clock=clock,
        )
        yield Emulated(aws, provider, clock, monitor)


def serials(emulated: Emulated) -> list[str]:
    return [gateway.serial for gateway in emulated.provider.installation.gateways]


def test_a_gateway_taken_offline_and_back_is_published_once_each_way(
    emulated: Emulated,
) -> None:
    # Given both emulated gateways polled once: first seen online, nothing published
    first, second = serials(emulated)
    report = emulated.poll()
    assert (report.gateways_online, report.gateways_offline) == (2, 0)
    assert emulated.published() == []

    # When the first gateway goes offline and the five-minute polls go on for half an hour
    emulated.provider.take_gateway_offline(first)
    for _ in range(6):
        emulated.poll(after=timedelta(minutes=5))

    # Then exactly one gateway.offline, for that gateway, was published
    [(detail_type, detail)] = emulated.published()
    assert (detail_type, detail["gateway_id"], detail["offline_after_s"]) == (
        GATEWAY_OFFLINE,
        first,
        900,
    )
    item = emulated.gateway_item(first)
    assert item is not None and item["health"] == "offline"
    assert item["api_last_contact_at"] == detail["last_contact_at"].replace("Z", ".000Z")
    assert emulated.gateway_item(second)["health"] == "online"  # type: ignore[index]

    # When it comes back and is polled three times
    emulated.provider.bring_gateway_online(first)
    for _ in range(3):
        emulated.poll(after=timedelta(minutes=5))

    # Then exactly one gateway.online was published
    assert [(t, d["gateway_id"]) for t, d in emulated.published()] == [(GATEWAY_ONLINE, first)]


def test_a_burst_of_500s_is_reported_and_takes_no_gateway_offline(
    emulated: Emulated,
) -> None:
    # Given both gateways known online, and polls that then fail for 20 minutes
    emulated.poll()
    emulated.provider.fail_next(500, count=6)  # /health and /evergateways, 3 attempts each

    # When a poll runs past the threshold while the provider answers 500
    report = emulated.poll(after=timedelta(minutes=20))

    # Then the failure is reported, and no gateway is taken offline
    assert report.provider_ok is None and report.api_error is not None
    assert (report.gateways_online, report.gateways_deferred) == (2, 2)
    assert emulated.published() == []
    assert [status for _, _, status in emulated.provider.requests].count(500) == 6
    for serial in serials(emulated):
        assert emulated.gateway_item(serial)["health"] == "online"  # type: ignore[index]

    # When the burst is over
    report = emulated.poll(after=timedelta(minutes=5))

    # Then the fresh contacts keep them online: nothing was ever published
    assert (report.provider_ok, report.api_error, report.gateways_online) == (True, None, 2)
    assert emulated.published() == []


def mhm_readings(measured_at: datetime | None = None) -> list[Any]:
    body = sample_text("everactive-ds/sensor-reading-mhm.json")
    flavor = Flavor.EVERACTIVE_DS_SENSOR_READING
    event_id = event_id_for(flavor, json.loads(body))
    readings = normalize(flavor, body, event_id=event_id, received_at=RECEIVED_AT).readings
    if measured_at is None:
        return readings
    return [r.model_copy(update={"measured_at": measured_at}) for r in readings]


def test_silence_survives_the_processors_writes_and_is_published_once_each_way(
    emulated: Emulated,
) -> None:
    # Given the MHM sample's sensor state and gateway status, as the processor stores them
    state = SensorStateStore(SENSOR_STATE_TABLE)
    for reading in mhm_readings():
        state.update_latest(reading)
    status_body = sample_text("everactive-ds/gateway-status-v3.json")
    flavor = Flavor.EVERACTIVE_DS_GATEWAY_STATUS
    delivery = normalize(
        flavor,
        status_body,
        event_id=event_id_for(flavor, json.loads(status_body)),
        received_at=RECEIVED_AT,
    )
    GatewaysStore(GATEWAYS_TABLE).update_status(delivery.gateway_statuses[0])

    # When two polls run ten minutes after its last reading (three 60 s periods have passed)
    emulated.poll(after=timedelta(minutes=10))
    emulated.poll(after=timedelta(minutes=1))

    # Then one sensor.silent was published, and the gateway (status 19:44:37) went offline
    published = emulated.published()
    assert sorted((t, d.get("sensor_id") or d.get("gateway_id")) for t, d in published) == [
        (GATEWAY_OFFLINE, "SYN0001"),
        (SENSOR_SILENT, MHM_MAC),
    ]

    # When a newer reading replaces each metric's item whole, as the processor does
    newer = RECEIVED_AT + timedelta(minutes=12)
    for reading in mhm_readings(newer):
        assert state.update_latest(reading)

    # Then the silence flag is still there, and the readers see only readings
    silence = emulated.aws.dynamodb.get_item(
        TableName=SENSOR_STATE_TABLE,
        Key={"series": {"S": f"everactive#{MHM_MAC}"}, "metric_channel": {"S": SILENCE_SORT_KEY}},
    )["Item"]
    assert silence["silent"] == {"BOOL": True}
    current = state.get("everactive", MHM_MAC, "temperature", "0")
    assert current is not None and current.measured_at == newer

    # When two more polls run
    emulated.poll(after=timedelta(seconds=30))
    emulated.poll(after=timedelta(seconds=30))

    # Then one sensor.resumed was published (the gateway is unchanged: readings carry no
    # relay time here, and the processor alone advances last_reading_at)
    assert [(t, d["sensor_id"], d["last_measured_at"]) for t, d in emulated.published()] == [
        (SENSOR_RESUMED, MHM_MAC, "2022-06-28T20:32:03Z")
    ]


def test_a_steam_trap_known_only_by_its_state_changes_is_never_silent(
    emulated: Emulated,
) -> None:
    # Given a v2020-07 steam trap state change stored as the processor stores it (a
    # `trap_state` item only: the state is reported on change, not periodically)
    body = fixture_text("everactive-v2020/steam-trap-state-change.json")
    flavor = Flavor.EVERACTIVE_V2020_STEAM_TRAP
    delivery = normalize(
        flavor, body, event_id=event_id_for(flavor, json.loads(body)), received_at=RECEIVED_AT
    )
    for reading in delivery.readings:
        SensorStateStore(SENSOR_STATE_TABLE).update_latest(reading)

    # When polls run long after the change
    report = emulated.poll(after=timedelta(hours=2))
    emulated.poll(after=timedelta(minutes=5))

    # Then the trap is never judged silent: it is never due, so a run does not even read it
    # (changed on purpose: runs read only the sensors due, and counted it before)
    assert (report.sensors, report.sensors_silent) == (0, 0)
    assert emulated.published() == []


def emf_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if '"_aws"' in line]


def test_the_handler_polls_the_provider_and_reports_its_metrics(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the emulator on the real clock, its credentials in Secrets Manager, and the
    # function's environment as infra sets it
    installation = Installation.create(
        seed=5, sensors=2, gateways=2, start=datetime.now(UTC) - timedelta(minutes=10)
    )
    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn = secrets.create_secret(
        Name="sensorhook/ds-api-credentials",
        SecretString=json.dumps(
            {"client_id": DS_CLIENT, "client_secret": DEMO_API_CREDENTIALS[DS_CLIENT]}
        ),
    )["ARN"]
    with ProviderApi(installation) as provider:
        for name, value in {
            "DS_API_BASE_URL": provider.ds_api_base_url,
            "DS_API_TOKEN_URL": provider.ds_token_url,
            "DS_API_CREDENTIALS_SECRET_ARN": arn,
            "API_MAX_ATTEMPTS": "1",  # no backoff sleeps in this test
        }.items():
            monkeypatch.setenv(name, value)
        settings.gateway_health_settings.cache_clear()
        gateway_health.health_monitor.cache_clear()
        capsys.readouterr()

        # When the scheduled handler runs, then runs again while the provider answers 500
        healthy = gateway_health.handler({"source": "aws.scheduler"}, lambda_context())
        provider.fail_next(500, count=2)
        failing = gateway_health.handler({"source": "aws.scheduler"}, lambda_context())
        gateway_health.health_monitor.cache_clear()
        settings.gateway_health_settings.cache_clear()

    # Then both runs report the gateways online and the second the provider's failure
    assert (healthy["provider_ok"], healthy["gateways_online"]) == (True, 2)
    assert (failing["provider_ok"], failing["gateways_online"]) == (None, 2)
    emf = emf_lines(capsys.readouterr().out)
    runs = [line for line in emf if "GatewaysOnline" in line]
    assert [(r["GatewaysOnline"], r["GatewaysOffline"], r["ProviderUnhealthy"]) for r in runs] == [
        ([2.0], [0.0], [0.0]),
        ([2.0], [0.0], [1.0]),
    ]
    errors = [line["ProviderApiErrors"] for line in emf if "ProviderApiErrors" in line]
    assert len(errors) == 2  # /health and /evergateways, one attempt each
    assert aws.published_events() == []


def test_the_handler_with_credentials_not_yet_set_still_judges_efento(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the credentials secret as the stack creates it (empty values and CDK's generated
    # placeholder), and an Everactive and an Efento sensor both quiet for an hour
    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn = secrets.create_secret(
        Name="sensorhook/ds-api-credentials",
        SecretString=json.dumps({"client_id": "", "client_secret": "", "placeholder": "x"}),
    )["ARN"]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    state = SensorStateStore(SENSOR_STATE_TABLE)
    for reading in mhm_readings(an_hour_ago):
        state.update_latest(reading)
        state.update_latest(
            reading.model_copy(update={"provider": "efento", "sensor_id": "efento-1"})
        )
    for name, value in {
        "DS_API_BASE_URL": "http://127.0.0.1:9/ds/v1",  # never called: no token can be asked for
        "DS_API_TOKEN_URL": "http://127.0.0.1:9/auth/token",
        "DS_API_CREDENTIALS_SECRET_ARN": arn,
    }.items():
        monkeypatch.setenv(name, value)
    settings.gateway_health_settings.cache_clear()
    gateway_health.health_monitor.cache_clear()
    capsys.readouterr()

    # When the scheduled handler runs
    report = gateway_health.handler({"source": "aws.scheduler"}, lambda_context())
    gateway_health.health_monitor.cache_clear()
    settings.gateway_health_settings.cache_clear()

    # Then it reports instead of raising: Everactive deferred, Efento published silent, and
    # the failure counted in ProviderApiErrors (which the provider-API alarm watches)
    assert (report["provider_ok"], report["sensors_deferred"]) == (None, 1)
    published = [(e["detail-type"], e["detail"]["sensor_id"]) for e in aws.published_events()]
    assert published == [(SENSOR_SILENT, "efento-1")]
    emf = emf_lines(capsys.readouterr().out)
    assert any("ProviderApiErrors" in line for line in emf)
