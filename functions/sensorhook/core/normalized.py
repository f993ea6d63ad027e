"""What a provider adapter turns one delivery into: readings plus domain facts."""

import json

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sensorhook.core.reading import (
    PARTITION_KEY_MAX_BYTES,
    Reading,
    UtcDatetime,
    check_packed_size,
    check_record_text,
)


class GatewayStatus(BaseModel):
    """The latest known condition of one gateway, from a status message or a reading."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    gateway_id: str
    reported_at: UtcDatetime
    schema_name: str  # e.g. "gateway_status_v3.schema.json", "gateway_status_v1", "daily"
    online: bool | None = None  # as the gateway reported it, when it does
    summary: dict[str, object] = Field(default_factory=dict)  # a few flat, useful fields

    @model_validator(mode="after")
    def _storable(self) -> "GatewayStatus":
        if len(f"{self.provider}#{self.gateway_id}".encode()) > PARTITION_KEY_MAX_BYTES:
            raise ValueError(f"provider#gateway_id exceeds {PARTITION_KEY_MAX_BYTES} bytes")
        summary = json.dumps(self.summary, default=str, ensure_ascii=False)
        check_record_text(self.provider, self.gateway_id, self.schema_name, summary)
        return self


class GatewayStatusRecord(BaseModel):
    """A gateway status as its history keeps it: the report and the delivery that first
    brought it (one row of the lake's gateway_status table, docs/athena.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: GatewayStatus
    event_id: str
    received_at: UtcDatetime


class SteamTrapStateChanged(BaseModel):
    """Everactive v2020-07 `Steam Trap State Change`, in sensorhook's vocabulary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    trap_id: str
    sensor_mac: str
    changed_at: UtcDatetime
    start_state: str
    end_state: str
    end_condition: str  # Failure, Good, Light, Medium, Heavy, Leaking, Cold
    facility: str | None = None
    location: str | None = None
    service_tag: str | None = None
    asset_id: str | None = None
    asset_name: str | None = None
    trap_detail_url: str | None = None
    trap_insights_url: str | None = None

    @model_validator(mode="after")
    def _publishable(self) -> "SteamTrapStateChanged":
        check_record_text(*(v for v in self.__dict__.values() if isinstance(v, str)))
        return self


class NormalizedDelivery(BaseModel):
    """Everything one authentic delivery means, ready to be stored and published."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    readings: list[Reading] = Field(default_factory=list)
    gateway_statuses: list[GatewayStatus] = Field(default_factory=list)
    steam_trap_changes: list[SteamTrapStateChanged] = Field(default_factory=list)

    @model_validator(mode="after")
    def _packable(self) -> "NormalizedDelivery":
        check_packed_size(self.readings)
        return self
