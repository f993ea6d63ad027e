"""The subscriptions table's incident attributes (dal/subscriptions_store.py) on moto: opened
once, closed only by their own incident, never brought back by a reconcile's write."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sensorhook.dal.subscriptions_store import (
    SubscriptionsStore,
    SubscriptionState,
    SubscriptionStatus,
)

NOW = datetime(2026, 11, 29, 20, 15, tzinfo=UTC)
TABLE = "subscriptions"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[SubscriptionsStore]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield SubscriptionsStore(TABLE, client=client)


def _state(status: SubscriptionStatus = SubscriptionStatus.ACTIVE) -> SubscriptionState:
    return SubscriptionState(
        name="ds-sensor-readings",
        provider="everactive-ds",
        event_type="sensor_reading",
        callback_url="https://x/y",
        status=status,
        provider_id="w1",
        last_reconciled_at=NOW,
    )


def test_an_incident_opens_once_and_closes_only_by_its_own_id(store: SubscriptionsStore) -> None:
    assert not store.open_incident("ds-sensor-readings", "i1", "silent", NOW)  # no row yet
    store.put(_state())
    assert store.open_incident("ds-sensor-readings", "i1", "silent", NOW)
    assert not store.open_incident("ds-sensor-readings", "i2", "silent", NOW)
    assert not store.close_incident("ds-sensor-readings", "i2", gave_up_at=None)
    assert store.close_incident("ds-sensor-readings", "i1", gave_up_at=None)
    assert store.get("ds-sensor-readings").incident_id is None  # type: ignore[union-attr]


def test_a_reconcile_write_never_touches_an_open_incident(store: SubscriptionsStore) -> None:
    # Given a row with an open incident
    store.put(_state())
    store.open_incident("ds-sensor-readings", "i1", "disabled_by_provider", NOW)
    # When a reconcile run writes a state it read before the incident opened (none in it)
    store.put(_state(SubscriptionStatus.RE_ENABLED))
    # Then the incident is still there; and once closed, a late write does not bring it back
    row = store.get("ds-sensor-readings")
    assert row is not None and row.incident_id == "i1" and row.status == "re-enabled"
    stale = row.model_copy(update={"status": SubscriptionStatus.ACTIVE})
    store.close_incident("ds-sensor-readings", "i1", gave_up_at=None)
    store.put(stale)
    assert store.get("ds-sensor-readings").incident_id is None  # type: ignore[union-attr]


def test_giving_up_marks_the_row_disabled(store: SubscriptionsStore) -> None:
    store.put(_state())
    store.open_incident("ds-sensor-readings", "i1", "reconcile_failed", NOW)
    assert store.close_incident("ds-sensor-readings", "i1", gave_up_at=NOW + timedelta(minutes=31))
    row = store.get("ds-sensor-readings")
    assert row is not None
    assert row.status is SubscriptionStatus.DISABLED
    assert row.gave_up_at == NOW + timedelta(minutes=31)
    assert store.all()["ds-sensor-readings"].incident_id is None


def test_a_reconcile_after_giving_up_records_its_error_but_leaves_the_row_disabled(
    store: SubscriptionsStore,
) -> None:
    # Given a subscription whose recovery gave up
    store.put(_state())
    store.open_incident("ds-sensor-readings", "i1", "reconcile_failed", NOW)
    store.close_incident("ds-sensor-readings", "i1", gave_up_at=NOW)
    # When a later reconcile run, still failing at the provider, writes what it saw
    failing = _state(SubscriptionStatus.ERROR).model_copy(
        update={"last_error": "provider answered 400", "last_reconciled_at": NOW + timedelta(1)}
    )
    store.put(failing)
    # Then the row stays disabled for the operator, with the run's observations recorded
    row = store.get("ds-sensor-readings")
    assert row is not None
    assert row.status is SubscriptionStatus.DISABLED and row.gave_up_at == NOW
    assert row.last_error == "provider answered 400"
    assert row.last_reconciled_at == NOW + timedelta(1)
