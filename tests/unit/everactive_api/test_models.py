"""Tolerant models on the real API samples, and the seeds' error format."""

import json
from datetime import UTC, datetime

import pytest

from sensorhook.providers.everactive_api import (
    ApiError,
    AuthenticationFailed,
    FieldError,
    Gateway,
    Health,
    NotFound,
    PaginationInfo,
    ProviderUnavailable,
    RateLimited,
    Sensor,
    Webhook,
)
from sensorhook.providers.everactive_api.models import AccessToken, api_error_from_response
from tests.fixtures.loader import sample_json, sample_text

VALIDATION_ERROR = {
    "code": "error_validation",
    "message": "Validation error.",
    "errors": [
        {
            "code": "err_invalid_mac_address",
            "field": "sensor.macAddress",
            "message": "no:ta:re:al:ma:c0 is an invalid MAC Address",
        },
        {"code": "err_required", "field": "callbackUrl", "message": "is required"},
    ],
}


def test_the_sensors_sample_parses_with_every_field_kept():
    # Given the real /eversensors answer
    document = sample_json("everactive-ds/api/eversensors-list.json")

    # When its items and pagination are parsed
    sensors = [Sensor.model_validate(item) for item in document["data"]]
    info = PaginationInfo.model_validate(document["paginationInfo"])

    # Then identity, last reading time and gateway come out, and unknown fields stay
    first = sensors[0]
    assert first.mac_address == "bc:5e:a1:00:00:00:5e:13"
    assert first.last_reading_at == datetime(2023, 1, 11, 17, 37, 16, tzinfo=UTC)
    assert first.gateway_serial_number == "7C5BE61372C4"
    assert first.model_extra is not None and first.model_extra["devkitBundled"] is True
    assert (info.page, info.page_size, info.total_items, info.total_pages) == (1, 50, 2, 1)


def test_the_token_and_health_samples_parse():
    # Given / When the real token and health answers are parsed
    token = AccessToken.model_validate(sample_json("everactive-ds/api/token.json"))
    health = Health.model_validate_json(sample_text("everactive-ds/api/health.json"))

    # Then the token is a hidden secret with its lifetime, and health is up
    assert token.expires_in == 86400
    assert token.token_type == "Bearer"
    assert "JWT" not in repr(token)
    assert (health.ok, health.version) == (True, "89accb09")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"serialNumber": "G1", "lastSeen": "2024-05-01T11:55:00Z"}, "2024-05-01T11:55:00+00:00"),
        ({"serialNumber": "G1", "lastSeen": 1714564500}, "2024-05-01T11:55:00+00:00"),
        ({"serialNumber": "G1", "lastSeen": 1714564500000}, "2024-05-01T11:55:00+00:00"),
        (
            {"serialNumber": "G1", "lastReading": {"timestamp": 1714564500}},
            "2024-05-01T11:55:00+00:00",
        ),
        (
            {"serialNumber": "G1", "lastReading": 1714564000, "lastSeen": 1714564500},
            "2024-05-01T11:55:00+00:00",
        ),
        ({"serial": "G1", "lastSeen": "yesterday"}, None),
        ({"serialNumber": "G1", "lastSeen": True}, None),
        ({"serialNumber": "G1"}, None),
    ],
)
def test_a_gateway_last_contact_is_read_from_whichever_field_and_format_carries_it(
    document: dict[str, object], expected: str | None
):
    # Given / When a gateway as the API might spell it is parsed
    gateway = Gateway.model_validate(document)

    # Then its last contact is the latest readable timestamp, or None, never a failure
    assert gateway.serial_number == "G1"
    assert (gateway.last_contact.isoformat() if gateway.last_contact else None) == expected


def test_a_webhook_keeps_unknown_fields_and_tolerates_null_headers():
    # Given a webhook with a field the seeds do not name and null headers
    webhook = Webhook.model_validate(
        {
            "id": "w",
            "callbackUrl": "https://x.test/",
            "eventType": "threshold_crossed",
            "headers": None,
            "lastDelivery": "2024-05-01",
        }
    )

    # Then it parses, event type kept as given
    assert (webhook.event_type, webhook.headers) == ("threshold_crossed", [])
    assert webhook.model_extra == {"lastDelivery": "2024-05-01"}


def test_the_seed_error_format_becomes_an_api_error_with_per_field_messages():
    # Given the seeds' validation error body with 400
    error = api_error_from_response(400, _json(VALIDATION_ERROR))

    # Then the code, message and each field error are typed, and the text names them
    assert type(error) is ApiError
    assert (error.status, error.code, error.message) == (
        400,
        "error_validation",
        "Validation error.",
    )
    assert error.errors == [
        FieldError(
            code="err_invalid_mac_address",
            field="sensor.macAddress",
            message="no:ta:re:al:ma:c0 is an invalid MAC Address",
        ),
        FieldError(code="err_required", field="callbackUrl", message="is required"),
    ]
    assert str(error) == (
        "400 error_validation: Validation error. (sensor.macAddress: no:ta:re:al:ma:c0 is an "
        "invalid MAC Address; callbackUrl: is required)"
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, AuthenticationFailed),
        (403, AuthenticationFailed),
        (404, NotFound),
        (429, RateLimited),
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (409, ApiError),
    ],
)
def test_statuses_map_to_typed_errors(status: int, expected: type[ApiError]):
    assert type(api_error_from_response(status, b"{}")) is expected


def test_a_non_json_error_body_is_shortened_into_the_message():
    # Given a proxy's HTML page for a 502
    html = ("<html><body>" + "Bad gateway " * 100 + "</body></html>").encode()

    # When it is parsed
    error = api_error_from_response(502, html)

    # Then the error is typed by status and its message is a bounded excerpt
    assert isinstance(error, ProviderUnavailable)
    assert error.code is None
    assert error.message.startswith("<html><body>Bad gateway")
    assert len(error.message) == 200


def test_odd_error_bodies_still_give_an_error():
    # Given an empty body, a JSON list, a nested error and malformed field entries
    empty = api_error_from_response(500, b"")
    listed = api_error_from_response(400, b"[1, 2]")
    nested = api_error_from_response(400, _json({"error": {"code": "bad", "message": "nested"}}))
    malformed = api_error_from_response(
        400, _json({"code": "c", "errors": ["plain", {"field": 3}]})
    )

    # Then each has a usable message
    assert empty.message == "HTTP 500"
    assert listed.message == "[1, 2]"  # not the documented shape: shown as text
    assert (nested.code, nested.message) == ("bad", "nested")
    assert [str(e) for e in malformed.errors] == ["<request>: plain", "<request>: {'field': 3}"]


def _json(document: object) -> bytes:
    return json.dumps(document).encode()
