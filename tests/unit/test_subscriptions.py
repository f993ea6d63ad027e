"""The subscriptions reconciler against in-memory fakes of the provider API and the stores.

The fake API behaves as the Data Services seed describes: the list carries no headers (only
GET /webhook/{id} does), and v2020-07 generates a secret on create.
"""

import itertools
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from sensorhook.core.settings import DesiredSubscription
from sensorhook.dal.provider_secrets import ProviderSecretUnavailable
from sensorhook.dal.subscriptions_store import (
    ProviderContacts,
    SubscriptionState,
    SubscriptionStatus,
)
from sensorhook.logic.subscriptions.callbacks import is_http_loopback, points_at
from sensorhook.logic.subscriptions.plan import DS, V2020, ActionKind
from sensorhook.logic.subscriptions.reconciler import Reconciler
from sensorhook.providers.everactive_api.models import (
    ApiError,
    FieldError,
    NotFound,
    ProviderUnavailable,
    Webhook,
    WebhookSpec,
)

BASE = "https://abc123.execute-api.us-east-1.amazonaws.com/"
OTHER = "https://someone-else.example.com/hook"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DS_READINGS = f"{BASE}webhooks/everactive/ds/sensor-readings"
DS_STATUS = f"{BASE}webhooks/everactive/ds/gateway-status"
V2020_EVENTS = f"{BASE}webhooks/everactive/v2020-07/events"


