"""Which provider adapter handles which flavor: the processor's single entry to providers."""

from datetime import datetime

from sensorhook.core.flavors import Flavor
from sensorhook.core.normalized import NormalizedDelivery


class InvalidPayload(ValueError):
    """An authentic body that does not match its provider's documented shape.

    The message is safe to store beside the payload in quarantine (no secrets, no body echo).
    """


def normalize(
    flavor: Flavor, body: str, *, event_id: str, received_at: datetime
) -> NormalizedDelivery:
    """Validate `body` against the flavor's models and turn it into canonical records.

    Raises InvalidPayload when the body is not JSON or does not validate.
    """
    raise NotImplementedError  # filled in by the providers work (see docs/architecture.md)
