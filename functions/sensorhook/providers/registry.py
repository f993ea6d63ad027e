"""Which provider adapter handles which flavor: the processor's single entry to providers."""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from sensorhook.core.flavors import Flavor
from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.providers.common import InvalidPayload, describe_validation_error
from sensorhook.providers.efento.normalize import normalize_measurements
from sensorhook.providers.everactive_ds.normalize import (
    normalize_gateway_status,
    normalize_sensor_reading,
)
from sensorhook.providers.everactive_v2020.normalize import normalize_state_change

__all__ = ["InvalidPayload", "normalize"]

Adapter = Callable[..., NormalizedDelivery]

_ADAPTERS: dict[Flavor, Adapter] = {
    Flavor.EVERACTIVE_V2020_STEAM_TRAP: normalize_state_change,
    Flavor.EVERACTIVE_DS_SENSOR_READING: normalize_sensor_reading,
    Flavor.EVERACTIVE_DS_GATEWAY_STATUS: normalize_gateway_status,
    Flavor.EFENTO_MEASUREMENTS: normalize_measurements,
}


def _reject_non_standard_constant(name: str) -> Any:
    """NaN and Infinity are not JSON, and no store downstream can hold them."""
    raise ValueError(name)


def normalize(
    flavor: Flavor, body: str, *, event_id: str, received_at: datetime
) -> NormalizedDelivery:
    """Validate `body` against the flavor's models and turn it into canonical records.

    Raises InvalidPayload when the body is not JSON, is nested too deeply to process, or does
    not validate, whether against the provider's models or as canonical records (a value no
    store can hold); its message names the flavor and the failing locations and error types,
    never the values.
    """
    try:
        payload = json.loads(body, parse_constant=_reject_non_standard_constant)
    except ValueError:  # JSONDecodeError is a ValueError
        raise InvalidPayload(f"{flavor.value}: body is not JSON") from None
    except RecursionError:  # only parsing recurses: the adapters ignore fields they do not know
        raise InvalidPayload(f"{flavor.value}: body is nested too deeply") from None
    try:
        return _ADAPTERS[flavor](payload, event_id=event_id, received_at=received_at)
    except ValidationError as error:
        raise InvalidPayload(f"{flavor.value}: {describe_validation_error(error)}") from None
    except InvalidPayload as error:
        raise InvalidPayload(f"{flavor.value}: {error}") from None
    except OverflowError:  # e.g. year 1 with a +01:00 offset has no UTC instant
        raise InvalidPayload(f"{flavor.value}: a date is out of range") from None
