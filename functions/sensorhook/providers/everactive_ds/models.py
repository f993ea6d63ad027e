"""Everactive Data Services webhook bodies: `sensor_reading` per sensor family, `gateway_status`.

Tolerant readers: every model keeps unknown fields, and only what identifies and dates a message
is required, so a new or missing measurement block never sends a reading to quarantine.
Field names are snake_case; the JSON keys are their camelCase aliases, as Everactive spells them.
"""

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from sensorhook.core.timestamps import UtcDatetime
from sensorhook.providers.common import UNIX_SECONDS_MAX

# Built when first validated, not at import: a delivery validates one flavor's models
# (docs/cost.md, "Cold start").
_CAMEL_TOLERANT = ConfigDict(extra="allow", alias_generator=to_camel, frozen=True, defer_build=True)


class IndexedMeasurement(BaseModel):
    """One value of a repeated sensor, e.g. `{"sensorIndex": 0, "value": 295.625}`."""

    model_config = _CAMEL_TOLERANT

    sensor_index: int
    value: float | None = None


class ConfigurationMetadata(BaseModel):
    model_config = _CAMEL_TOLERANT

    units: str | None = None
    sample_rate: float | None = None
    sample_count: int | None = None


class SpectralPeak(BaseModel):
    model_config = _CAMEL_TOLERANT

    frequency: float
    magnitude: float


class VelocityMeasurements(BaseModel):
    """Per-axis levels are dicts so an axis Everactive adds later still becomes a reading."""

    model_config = _CAMEL_TOLERANT

    max_levels: dict[str, float | None] = Field(default_factory=dict)
    overall_levels: dict[str, float | None] = Field(default_factory=dict)
    spectral_peaks: dict[str, list[SpectralPeak]] = Field(default_factory=dict)
    configuration_metadata: ConfigurationMetadata | None = None


class AccelerationMeasurements(BaseModel):
    model_config = _CAMEL_TOLERANT

    max_levels: dict[str, float | None] = Field(default_factory=dict)
    configuration_metadata: ConfigurationMetadata | None = None


class VibrationalMeasurements(BaseModel):
    model_config = _CAMEL_TOLERANT

    velocity: VelocityMeasurements | None = None
    acceleration: AccelerationMeasurements | None = None


class ElectricalFieldMeasurements(BaseModel):
    model_config = _CAMEL_TOLERANT

    max_level: float | None = None
    # The published sample spells this one key in snake_case, unlike its siblings.
    spectral_peaks: list[SpectralPeak] = Field(
        default_factory=list, validation_alias=AliasChoices("spectral_peaks", "spectralPeaks")
    )
    configuration_metadata: ConfigurationMetadata | None = None


class MovementMeasurement(BaseModel):
    model_config = _CAMEL_TOLERANT

    initial_acceleration: dict[str, float | None] = Field(default_factory=dict)


class EversensorReading(BaseModel):
    """The type-independent part every Eversensor reading carries (any schema family)."""

    model_config = _CAMEL_TOLERANT

    mac_address: str = Field(min_length=1)
    schema_url: str = Field(alias="schema")
    schema_version: str | None = None
    gateway_serial_number: str | None = None
    timestamp: int | None = Field(default=None, ge=0, le=UNIX_SECONDS_MAX)  # unix seconds
    reading_date: UtcDatetime | None = None
    rssi_uplink: float | None = None
    scap: float | None = None
    vcap: float | None = None
    temperature_measurements: list[IndexedMeasurement] = Field(default_factory=list)  # kelvin
    humidity_measurements: list[IndexedMeasurement] = Field(default_factory=list)  # %RH

    @model_validator(mode="after")
    def _is_dated(self) -> "EversensorReading":
        if self.timestamp is None and self.reading_date is None:
            raise ValueError("a reading needs timestamp or readingDate")
        return self


class SteamTrapReading(EversensorReading):
    """STM (steam-trap monitor) reading: temperature/humidity arrays only, per the DS docs."""


class EnvironmentalReading(EversensorReading):
    pressure_measurement: float | None = None  # hPa
    movement_measurement: MovementMeasurement | None = None


class VibrationElectricalReading(EversensorReading):
    """MHM (machine-health monitor) reading."""

    vibrational_measurements: VibrationalMeasurements | None = None
    electrical_field_measurements: ElectricalFieldMeasurements | None = None


class GatewayStatusMessage(BaseModel):
    """Any of the three gateway status schemas (v1 summary, v3, daily detail).

    Only v3 has a public sample (PascalCase sections, `serial`, ISO `timestamp`). v1 and daily
    are read by what identifies and dates them, under the key spellings seen in Everactive's
    bodies; everything else stays in the model's extras for the summary to pick from.
    """

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    serial: str = Field(
        min_length=1,
        validation_alias=AliasChoices(
            "serial", "Serial", "serialNumber", "gatewaySerialNumber", "gatewaySerial"
        ),
    )
    timestamp: UtcDatetime = Field(  # ISO 8601 in v3; unix seconds accepted as well
        validation_alias=AliasChoices("timestamp", "Timestamp", "reportedAt")
    )
    schema_name: str | None = Field(default=None, validation_alias=AliasChoices("schema", "Schema"))
