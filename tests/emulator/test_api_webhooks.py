"""Webhook subscriptions through the emulator's provider API over real HTTP on 127.0.0.1:
the seeds' validation, CRUD, v2020-07 generated secrets, and the emulator posting the
installation's events to what was registered."""

import json

import pytest

from local.emulator import Secrets
from sensorhook.core.flavors import ROUTES, Flavor
from tests.emulator.stub_receiver import StubReceiver, running
from tests.emulator.test_api_support import (
    call,
    ds_token,
    error_fields,
    running_api,
    v2020_token,
)

DS = "/ds/v1"
HOOK = {
    "callbackUrl": "https://hooks.example.test/everactive/ds",
    "eventType": "sensor_reading",
    "enabled": True,
    "headers": [{"key": "x-api-key", "value": "k-1"}],
}


@pytest.fixture
def emulator():
    with running_api() as running:
        yield running


def test_webhook_crud_round_trip(emulator):
    api, _ = emulator
    token = ds_token(api)
    # When a webhook is created, read, listed, disabled, changed and deleted
    created = call(api.base_url, "POST", f"{DS}/webhooks", token=token, json_body=HOOK)
    hook_id = created.body["data"]["id"]
    path = f"{DS}/webhook/{hook_id}"
    read = call(api.base_url, "GET", path, token=token)
    listed = call(api.base_url, "GET", f"{DS}/webhooks", token=token)
    disabled = call(api.base_url, "PUT", path, token=token, json_body={"enabled": False})
    moved = call(api.base_url, "PUT", path, token=token,
                 json_body=HOOK | {"callbackUrl": "https://other.example.test/x",
                                   "eventType": "gateway_status", "headers": []})  # fmt: skip
    deleted = call(api.base_url, "DELETE", path, token=token)
    gone = call(api.base_url, "GET", path, token=token)
    deleted_again = call(api.base_url, "DELETE", path, token=token)
    # Then each step answers as the seed describes, in the wrapper
    assert created.status == 201
    assert created.body["data"] == {"id": hook_id} | HOOK
    assert read.body == {"data": created.body["data"]}
    assert listed.body["data"] == [created.body["data"]]
    assert listed.body["paginationInfo"] == {
        "page": 1,
        "pageSize": 50,
        "totalItems": 1,
        "totalPages": 1,
    }
    assert disabled.body["data"] == created.body["data"] | {"enabled": False}
    assert moved.body["data"] == {
        "id": hook_id,
        "callbackUrl": "https://other.example.test/x",
        "eventType": "gateway_status",
        "enabled": True,
        "headers": [],
    }
    assert (deleted.status, deleted.body) == (204, None)
    assert (gone.status, deleted_again.status) == (404, 404)
    assert api.webhooks == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"callbackUrl": "http://hooks.example.test/x"},
            ("err_invalid_callback_url", "callbackUrl"),
        ),
        (
            {"callbackUrl": "ftp://hooks.example.test/x"},
            ("err_invalid_callback_url", "callbackUrl"),
        ),
        ({"callbackUrl": None}, ("err_required", "callbackUrl")),
        ({"eventType": "steam_trap"}, ("err_invalid_event_type", "eventType")),
        ({"eventType": "threshold_crossed"}, ("err_event_type_not_available", "eventType")),
        ({"enabled": "yes"}, ("err_invalid_value", "enabled")),
        ({"headers": {"x-api-key": "k"}}, ("err_invalid_value", "headers")),
        ({"headers": [{"name": "x", "value": "1"}]}, ("err_invalid_header", "headers[0]")),
        (
            {"headers": [{"key": "X-Api-Key", "value": "1"}, {"key": "x-api-key", "value": "2"}]},
            ("err_duplicate_header", "headers[1].key"),
        ),
    ],
)
def test_invalid_webhooks_get_400_and_are_not_created(emulator, change, expected):
    api, _ = emulator
    body = {name: value for name, value in (HOOK | change).items() if value is not None}
    response = call(api.base_url, "POST", f"{DS}/webhooks", token=ds_token(api), json_body=body)
    assert response.status == 400
    assert response.body["code"] == "error_validation"
    assert error_fields(response) == {expected}
    assert api.webhooks == {}


