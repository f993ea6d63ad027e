"""Instants as sensorhook keeps them: timezone-aware, in UTC.

Its own module, apart from core/reading.py, so the receiver (envelope, signatures, headers)
does not build the canonical reading models it never uses (docs/cost.md, "Cold start").
"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
