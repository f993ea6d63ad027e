"""The emulator's provider API over real HTTP on 127.0.0.1: tokens, the wrapper, pagination,
sorting, the error format, readings, gateways going offline, and injected failures."""

import itertools
from datetime import datetime

import pytest

from local.emulator.everactive import SensorFamily
from tests.emulator.test_api_support import (
    DS_CLIENT,
    V2020_CLIENT,
    call,
    ds_token,
    error_fields,
    running_api,
    v2020_token,
)
from tests.fixtures.loader import sample_json

DS = "/ds/v1"


@pytest.fixture
def emulator():
    with running_api() as running:
        yield running


# -- tokens ------------------------------------------------------------------------------------


def test_data_services_token_from_a_json_body_answers_like_the_sample():
    # Given the emulator with a one-hour token lifetime
    with running_api(token_ttl_s=3600) as (api, _):
        # When a client posts its credentials as JSON
        response = call(
            api.base_url,
            "POST",
            "/auth/token",
            json_body={"client_id": DS_CLIENT, "client_secret": "demo-ds-client-secret",
                       "grant_type": "client_credentials"},
        )  # fmt: skip
        token = response.body["access_token"]
        health = call(api.base_url, "GET", f"{DS}/health", token=token)
    # Then the answer has the sample's fields and the token opens the API
    assert response.status == 200
    assert set(response.body) == set(sample_json("everactive-ds/api/token.json"))
    assert response.body["token_type"] == "Bearer"
    assert response.body["expires_in"] == 3600
    assert health.status == 200
    assert set(health.body) == set(sample_json("everactive-ds/api/health.json"))
    assert health.body["ok"] is True


def test_v2020_token_takes_a_form_body_and_refuses_json(emulator):
    api, _ = emulator
    # When the v2020-07 client posts a form, then JSON
    token = v2020_token(api)
    as_json = call(
        api.base_url,
        "POST",
        "/v2020-07/auth/token",
        json_body={"client_id": V2020_CLIENT, "client_secret": "demo-v2020-client-secret",
                   "grant_type": "client_credentials"},
    )  # fmt: skip
    # Then the form earns a working token and JSON a 400 in the error format
    assert call(api.base_url, "GET", "/v2020-07/gateways", token=token).status == 200
    assert as_json.status == 400
    assert error_fields(as_json) == {("err_invalid_content_type", "Content-Type")}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"client_secret": "wrong"}, ("err_invalid_client", "client_id")),
        ({"client_id": "nobody"}, ("err_invalid_client", "client_id")),
        ({"grant_type": "password"}, ("err_unsupported_grant_type", "grant_type")),
    ],
)
@pytest.mark.parametrize("flavor", ["data-services", "v2020-07"])
def test_wrong_credentials_or_grant_type_get_401(emulator, flavor, fields, expected):
    api, _ = emulator
    client = DS_CLIENT if flavor == "data-services" else V2020_CLIENT
    body = {"client_id": client, "client_secret": f"{client}-secret",
            "grant_type": "client_credentials"} | fields  # fmt: skip
    # When a token is asked for with a wrong field
    if flavor == "data-services":
        response = call(api.base_url, "POST", "/auth/token", json_body=body)
    else:
        response = call(api.base_url, "POST", "/v2020-07/auth/token", form=body)
    # Then 401 in the seeds' error format, naming the field
    assert response.status == 401
    assert response.body["code"] == "error_unauthorized"
    assert error_fields(response) == {expected}


@pytest.mark.parametrize("authorization", [None, "not-a-token"])
def test_resources_need_a_valid_bearer_token(emulator, authorization):
    api, _ = emulator
    response = call(api.base_url, "GET", f"{DS}/eversensors", token=authorization)
    assert response.status == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert error_fields(response) <= {
        ("err_missing_token", "Authorization"),
        ("err_invalid_token", "Authorization"),
    }


def test_a_token_expires_on_the_emulator_clock():
    # Given a token that lives an hour
    with running_api(token_ttl_s=3600) as (api, clock):
        token = ds_token(api)
        # When 59:59 pass, then one more second
        clock.advance(seconds=3599)
        before = call(api.base_url, "GET", f"{DS}/health", token=token)
        clock.advance(seconds=1)
        after = call(api.base_url, "GET", f"{DS}/health", token=token)
    # Then it works until its expiry and is refused from then on
    assert (before.status, after.status) == (200, 401)
    assert error_fields(after) == {("err_invalid_token", "Authorization")}


