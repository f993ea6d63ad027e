"""The one canonical reading every provider is normalized into.

DynamoDB items, Parquet rows, Athena columns and EventBridge details are all this record.
Canonical units (UCUM-style codes) are documented in docs/canonical-reading.md.
"""

import math
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from sensorhook.core.timestamps import UtcDatetime

# DynamoDB numbers: zero, or a magnitude from 1E-130 up to (not including) 1E+126.
_DYNAMODB_SMALLEST = Decimal("1E-130")
_DYNAMODB_BOUND = Decimal("1E+126")


def _storable(value: float) -> float:
    """A value every store can hold, so an authentic one that no store can is quarantined
    (a validation error) instead of failing its write on every retry and dead-lettering.

    The readings table writes `Decimal(repr(value))`, so the bound is checked on that.
    """
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    magnitude = abs(Decimal(repr(value)))
    if magnitude and not _DYNAMODB_SMALLEST <= magnitude < _DYNAMODB_BOUND:
        raise ValueError("outside the range DynamoDB can store (1e-130 <= |value| < 1e126)")
    return value


StorableFloat = Annotated[float, AfterValidator(_storable)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]  # the lake's int32 columns

# DynamoDB key limits (bytes): partition keys 2048, sort keys 1024.
PARTITION_KEY_MAX_BYTES = 2048
SORT_KEY_MAX_BYTES = 1024
# All text of one record together: far below DynamoDB's 400 KB item and EventBridge's 256 KB
# entry, so a record that passes is storable and publishable however it is combined.
RECORD_TEXT_MAX_BYTES = 64 * 1024


# One readings item packs every reading of one sensor at one instant (dal/readings_store.py):
# all of its readings' text together, plus the names, numbers and map framing each reading
# adds (at most PACKED_READING_OVERHEAD_BYTES), must stay under DynamoDB's 400 KB item. A
# delivery's shared fields are stored once per item in a source each reading names: counting
# them with every reading, and a source's framing with each reading (a source per reading is
# the largest item), bounds the item from above (tests/unit/test_reading_bounds.py).
PACKED_ITEM_MAX_BYTES = 400 * 1024 - 4 * 1024  # room for the keys and the sensor's fields
PACKED_READING_OVERHEAD_BYTES = 160


def text_bytes(*texts: str | None) -> int:
    return sum(len(text.encode()) for text in texts if text is not None)


def check_record_text(*texts: str | None) -> None:
    """Refuse (a validation error, so the delivery is quarantined before anything is written)
    a record whose text no store could hold."""
    if text_bytes(*texts) > RECORD_TEXT_MAX_BYTES:
        raise ValueError(f"text fields exceed {RECORD_TEXT_MAX_BYTES} bytes in all")


def check_packed_size(readings: "Iterable[Reading]") -> None:
    """Refuse (a validation error, so the delivery is quarantined before anything is written)
    readings whose packed item for one sensor and instant would pass DynamoDB's 400 KB.

    Text is measured in characters first (at most 4 bytes each): only an instant that might
    be too large is measured in bytes."""
    chars: dict[tuple[str, datetime], int] = {}
    for reading in readings:
        key = (reading.series_key, reading.measured_at)
        chars[key] = (
            chars.get(key, 0)
            + reading.text_chars()
            + reading.escapes()
            + PACKED_READING_OVERHEAD_BYTES
        )
    suspects = {key for key, size in chars.items() if 4 * size > PACKED_ITEM_MAX_BYTES}
    if not suspects:
        return
    sizes: dict[tuple[str, datetime], int] = {}
    for reading in readings:
        key = (reading.series_key, reading.measured_at)
        if key in suspects:
            sizes[key] = (
                sizes.get(key, 0)
                + reading.text_bytes()
                + reading.escapes()
                + PACKED_READING_OVERHEAD_BYTES
            )
    for (series, measured_at), size in sizes.items():
        if size > PACKED_ITEM_MAX_BYTES:
            raise ValueError(
                f"the readings of {series} at {measured_at.isoformat()} together exceed "
                f"{PACKED_ITEM_MAX_BYTES} bytes, more than one DynamoDB item holds"
            )


class Reading(BaseModel):
    """One measured value of one metric on one channel of one sensor at one instant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str  # "everactive" | "efento"
    sensor_id: str  # Everactive MAC address, Efento measurement point id
    sensor_family: str  # e.g. "vibration-electrical", "environmental", "steam-trap", "efento"
    gateway_id: str | None  # gateway serial number when the provider names it
    metric: str  # e.g. "temperature", "humidity", "velocity_overall", "trap_state"
    channel: str  # sensor index, axis or Efento channel number; "" when there is only one
    value: StorableFloat | None  # None for MISSING or when a status carries no value
    unit: str  # canonical unit code, see docs/canonical-reading.md; "" for dimensionless states
    status: str  # "OK" or the provider's status (Efento MISSING, ERROR, ...)
    error_code: Int32 | None = None  # Efento ERROR keeps the sensor's error code here
    measured_at: UtcDatetime
    period_s: Int32 | None = None  # the measurement period when the provider states one
    received_at: UtcDatetime  # when sensorhook's receiver accepted the delivery
    event_id: str  # the dedupe key of the delivery this reading came from
    schema_name: str | None = None  # the provider's schema URL/name and version, when given
    text_value: str | None = None  # for non-numeric states such as a steam trap's state
    # measured_at is later than receipt plus the configured tolerance: the sensor's clock is
    # ahead, so state and liveness order it by receipt (docs/canonical-reading.md)
    future_dated: bool = False

    @model_validator(mode="after")
    def _storable_keys_and_text(self) -> "Reading":
        if len(self.series_key.encode()) > PARTITION_KEY_MAX_BYTES:
            raise ValueError(f"provider#sensor_id exceeds {PARTITION_KEY_MAX_BYTES} bytes")
        if len(self.point_key.encode()) > SORT_KEY_MAX_BYTES:
            raise ValueError(f"time#metric#channel exceeds {SORT_KEY_MAX_BYTES} bytes")
        check_record_text(*self._texts())
        return self

    def _texts(self) -> tuple[str | None, ...]:
        return (
            self.provider,
            self.sensor_id,
            self.sensor_family,
            self.gateway_id,
            self.metric,
            self.channel,
            self.unit,
            self.status,
            self.event_id,
            self.schema_name,
            self.text_value,
        )

    def text_bytes(self) -> int:
        """All text of the reading, UTF-8 encoded."""
        return text_bytes(*self._texts())

    def text_chars(self) -> int:
        return sum(len(text) for text in self._texts() if text is not None)

    def escapes(self) -> int:
        """Bytes the readings table adds to the metric in the reading's attribute name (a `#`
        or `%` is written as three characters, dal/readings_store.py)."""
        return 2 * (self.metric.count("#") + self.metric.count("%"))

    @property
    def series_key(self) -> str:
        """Partition key of the per-sensor time series."""
        return f"{self.provider}#{self.sensor_id}"

    @property
    def point_key(self) -> str:
        """Sort key: time first so a Query by time range is a BETWEEN on it."""
        return f"{self.measured_at.strftime('%Y-%m-%dT%H:%M:%SZ')}#{self.metric}#{self.channel}"
