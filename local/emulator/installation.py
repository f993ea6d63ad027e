"""A simulated customer installation: Evergateways, Eversensors, steam traps and Efento
measurement points, each with a stable identity and its own clock.

Identities derive from (seed, index) only, so the same seed names the same devices whatever
else changes. Every device keeps a virtual clock that advances by its own reporting interval,
so two payloads never claim the same sensor instant. Stale payloads come from a second,
backdated clock (a week before the installation's start, never reaching the day before it), so
they never overlap the fresh ones either.
"""

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local.emulator.efento import ChannelSpec, Measurement, SensorSimulation, build_batch
from local.emulator.everactive import (
    STEAM_TRAP_STATES,
    GatewaySchema,
    SensorFamily,
    SteamTrapInfo,
    gateway_status,
    sensor_reading,
    steam_trap_state_change,
)
from local.emulator.samples import Sample
from sensorhook.core.flavors import Flavor

READING_INTERVAL = timedelta(
    seconds=60
)  # "Sensors are typically set to send a reading once a minute"
GATEWAY_STATUS_INTERVAL = timedelta(minutes=5)  # "approximately every five minutes"
STALE_DEPTH = timedelta(days=7)
STALE_LIMIT = timedelta(days=1)

_FAMILY_ORDER = (
    SensorFamily.STEAM_TRAP,
    SensorFamily.VIBRATION_ELECTRICAL,
    SensorFamily.ENVIRONMENTAL,
)
_EFENTO_CHANNELS: tuple[tuple[ChannelSpec, ...], ...] = (
    (ChannelSpec(1, "TEMPERATURE", 4.0, 0.1, 0.3, 1),),
    (
        ChannelSpec(1, "TEMPERATURE", 21.0, 0.1, 0.3, 1),
        ChannelSpec(2, "HUMIDITY", 45, 1, 0.2, 0),
    ),
    (
        ChannelSpec(1, "TEMPERATURE", 18.5, 0.1, 0.3, 1),
        ChannelSpec(2, "HUMIDITY", 60, 1, 0.2, 0),
        ChannelSpec(3, "ATMOSPHERIC_PRESSURE", 1013.2, 0.1, 0.3, 1),
    ),
)
_EFENTO_PLACES = ("Cold room", "Warehouse", "Boiler house", "Server room", "Office")
_FACILITIES = ("North plant", "South plant")


def seeded_rng(*parts: object) -> random.Random:
    """Reproducible randomness for the simulation (values, not secrets)."""
    return random.Random(":".join(map(str, parts)))  # noqa: S311


def _stable_bytes(seed: int, kind: str, index: int) -> bytes:
    return hashlib.sha256(f"{seed}:{kind}:{index}".encode()).digest()


@dataclass(frozen=True)
class Payload:
    """One body the installation produced, with what it means."""

    flavor: Flavor
    body: dict[str, Any]
    label: str  # e.g. "sensor_reading/environmental", "gateway_status/v1", "state_change"
    samples: tuple[Sample, ...] = ()
    stale: bool = False  # the data is backdated (still authentic)
    efento_point_id: int | None = None


@dataclass
class Evergateway:
    serial: str
    next_status_at: datetime
    stale_status_at: datetime
    packet_counter: int = 0

    def next_packet(self) -> int:
        self.packet_counter = (self.packet_counter + 1) % 65536
        return self.packet_counter


@dataclass
class Eversensor:
    mac: str
    family: SensorFamily
    gateway: Evergateway
    next_at: datetime
    stale_at: datetime
    packet_counter: int = 0

    def next_packet(self) -> int:
        self.packet_counter = (self.packet_counter + 1) % 256
        return self.packet_counter


@dataclass
class SteamTrap:
    info: SteamTrapInfo
    state: str
    next_at: datetime


@dataclass
class MeasurementPoint:
    point_id: int
    name: str
    serial: str
    channels: tuple[ChannelSpec, ...]
    battery_status: str
    simulation: SensorSimulation
    stale_simulation: SensorSimulation


@dataclass(frozen=True)
class EfentoGap:
    """What `Installation.efento_gap` made: the two batches to send, and the exact gaps as
    (first missing instant, last missing instant, periods) per channel of the point."""

    point: MeasurementPoint
    sent: tuple[Payload, Payload]
    lost: tuple[datetime, datetime, int]  # the undelivered batch: between_batches
    missing: tuple[datetime, datetime, int]  # MISSING in the cloud: missing_status
    period_s: int


