"""The one canonical reading every provider is normalized into.

DynamoDB items, Parquet rows, Athena columns and EventBridge details are all this record.
Canonical units (UCUM-style codes) are documented in docs/canonical-reading.md.
"""

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

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


# Efento's readings are kept one item per sensor and time bucket, not per instant
# (dal/readings_store.py, docs/readings.md): an Efento delivery is a batch of many instants,
# and one write per instant cost a write unit each. The width: about one batch of a sensor
# sending every 15 minutes, aligned to the epoch, so the same instant always falls in the same
# bucket (dedupe) and a bucket never spans two UTC days.
BUCKETED_PROVIDERS = frozenset({"efento"})
BUCKET_S = 900
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a reading's attribute in a bucket item holds besides its text and numbers: the
# instant's offset in its name (at most "899.999", and two `#`), the map's framing, its keys
# and its source's key (dal/readings_store.py; tests/unit/test_reading_bounds.py compares).
BUCKETED_READING_OVERHEAD_BYTES = 40
# A source in a bucket item besides its text: its name, framing, keys and receipt.
BUCKETED_SOURCE_OVERHEAD_BYTES = 48


def bucket_start(provider: str, measured_at: datetime) -> datetime | None:
    """The start of the time bucket whose item holds a reading of `provider` measured at
    `measured_at` (naive: UTC), or None where a provider's readings are kept in an item per
    instant (not in BUCKETED_PROVIDERS)."""
    if provider not in BUCKETED_PROVIDERS:
        return None
    if measured_at.tzinfo is None:
        measured_at = measured_at.replace(tzinfo=UTC)
    elapsed = measured_at - _EPOCH
    seconds = elapsed.days * 86_400 + elapsed.seconds
    return _EPOCH + timedelta(seconds=seconds - seconds % BUCKET_S)


def _number_bytes(value: float | int | None) -> int:
    """At most what DynamoDB bills for the number as the readings table writes it."""
    if value is None:
        return 0
    return math.ceil(len(str(Decimal(repr(value)))) / 2) + 1


def _item_of(reading: "Reading") -> tuple[str, datetime, bool]:
    start = bucket_start(reading.provider, reading.measured_at)
    if start is None:
        return reading.series_key, reading.measured_at, False
    return reading.series_key, start, True


def _bound(reading: "Reading", *, in_bytes: bool) -> int:
    """At most what the reading adds to its item, its source aside in a bucket item (counted
    once per item, `_source_bound`); in characters times 4 when not `in_bytes`."""
    if reading.provider not in BUCKETED_PROVIDERS:
        text = reading.text_bytes() if in_bytes else 4 * reading.text_chars()
        return text + reading.escapes() + PACKED_READING_OVERHEAD_BYTES
    own = (reading.metric, reading.channel, reading.unit, reading.status, reading.text_value)
    text = text_bytes(*own) if in_bytes else 4 * sum(len(t) for t in own if t is not None)
    numbers = sum(map(_number_bytes, (reading.value, reading.error_code, reading.period_s)))
    return text + reading.escapes() + numbers + BUCKETED_READING_OVERHEAD_BYTES


def _source_bound(reading: "Reading", *, in_bytes: bool) -> int:
    shared = (reading.event_id, reading.gateway_id, reading.schema_name)
    text = text_bytes(*shared) if in_bytes else 4 * sum(len(t) for t in shared if t is not None)
    return text + BUCKETED_SOURCE_OVERHEAD_BYTES


def _item_bounds(
    readings: "Iterable[Reading]", *, in_bytes: bool, only: "set[Any] | None" = None
) -> dict[tuple[str, datetime, bool], int]:
    sizes: dict[tuple[str, datetime, bool], int] = {}
    sources: set[tuple[tuple[str, datetime, bool], str, str | None, str | None]] = set()
    for reading in readings:
        key = _item_of(reading)
        if only is not None and key not in only:
            continue
        sizes[key] = sizes.get(key, 0) + _bound(reading, in_bytes=in_bytes)
        if key[2]:
            source = (key, reading.event_id, reading.gateway_id, reading.schema_name)
            if source not in sources:
                sources.add(source)
                sizes[key] += _source_bound(reading, in_bytes=in_bytes)
    return sizes


def check_packed_size(readings: "Iterable[Reading]") -> None:
    """Refuse (a validation error, so the delivery is quarantined before anything is written)
    readings whose packed item would pass DynamoDB's 400 KB: for one sensor and instant, or,
    for a provider kept in time buckets, for one sensor and bucket (its readings' own fields,
    and each delivery's fields once per bucket, as the item stores them).

    Text is measured in characters first (at most 4 bytes each): only an item that might
    be too large is measured in bytes."""
    readings = list(readings)
    chars = _item_bounds(readings, in_bytes=False)
    suspects = {key for key, size in chars.items() if size > PACKED_ITEM_MAX_BYTES}
    if not suspects:
        return
    for (series, at, bucketed), size in _item_bounds(
        readings, in_bytes=True, only=suspects
    ).items():
        if size > PACKED_ITEM_MAX_BYTES:
            where = f"in the {BUCKET_S} s from" if bucketed else "at"
            raise ValueError(
                f"the readings of {series} {where} {at.isoformat()} together exceed "
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
