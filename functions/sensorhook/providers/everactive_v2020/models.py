"""The Steam Trap State Change body as the v2020-07 API documents it (tolerant of new fields)."""

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from sensorhook.providers.common import UNIX_SECONDS_MAX

# Built when first validated, not at import: a delivery validates one flavor's models
# (docs/cost.md, "Cold start").
_CAMEL_TOLERANT = ConfigDict(extra="allow", alias_generator=to_camel, frozen=True, defer_build=True)


class IntegrationInfo(BaseModel):
    """The asset id and name a customer set on the trap; omitted when never set."""

    model_config = _CAMEL_TOLERANT

    asset_id: str | None = None
    name: str | None = None


class SteamTrapStateChange(BaseModel):
    model_config = _CAMEL_TOLERANT

    event_id: str = Field(min_length=1)
    event_timestamp: int = Field(ge=0, le=UNIX_SECONDS_MAX)  # unix seconds
    sensor_mac_address: str = Field(min_length=1)
    trap_id: str = Field(min_length=1, alias="trapID")
    trap_start_state: str
    trap_end_state: str
    integration_info: IntegrationInfo | None = None
    facility: str | None = None
    location: str | None = None
    service_tag: str | None = None
    trap_detail_url: str | None = None
    trap_insights_url: str | None = None
