"""Custom-header authentication (Everactive Data Services, Efento)."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from sensorhook.providers.custom_headers import (
    HeaderSecret,
    HeadersRejected,
    verify_headers,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SECRET = HeaderSecret.model_validate(
    {"headers": {"X-Api-Key": "k-123", "Authorization": "Basic dXNlcjpwYXNz"}}
)


def _accepted(headers: dict[str, str], secret: HeaderSecret = SECRET) -> bool:
    try:
        verify_headers(headers, secret, NOW)
    except HeadersRejected:
        return False
    return True


def _rejected_check(headers: dict[str, str], secret: HeaderSecret = SECRET) -> str:
    with pytest.raises(HeadersRejected) as rejected:
        verify_headers(headers, secret, NOW)
    return rejected.value.check


def test_every_configured_header_with_its_value_is_accepted() -> None:
    # Given a request carrying both configured headers (names lowercased, as API Gateway does)
    headers = {"x-api-key": "k-123", "authorization": "Basic dXNlcjpwYXNz", "other": "x"}
    # Then it is authentic
    assert _accepted(headers)


def test_names_are_case_insensitive_on_the_configured_side() -> None:
    # Given a secret whose names are written in any case
    secret = HeaderSecret.model_validate({"headers": {"X-API-KEY": "k-123"}})
    # Then a request with the lowercased name matches
    assert _accepted({"x-api-key": "k-123"}, secret)


def test_surrounding_whitespace_of_a_received_value_is_ignored() -> None:
    assert _accepted({"x-api-key": " k-123 ", "authorization": "Basic dXNlcjpwYXNz"})


def test_a_wrong_value_is_rejected() -> None:
    headers = {"x-api-key": "k-124", "authorization": "Basic dXNlcjpwYXNz"}
    assert _rejected_check(headers) == "header_value_mismatch"


def test_a_value_differing_only_in_case_is_rejected() -> None:
    headers = {"x-api-key": "K-123", "authorization": "Basic dXNlcjpwYXNz"}
    assert _rejected_check(headers) == "header_value_mismatch"


def test_a_missing_header_is_rejected_even_when_the_others_match() -> None:
    assert _rejected_check({"x-api-key": "k-123"}) == "header_missing"


def test_no_headers_at_all_is_rejected() -> None:
    assert _rejected_check({}) == "header_missing"


def test_a_non_ascii_value_is_rejected_not_raised() -> None:
    headers = {"x-api-key": "k-123é", "authorization": "Basic dXNlcjpwYXNz"}
    assert _rejected_check(headers) == "header_value_mismatch"


ROTATING = {
    "headers": {"X-Api-Key": "new"},
    "previous_headers": {"X-Api-Key": "old"},
}


def test_previous_set_is_accepted_within_the_overlap() -> None:
    # Given a rotation whose overlap ends in an hour
    secret = HeaderSecret.model_validate(
        {**ROTATING, "previous_valid_until": (NOW + timedelta(hours=1)).isoformat()}
    )
    # Then both the old and the new header values are accepted
    assert _accepted({"x-api-key": "old"}, secret)
    assert _accepted({"x-api-key": "new"}, secret)


def test_previous_set_is_rejected_after_the_overlap() -> None:
    secret = HeaderSecret.model_validate(
        {**ROTATING, "previous_valid_until": (NOW - timedelta(seconds=1)).isoformat()}
    )
    assert _accepted({"x-api-key": "new"}, secret)
    assert _rejected_check({"x-api-key": "old"}, secret) == "header_value_mismatch"


def test_sets_are_not_mixed_during_the_overlap() -> None:
    # Given a rotation of two headers; a request takes one from each set
    secret = HeaderSecret.model_validate(
        {
            "headers": {"a": "new-a", "b": "new-b"},
            "previous_headers": {"a": "old-a", "b": "old-b"},
            "previous_valid_until": (NOW + timedelta(hours=1)).isoformat(),
        }
    )
    # Then it matches neither set
    assert _rejected_check({"a": "new-a", "b": "old-b"}, secret) == "header_value_mismatch"


@pytest.mark.parametrize(
    "document",
    [
        {"headers": {}},
        {"headers": {"X-Key": "a", "x-key": "b"}},
        {"headers": {"bad name": "a"}},
        {"headers": {"X-Key": ""}},
        {"headers": {"X-Key": "a"}, "previous_headers": {"X-Key": "b"}},
        {"headers": {}, "previous_headers": {}, "placeholder": "p"},  # as the stack creates it
    ],
)
def test_invalid_secret_documents_are_refused(document: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        HeaderSecret.model_validate(document)


def test_fields_beside_the_documented_ones_are_ignored() -> None:
    # Given a header document carrying the stack's generated `placeholder` field
    secret = HeaderSecret.model_validate({"headers": {"X-Key": "a"}, "placeholder": "p"})
    # Then it is read, and its headers authenticate
    assert _accepted({"x-key": "a"}, secret)


def test_secret_values_do_not_appear_in_errors_or_repr() -> None:
    with pytest.raises(ValidationError) as error:
        HeaderSecret.model_validate({"headers": {"X-Key": "sup3r-secret", "x-key": "b"}})
    assert "sup3r-secret" not in str(error.value)
    assert "k-123" not in repr(SECRET)
