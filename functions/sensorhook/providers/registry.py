"""Which provider adapter handles which flavor: the processor's single entry to providers.

Each flavor's adapter (its models, its normalizer) is imported by the first delivery of that
flavor, not with the processor: one delivery takes one flavor's, and a cold start pays for the
flavor it was woken by, not for all of them (docs/cost.md, "Cold start";
tests/unit/test_cold_start.py guards it).
"""

import importlib
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sensorhook.core.flavors import Flavor
from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.providers.common import InvalidPayload, delivery_of, describe_validation_error

if TYPE_CHECKING:
    from sensorhook.providers.efento.normalize import PlannedMeasurements

__all__ = ["CHANNEL_ORDER", "TIME_ORDER", "DeliveryChunks", "InvalidPayload", "normalize"]

# How a delivery's readings are cut into chunks (DeliveryChunks); recorded with a part-stored
# delivery's progress, so it resumes in the order it began in.
TIME_ORDER = "time"
CHANNEL_ORDER = "channel"

Adapter = Callable[..., NormalizedDelivery]

# Each flavor's adapter: module and function, imported on first use (`adapter`)
_ADAPTERS: dict[Flavor, tuple[str, str]] = {
    Flavor.EVERACTIVE_V2020_STEAM_TRAP: (
        "sensorhook.providers.everactive_v2020.normalize",
        "normalize_state_change",
    ),
    Flavor.EVERACTIVE_DS_SENSOR_READING: (
        "sensorhook.providers.everactive_ds.normalize",
        "normalize_sensor_reading",
    ),
    Flavor.EVERACTIVE_DS_GATEWAY_STATUS: (
        "sensorhook.providers.everactive_ds.normalize",
        "normalize_gateway_status",
    ),
    Flavor.EFENTO_MEASUREMENTS: ("sensorhook.providers.efento.normalize", "normalize_measurements"),
}


@cache
def adapter(flavor: Flavor) -> Adapter:
    """The flavor's adapter, its module imported by the first call (module docstring)."""
    module, name = _ADAPTERS[flavor]
    found: Adapter = getattr(importlib.import_module(module), name)
    return found


def _reject_non_standard_constant(name: str) -> Any:
    """NaN and Infinity are not JSON, and no store downstream can hold them."""
    raise ValueError(name)


def _parse(flavor: Flavor, body: str) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_non_standard_constant)
    except ValueError:  # JSONDecodeError is a ValueError
        raise InvalidPayload(f"{flavor.value}: body is not JSON") from None
    except RecursionError:  # only parsing recurses: the adapters ignore fields they do not know
        raise InvalidPayload(f"{flavor.value}: body is nested too deeply") from None


@contextmanager
def _as_invalid_payload(flavor: Flavor) -> Iterator[None]:
    """Every way an adapter refuses a body, as one InvalidPayload naming the flavor."""
    try:
        yield
    except ValidationError as error:
        raise InvalidPayload(f"{flavor.value}: {describe_validation_error(error)}") from None
    except InvalidPayload as error:
        raise InvalidPayload(f"{flavor.value}: {error}") from None
    except OverflowError:  # e.g. year 1 with a +01:00 offset has no UTC instant
        raise InvalidPayload(f"{flavor.value}: a date is out of range") from None


def normalize(
    flavor: Flavor, body: str, *, event_id: str, received_at: datetime
) -> NormalizedDelivery:
    """Validate `body` against the flavor's models and turn it into canonical records.

    Raises InvalidPayload when the body is not JSON, is nested too deeply to process, or does
    not validate, whether against the provider's models or as canonical records (a value no
    store can hold); its message names the flavor and the failing locations and error types,
    never the values.
    """
    payload = _parse(flavor, body)
    with _as_invalid_payload(flavor):
        return adapter(flavor)(payload, event_id=event_id, received_at=received_at)


class DeliveryChunks:
    """A delivery normalized lazily, at most `chunk_size` readings at a time.

    Only Efento batches expand (a 1 KB body can stand for 100,000 readings); every other
    flavor is one chunk, normalized at once. Chunks are deterministic: the same body and
    order always split the same way, so a resumed delivery can skip the chunks already
    stored. Raises InvalidPayload like `normalize`, here or while iterating `chunks()`.

    Chunks are slices in time (`TIME_ORDER`): all channels of an instant in one chunk (but
    where a chunk ends), so a chunk of a 6-channel sensor writes about a sixth as many
    readings items as readings. Within a chunk the readings are in `normalize`'s order
    (channel by channel), so a delivery of one chunk is exactly what `normalize` makes.
    `CHANNEL_ORDER` (the slices of `normalize`'s order) is how deliveries were chunked
    before: a delivery left part-stored in that order resumes in it.
    """

    def __init__(
        self, flavor: Flavor, body: str, *, event_id: str, received_at: datetime, chunk_size: int
    ) -> None:
        self._flavor, self._chunk_size = flavor, chunk_size
        payload = _parse(flavor, body)
        self._planned: PlannedMeasurements | None = None
        self._whole: NormalizedDelivery | None = None
        with _as_invalid_payload(flavor):
            if flavor is Flavor.EFENTO_MEASUREMENTS:
                # Efento's adapter on its first delivery (module docstring)
                from sensorhook.providers.efento import normalize as efento  # noqa: PLC0415

                self._planned = efento.PlannedMeasurements(
                    payload, event_id=event_id, received_at=received_at
                )
                self.count = max(1, -(-self._planned.size // chunk_size))
            else:
                self._whole = adapter(flavor)(payload, event_id=event_id, received_at=received_at)
                self.count = 1

    def chunks(self, start: int = 0, *, order: str = TIME_ORDER) -> Iterator[NormalizedDelivery]:
        """Chunks `start`, `start + 1`, ...; rows of skipped chunks are made but not validated."""
        if self._planned is None:
            if start == 0 and self._whole is not None:
                yield self._whole
            return
        if order == CHANNEL_ORDER:
            placed: Iterator[tuple[int, dict[str, Any]]] = (
                (0, row) for row in self._planned.rows()
            )
        elif order == TIME_ORDER:
            placed = self._planned.rows_by_time()
        else:
            raise ValueError(f"unknown chunk order {order!r}")
        for _ in itertools.islice(placed, start * self._chunk_size):
            pass
        while chunk := list(itertools.islice(placed, self._chunk_size)):
            chunk.sort(key=_place)  # stable: each channel's readings stay in time order
            with _as_invalid_payload(self._flavor):
                delivery = delivery_of(row for _, row in chunk)
            yield delivery


def _place(placed: tuple[int, dict[str, Any]]) -> int:
    return placed[0]
