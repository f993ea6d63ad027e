"""The Efento Cloud measurement batch, field by field as the webhook document lists it."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from sensorhook.core.timestamps import UtcDatetime


def _efento_time(value: Any) -> Any:
    """The seed says only "Timestamp (UTC)": take unix seconds or ISO 8601 text.

    `datetime.fromisoformat` (3.11) reads "2021-05-25T12:00:00Z", "2021-05-25 12:00:00" and
    fractional seconds alike; text without an offset is UTC, as the document states.
    """
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError) as out_of_range:
            raise ValueError("timestamp out of range") from out_of_range
    if isinstance(value, str):
        return datetime.fromisoformat(value.strip())
    return value


EfentoTime = Annotated[UtcDatetime, BeforeValidator(_efento_time)]

# Built when first validated, not at import: a delivery validates one flavor's models
# (docs/cost.md, "Cold start").
_TOLERANT = ConfigDict(extra="allow", frozen=True, defer_build=True)
MAX_PERIOD_S = 2**31 - 1  # beyond any sensor's setting; keeps date arithmetic in range


class MeasurementEvent(BaseModel):
    """A change of value, period or status on one channel; it holds until the next event."""

    model_config = _TOLERANT

    timestamp: EfentoTime
    value: float | None = None  # OK group: the measurement; ERROR: the error code; MISSING: null
    period: int = Field(gt=0, le=MAX_PERIOD_S)  # seconds
    status: str = "OK"  # the document calls OK the default status


class ChannelMeasurements(BaseModel):
    model_config = _TOLERANT

    channel_number: int = Field(alias="channelNumber")
    channel_type: str = Field(alias="channelType", min_length=1)
    events: list[MeasurementEvent] = Field(default_factory=list)


class MeasurementBatch(BaseModel):
    model_config = _TOLERANT

    measurement_point_id: int | str = Field(alias="measurementPointId")
    measurement_point_name: str | None = Field(default=None, alias="measurementPointName")
    # The document mentions the sensor's serial number without naming its key.
    serial_number: str | None = Field(
        default=None,
        validation_alias=AliasChoices("serialNumber", "sensorSerialNumber", "serial"),
    )
    first_measurement_timestamp: EfentoTime = Field(alias="firstMeasurementTimestamp")
    last_measurement_timestamp: EfentoTime = Field(alias="lastMeasurementTimestamp")
    measurements_received_at: EfentoTime | None = Field(
        default=None, alias="measurementsReceivedAt"
    )
    signal_strength: float | None = Field(default=None, alias="signalStrength")
    battery_status: str | None = Field(default=None, alias="batteryStatus")
    measurements_events: list[ChannelMeasurements] = Field(alias="measurementsEvents")