def test_expire_tokens_revokes_every_issued_token_but_new_ones_work(emulator):
    api, _ = emulator
    old_ds, old_v2020 = ds_token(api), v2020_token(api)
    # When the emulator is told to expire tokens early
    api.expire_tokens()
    # Then issued tokens get 401 and a fresh one works
    assert call(api.base_url, "GET", f"{DS}/health", token=old_ds).status == 401
    assert call(api.base_url, "GET", "/v2020-07/gateways", token=old_v2020).status == 401
    assert call(api.base_url, "GET", f"{DS}/health", token=ds_token(api)).status == 200


# -- wrapper, pagination, sorting ----------------------------------------------------------------


def test_sensors_are_walked_page_by_page_through_pagination_info():
    # Given seven sensors and pages of three
    with running_api(sensors=7) as (api, _):
        token = ds_token(api)
        pages = [
            call(api.base_url, "GET", f"{DS}/eversensors", token=token,
                 query={"page": page, "page-size": 3})
            for page in (1, 2, 3, 4)
        ]  # fmt: skip
        macs = {sensor.mac for sensor in api.installation.eversensors}
    # Then three pages hold every sensor once, and a page past the end is empty
    assert [p.status for p in pages] == [200] * 4
    assert [p.body["paginationInfo"] for p in pages] == [
        {"page": page, "pageSize": 3, "totalItems": 7, "totalPages": 3} for page in (1, 2, 3, 4)
    ]
    walked = [item["macAddress"] for p in pages for item in p.body["data"]]
    assert [len(p.body["data"]) for p in pages] == [3, 3, 1, 0]
    assert sorted(walked) == sorted(macs)


def test_sort_by_and_sort_dir_order_the_list(emulator):
    api, _ = emulator
    token = ds_token(api)
    query = {"sort-by": "macAddress", "sort-dir": "desc"}
    response = call(api.base_url, "GET", f"{DS}/eversensors", token=token, query=query)
    macs = [item["macAddress"] for item in response.body["data"]]
    assert macs == sorted(macs, reverse=True)
    by_type = call(api.base_url, "GET", f"{DS}/eversensors", token=token,
                   query={"sort-by": "type"})  # fmt: skip
    types = [item["type"] for item in by_type.body["data"]]
    assert types == sorted(types)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"page-size": "0"}, {("err_invalid_value", "page-size")}),
        ({"page-size": "101"}, {("err_invalid_value", "page-size")}),
        ({"page": "x"}, {("err_invalid_value", "page")}),
        ({"sort-by": "colour"}, {("err_invalid_sort_by", "sort-by")}),
        (
            {"page-size": "500", "sort-dir": "up"},
            {("err_invalid_value", "page-size"), ("err_invalid_sort_dir", "sort-dir")},
        ),
    ],
)
def test_bad_paging_queries_get_400_with_every_problem(emulator, query, expected):
    api, _ = emulator
    response = call(api.base_url, "GET", f"{DS}/eversensors", token=ds_token(api), query=query)
    assert response.status == 400
    assert response.body["code"] == "error_validation"
    assert error_fields(response) == expected


def test_sensors_are_shaped_like_the_sample_and_built_from_the_installation(emulator):
    api, _ = emulator
    token = ds_token(api)
    sample = sample_json("everactive-ds/api/eversensors-list.json")
    # When the sensors are listed
    response = call(api.base_url, "GET", f"{DS}/eversensors", token=token)
    # Then each has the sample's fields, the installation's identity and its last reading
    assert set(response.body) == set(sample)
    assert set(response.body["paginationInfo"]) == set(sample["paginationInfo"])
    by_mac = {item["macAddress"]: item for item in response.body["data"]}
    template = sample["data"][0]
    for sensor in api.installation.eversensors:
        item = by_mac[sensor.mac]
        assert set(item) == set(template)
        for section in ("customer", "lastAssociation", "lastInfo"):
            assert set(item[section]) == set(template[section])
        assert item["lastAssociation"]["gatewaySerialNumber"] == sensor.gateway.serial
        last = call(api.base_url, "GET", f"{DS}/eversensors/{sensor.mac}/readings/last",
                    token=token)  # fmt: skip
        assert item["lastReading"] == last.body["data"]
        assert last.body["data"]["macAddress"] == sensor.mac
        if sensor.family is SensorFamily.ENVIRONMENTAL:
            assert item["type"] == template["type"]
            assert set(item["lastReading"]) == set(template["lastReading"])


# -- readings ----------------------------------------------------------------------------------