def test_every_problem_is_reported_at_once(emulator):
    api, _ = emulator
    body = {"callbackUrl": "http://example.test", "eventType": "threshold_crossed",
            "headers": [{"key": "a", "value": "1"}, {"key": "A", "value": "2"}]}  # fmt: skip
    response = call(api.base_url, "POST", f"{DS}/webhooks", token=ds_token(api), json_body=body)
    assert error_fields(response) == {
        ("err_invalid_callback_url", "callbackUrl"),
        ("err_event_type_not_available", "eventType"),
        ("err_duplicate_header", "headers[1].key"),
    }


@pytest.mark.parametrize("allowed", [True, False])
def test_plain_http_callbacks_only_for_loopback_when_allowed(allowed):
    with running_api(allow_http_loopback_callbacks=allowed) as (api, _):
        token = ds_token(api)
        statuses = [
            call(api.base_url, "POST", f"{DS}/webhooks", token=token,
                 json_body=HOOK | {"callbackUrl": url}).status
            for url in ("http://127.0.0.1:8080/x", "http://localhost/x", "http://10.0.0.1/x")
        ]  # fmt: skip
    assert statuses == ([201, 201, 400] if allowed else [400, 400, 400])


def test_an_invalid_update_leaves_the_webhook_unchanged(emulator):
    api, _ = emulator
    token = ds_token(api)
    created = call(api.base_url, "POST", f"{DS}/webhooks", token=token, json_body=HOOK)
    path = f"{DS}/webhook/{created.body['data']['id']}"
    refused = call(api.base_url, "PUT", path, token=token,
                   json_body={"enabled": False, "callbackUrl": "http://example.test"})  # fmt: skip
    assert refused.status == 400
    assert call(api.base_url, "GET", path, token=token).body["data"] == created.body["data"]


def test_webhooks_list_pages_and_sorts(emulator):
    api, _ = emulator
    token = ds_token(api)
    for index, event_type in enumerate(["sensor_reading", "gateway_status", "sensor_reading"]):
        hook = HOOK | {"eventType": event_type, "callbackUrl": f"https://h.example.test/{index}"}
        call(api.base_url, "POST", f"{DS}/webhooks", token=token, json_body=hook)
    first = call(api.base_url, "GET", f"{DS}/webhooks", token=token,
                 query={"page-size": 2, "sort-by": "eventType"})  # fmt: skip
    second = call(api.base_url, "GET", f"{DS}/webhooks", token=token,
                  query={"page-size": 2, "page": 2, "sort-by": "eventType"})  # fmt: skip
    in_order = [h["eventType"] for h in first.body["data"] + second.body["data"]]
    assert in_order == ["gateway_status", "sensor_reading", "sensor_reading"]
    assert first.body["paginationInfo"]["totalPages"] == 2


def test_disable_webhook_is_what_the_provider_does_after_failures(emulator):
    api, _ = emulator
    token = ds_token(api)
    created = call(api.base_url, "POST", f"{DS}/webhooks", token=token, json_body=HOOK)
    hook_id = created.body["data"]["id"]
    assert [t.webhook_id for t in api.registered_targets()] == [hook_id]
    # When the emulator disables it
    api.disable_webhook(hook_id)
    # Then the API shows it disabled and nothing is posted to it
    read = call(api.base_url, "GET", f"{DS}/webhook/{hook_id}", token=token)
    assert read.body["data"]["enabled"] is False
    assert api.registered_targets() == []