class FakeApi:
    def __init__(self, prefix: str, generates_secret: bool = False) -> None:
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.mutations: list[tuple[str, str]] = []
        self.failing = False
        self.refusing: dict[str, ApiError] = {}  # "create" | "update" | "delete" -> error, once
        self._ids = (f"{prefix}-{n}" for n in itertools.count(1))
        self._generates_secret = generates_secret

    def add(
        self, url: str, event_type: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> str:
        webhook_id = next(self._ids)
        self.webhooks[webhook_id] = {
            "id": webhook_id,
            "callbackUrl": url,
            "eventType": event_type,
            "enabled": extra.get("enabled", True),
            "headers": [{"key": k, "value": v} for k, v in (headers or {}).items()],
        }
        return webhook_id

    def list_webhooks(self) -> list[Webhook]:
        if self.failing:
            raise ProviderUnavailable(503, None, "down")
        return [
            Webhook.model_validate({k: v for k, v in w.items() if k != "headers"})
            for w in self.webhooks.values()
        ]

    def get_webhook(self, webhook_id: str) -> Webhook:
        if webhook_id not in self.webhooks:
            raise NotFound(404, None, "no such webhook")
        return Webhook.model_validate(self.webhooks[webhook_id])

    def _refuse(self, call: str) -> None:
        error = self.refusing.pop(call, None)
        if error is not None:
            raise error

    def create_webhook(self, spec: WebhookSpec) -> Webhook:
        self._refuse("create")
        webhook_id = self.add(spec.callback_url, spec.event_type, enabled=spec.enabled)
        self.webhooks[webhook_id] |= spec.body()
        self.mutations.append(("create", webhook_id))
        secret = {"secret": f"generated-{webhook_id}"} if self._generates_secret else {}
        return Webhook.model_validate(self.webhooks[webhook_id] | secret)

    def update_webhook(self, webhook_id: str, spec: WebhookSpec) -> Webhook:
        self._refuse("update")
        self.webhooks[webhook_id] |= spec.body()
        self.mutations.append(("update", webhook_id))
        return Webhook.model_validate(self.webhooks[webhook_id])

    def delete_webhook(self, webhook_id: str) -> None:
        self._refuse("delete")
        del self.webhooks[webhook_id]
        self.mutations.append(("delete", webhook_id))


class FakeHeaders:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def current_headers(self) -> dict[str, SecretStr]:
        return {k: SecretStr(v) for k, v in self.headers.items()}


class FakeSigningKeys:
    def __init__(self) -> None:
        self.keys: dict[str, str] = {"operator-set": "kept"}

    def key_ids(self) -> set[str]:
        return set(self.keys)

    def store(self, subscription_id: str, secret: SecretStr) -> None:
        self.keys[subscription_id] = secret.get_secret_value()

    def drop(self, subscription_id: str) -> None:
        self.keys.pop(subscription_id, None)


class FakeStates:
    def __init__(self) -> None:
        self.rows: dict[str, SubscriptionState] = {}
        self.writes = 0

    def all(self) -> dict[str, SubscriptionState]:
        return dict(self.rows)

    def put(self, state: SubscriptionState) -> None:
        self.rows[state.name] = state
        self.writes += 1

    def delete(self, name: str) -> None:
        self.rows.pop(name, None)
        self.writes += 1


class FakeContacts:
    def __init__(self) -> None:
        self.contacts: dict[str, ProviderContacts] = {}

    def by_provider(self) -> dict[str, ProviderContacts]:
        return self.contacts


def _desired(**overrides: Any) -> list[DesiredSubscription]:
    entries: list[dict[str, Any]] = [
        {
            "name": "ds-readings",
            "provider": "everactive-ds",
            "event_type": "sensor_reading",
            "header_names": ["x-api-key"],
        },
        {"name": "ds-status", "provider": "everactive-ds", "event_type": "gateway_status"},
        {
            "name": "traps",
            "provider": "everactive-v2020-07",
            "event_type": "steam_trap_state_change",
        },
        {
            "name": "efento",
            "provider": "efento",
            "event_type": "measurements",
            "header_names": ["x-efento-token"],
        },
    ]
    return [
        DesiredSubscription.model_validate(entry | overrides.get(entry["name"], {}))
        for entry in entries
    ]


class World:
    def __init__(self, desired: list[DesiredSubscription] | None = None) -> None:
        self.ds = FakeApi("ds")
        self.v2020 = FakeApi("v2020", generates_secret=True)
        self.headers = FakeHeaders({"x-api-key": "key-1"})
        self.signing = FakeSigningKeys()
        self.states = FakeStates()
        self.contacts = FakeContacts()
        self.now = NOW
        self.reconciler = Reconciler(
            desired=desired if desired is not None else _desired(),
            webhook_base_url=BASE,
            apis={DS: self.ds, V2020: self.v2020},
            ds_headers=self.headers,
            signing_keys=self.signing,
            states=self.states,
            contacts=self.contacts,
            silent_after=timedelta(hours=1),
            clock=lambda: self.now,
        )

    def run(self, dry_run: bool = False) -> Any:
        return self.reconciler.run(dry_run=dry_run)


def _kinds(result: Any) -> list[tuple[str, str | None]]:
    return sorted((a.kind.value, a.subscription) for a in result.plan.actions)


def test_from_empty_creates_each_declared_subscription_once_and_reports_efento_as_manual() -> None:
    world = World()

    result = world.run()

    assert _kinds(result) == [
        ("create", "ds-readings"),
        ("create", "ds-status"),
        ("create", "traps"),
    ]
    assert result.failed == ()
    by_url = {w["callbackUrl"]: w for w in world.ds.webhooks.values()}
    assert set(by_url) == {DS_READINGS, DS_STATUS}
    assert by_url[DS_READINGS]["headers"] == [{"key": "x-api-key", "value": "key-1"}]
    assert by_url[DS_READINGS]["eventType"] == "sensor_reading"
    [trap_hook] = world.v2020.webhooks.values()
    assert trap_hook["callbackUrl"] == V2020_EVENTS
    assert world.signing.keys == {
        "operator-set": "kept",
        trap_hook["id"]: f"generated-{trap_hook['id']}",
    }
    [manual] = result.plan.manual
    assert manual.callback_url == f"{BASE}webhooks/efento/measurements"
    assert manual.header_names == ("x-efento-token",)
    assert world.states.rows["efento"].status is SubscriptionStatus.MANUAL
    assert world.states.rows["ds-readings"].status is SubscriptionStatus.ACTIVE
    assert world.states.rows["traps"].provider_id == trap_hook["id"]


def test_a_second_run_right_after_plans_nothing() -> None:
    world = World()
    world.run()
    world.ds.mutations.clear()
    world.v2020.mutations.clear()

    second = world.run()

    assert second.plan.actions == ()
    assert set(second.plan.unchanged) == {"ds-readings", "ds-status", "traps"}
    assert world.ds.mutations == [] and world.v2020.mutations == []


def test_dry_run_plans_but_changes_nothing_anywhere() -> None:
    world = World()

    result = world.run(dry_run=True)

    assert len(result.plan.actions) == 3
    assert world.ds.webhooks == {} and world.v2020.webhooks == {}
    assert world.states.writes == 0
    assert world.signing.keys == {"operator-set": "kept"}
    assert result.summary()["planned"]["create"] == 3


def test_drifted_headers_url_and_event_type_are_updated_in_place() -> None:
    world = World()
    world.run()
    ids = {s.name: s.provider_id or "" for s in world.states.rows.values()}
    readings = world.ds.webhooks[ids["ds-readings"]]
    readings["headers"] = [{"key": "x-api-key", "value": "tampered"}]
    status = world.ds.webhooks[ids["ds-status"]]
    status["callbackUrl"] = "https://old-api.example.com/webhooks/everactive/ds/gateway-status"
    status["eventType"] = "sensor_reading"

    result = world.run()

    updates = {a.subscription: a.changes for a in result.applied if a.kind is ActionKind.UPDATE}
    assert updates == {
        "ds-readings": ("headers",),
        "ds-status": ("callback_url", "event_type"),
    }
    assert status["callbackUrl"] == DS_STATUS and status["eventType"] == "gateway_status"
    assert len(world.ds.webhooks) == 2
    assert world.run().plan.actions == ()


def test_a_webhook_the_provider_disabled_is_enabled_again() -> None:
    world = World()
    world.run()
    webhook_id = world.states.rows["ds-readings"].provider_id
    assert webhook_id is not None
    world.ds.webhooks[webhook_id]["enabled"] = False

    result = world.run()

    assert [(a.kind, a.webhook_id) for a in result.applied] == [(ActionKind.ENABLE, webhook_id)]
    assert world.ds.webhooks[webhook_id]["enabled"] is True
    assert world.states.rows["ds-readings"].status is SubscriptionStatus.RE_ENABLED


def test_stale_webhooks_pointing_here_are_deleted_and_foreign_ones_left_alone() -> None:
    world = World()
    stale = world.ds.add(f"{BASE}webhooks/efento/measurements", "sensor_reading")
    foreign = world.ds.add(OTHER, "sensor_reading", {"x-api-key": "theirs"})

    result = world.run()

    deletes = [a.webhook_id for a in result.applied if a.kind is ActionKind.DELETE]
    assert deletes == [stale]
    assert result.plan.left_alone == (foreign,)
    assert foreign in world.ds.webhooks


def test_duplicates_are_reduced_to_one_and_none_is_created() -> None:
    world = World([s for s in _desired() if s.name == "ds-readings"])
    first = world.ds.add(DS_READINGS, "sensor_reading", {"x-api-key": "key-1"})
    second = world.ds.add(DS_READINGS, "sensor_reading", {"x-api-key": "key-1"})

    result = world.run()

    assert result.plan.unchanged == {"ds-readings": first}
    assert [(a.kind, a.webhook_id) for a in result.applied] == [(ActionKind.DELETE, second)]
    assert list(world.ds.webhooks) == [first]


def test_a_header_rotation_pushes_the_new_values() -> None:
    world = World()
    world.run()
    world.headers.headers = {"X-Api-Key": "key-2"}

    result = world.run()

    assert sorted(a.subscription or "" for a in result.applied) == ["ds-readings", "ds-status"]
    for webhook in world.ds.webhooks.values():
        assert webhook["headers"] == [{"key": "X-Api-Key", "value": "key-2"}]


def test_a_v2020_webhook_whose_secret_the_receiver_lacks_is_replaced() -> None:
    world = World()
    orphan = world.v2020.add(V2020_EVENTS, "steam_trap_state_change")

    result = world.run()

    kinds = {(a.kind, a.provider) for a in result.applied if a.provider == V2020}
    assert kinds == {(ActionKind.CREATE, V2020), (ActionKind.DELETE, V2020)}
    assert orphan not in world.v2020.webhooks
    [replacement] = world.v2020.webhooks
    assert replacement in world.signing.keys


def test_a_drifted_v2020_webhook_is_replaced_never_updated() -> None:
    # Given a v2020-07 subscription the provider disabled (v2020-07 documents no update)
    world = World()
    world.run()
    old = world.states.rows["traps"].provider_id
    assert old is not None
    world.v2020.webhooks[old]["enabled"] = False
    world.v2020.mutations.clear()

    # When a dry run and then a real run reconcile it
    [planned] = world.run(dry_run=True).plan.actions
    result = world.run()

    # Then the plan says replace, and a new webhook was created (its secret stored) before the
    # old one was deleted (its secret dropped): deliveries never lacked a verifiable webhook
    assert planned.describe() | {"kind": "enable", "replace": True} == planned.describe()
    [new] = [w for w in world.v2020.webhooks if w != old]
    assert world.v2020.mutations == [("create", new), ("delete", old)]
    assert world.signing.keys == {"operator-set": "kept", new: f"generated-{new}"}
    assert world.v2020.webhooks[new]["enabled"] is True
    [done] = result.applied
    assert (done.kind, done.webhook_id, done.replaced_webhook_id) == (ActionKind.ENABLE, new, old)
    assert world.states.rows["traps"].provider_id == new
    assert world.states.rows["traps"].status is SubscriptionStatus.RE_ENABLED
    assert world.run().plan.actions == ()


def test_a_replacement_whose_old_webhook_cannot_be_deleted_keeps_the_new_one() -> None:
    # Given a v2020-07 webhook whose callback URL drifted, and a provider refusing one delete
    world = World()
    world.run()
    old = world.states.rows["traps"].provider_id or ""
    world.v2020.webhooks[old]["callbackUrl"] = f"{BASE}webhooks/everactive/v2020-07/old"
    world.v2020.refusing["delete"] = ProviderUnavailable(503, None, "down")

    # When the run replaces it
    result = world.run()

    # Then the error is reported, and the new webhook is the one remembered
    [(failed, _)] = result.failed
    new = failed.webhook_id or ""
    assert new != old and new in world.signing.keys
    assert world.states.rows["traps"].provider_id == new
    assert world.states.rows["traps"].status is SubscriptionStatus.ERROR

    # When the next run finds both
    world.v2020.mutations.clear()
    world.run()

    # Then it keeps the new one and deletes the old one with its secret
    assert world.v2020.mutations == [("delete", old)]
    assert old not in world.signing.keys
    assert world.states.rows["traps"].status is SubscriptionStatus.ACTIVE


@pytest.mark.parametrize("call", ["create", "update"])
def test_a_provider_error_echoing_a_header_value_reveals_it_nowhere(
    call: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a provider whose validation error repeats the header value it was sent
    world = World()
    if call == "update":
        world.run()
    world.headers.headers = {"x-api-key": "echoed-secret"}
    world.ds.refusing[call] = ApiError(
        400,
        "error_validation",
        "Validation error: echoed-secret",
        [FieldError(code="invalid", field="headers", message="'echoed-secret' is not allowed")],
    )
    caplog.set_level(logging.INFO)

    # When the run's create or update is refused
    result = world.run()

    # Then the status, code and field name are kept, never the provider's messages
    summary = result.summary()
    [reason] = [e for name, e in summary["errors"].items() if name.startswith("ds-")]
    assert reason == "400 error_validation (fields: headers)"
    stored = [state.last_error for state in world.states.rows.values()]
    assert reason in stored
    logs = json.dumps([vars(record) for record in caplog.records], default=str)
    assert "subscription action failed" in logs
    assert "echoed-secret" not in str(summary) + str(stored) + logs


def test_header_names_out_of_step_with_the_secret_block_only_that_subscription() -> None:
    world = World()
    world.run()
    kept = world.states.rows["ds-readings"].provider_id
    world.headers.headers = {"authorization": "Basic abc"}

    result = world.run()

    assert "ds-readings" in result.plan.errors
    assert "abc" not in result.plan.errors["ds-readings"]
    assert kept in world.ds.webhooks  # never deleted because its spec could not be built
    assert world.states.rows["ds-readings"].status is SubscriptionStatus.ERROR
    assert [a.subscription for a in result.applied] == ["ds-status"]


def test_an_unreachable_provider_changes_nothing_there_and_counts_errors() -> None:
    world = World()
    world.run()
    world.ds.failing = True

    result = world.run()

    assert set(result.plan.errors) == {"ds-readings", "ds-status"}
    assert result.error_count == 2
    assert world.states.rows["ds-readings"].status is SubscriptionStatus.ERROR
    assert world.states.rows["ds-readings"].provider_id is not None
    assert world.states.rows["traps"].status is SubscriptionStatus.ACTIVE


def test_an_unreadable_header_secret_is_an_error_not_a_deletion() -> None:
    world = World()
    world.run()

    def unavailable() -> dict[str, SecretStr]:
        raise ProviderSecretUnavailable("ds secret: ResourceNotFoundException")

    world.headers.current_headers = unavailable  # type: ignore[method-assign]

    result = world.run()

    assert set(result.plan.errors) == {"ds-readings", "ds-status"}
    assert len(world.ds.webhooks) == 2


def test_a_subscription_removed_from_the_config_is_deleted_with_its_state() -> None:
    world = World()
    world.run()
    world.reconciler.desired = [s for s in _desired() if s.name != "ds-status"]

    result = world.run()

    assert [(a.kind, a.subscription) for a in result.applied] == [(ActionKind.DELETE, None)]
    assert "ds-status" not in world.states.rows
    assert [w["callbackUrl"] for w in world.ds.webhooks.values()] == [DS_READINGS]


def test_quiet_subscription_is_silent_only_while_gateways_are_online() -> None:
    world = World()
    world.run()
    world.now = NOW + timedelta(hours=2)
    world.contacts.contacts = {
        "everactive": ProviderContacts(
            last_reading_at=NOW - timedelta(minutes=1),
            last_status_at=NOW + timedelta(hours=1, minutes=58),
            gateways_online=2,
        )
    }

    world.run()

    rows = world.states.rows
    assert rows["ds-readings"].status is SubscriptionStatus.SILENT
    assert rows["ds-readings"].last_event_at == NOW - timedelta(minutes=1)
    assert rows["ds-status"].status is SubscriptionStatus.ACTIVE
    assert rows["traps"].status is SubscriptionStatus.ACTIVE  # state changes are rare by nature

    world.contacts.contacts["everactive"] = world.contacts.contacts["everactive"].model_copy(
        update={"gateways_online": 0}
    )
    world.run()
    assert rows["ds-readings"].status is SubscriptionStatus.ACTIVE


def test_a_declared_disabled_subscription_is_kept_disabled() -> None:
    world = World(_desired(**{"ds-readings": {"enabled": False}}))

    world.run()

    webhook_id = world.states.rows["ds-readings"].provider_id
    assert webhook_id is not None
    assert world.ds.webhooks[webhook_id]["enabled"] is False
    assert world.states.rows["ds-readings"].status is SubscriptionStatus.DISABLED
    assert world.run().plan.actions == ()


def test_no_header_value_reaches_the_summary_or_the_plan_printout() -> None:
    world = World()
    world.headers.headers = {"x-api-key": "very-secret-value"}

    text = str(world.run(dry_run=True).summary()) + str(world.run().summary())

    assert "very-secret-value" not in text
    assert "x-api-key" in text


def test_apis_nobody_declared_or_remembers_are_never_called() -> None:
    world = World([s for s in _desired() if s.provider == "efento"])
    world.ds.failing = True
    world.v2020.failing = True

    result = world.run()

    assert result.plan.errors == {}
    assert [m.subscription for m in result.plan.manual] == ["efento"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DS_READINGS, True),
        ("HTTPS://ABC123.execute-api.us-east-1.amazonaws.com/webhooks/x", True),
        ("https://abc123.execute-api.us-east-1.amazonaws.com.evil.com/webhooks/x", False),
        (OTHER, False),
        (None, False),
    ],
)
def test_points_at_this_deployment(url: str | None, expected: bool) -> None:
    assert points_at(url, BASE) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/", True),
        ("http://localhost:8080/", True),
        ("http://[::1]:8080/", True),
        ("https://127.0.0.1:8080/", False),  # https needs no exception
        (BASE, False),
        ("http://10.0.0.7:8080/", False),
        ("http://hooks.example.com/", False),
    ],
)
def test_only_the_local_modes_http_api_on_loopback_allows_plain_http_callbacks(
    url: str, expected: bool
) -> None:
    assert is_http_loopback(url) is expected
