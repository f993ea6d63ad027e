"""What the emulator knows it sent: the measured values behind each body, for end-to-end checks."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Sample:
    """One value one sensor produced at one instant, in the provider's own terms.

    `quantity` is the provider's name for what was measured (Efento `channelType`, or the
    Everactive body field such as `temperatureMeasurements`); `value` is as sent (kelvin for
    Everactive temperatures, the error code for an Efento ERROR, None for MISSING).
    """

    sensor_id: str
    quantity: str
    channel: str
    measured_at: datetime
    value: float | int | None
    status: str = "OK"
    period_s: int | None = None
    text: str | None = None

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        """Two samples with the same key are the same reading, whichever delivery carried them."""
        return (self.sensor_id, self.quantity, self.channel, self.measured_at)
