"""Resources: pagination per flavor, the page cap, 24-hour reading windows, webhook CRUD."""

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from sensorhook.providers.everactive_api import (
    READINGS_WINDOW_S,
    ApiError,
    ApiFlavor,
    HttpResponse,
    InvalidWebhookSpec,
    NotFound,
    PageLimitExceeded,
    SortDirection,
    WebhookHeader,
    WebhookSpec,
)
from tests.fixtures.loader import sample_json
from tests.unit.everactive_api.fakes import Sent, answer, harness, page

SENSORS = sample_json("everactive-ds/api/eversensors-list.json")
READINGS = sample_json("everactive-ds/api/eversensor-readings-range.json")
LAST = sample_json("everactive-ds/api/eversensor-readings-last.json")
MAC = "bc:5e:a1:00:00:00:5e:19"


def _sensor(mac: str) -> dict[str, Any]:
    return {**SENSORS["data"][0], "macAddress": mac}


def _gateway(serial: str) -> dict[str, Any]:
    return {"serialNumber": serial, "lastSeen": "2024-05-01T11:55:00Z"}


# -- pagination ------------------------------------------------------------------------------


def test_sensors_are_walked_across_every_page_with_data_services_query_names():
    # Given three pages of sensors (the sample's first sensor, under five MACs)
    h = harness(ApiFlavor.DATA_SERVICES, page_size=2)
    h.transport.script(
        "GET",
        "/ds/v1/eversensors",
        page([_sensor("m1"), _sensor("m2")], 1, 3),
        page([_sensor("m3"), _sensor("m4")], 2, 3),
        page([_sensor("m5")], 3, 3),
    )

    # When every sensor is listed
    macs = [sensor.mac_address for sensor in h.api.sensors()]

    # Then all five came, in order, from three requests using `page` and `page-size`
    assert macs == ["m1", "m2", "m3", "m4", "m5"]
    assert [s.query for s in h.transport.to("/ds/v1/eversensors")] == [
        {"page-size": "2"},
        {"page-size": "2", "page": "2"},
        {"page-size": "2", "page": "3"},
    ]


def test_v2020_gateways_use_its_query_names_filters_and_sorting():
    # Given two pages of v2020-07 gateways
    h = harness(ApiFlavor.V2020_07, page_size=25)
    h.transport.script(
        "GET",
        "/v2020-07/gateways",
        page([_gateway("G1")], 1, 2, page_size=25),
        page([_gateway("G2")], 2, 2, page_size=25),
    )

    # When gateways are listed filtered by location, sorted by serial number
    serials = [
        g.serial_number
        for g in h.api.gateways(
            location="mezzanine", sort_by="serialNumber", sort_dir=SortDirection.ASC
        )
    ]

    # Then the v2020 names carry paging, sorting and the filter on every page
    assert serials == ["G1", "G2"]
    common = {"location": "mezzanine", "sortBy": "serialNumber", "sortDir": "asc", "pageSize": "25"}
    assert [s.query for s in h.transport.to("/v2020-07/gateways")] == [
        common,
        {**common, "page": "2"},
    ]


def test_data_services_sorting_uses_its_hyphenated_names():
    # Given one page of webhooks
    h = harness(ApiFlavor.DATA_SERVICES)
    h.transport.script("GET", "/ds/v1/webhooks", page([], 1, 1))

    # When webhooks are listed sorted descending by event type
    h.api.list_webhooks(sort_by="eventType", sort_dir=SortDirection.DESC)

    # Then the query spells sort-by and sort-dir
    assert h.transport.to("/ds/v1/webhooks")[0].query == {
        "page-size": "2",
        "sort-by": "eventType",
        "sort-dir": "desc",
    }


