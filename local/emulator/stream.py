"""A realistic, reproducible mix of deliveries: flavors in turn at random, faults by share."""

import math
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from local.emulator.deliveries import Delivery, DeliveryFactory, Fault, Intent
from local.emulator.installation import Installation
from sensorhook.core.flavors import Flavor

# Typical seconds between two payloads of one device, used to backdate a stream's start so
# that most of its data lies in the past rather than the future.
_TYPICAL_INTERVAL_S: dict[Flavor, int] = {
    Flavor.EVERACTIVE_DS_SENSOR_READING: 60,
    Flavor.EVERACTIVE_DS_GATEWAY_STATUS: 300,
    Flavor.EFENTO_MEASUREMENTS: 600,
    Flavor.EVERACTIVE_V2020_STEAM_TRAP: 7_650,
}
_MAX_BACKDATE = timedelta(days=6)  # stays clear of the stale window (a week back, up to a day)
DUPLICATE_POOL_SIZE = 200


@dataclass(frozen=True)
class FaultShares:
    """Share of requests (0-1) that carry each fault; the rest are authentic and fresh."""

    duplicate: float = 0.0
    stale_date: float = 0.0
    bad_signature: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        shares = (self.duplicate, self.stale_date, self.bad_signature, self.malformed)
        if any(not 0.0 <= share <= 1.0 for share in shares) or sum(shares) > 1.0:
            raise ValueError("fault shares must each be within 0-1 and add up to at most 1")

    def pick(self, roll: float) -> Fault:
        for fault, share in (
            (Fault.DUPLICATE, self.duplicate),
            (Fault.STALE_DATE, self.stale_date),
            (Fault.BAD_SIGNATURE, self.bad_signature),
            (Fault.MALFORMED, self.malformed),
        ):
            if roll < share:
                return fault
            roll -= share
        return Fault.NONE


def backdated_start(
    now: datetime, *, count: int, sensors: int, flavors: Sequence[Flavor]
) -> datetime:
    """Where device clocks start so that `count` requests end near `now`."""
    per_device = math.ceil(count / (max(1, len(flavors)) * sensors))
    interval = max(_TYPICAL_INTERVAL_S[flavor] for flavor in flavors)
    return now - min(timedelta(seconds=per_device * interval), _MAX_BACKDATE)


@dataclass
class Stream:
    """Endless deliveries; the caller bounds it (the Sender stops at a count or a duration)."""

    installation: Installation
    factory: DeliveryFactory
    flavors: Sequence[Flavor]
    shares: FaultShares = field(default_factory=FaultShares)
    rng: random.Random = field(default_factory=random.Random)
    _sent: dict[Flavor, deque[Delivery]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.flavors:
            raise ValueError("a stream needs at least one flavor")
        if Flavor.EVERACTIVE_V2020_STEAM_TRAP in self.flavors and not self.installation.steam_traps:
            raise ValueError("v2020-07 state changes need a steam-trap sensor (sensors >= 1)")
        self._sent = {flavor: deque(maxlen=DUPLICATE_POOL_SIZE) for flavor in self.flavors}

    def __iter__(self) -> Iterator[Delivery]:
        return self

    def __next__(self) -> Delivery:
        flavor = self.rng.choice(self.flavors)
        fault = self.shares.pick(self.rng.random())
        pool = self._sent[flavor]
        if fault is Fault.DUPLICATE and pool:
            return self.factory.duplicate(self.rng.choice(pool))
        signed = flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP
        if fault is Fault.STALE_DATE and not signed:
            delivery = self.factory.authentic(self.installation.payload(flavor, stale=True))
        elif fault in (Fault.STALE_DATE, Fault.BAD_SIGNATURE, Fault.MALFORMED):
            delivery = self.factory.with_fault(self.installation.payload(flavor), fault)
        else:
            delivery = self.factory.authentic(self.installation.payload(flavor))
        if delivery.intent is Intent.ACCEPTED:
            pool.append(delivery)
        return delivery