def test_readings_over_a_window_come_newest_first_like_the_sample(emulator):
    api, clock = emulator
    token = ds_token(api)
    sensor = api.installation.eversensors[2]
    end = int(clock.now.timestamp())
    query = {"start-time": end - 600, "end-time": end, "page-size": 100}
    # When ten minutes of one sensor's readings are asked for
    response = call(api.base_url, "GET", f"{DS}/eversensors/{sensor.mac}/readings",
                    token=token, query=query)  # fmt: skip
    last = call(api.base_url, "GET", f"{DS}/eversensors/{sensor.mac}/readings/last", token=token)
    # Then one a minute, newest first (as the range sample), ending with the last reading
    sample = sample_json("everactive-ds/api/eversensor-readings-range.json")["data"]
    assert [r["timestamp"] for r in sample] == sorted(
        (r["timestamp"] for r in sample), reverse=True
    )
    stamps = [r["timestamp"] for r in response.body["data"]]
    assert len(stamps) in (10, 11)
    assert all(end - 600 <= stamp <= end for stamp in stamps)
    assert [a - b for a, b in itertools.pairwise(stamps)] == [60] * (len(stamps) - 1)
    assert response.body["data"][0] == last.body["data"]
    assert {r["macAddress"] for r in response.body["data"]} == {sensor.mac}
    assert response.body["paginationInfo"]["totalItems"] == len(stamps)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"start-time": 0, "end-time": 86_401}, {("err_time_range_too_large", "end-time")}),
        ({"start-time": 100, "end-time": 99}, {("err_invalid_time_range", "end-time")}),
        ({"end-time": 100}, {("err_required", "start-time")}),
        ({"start-time": "today", "end-time": 1}, {("err_invalid_value", "start-time")}),
    ],
)
def test_bad_reading_windows_get_400(emulator, window, expected):
    api, _ = emulator
    mac = api.installation.eversensors[0].mac
    response = call(api.base_url, "GET", f"{DS}/eversensors/{mac}/readings",
                    token=ds_token(api), query=window)  # fmt: skip
    assert response.status == 400
    assert error_fields(response) == expected


def test_a_window_of_exactly_24_hours_is_answered(emulator):
    api, clock = emulator
    end = int(clock.now.timestamp())
    mac = api.installation.eversensors[0].mac
    window = {"start-time": end - 86_400, "end-time": end}
    response = call(api.base_url, "GET", f"{DS}/eversensors/{mac}/readings",
                    token=ds_token(api), query=window)  # fmt: skip
    assert response.status == 200
    assert response.body["paginationInfo"]["totalItems"] in (30, 31)  # the 30 minutes so far


def test_unknown_ids_get_404_in_the_error_format(emulator):
    api, _ = emulator
    token = ds_token(api)
    sensor = call(api.base_url, "GET", f"{DS}/eversensors/no:ta:re:al/readings/last", token=token)
    hook = call(api.base_url, "GET", f"{DS}/webhook/nope", token=token)
    path = call(api.base_url, "GET", f"{DS}/nothing-here", token=token)
    assert (sensor.status, hook.status, path.status) == (404, 404, 404)
    assert error_fields(sensor) == {("err_not_found", "macAddress")}
    assert error_fields(hook) == {("err_not_found", "webhookId")}


# -- gateways ----------------------------------------------------------------------------------


def _last_seen(api, token) -> dict[str, str]:
    response = call(api.base_url, "GET", f"{DS}/evergateways", token=token)
    assert response.status == 200
    return {item["serialNumber"]: item["lastSeen"] for item in response.body["data"]}


def test_a_gateway_taken_offline_stops_advancing_and_resumes_when_back(emulator):
    api, clock = emulator
    token = ds_token(api)
    down, up = (g.serial for g in api.installation.gateways)
    start = _last_seen(api, token)
    # When ten minutes pass, the first gateway goes offline, then twenty more minutes pass
    clock.advance(minutes=10)
    online = _last_seen(api, token)
    api.take_gateway_offline(down)
    clock.advance(minutes=20)
    offline = _last_seen(api, token)
    api.bring_gateway_online(down)
    clock.advance(minutes=5)
    back = _last_seen(api, token)
    # Then its last contact advances while online, stops while offline and resumes after
    assert online[down] > start[down] and online[up] > start[up]
    assert offline[down] == online[down]
    assert offline[up] > online[up]
    assert back[down] > offline[down]
    last_contact = datetime.fromisoformat(offline[up].replace("Z", "+00:00"))
    assert (clock.now - last_contact).total_seconds() < 300 + 60 * 5