def test_a_provider_that_never_ends_stops_at_the_page_cap():
    # Given a provider that always claims one more page
    h = harness(max_pages=5)

    def endless(sent: Sent) -> HttpResponse:
        number = int(sent.query.get("page", "1"))
        return page([_gateway(f"G{number}")], number, number + 1)

    h.transport.serve("GET", "/ds/v1/evergateways", endless)

    # When gateways are listed
    seen: list[str] = []
    with pytest.raises(PageLimitExceeded) as raised:
        seen.extend(g.serial_number for g in h.api.gateways())

    # Then it walked exactly the cap and said so
    assert seen == ["G1", "G2", "G3", "G4", "G5"]
    assert len(h.transport.to("/ds/v1/evergateways")) == 5
    assert raised.value.code == "page_limit"


def test_a_listing_without_pagination_info_is_one_page():
    # Given the sensors sample without its paginationInfo
    h = harness()
    h.transport.script("GET", "/ds/v1/eversensors", answer({"data": SENSORS["data"]}))

    # When sensors are listed
    sensors = list(h.api.sensors())

    # Then one request sufficed
    assert len(sensors) == 2
    assert len(h.transport.to("/ds/v1/eversensors")) == 1


def test_an_item_repeated_across_pages_comes_once_and_a_malformed_one_is_skipped():
    # Given page 2 repeats G2 (it moved while paging) and holds a gateway without serial
    h = harness()
    h.transport.script(
        "GET",
        "/ds/v1/evergateways",
        page([_gateway("G1"), _gateway("G2")], 1, 2),
        page([_gateway("G2"), {"name": "no serial"}, _gateway("G3")], 2, 2),
    )

    # When gateways are listed
    serials = [g.serial_number for g in h.api.gateways()]

    # Then each gateway comes once and the malformed item is dropped
    assert serials == ["G1", "G2", "G3"]


def test_a_listing_whose_data_is_not_a_list_is_an_api_error():
    # Given a provider answering an object where a list belongs
    h = harness()
    h.transport.script("GET", "/ds/v1/eversensors", answer({"data": {"oops": 1}}))

    # When / Then
    with pytest.raises(ApiError, match="not a list"):
        list(h.api.sensors())


# -- readings over a window ------------------------------------------------------------------


def _reading_at(seconds: int) -> dict[str, Any]:
    reading = copy.deepcopy(READINGS["data"][0])
    reading["timestamp"] = seconds
    reading["readingDate"] = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return reading