@dataclass
class Installation:
    """Devices plus the generator state that makes each next payload realistic."""

    seed: int
    start: datetime
    gateways: list[Evergateway]
    eversensors: list[Eversensor]
    steam_traps: list[SteamTrap]
    measurement_points: list[MeasurementPoint]
    rng: random.Random = field(repr=False)
    # the seeds' cadences; a demo that must show a gateway go quiet in seconds shortens them
    reading_interval: timedelta = READING_INTERVAL
    status_interval: timedelta = GATEWAY_STATUS_INTERVAL

    @classmethod
    def create(
        cls,
        *,
        seed: int,
        sensors: int,
        gateways: int,
        start: datetime,
        reading_interval: timedelta = READING_INTERVAL,
        status_interval: timedelta = GATEWAY_STATUS_INTERVAL,
    ) -> "Installation":
        """`sensors` Eversensors (steam trap, vibration-electrical, environmental in turn) and
        as many Efento measurement points; `gateways` Evergateways shared round-robin."""
        if sensors < 1 or gateways < 1:
            raise ValueError("an installation needs at least one sensor and one gateway")
        rng = seeded_rng(seed)
        start = start.replace(microsecond=0)  # providers state whole seconds
        stale_start = start - STALE_DEPTH
        evergateways = [
            Evergateway(
                serial=_stable_bytes(seed, "gateway", i)[:6].hex().upper(),
                next_status_at=start + timedelta(seconds=rng.randint(0, 299)),
                stale_status_at=stale_start + timedelta(seconds=rng.randint(0, 299)),
            )
            for i in range(gateways)
        ]
        eversensors = []
        for i in range(sensors):
            raw = _stable_bytes(seed, "eversensor", i)
            mac = ":".join(f"{b:02x}" for b in (0xBC, 0x5E, 0xA1, 0xFF, 0xFE, *raw[:3]))
            eversensors.append(
                Eversensor(
                    mac=mac,
                    family=_FAMILY_ORDER[i % len(_FAMILY_ORDER)],
                    gateway=evergateways[i % gateways],
                    next_at=start + timedelta(seconds=rng.randint(0, 59)),
                    stale_at=stale_start + timedelta(seconds=rng.randint(0, 59)),
                )
            )
        traps = [
            SteamTrap(
                info=_trap_info(seed, index, sensor.mac),
                state="Good",
                next_at=start + timedelta(seconds=rng.randint(0, 600)),
            )
            for index, sensor in enumerate(
                s for s in eversensors if s.family is SensorFamily.STEAM_TRAP
            )
        ]
        points = [_measurement_point(seed, i, start, rng) for i in range(sensors)]
        return cls(
            seed,
            start,
            evergateways,
            eversensors,
            traps,
            points,
            rng,
            reading_interval=reading_interval,
            status_interval=status_interval,
        )

    def sensor_reading(self, sensor: Eversensor | None = None, *, stale: bool = False) -> Payload:
        sensor = sensor or self.rng.choice(self.eversensors)
        interval = self.reading_interval
        stale = stale and sensor.stale_at + interval < self.start - STALE_LIMIT
        if stale:
            at, sensor.stale_at = sensor.stale_at, sensor.stale_at + interval
        else:
            at, sensor.next_at = sensor.next_at, sensor.next_at + interval
        built = sensor_reading(
            family=sensor.family,
            mac=sensor.mac,
            gateway_serial=sensor.gateway.serial,
            at=at,
            packet_gateway=sensor.gateway.next_packet(),
            packet_sensor=sensor.next_packet(),
            rng=self.rng,
        )
        return Payload(
            Flavor.EVERACTIVE_DS_SENSOR_READING,
            built.body,
            f"sensor_reading/{sensor.family.value}",
            built.samples,
            stale=stale,
        )

    def gateway_status(
        self,
        gateway: Evergateway | None = None,
        schema: GatewaySchema | None = None,
        *,
        stale: bool = False,
    ) -> Payload:
        """Schemas mixed 60 % v3, 35 % v1, 5 % daily unless one is asked for."""
        gateway = gateway or self.rng.choice(self.gateways)
        if schema is None:
            roll = self.rng.random()
            schema = (
                GatewaySchema.V3
                if roll < 0.60
                else GatewaySchema.V1
                if roll < 0.95
                else GatewaySchema.DAILY
            )
        stale = stale and gateway.stale_status_at < self.start - STALE_LIMIT
        if stale:
            at = gateway.stale_status_at
            gateway.stale_status_at += self.status_interval
        else:
            at = gateway.next_status_at
            gateway.next_status_at += self.status_interval
        body = gateway_status(schema=schema, serial=gateway.serial, at=at, rng=self.rng)
        label = f"gateway_status/{schema.name.lower()}"
        return Payload(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, body, label, stale=stale)

    def steam_trap_change(self, trap: SteamTrap | None = None) -> Payload:
        if not self.steam_traps:
            raise ValueError("this installation has no steam-trap sensors")
        trap = trap or self.rng.choice(self.steam_traps)
        end_state = self.rng.choice([s for s in STEAM_TRAP_STATES if s != trap.state])
        built = steam_trap_state_change(
            trap=trap.info,
            event_id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            at=trap.next_at,
            start_state=trap.state,
            end_state=end_state,
        )
        trap.state = end_state
        trap.next_at += timedelta(minutes=self.rng.randint(15, 240))
        return Payload(
            Flavor.EVERACTIVE_V2020_STEAM_TRAP, built.body, "state_change", built.samples
        )

    def efento_batch(
        self, point: MeasurementPoint | None = None, *, stale: bool = False, size: int = 0
    ) -> Payload:
        """One batch of `size` measurements (5-15 when 0). A stale batch is a backfill: old
        measurements the cloud received now (the manual's out-of-range sensor)."""
        point = point or self.rng.choice(self.measurement_points)
        size = size or self.rng.randint(5, 15)
        stale = stale and point.stale_simulation.next_at < self.start - STALE_LIMIT
        simulation = point.stale_simulation if stale else point.simulation
        measurements: list[Measurement] = simulation.run(size)
        received_at = (
            point.simulation.next_at
            if stale
            else measurements[-1].at + timedelta(seconds=self.rng.randint(1, 30))
        )
        batch = build_batch(
            point_id=point.point_id,
            point_name=point.name,
            serial_number=point.serial,
            channels=point.channels,
            measurements=measurements,
            received_at=received_at,
            signal_strength=self.rng.randint(-105, -55),
            battery_status=point.battery_status,
        )
        return Payload(
            Flavor.EFENTO_MEASUREMENTS,
            batch.body,
            "measurements",
            batch.samples,
            stale=stale,
            efento_point_id=point.point_id,
        )

    def efento_gap(
        self,
        point: MeasurementPoint | None = None,
        *,
        before: int = 4,
        lost: int = 3,
        missing: int = 2,
        after: int = 4,
    ) -> "EfentoGap":
        """Three batches of one measurement point, the middle one never delivered, and the
        first `missing` periods of the last one MISSING in the cloud: the gaps sensorhook must
        record exactly. Random MISSING runs and period changes are held off meanwhile, so the
        expected gaps are exact."""
        point = point or self.measurement_points[0]
        simulation = point.simulation
        saved = (simulation.missing_probability, simulation.period_change_probability)
        simulation.missing_probability = simulation.period_change_probability = 0.0
        try:
            sent_before = self.efento_batch(point, size=before)
            lost_first, period_s = simulation.next_at, simulation.period_s
            self.efento_batch(point, size=lost)  # measured, never delivered
            missing_first = simulation.next_at
            simulation.miss_next(missing)
            sent_after = self.efento_batch(point, size=missing + after)
        finally:
            simulation.missing_probability, simulation.period_change_probability = saved
        period = timedelta(seconds=period_s)
        return EfentoGap(
            point=point,
            sent=(sent_before, sent_after),
            lost=(lost_first, lost_first + period * (lost - 1), lost),
            missing=(missing_first, missing_first + period * (missing - 1), missing),
            period_s=period_s,
        )

    def payload(self, flavor: Flavor, *, stale: bool = False) -> Payload:
        if flavor is Flavor.EVERACTIVE_DS_SENSOR_READING:
            return self.sensor_reading(stale=stale)
        if flavor is Flavor.EVERACTIVE_DS_GATEWAY_STATUS:
            return self.gateway_status(stale=stale)
        if flavor is Flavor.EFENTO_MEASUREMENTS:
            return self.efento_batch(stale=stale)
        return self.steam_trap_change()


