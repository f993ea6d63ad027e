"""A canonical reading holds only what every store can hold (DynamoDB numbers, int32 columns),
so an authentic value out of range fails validation (quarantine), not the write (DLQ)."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from sensorhook.core.reading import Reading

AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def reading(**changes: Any) -> Reading:
    fields: dict[str, Any] = {
        "provider": "efento",
        "sensor_id": "77",
        "sensor_family": "efento",
        "gateway_id": None,
        "metric": "temperature",
        "channel": "1",
        "value": 21.5,
        "unit": "Cel",
        "status": "OK",
        "measured_at": AT,
        "received_at": AT,
        "event_id": "efento-measurements:abc",
    }
    return Reading.model_validate({**fields, **changes})


@pytest.mark.parametrize(
    "value", [0.0, -0.0, 1e-130, -1e-130, 9.999999999999998e125, -9.999999999999998e125, None]
)
def test_values_dynamodb_can_store_are_readings(value: float | None) -> None:
    assert reading(value=value).value == value


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), 1e126, -1e126, 1e200, 9e-131, -1e-200]
)
def test_values_dynamodb_cannot_store_are_rejected(value: float) -> None:
    with pytest.raises(ValidationError) as raised:
        reading(value=value)
    assert [error["loc"] for error in raised.value.errors()] == [("value",)]


@pytest.mark.parametrize("field", ["error_code", "period_s"])
@pytest.mark.parametrize("number", [-(2**31), 0, 2**31 - 1])
def test_int32_fields_accept_the_int32_range(field: str, number: int) -> None:
    assert getattr(reading(**{field: number}), field) == number


@pytest.mark.parametrize("field", ["error_code", "period_s"])
@pytest.mark.parametrize("number", [-(2**31) - 1, 2**31, 2**40])
def test_int32_fields_reject_what_the_lake_columns_cannot_hold(field: str, number: int) -> None:
    with pytest.raises(ValidationError) as raised:
        reading(**{field: number})
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]
