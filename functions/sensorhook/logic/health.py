"""Gateway health and sensor silence: judged on every scheduled run, published once per change.

A gateway's last contact is the newest of what the provider API says and what sensorhook saw
itself (its gateway_status webhooks, the readings it relayed); it is online while that contact
is at most `gateway_offline_after` old. A sensor is silent when its newest reading is older than
`sensor_silent_after_periods` of its expected interval (its measurement period, plus its batch
for a sensor that sends its measurements in batches); a series whose only metrics are states
reported on change (a v2020-07 steam trap's `trap_state`) is never silent, since its quiet says
nothing. Each change is stored with a conditional write before its event is published, so
repeated or concurrent runs publish it once; an event that cannot be published undoes its
change, so the next run tries again.

The provider API failing, saying it is unhealthy, or being unusable because its credentials
secret cannot be read (still CDK's placeholder before the operator puts the real values) is not
news about the gateways: such a run still reports gateways coming back (fresh contact proves it)
but takes no gateway or sensor of that provider offline or silent, and still judges the other
providers' sensors.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from sensorhook.core.timestamps import UtcDatetime
from sensorhook.dal.events import OutboundEvent
from sensorhook.dal.health_store import GatewayHealth, GatewayRecord, SensorRecord
from sensorhook.dal.sensor_state_store import EVENT_STATE_METRICS, SilenceSchedule
from sensorhook.dal.webhook_secrets import SecretUnavailable
from sensorhook.observability import logger, metrics
from sensorhook.providers.everactive_api.models import (
    ApiError,
    ApiFlavor,
    Gateway,
    Health,
    Sensor,
)
from sensorhook.providers.everactive_api.transport import ERRORS_METRIC, record_metric

GATEWAY_OFFLINE = "gateway.offline"
GATEWAY_ONLINE = "gateway.online"
SENSOR_SILENT = "sensor.silent"
SENSOR_RESUMED = "sensor.resumed"

API_PROVIDER = "everactive"  # whose gateways the provider API lists
API_FLAVOR = ApiFlavor.DATA_SERVICES  # the API this run calls (handlers/gateway_health.py)


class ProviderApi(Protocol):
    """The part of the Everactive API client (`EveractiveApi`) this run needs."""

    def health(self) -> Health: ...

    def gateways(self) -> Iterator[Gateway]: ...

    def sensors(self) -> Iterator[Sensor]: ...


class HealthStorage(Protocol):
    def gateways(self) -> list[GatewayRecord]: ...

    def record_api_contact(self, provider: str, gateway_id: str, at: datetime | None) -> bool: ...

    def change_gateway_health(
        self,
        provider: str,
        gateway_id: str,
        *,
        expected: GatewayHealth | None,
        health: GatewayHealth | None,
        changed_at: datetime,
    ) -> bool: ...

    def due_sensors(self, now: datetime) -> list[SensorRecord]:
        """At least every sensor silent by `now` if nothing newer came (its newest reading
        older than its silence threshold) and every sensor flagged silent; more is allowed
        (each is judged), fewer is not."""
        ...

    def change_sensor_silence(
        self,
        provider: str,
        sensor_id: str,
        *,
        silent: bool,
        changed_at: datetime,
        last_measured_at: datetime,
    ) -> bool: ...


class Publisher(Protocol):
    def publish(self, events: Sequence[OutboundEvent]) -> int: ...


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    gateway_offline_after: timedelta
    sensor_silent_after_periods: float
    default_sensor_period_s: int


class GatewayHealthChanged(BaseModel):
    """The detail of `gateway.offline` and `gateway.online` (docs/events.md)."""

    model_config = ConfigDict(frozen=True)

    provider: str
    gateway_id: str
    health: GatewayHealth
    last_contact_at: UtcDatetime | None  # None: no contact was ever seen
    offline_after_s: int
    detected_at: UtcDatetime


class SensorSilenceChanged(BaseModel):
    """The detail of `sensor.silent` and `sensor.resumed` (docs/events.md)."""

    model_config = ConfigDict(frozen=True)

    provider: str
    sensor_id: str
    silent: bool
    last_measured_at: UtcDatetime
    expected_period_s: int
    silent_after_s: int
    detected_at: UtcDatetime


class HealthReport(BaseModel):
    """What one run saw and did; the handler returns it."""

    provider_ok: bool | None  # None: /health could not be read
    provider_version: str | None = None
    api_error: str | None = None
    gateways_online: int = 0
    gateways_offline: int = 0
    gateways_deferred: int = 0  # judged offline, left as they were (and counted so): API down
    sensors: int = 0  # judged this run: the sensors due or flagged silent, not all of them
    sensors_silent: int = 0
    sensors_deferred: int = 0  # judged silent, left as they were: the provider API was down
    events: list[str] = []  # "<detail-type> <provider>#<id>", in publishing order


def _api_failed(message: str, error: ApiError | SecretUnavailable) -> None:
    """Log a call that failed. The client counts its own failures in ProviderApiErrors; a call
    that never started because the credentials secret is unreadable (still CDK's placeholder)
    is counted here, so the same alarm says the provider is not being read. Neither error's
    text holds a secret: SecretUnavailable names the secret and the kind of failure only."""
    if isinstance(error, SecretUnavailable):
        record_metric(ERRORS_METRIC, MetricUnit.Count, 1, API_FLAVOR)
    logger.warning(message, extra={"error": repr(error)})


def gateway_event(change: GatewayHealthChanged) -> OutboundEvent:
    detail_type = GATEWAY_OFFLINE if change.health is GatewayHealth.OFFLINE else GATEWAY_ONLINE
    return OutboundEvent(detail_type, change.model_dump_json())


def sensor_event(change: SensorSilenceChanged) -> OutboundEvent:
    return OutboundEvent(
        SENSOR_SILENT if change.silent else SENSOR_RESUMED, change.model_dump_json()
    )


class SilentProviders(Protocol):
    """Told of a provider whose API has readings sensorhook never received (a sensor's last
    reading there is newer than the one stored by more than its silence threshold) while one
    of its gateways is online: its readings subscription is silent (logic/incidents.py)."""

    def provider_silent(self, provider: str, now: datetime) -> None: ...


class HealthMonitor:
    def __init__(
        self,
        api: ProviderApi,
        store: HealthStorage,
        publisher: Publisher,
        thresholds: HealthThresholds,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        silent_providers: SilentProviders | None = None,
    ) -> None:
        self._api = api
        self._store = store
        self._publisher = publisher
        self._thresholds = thresholds
        self._clock = clock
        self._silent_providers = silent_providers
        self._online_providers: set[str] = set()

    def run(self) -> HealthReport:
        now = self._clock()
        report = self._check_provider()
        api_contacts = self._api_contacts(report)
        provider_down = report.provider_ok is not True or report.api_error is not None
        self._online_providers = set()
        self._judge_gateways(now, api_contacts, provider_down, report)
        stored = self._judge_sensors(now, provider_down, report)
        if (
            self._silent_providers is not None
            and not provider_down
            and API_PROVIDER in self._online_providers
            and self._provider_has_more(stored)
        ):
            self._silent_providers.provider_silent(API_PROVIDER, now)
        metrics.add_metric(
            name="GatewaysOnline", unit=MetricUnit.Count, value=report.gateways_online
        )
        metrics.add_metric(
            name="GatewaysOffline", unit=MetricUnit.Count, value=report.gateways_offline
        )
        metrics.add_metric(name="SensorsSilent", unit=MetricUnit.Count, value=report.sensors_silent)
        metrics.add_metric(
            name="ProviderUnhealthy", unit=MetricUnit.Count, value=int(provider_down)
        )
        logger.info("health judged", extra=report.model_dump())
        return report

    def _check_provider(self) -> HealthReport:
        try:
            health = self._api.health()
        # the provider cannot vouch for its gateway data; the run goes on with what
        # sensorhook saw itself
        except (ApiError, SecretUnavailable) as error:
            _api_failed("provider /health failed", error)
            return HealthReport(provider_ok=None, api_error=repr(error))
        if not health.ok:
            logger.warning("provider reports itself unhealthy", extra={"version": health.version})
        return HealthReport(provider_ok=health.ok, provider_version=health.version)

    def _api_contacts(self, report: HealthReport) -> dict[str, datetime | None]:
        """Gateway serial -> last contact, from every page of the provider's gateways."""
        try:
            return {gateway.serial_number: gateway.last_contact for gateway in self._api.gateways()}
        except (ApiError, SecretUnavailable) as error:
            _api_failed("provider gateways could not be listed", error)
            report.api_error = repr(error)
            return {}

    def _judge_gateways(
        self,
        now: datetime,
        api_contacts: dict[str, datetime | None],
        provider_down: bool,
        report: HealthReport,
    ) -> None:
        records = {(r.provider, r.gateway_id): r for r in self._store.gateways()}
        for gateway_id, at in api_contacts.items():
            known = records.get((API_PROVIDER, gateway_id))
            if known is None:  # known only from the API: the table learns of it
                self._store.record_api_contact(API_PROVIDER, gateway_id, at)
                known = GatewayRecord(provider=API_PROVIDER, gateway_id=gateway_id)
            elif at is None or (known.api_last_contact_at and at <= known.api_last_contact_at):
                continue
            else:
                self._store.record_api_contact(API_PROVIDER, gateway_id, at)
            records[(API_PROVIDER, gateway_id)] = known.model_copy(
                update={"api_last_contact_at": at}
            )
        for record in records.values():
            status_contact = record.status_at or record.reported_at
            contacts = (status_contact, record.last_reading_at, record.api_last_contact_at)
            last_contact = max((c for c in contacts if c is not None), default=None)
            online = (
                last_contact is not None
                and now - last_contact <= self._thresholds.gateway_offline_after
            )
            judged = GatewayHealth.ONLINE if online else GatewayHealth.OFFLINE
            stored: GatewayHealth | None = judged
            if judged is not record.health:
                if (
                    judged is GatewayHealth.OFFLINE
                    and provider_down
                    and record.provider == API_PROVIDER
                ):
                    logger.warning(
                        "gateway looks offline while the provider API is down; not judged",
                        extra={"gateway_id": record.gateway_id, "last_contact_at": last_contact},
                    )
                    report.gateways_deferred += 1
                    stored = record.health
                else:
                    self._change_gateway(record, judged, last_contact, now, report)
            report.gateways_online += stored is GatewayHealth.ONLINE
            if stored is GatewayHealth.ONLINE:
                self._online_providers.add(record.provider)
            report.gateways_offline += stored is GatewayHealth.OFFLINE

    def _change_gateway(
        self,
        record: GatewayRecord,
        health: GatewayHealth,
        last_contact: datetime | None,
        now: datetime,
        report: HealthReport,
    ) -> None:
        """Store the change; publish it unless it is the first, online, sighting."""
        key = {"provider": record.provider, "gateway_id": record.gateway_id}
        if not self._store.change_gateway_health(
            **key, expected=record.health, health=health, changed_at=now
        ):
            return  # another run stored this change and publishes it
        if record.health is None and health is GatewayHealth.ONLINE:
            return  # nothing a consumer did not already assume
        change = GatewayHealthChanged(
            **key,
            health=health,
            last_contact_at=last_contact,
            offline_after_s=int(self._thresholds.gateway_offline_after.total_seconds()),
            detected_at=now,
        )
        try:
            self._publisher.publish([gateway_event(change)])
        except Exception:
            self._store.change_gateway_health(
                **key, expected=health, health=record.health, changed_at=now
            )
            raise
        report.events.append(
            f"{gateway_event(change).detail_type} {record.provider}#{record.gateway_id}"
        )
        logger.info("gateway health changed", extra=json.loads(change.model_dump_json()))

    def _silent_after(self, sensor: SensorRecord) -> timedelta:
        """The sensor's silence threshold: the figure the processor set its due time by."""
        schedule = SilenceSchedule(
            self._thresholds.sensor_silent_after_periods,
            self._thresholds.default_sensor_period_s,
        )
        return schedule.silent_after(sensor.period_s, sensor.batch_s)

    def _provider_has_more(self, stored: dict[str, SensorRecord]) -> bool:
        """Does the provider's API hold a reading of a known sensor newer than the newest
        stored, by more than that sensor's silence threshold? Then deliveries are missing,
        not measurements. A sensor never stored says nothing (its webhook may be new)."""
        try:
            listed = list(self._api.sensors())
        except (ApiError, SecretUnavailable) as error:
            _api_failed("provider sensors could not be listed", error)
            return False
        for sensor in listed:
            known = stored.get(sensor.mac_address)
            last = sensor.last_reading_at
            if known is None or last is None:
                continue
            if last - known.newest_measured_at > self._silent_after(known):
                logger.warning(
                    "the provider has readings sensorhook did not receive",
                    extra={"sensor_id": sensor.mac_address, "provider_last_reading_at": last},
                )
                return True
        return False

    def _judge_sensors(
        self, now: datetime, provider_down: bool, report: HealthReport
    ) -> dict[str, SensorRecord]:
        """Judge every sensor that is due or flagged silent (the others cannot have changed);
        returns the provider API's sensors among them as stored, by id. A sensor whose provider
        holds readings newer than its stored ones by more than its silence threshold is due
        (the provider's reading is not later than now), so `_provider_has_more` misses none."""
        stored: dict[str, SensorRecord] = {}
        for sensor in self._store.due_sensors(now):
            report.sensors += 1
            period_s = sensor.period_s or self._thresholds.default_sensor_period_s
            silent_after = self._silent_after(sensor)
            silent = (
                not sensor.metrics <= EVENT_STATE_METRICS
                and now - sensor.newest_measured_at > silent_after
            )
            if sensor.provider == API_PROVIDER:
                stored[sensor.sensor_id] = sensor
            if silent is not sensor.silent:
                if silent and provider_down and sensor.provider == API_PROVIDER:
                    report.sensors_deferred += 1
                    continue  # likely the provider's outage, not the sensor's silence
                change = SensorSilenceChanged(
                    provider=sensor.provider,
                    sensor_id=sensor.sensor_id,
                    silent=silent,
                    last_measured_at=sensor.newest_measured_at,
                    expected_period_s=period_s,
                    silent_after_s=round(silent_after.total_seconds()),
                    detected_at=now,
                )
                self._change_sensor(change, report)
            report.sensors_silent += silent
        return stored

    def _change_sensor(self, change: SensorSilenceChanged, report: HealthReport) -> None:
        key = {"provider": change.provider, "sensor_id": change.sensor_id}
        if not self._store.change_sensor_silence(
            **key,
            silent=change.silent,
            changed_at=change.detected_at,
            last_measured_at=change.last_measured_at,
        ):
            return  # another run stored this change and publishes it
        event = sensor_event(change)
        try:
            self._publisher.publish([event])
        except Exception:
            self._store.change_sensor_silence(
                **key,
                silent=not change.silent,
                changed_at=change.detected_at,
                last_measured_at=change.last_measured_at,
            )
            raise
        report.events.append(f"{event.detail_type} {change.provider}#{change.sensor_id}")
        logger.info("sensor silence changed", extra=json.loads(change.model_dump_json()))
