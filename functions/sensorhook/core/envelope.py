"""What the receiver puts on the ingest queue, and the processor takes off it."""

from pydantic import BaseModel, ConfigDict

from sensorhook.core.flavors import Flavor
from sensorhook.core.timestamps import UtcDatetime


class IngestEnvelope(BaseModel):
    """An authenticated delivery, exactly as received, plus what the receiver learned of it.

    The body travels inline when it fits in an SQS message; larger bodies are written to the
    bucket first and `body_s3_key` points at them (claim check), so nothing authentic is refused
    for size below the configured request limit.
    """

    model_config = ConfigDict(extra="forbid")

    flavor: Flavor
    event_id: str  # the dedupe key: provider event id, else sha256 of the canonical JSON body
    received_at: UtcDatetime
    request_id: str  # API Gateway request id, for correlating logs
    body: str | None = None
    body_s3_key: str | None = None
    auth_key_id: str | None = None  # v2020-07 subscription id (keyId) that signed the request