def _trap_info(seed: int, index: int, mac: str) -> SteamTrapInfo:
    raw = _stable_bytes(seed, "steamtrap", index)
    has_integration = index % 3 != 2  # integrationInfo is omitted for every third trap
    return SteamTrapInfo(
        trap_id=str(uuid.UUID(bytes=raw[:16], version=4)),
        sensor_mac=mac,
        facility=_FACILITIES[index % len(_FACILITIES)],
        location=f"Steam line {index + 1}",
        service_tag=f"ST-{raw[16:18].hex().upper()}",
        asset_id=f"asset-{raw[18:21].hex()}" if has_integration else None,
        asset_name=f"Trap {index + 1}" if has_integration else None,
    )


def _measurement_point(
    seed: int, index: int, start: datetime, rng: random.Random
) -> MeasurementPoint:
    raw = _stable_bytes(seed, "efento", index)
    channels = _EFENTO_CHANNELS[index % len(_EFENTO_CHANNELS)]
    offset = timedelta(seconds=rng.randint(0, 59))
    return MeasurementPoint(
        point_id=10_000 + index * 100 + raw[0] % 100,  # unique per index, stable per seed
        name=f"{_EFENTO_PLACES[index % len(_EFENTO_PLACES)]} {index + 1}",
        serial="282C02" + raw[3:6].hex().upper(),
        channels=channels,
        battery_status="LOW" if index % 7 == 6 else "OK",
        simulation=SensorSimulation(channels, start + offset, seeded_rng(seed, "fresh", index)),
        stale_simulation=SensorSimulation(
            channels, start - STALE_DEPTH + offset, seeded_rng(seed, "stale", index)
        ),
    )
