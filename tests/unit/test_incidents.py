"""Incidents (logic/incidents.py): which reconcile outcome opens one, that an open one is
carried and a closed one is not resurrected, one execution name per incident; and the
recovery steps' decisions (logic/recovery.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from sensorhook.core.settings import DesiredSubscription
from sensorhook.dal.subscriptions_store import (
    ProviderContacts,
    SubscriptionState,
    SubscriptionStatus,
)
from sensorhook.logic.backfill import SensorBackfill
from sensorhook.logic.incidents import (
    IncidentCause,
    RecoveryInput,
    RecoveryStarter,
    SilenceRecoveries,
    execution_name,
    reconciled_incident,
)
from sensorhook.logic.recovery import (
    SubscriptionNotRecovered,
    confirm_deliveries,
    finish,
    give_up,
    operator_message,
    recovered,
)

NOW = datetime(2026, 11, 29, 20, 15, tzinfo=UTC)
READINGS = DesiredSubscription(
    name="ds-sensor-readings", provider="everactive-ds", event_type="sensor_reading"
)
EFENTO = DesiredSubscription(name="efento", provider="efento", event_type="measurements")


def _state(**fields: object) -> SubscriptionState:
    values: dict[str, object] = {
        "name": READINGS.name,
        "provider": READINGS.provider,
        "event_type": READINGS.event_type,
        "callback_url": "https://x/y",
        "status": SubscriptionStatus.ACTIVE,
        "provider_id": "w1",
        "last_reconciled_at": NOW - timedelta(minutes=15),
    }
    return SubscriptionState.model_validate(values | fields)


@pytest.mark.parametrize(
    ("status", "recreated", "cause"),
    [
        (SubscriptionStatus.RE_ENABLED, False, IncidentCause.DISABLED_BY_PROVIDER),
        (SubscriptionStatus.ACTIVE, True, IncidentCause.MISSING),
        (SubscriptionStatus.ERROR, False, IncidentCause.RECONCILE_FAILED),
        (SubscriptionStatus.SILENT, False, IncidentCause.SILENT),
    ],
)
def test_a_broken_subscription_opens_an_incident_named_by_its_detection(
    status: SubscriptionStatus, recreated: bool, cause: IncidentCause
) -> None:
    incident = reconciled_incident(
        READINGS, status, recreated=recreated, previous=_state(), now=NOW
    )
    assert incident.new and incident.recovery is not None
    assert incident.recovery.cause is cause
    assert incident.recovery.incident_id == "20261129T201500Z"
    assert execution_name(READINGS.name, incident.recovery.incident_id) == (
        "ds-sensor-readings-20261129T201500Z"
    )


def test_a_healthy_subscription_opens_nothing() -> None:
    incident = reconciled_incident(
        READINGS, SubscriptionStatus.ACTIVE, recreated=False, previous=_state(), now=NOW
    )
    assert incident.recovery is None


def test_an_open_incident_is_started_again_under_the_same_name() -> None:
    previous = _state(
        incident_id="20261129T200000Z",
        incident_cause="silent",
        incident_started_at=NOW - timedelta(minutes=15),
    )
    incident = reconciled_incident(
        READINGS, SubscriptionStatus.RE_ENABLED, recreated=False, previous=previous, now=NOW
    )
    assert not incident.new and incident.recovery is not None
    assert incident.recovery.incident_id == "20261129T200000Z"
    assert incident.recovery.cause is IncidentCause.SILENT


def test_after_giving_up_it_stays_disabled_and_starts_nothing() -> None:
    previous = _state(status=SubscriptionStatus.DISABLED, gave_up_at=NOW - timedelta(hours=1))
    incident = reconciled_incident(
        READINGS, SubscriptionStatus.ERROR, recreated=False, previous=previous, now=NOW
    )
    assert incident.status is SubscriptionStatus.DISABLED and incident.recovery is None


def test_efento_is_configured_by_hand_and_never_recovered_through_an_api() -> None:
    incident = reconciled_incident(
        EFENTO, SubscriptionStatus.SILENT, recreated=False, previous=None, now=NOW
    )
    assert incident.recovery is None


class _Executions:
    def __init__(self) -> None:
        self.names: list[str] = []

    def start(self, name: str, input_json: str) -> bool:
        if name in self.names:
            return False
        self.names.append(name)
        return True

    def ended(self, name: str) -> bool:
        return False


class _Rows:
    def __init__(self) -> None:
        self.open: dict[str, str] = {}

    def open_incident(self, name: str, incident_id: str, cause: str, at: datetime) -> bool:
        if name in self.open:
            return False
        self.open[name] = incident_id
        return True

    def close_incident(self, name: str, incident_id: str, *, gave_up_at: datetime | None) -> bool:
        return self.open.pop(name, None) == incident_id


def _recovery(incident_id: str = "20261129T201500Z") -> RecoveryInput:
    return RecoveryInput(
        subscription=READINGS.name,
        provider=READINGS.provider,
        event_type=READINGS.event_type,
        incident_id=incident_id,
        cause=IncidentCause.SILENT,
        detected_at=NOW,
    )


def test_an_incident_is_opened_once_and_its_execution_started_once() -> None:
    executions, rows = _Executions(), _Rows()
    starter = RecoveryStarter(executions, rows)
    assert starter.open_and_start(_recovery())
    # a second detection a minute later finds the incident open: nothing new starts
    assert not starter.open_and_start(_recovery("20261129T201600Z"))
    assert not starter.start(_recovery())
    assert executions.names == ["ds-sensor-readings-20261129T201500Z"]


def test_a_failing_start_is_not_raised() -> None:
    class Broken:
        def start(self, name: str, input_json: str) -> bool:
            raise RuntimeError("throttled")

        def ended(self, name: str) -> bool:
            return False

    assert not RecoveryStarter(Broken(), _Rows()).open_and_start(_recovery())


def test_gateway_health_starts_the_readings_subscription_of_a_silent_provider() -> None:
    executions, rows = _Executions(), _Rows()
    silence = SilenceRecoveries([READINGS, EFENTO], RecoveryStarter(executions, rows))
    silence.provider_silent("efento", NOW)
    silence.provider_silent("everactive", NOW)
    assert executions.names == ["ds-sensor-readings-20261129T201500Z"]


class _States:
    def __init__(self, *states: SubscriptionState) -> None:
        self.rows = {state.name: state for state in states}

    def all(self) -> dict[str, SubscriptionState]:
        return self.rows


def test_re_enabling_succeeds_only_when_the_provider_is_right() -> None:
    done = recovered(
        _States(_state(status=SubscriptionStatus.RE_ENABLED)), READINGS.name, "i", api_calls=3
    )
    assert done.status is SubscriptionStatus.RE_ENABLED and done.api_calls == 3
    with pytest.raises(SubscriptionNotRecovered, match="503"):
        recovered(
            _States(_state(status=SubscriptionStatus.ERROR, last_error="503 unavailable")),
            READINGS.name,
            "i",
            api_calls=1,
        )
    with pytest.raises(SubscriptionNotRecovered):
        recovered(_States(), READINGS.name, "i", api_calls=0)


def test_deliveries_are_confirmed_by_a_reading_after_the_incident_within_a_bounded_wait() -> None:
    since = NOW
    stale = {"everactive": ProviderContacts(last_reading_at=NOW - timedelta(seconds=1))}
    fresh = {"everactive": ProviderContacts(last_reading_at=NOW + timedelta(seconds=1))}
    waiting = confirm_deliveries(stale, _recovery(), since=since, checks=0, max_checks=3)
    assert (waiting.confirmed, waiting.done, waiting.checks) == (False, False, 1)
    over = confirm_deliveries(stale, _recovery(), since=since, checks=2, max_checks=3)
    assert (over.confirmed, over.done) == (False, True)
    confirmed = confirm_deliveries(fresh, _recovery(), since=since, checks=0, max_checks=3)
    assert (confirmed.confirmed, confirmed.done) == (True, True)
    traps = _recovery().model_copy(
        update={"provider": "everactive-v2020-07", "event_type": "steam_trap_state_change"}
    )
    assert confirm_deliveries({}, traps, since=since, checks=0, max_checks=3).done


def test_the_incident_record_counts_readings_windows_and_calls() -> None:
    results = [
        SensorBackfill(sensor_id="a", start=NOW, end=NOW, readings=5, windows=3, api_calls=4),
        SensorBackfill(sensor_id="b", start=NOW, end=NOW, windows=1, api_calls=2, error="x"),
    ]
    record, event = finish(
        _recovery(),
        "exec",
        now=NOW + timedelta(seconds=90),
        results=results,
        re_enable_calls=3,
        confirmation=None,
        deferred_sensors=0,
        not_recoverable=None,
    )
    assert (record.readings_recovered, record.windows_read, record.api_calls) == (5, 4, 9)
    assert record.readings_recovered_per_sensor == {"a": 5, "b": 0}
    assert record.failed_sensors == ["b"] and record.duration_s == 90
    assert event.detail_type == "subscription.recovered"
    assert "readings_recovered_per_sensor" not in event.detail


def test_giving_up_says_what_failed_and_what_the_operator_does() -> None:
    record, event = give_up(
        _recovery(), "exec", now=NOW, error="SubscriptionNotRecovered: 400", re_enable_calls=6
    )
    assert event.detail_type == "subscription.disabled" and record.outcome == "gave_up"
    message = operator_message(record)
    assert len(message["subject"]) <= 100
    assert "gave_up_at" in message["message"] and "400" in message["message"]


def test_an_incident_whose_execution_died_is_closed_so_a_new_one_can_open() -> None:
    class Dead(_Executions):
        def ended(self, name: str) -> bool:
            return True

    executions, rows = Dead(), _Rows()
    starter = RecoveryStarter(executions, rows)
    starter.open_and_start(_recovery())
    assert not starter.start(_recovery())  # the name exists, and its execution ended
    assert rows.open == {}
    assert starter.open_and_start(_recovery("20261129T203000Z"))