def test_an_offline_gateways_sensors_stop_reading(emulator):
    api, clock = emulator
    token = ds_token(api)
    gateway = api.installation.gateways[0]
    behind = [s.mac for s in api.installation.eversensors if s.gateway is gateway]
    last_path = f"{DS}/eversensors/{{}}/readings/last"
    before = {
        mac: call(api.base_url, "GET", last_path.format(mac), token=token).body["data"]
        for mac in behind
    }
    # When its gateway is offline for ten minutes
    api.take_gateway_offline(gateway.serial)
    clock.advance(minutes=10)
    # Then their last reading is the one from before
    for mac in behind:
        last = call(api.base_url, "GET", last_path.format(mac), token=token)
        assert last.body["data"] == before[mac]


def test_v2020_gateways_page_sort_and_filter_by_its_own_names():
    with running_api(gateways=3) as (api, _):
        token = v2020_token(api)
        serials = sorted(g.serial for g in api.installation.gateways)
        page = call(api.base_url, "GET", "/v2020-07/gateways", token=token,
                    query={"pageSize": 2, "sortBy": "serialNumber", "sortDir": "asc"})  # fmt: skip
        default = call(api.base_url, "GET", "/v2020-07/gateways", token=token)
        like = call(api.base_url, "GET", "/v2020-07/gateways", token=token,
                    query={"serialNumber": serials[1][2:8].lower()})  # fmt: skip
        by_id = call(api.base_url, "GET", "/v2020-07/gateways", token=token,
                     query={"id": page.body["data"][0]["id"]})  # fmt: skip
        ds_names = call(api.base_url, "GET", "/v2020-07/gateways", token=token,
                        query={"pageSize": 0})  # fmt: skip
    assert [g["serialNumber"] for g in page.body["data"]] == serials[:2]
    assert page.body["paginationInfo"] == {
        "page": 1,
        "pageSize": 2,
        "totalItems": 3,
        "totalPages": 2,
    }
    readings = [g["lastReading"] for g in default.body["data"]]
    assert readings == sorted(readings, reverse=True)  # the seed's default order
    assert [g["serialNumber"] for g in like.body["data"]] == [serials[1]]
    assert [g["serialNumber"] for g in by_id.body["data"]] == [serials[0]]
    assert error_fields(ds_names) == {("err_invalid_value", "pageSize")}


# -- injected failures and the request log -------------------------------------------------------


def test_fail_next_answers_429_with_retry_after_then_recovers(emulator):
    api, _ = emulator
    token = ds_token(api)
    # When the next two requests are throttled for 1.5 s
    api.fail_next(429, 2, retry_after_s=1.5)
    statuses = []
    for _ in range(2):
        throttled = call(api.base_url, "GET", f"{DS}/evergateways", token=token)
        statuses.append(throttled.status)
        # Then each says when to retry (whole seconds, rounded up) in the error format
        assert throttled.headers["retry-after"] == "2"
        assert throttled.body["code"] == "error_rate_limited"
        assert error_fields(throttled) == set()
    # And token requests are not counted, and the third resource request succeeds
    assert statuses == [429, 429]
    assert call(api.base_url, "GET", f"{DS}/evergateways", token=token).status == 200


def test_a_burst_of_500s_without_retry_after(emulator):
    api, _ = emulator
    token = ds_token(api)
    api.fail_next(500, 3)
    responses = [call(api.base_url, "GET", f"{DS}/health", token=token) for _ in range(4)]
    assert [r.status for r in responses] == [500, 500, 500, 200]
    assert "retry-after" not in responses[0].headers
    assert responses[0].body["code"] == "error_500"


def test_requests_are_logged_with_method_path_and_status(emulator):
    api, _ = emulator
    token = ds_token(api)
    call(api.base_url, "GET", f"{DS}/health", token=token)
    call(api.base_url, "DELETE", f"{DS}/eversensors", token=token)
    assert api.requests == [
        ("POST", "/auth/token", 200),
        ("GET", "/ds/v1/health", 200),
        ("DELETE", "/ds/v1/eversensors", 405),
    ]


def test_the_request_log_keeps_only_its_newest_requests():
    # Given the emulator keeping the newest 3 requests in its log
    with running_api(request_log_limit=3) as (api, _):
        # When a client makes 4: a token, a health check, an unknown path, a health check
        token = ds_token(api)
        call(api.base_url, "GET", f"{DS}/health", token=token)
        call(api.base_url, "GET", f"{DS}/nothing-here", token=token)
        call(api.base_url, "GET", f"{DS}/health", token=token)
    # Then the log holds the last 3, in order (a long `make local` run does not grow it)
    assert list(api.requests) == [
        ("GET", f"{DS}/health", 200),
        ("GET", f"{DS}/nothing-here", 404),
        ("GET", f"{DS}/health", 200),
    ]
