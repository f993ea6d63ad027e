"""The one canonical reading every provider is normalized into.

DynamoDB items, Parquet rows, Athena columns and EventBridge details are all this record.
Canonical units (UCUM-style codes) are documented in docs/canonical-reading.md.
"""

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# DynamoDB numbers: zero, or a magnitude from 1E-130 up to (not including) 1E+126.
_DYNAMODB_SMALLEST = Decimal("1E-130")
_DYNAMODB_BOUND = Decimal("1E+126")


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


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

    @property
    def series_key(self) -> str:
        """Partition key of the per-sensor time series."""
        return f"{self.provider}#{self.sensor_id}"

    @property
    def point_key(self) -> str:
        """Sort key: time first so a Query by time range is a BETWEEN on it."""
        return f"{self.measured_at.strftime('%Y-%m-%dT%H:%M:%SZ')}#{self.metric}#{self.channel}"