def test_v2020_subscriptions_carry_a_generated_secret_on_creation_only(emulator):
    api, _ = emulator
    token = v2020_token(api)
    body = {"callbackUrl": "https://hooks.example.test/everactive/v2020"}
    created = call(api.base_url, "POST", "/v2020-07/webhooks", token=token, json_body=body)
    sub_id = created.body["data"]["id"]
    listed = call(api.base_url, "GET", "/v2020-07/webhooks", token=token, query={"pageSize": 10})
    read = call(api.base_url, "GET", f"/v2020-07/webhooks/{sub_id}", token=token)
    wrong = call(api.base_url, "POST", "/v2020-07/webhooks", token=token,
                 json_body=body | {"eventType": "sensor_reading"})  # fmt: skip
    disabled = call(api.base_url, "PUT", f"/v2020-07/webhooks/{sub_id}", token=token,
                    json_body={"enabled": False})  # fmt: skip
    kept_secret = api.v2020_subscriptions[sub_id]["secret"]
    deleted = call(api.base_url, "DELETE", f"/v2020-07/webhooks/{sub_id}", token=token)
    assert created.status == 201
    assert len(created.body["data"]["secret"]) >= 32
    assert created.body["data"]["eventType"] == "steam_trap_state_change"
    assert listed.body["data"] == [read.body["data"]]
    assert "secret" not in read.body["data"]
    assert error_fields(wrong) == {("err_invalid_event_type", "eventType")}
    assert disabled.body["data"] == read.body["data"] | {"enabled": False}
    assert kept_secret == created.body["data"]["secret"]
    assert deleted.status == 204
    assert api.v2020_subscriptions == {}


# -- the emulator posting to what was registered --------------------------------------------------


def test_events_flow_to_registered_webhooks_and_match_the_api():
    with running_api(sensors=3, gateways=2) as (api, clock):
        token = ds_token(api)
        stub = StubReceiver(
            Secrets.model_validate({"ds_header": {"headers": {"x-api-key": "k-1"}}})
        )
        with running(stub) as receiver:
            for flavor, event_type in (
                (Flavor.EVERACTIVE_DS_SENSOR_READING, "sensor_reading"),
                (Flavor.EVERACTIVE_DS_GATEWAY_STATUS, "gateway_status"),
            ):
                hook = HOOK | {"callbackUrl": receiver + ROUTES[flavor], "eventType": event_type}
                call(api.base_url, "POST", f"{DS}/webhooks", token=token, json_body=hook)
            offline = api.installation.gateways[0].serial
            # When ten minutes pass with one gateway offline, and the emulator delivers
            api.take_gateway_offline(offline)
            clock.advance(minutes=10)
            report = api.deliver()
            mac = next(s.mac for s in api.installation.eversensors if s.gateway.serial != offline)
            last = call(api.base_url, "GET", f"{DS}/eversensors/{mac}/readings/last", token=token)
    # Then every event reached its webhook authentically, none from the offline gateway,
    # and the readings sent are the readings the API serves
    bodies = [json.loads(r.body) for r in stub.requests]
    assert report.results and all(r.status == 202 for r in report.results)
    assert len(stub.requests) == len(report.results)
    readings = [b for b in bodies if "macAddress" in b]
    statuses = [b for b in bodies if "serial" in b]
    assert len(readings) >= 10 and len(statuses) == 2
    assert {b["gatewaySerialNumber"] for b in readings} | {b["serial"] for b in statuses} == {
        g.serial for g in api.installation.gateways if g.serial != offline
    }
    assert last.body["data"] == max(
        (b for b in readings if b["macAddress"] == mac), key=lambda b: b["timestamp"]
    )
    assert api.pending_deliveries() == []  # delivered once


def test_v2020_state_changes_are_signed_with_the_generated_secret():
    with running_api(sensors=3, gateways=1) as (api, clock):
        token = v2020_token(api)
        stub = StubReceiver(Secrets())
        with running(stub) as receiver:
            url = receiver + ROUTES[Flavor.EVERACTIVE_V2020_STEAM_TRAP]
            created = call(api.base_url, "POST", "/v2020-07/webhooks", token=token,
                           json_body={"callbackUrl": url})  # fmt: skip
            sub = created.body["data"]
            stub.secrets = Secrets.model_validate(
                {"v2020_signing": {"keys": {sub["id"]: sub["secret"]}}}
            )
            # When eight hours pass (steam traps change every 15-240 minutes)
            clock.advance(hours=8)
            report = api.deliver()
    # Then each state change arrived signed with the subscription's id and secret
    assert len(report.results) >= 2
    assert [r.status for r in stub.requests] == [202] * len(report.results)
    assert all(f'keyId="{sub["id"]}"' in r.headers["Signature"] for r in stub.requests)
    traps = {t.info.sensor_mac for t in api.installation.steam_traps}
    assert {json.loads(r.body)["sensorMacAddress"] for r in stub.requests} <= traps