def _provider_readings(stored: list[dict[str, Any]], page_size: int = 3):
    """Like the provider: refuses windows over 24 h, includes both edges, newest first, pages."""

    def respond(sent: Sent) -> HttpResponse:
        start, end = int(sent.query["start-time"]), int(sent.query["end-time"])
        if end - start > READINGS_WINDOW_S:
            return answer({"code": "error_validation", "message": "window over 24 hours"}, 400)
        chosen = sorted(
            (r for r in stored if start <= r["timestamp"] <= end),
            key=lambda r: r["timestamp"],
            reverse=True,
        )
        number = int(sent.query.get("page", "1"))
        pages = max(1, -(-len(chosen) // page_size))
        return page(chosen[(number - 1) * page_size : number * page_size], number, pages, page_size)

    return respond


def test_a_long_range_is_split_into_24_hour_windows_with_each_edge_reading_once():
    # Given readings before the range, at its start, on both window edges, and at its end
    start = datetime(2024, 4, 1, tzinfo=UTC)
    s = int(start.timestamp())
    edges = [
        s,
        s + 60,
        s + READINGS_WINDOW_S,
        s + 2 * READINGS_WINDOW_S,
        s + 2 * READINGS_WINDOW_S + 7,
    ]
    end_s = s + 2 * READINGS_WINDOW_S + 3600
    stored = [_reading_at(t) for t in [s - 1, *edges, end_s]]
    h = harness()
    h.transport.serve("GET", f"/ds/v1/eversensors/{MAC}/readings", _provider_readings(stored))

    # When 2 days and 1 hour of readings are asked for
    got = list(h.api.readings(MAC, start, start + timedelta(seconds=end_s - s)))

    # Then three windows of at most 24 h were asked, and [start, end) came oldest first, once each
    windows = sorted(
        {
            (int(q["start-time"]), int(q["end-time"]))
            for q in (x.query for x in h.transport.resource_calls())
        }
    )
    assert windows == [
        (s, s + READINGS_WINDOW_S),
        (s + READINGS_WINDOW_S, s + 2 * READINGS_WINDOW_S),
        (s + 2 * READINGS_WINDOW_S, end_s),
    ]
    assert [r["timestamp"] for r in got] == edges


def test_each_window_is_itself_walked_page_by_page():
    # Given seven readings in one hour and a provider paging by three
    start = datetime(2024, 4, 1, tzinfo=UTC)
    s = int(start.timestamp())
    stored = [_reading_at(s + 60 * i) for i in range(7)]
    h = harness()
    h.transport.serve("GET", f"/ds/v1/eversensors/{MAC}/readings", _provider_readings(stored, 3))

    # When the hour is read
    got = list(h.api.readings(MAC, start, start + timedelta(hours=1)))

    # Then three page requests kept the window and all seven readings came in order
    queries = [x.query for x in h.transport.resource_calls()]
    assert [q.get("page") for q in queries] == [None, "2", "3"]
    assert {(q["start-time"], q["end-time"]) for q in queries} == {(str(s), str(s + 3600))}
    assert queries[1]["page-size"] == "3"  # the provider's page size, as it reported it
    assert [r["timestamp"] for r in got] == [s + 60 * i for i in range(7)]


def test_the_real_range_sample_comes_out_chronologically():
    # Given the provider answers the real sample (newest first, no paginationInfo)
    h = harness()
    h.transport.script("GET", f"/ds/v1/eversensors/{MAC}/readings", answer(READINGS))
    first = min(r["timestamp"] for r in READINGS["data"])
    last = max(r["timestamp"] for r in READINGS["data"])

    # When the span of the sample is read
    got = list(
        h.api.readings(
            MAC, datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last + 1, UTC)
        )
    )

    # Then all 28 readings come oldest first, and the MAC's colons stay in the path
    assert [r["timestamp"] for r in got] == sorted(r["timestamp"] for r in READINGS["data"])
    assert len(got) == 28
    assert (
        h.transport.resource_calls()[0].url.split("?")[0].endswith(f"/eversensors/{MAC}/readings")
    )


def test_fractional_bounds_widen_to_whole_seconds_and_undated_readings_are_skipped():
    # Given a range with sub-second bounds and a provider answering one undated reading
    start = datetime(2024, 4, 1, 0, 0, 0, 400_000, tzinfo=UTC)
    s = int(start.timestamp())
    undated = {k: v for k, v in _reading_at(s).items() if k not in ("timestamp", "readingDate")}
    h = harness()
    h.transport.script(
        "GET", f"/ds/v1/eversensors/{MAC}/readings", answer({"data": [undated, _reading_at(s + 5)]})
    )

    # When ten and a bit seconds are read
    got = list(h.api.readings(MAC, start, start + timedelta(seconds=10)))

    # Then the window is [floor(start), ceil(end)) and only the dated reading came
    query = h.transport.resource_calls()[0].query
    assert (query["start-time"], query["end-time"]) == (str(s), str(s + 11))
    assert [r["timestamp"] for r in got] == [s + 5]


def test_an_empty_or_reversed_range_asks_nothing():
    # Given a client
    h = harness()
    moment = datetime(2024, 4, 1, tzinfo=UTC)

    # When the range is empty or reversed
    got = [
        *h.api.readings(MAC, moment, moment),
        *h.api.readings(MAC, moment, moment - timedelta(1)),
    ]

    # Then nothing was requested
    assert got == []
    assert h.transport.sent == []


def test_last_reading_returns_the_sample_and_none_when_the_provider_has_none():
    # Given one sensor with a last reading and one unknown
    h = harness()
    h.transport.script(
        "GET", "/ds/v1/eversensors/bc:5e:a1:00:00:00:5e:13/readings/last", answer(LAST)
    )
    h.transport.script(
        "GET", "/ds/v1/eversensors/aa:aa/readings/last", answer({"code": "not_found"}, 404)
    )

    # When each last reading is read
    known = h.api.last_reading("bc:5e:a1:00:00:00:5e:13")
    unknown = h.api.last_reading("aa:aa")

    # Then the first is the reading, the second None
    assert known is not None and known["timestamp"] == 1673458636
    assert unknown is None


# -- webhooks --------------------------------------------------------------------------------

SPEC = WebhookSpec(
    callback_url="https://abc.execute-api.us-east-1.amazonaws.com/webhooks/everactive/ds/sensor-readings",
    event_type="sensor_reading",
    headers=[WebhookHeader(key="X-Sensorhook-Token", value="header-secret-1")],
)


def test_create_posts_the_camel_case_body_and_fills_in_what_the_answer_omits():
    # Given a provider answering a create with the new id only
    h = harness()
    h.transport.script("POST", "/ds/v1/webhooks", answer({"data": {"id": "wh-1"}}, 201))

    # When a webhook is created
    created = h.api.create_webhook(SPEC)

    # Then the body is the seed's, header value included, and the result is complete
    body = h.transport.to("/ds/v1/webhooks")[0].json()
    assert body == {
        "callbackUrl": SPEC.callback_url,
        "eventType": "sensor_reading",
        "enabled": True,
        "headers": [{"key": "X-Sensorhook-Token", "value": "header-secret-1"}],
    }
    assert (created.id, created.callback_url, created.event_type, created.enabled) == (
        "wh-1",
        SPEC.callback_url,
        "sensor_reading",
        True,
    )
    assert created.headers == SPEC.headers
    assert "header-secret-1" not in repr(created)


def test_v2020_create_keeps_the_generated_secret_as_a_secret():
    # Given a v2020-07 provider answering with a generated signing secret
    h = harness(ApiFlavor.V2020_07)
    h.transport.script(
        "POST",
        "/v2020-07/webhooks",
        answer({"data": {"id": "sub-1", "secret": "generated-signing-secret", "createdAt": 1}}),
    )

    # When a webhook is created
    created = h.api.create_webhook(SPEC)

    # Then the secret is there, hidden from repr; unknown fields are kept
    assert created.secret is not None
    assert created.secret.get_secret_value() == "generated-signing-secret"
    assert "generated-signing-secret" not in repr(created)
    assert created.model_extra == {"createdAt": 1}


def test_v2020_addresses_one_subscription_under_the_plural_path():
    # Given a v2020-07 provider with one subscription
    h = harness(ApiFlavor.V2020_07)
    h.transport.script("GET", "/v2020-07/webhooks/sub-1", answer({"data": {"id": "sub-1"}}))
    h.transport.script("DELETE", "/v2020-07/webhooks/sub-1", HttpResponse(204))

    # When it is read and deleted
    fetched = h.api.get_webhook("sub-1")
    h.api.delete_webhook("sub-1")

    # Then both went to /webhooks/{id} (Data Services says /webhook/{id})
    assert fetched.id == "sub-1"
    assert [s.method for s in h.transport.to("/v2020-07/webhooks/sub-1")] == ["GET", "DELETE"]


def test_list_get_update_delete_round_trip_against_the_seed_paths():
    # Given a provider with one webhook
    h = harness()
    stored = {
        "id": "wh-1",
        "callbackUrl": SPEC.callback_url,
        "eventType": "sensor_reading",
        "enabled": False,
        "headers": None,
    }
    h.transport.script("GET", "/ds/v1/webhooks", page([stored], 1, 1))
    h.transport.script("GET", "/ds/v1/webhook/wh-1", answer({"data": stored}))
    h.transport.script("PUT", "/ds/v1/webhook/wh-1", answer({"data": {**stored, "enabled": True}}))
    h.transport.script("DELETE", "/ds/v1/webhook/wh-1", HttpResponse(204))

    # When it is listed, read, re-enabled and deleted
    listed = h.api.list_webhooks()
    fetched = h.api.get_webhook("wh-1")
    updated = h.api.update_webhook("wh-1", SPEC)
    h.api.delete_webhook("wh-1")

    # Then each call hit its seed path and the answers parsed
    assert [w.id for w in listed] == ["wh-1"]
    assert (fetched.enabled, fetched.headers) == (False, [])
    assert updated.enabled is True
    assert h.transport.to("/ds/v1/webhook/wh-1")[1].json()["enabled"] is True
    assert [s.method for s in h.transport.resource_calls()] == ["GET", "GET", "PUT", "DELETE"]


def test_an_update_answered_without_a_body_returns_the_spec_under_its_id():
    # Given a provider answering an update with 204
    h = harness()
    h.transport.script("PUT", "/ds/v1/webhook/wh-2", HttpResponse(204))

    # When a webhook is updated
    updated = h.api.update_webhook("wh-2", SPEC)

    # Then the result is the spec under that id
    assert (updated.id, updated.callback_url) == ("wh-2", SPEC.callback_url)


def test_getting_a_missing_webhook_is_not_found():
    # Given / When / Then
    h = harness()
    h.transport.script(
        "GET", "/ds/v1/webhook/nope", answer({"code": "not_found", "message": "no webhook"}, 404)
    )
    with pytest.raises(NotFound, match="no webhook"):
        h.api.get_webhook("nope")


def test_a_plain_http_callback_is_refused_before_calling_the_provider():
    # Given an http callback to a public host, and to loopback without the local-mode flag
    h = harness()
    public = SPEC.model_copy(update={"callback_url": "http://hooks.example.test/x"})
    loopback = SPEC.model_copy(update={"callback_url": "http://127.0.0.1:9000/x"})

    # When each is created / Then each is refused and nothing was sent
    for spec in (public, loopback):
        with pytest.raises(InvalidWebhookSpec, match="HTTPS"):
            h.api.create_webhook(spec)
    assert h.transport.sent == []


def test_the_local_mode_may_use_plain_http_to_loopback_only():
    # Given a client that explicitly allows http loopback callbacks
    h = harness(allow_http_loopback_callbacks=True)
    h.transport.script("POST", "/ds/v1/webhooks", answer({"data": {"id": "local-1"}}))

    # When a loopback and a public http callback are created
    local = h.api.create_webhook(
        SPEC.model_copy(update={"callback_url": "http://localhost:9000/x"})
    )
    with pytest.raises(InvalidWebhookSpec):
        h.api.update_webhook(
            "local-1", SPEC.model_copy(update={"callback_url": "http://10.0.0.5/x"})
        )

    # Then only the loopback one was sent
    assert local.id == "local-1"
    assert len(h.transport.resource_calls()) == 1


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.test/x", "/relative/path", "https://", "not a url"]
)
def test_a_callback_that_is_not_an_absolute_http_url_is_invalid(url: str):
    with pytest.raises(ValidationError, match="absolute"):
        WebhookSpec(callback_url=url, event_type="sensor_reading")


def test_header_names_must_be_unique_ignoring_case():
    # Given two headers that differ only in case
    headers = [
        {"key": "X-Token", "value": "a"},
        {"key": "x-token", "value": "b"},
        {"key": "X-Other", "value": "c"},
    ]

    # When / Then the spec is refused, naming the duplicate
    with pytest.raises(ValidationError, match="unique ignoring case: x-token"):
        WebhookSpec(callback_url=SPEC.callback_url, event_type="gateway_status", headers=headers)
