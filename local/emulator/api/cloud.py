"""What the provider's cloud has heard from the simulated installation, up to "now".

Every device keeps the clock the `Installation` gave it. On each request (and each delivery
round) the cloud catches every device up to the emulator's clock, asking the installation for
exactly the payloads that fell due: the readings the API serves and the webhooks it sends are
the same bodies. A gateway taken offline (and the sensors and traps behind it) produces
nothing while offline: its schedule slots pass empty, so its last contact stops advancing.
"""

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from local.emulator.installation import (
    Evergateway,
    Eversensor,
    Installation,
    Payload,
)
from sensorhook.core.flavors import Flavor

Clock = Callable[[], datetime]

DEFAULT_HISTORY = timedelta(hours=26)  # a full 24-hour window, with room either side
OUTBOX_LIMIT = 10_000  # undelivered webhook payloads kept at most (oldest dropped)
TRAP_RETRY = timedelta(minutes=15)  # a silent trap's change is postponed by this much


@dataclass
class GatewayState:
    last_contact: datetime | None = None
    offline_since: datetime | None = None

    @property
    def online(self) -> bool:
        return self.offline_since is None


class Evercloud:
    """Thread-safe: the HTTP server's threads and a delivery loop share one instance."""

    def __init__(
        self,
        installation: Installation,
        *,
        clock: Clock,
        history: timedelta = DEFAULT_HISTORY,
        wants: Callable[[Flavor], bool] = lambda _flavor: False,
    ) -> None:
        self.installation = installation
        self.clock = clock
        self.history = history
        self.wants = wants  # whether a webhook would carry a payload of this flavor now
        self.lock = threading.RLock()
        self.gateway_states = {g.serial: GatewayState() for g in installation.gateways}
        self._readings: dict[str, deque[dict[str, Any]]] = {
            s.mac: deque() for s in installation.eversensors
        }
        self._silenced: set[str] = set()
        self._outbox: deque[Payload] = deque(maxlen=OUTBOX_LIMIT)

    # -- catching up -----------------------------------------------------------------------

    def advance(self) -> datetime:
        """Produce every payload due by now; returns that now."""
        with self.lock:
            now = self.clock()
            horizon = now - self.history
            for gateway in self.installation.gateways:
                self._advance_gateway(gateway, now, horizon)
            for sensor in self.installation.eversensors:
                self._advance_sensor(sensor, now, horizon)
            self._advance_traps(now, horizon)
            for readings in self._readings.values():
                while readings and readings[0]["timestamp"] < horizon.timestamp():
                    readings.popleft()
            return now

    def _advance_gateway(self, gateway: Evergateway, now: datetime, horizon: datetime) -> None:
        state = self.gateway_states[gateway.serial]
        interval = self.installation.status_interval
        gateway.next_status_at = _skip_before(gateway.next_status_at, horizon, interval)
        while gateway.next_status_at <= now:
            if not state.online:
                gateway.next_status_at += interval
                continue
            at = gateway.next_status_at
            self._emit(self.installation.gateway_status(gateway))
            state.last_contact = _later(state.last_contact, at)

    def _advance_sensor(self, sensor: Eversensor, now: datetime, horizon: datetime) -> None:
        state = self.gateway_states[sensor.gateway.serial]
        interval = self.installation.reading_interval
        sensor.next_at = _skip_before(sensor.next_at, horizon, interval)
        while sensor.next_at <= now:
            if not state.online or sensor.mac in self._silenced:
                sensor.next_at += interval
                continue
            at = sensor.next_at
            payload = self.installation.sensor_reading(sensor)
            self._readings[sensor.mac].append(payload.body)
            self._emit(payload)
            state.last_contact = _later(state.last_contact, at)

    def _advance_traps(self, now: datetime, horizon: datetime) -> None:
        sensors = {s.mac: s for s in self.installation.eversensors}
        for trap in self.installation.steam_traps:
            sensor = sensors[trap.info.sensor_mac]
            trap.next_at = max(trap.next_at, horizon)
            while trap.next_at <= now:
                if self._quiet(sensor):
                    trap.next_at += TRAP_RETRY
                else:
                    self._emit(self.installation.steam_trap_change(trap))

    def _quiet(self, sensor: Eversensor) -> bool:
        return not self.gateway_states[sensor.gateway.serial].online or sensor.mac in self._silenced

    def _emit(self, payload: Payload) -> None:
        if self.wants(payload.flavor):
            self._outbox.append(payload)

    # -- faults ----------------------------------------------------------------------------

    def take_gateway_offline(self, serial: str) -> None:
        with self.lock:
            now = self.advance()
            state = self._gateway_state(serial)
            if state.online:
                state.offline_since = now

    def bring_gateway_online(self, serial: str) -> None:
        with self.lock:
            self.advance()
            self._gateway_state(serial).offline_since = None

    def silence_sensor(self, mac: str) -> None:
        with self.lock:
            self.advance()
            self._sensor(mac)
            self._silenced.add(mac)

    def resume_sensor(self, mac: str) -> None:
        with self.lock:
            self.advance()
            self._silenced.discard(mac)

    # -- what the API serves ---------------------------------------------------------------

    def readings(self, mac: str) -> list[dict[str, Any]]:
        """The sensor's readings within the history, oldest first."""
        with self.lock:
            return list(self._readings[self._sensor(mac).mac])

    def drain(self) -> list[Payload]:
        """The payloads produced since the last drain that a webhook wanted."""
        with self.lock:
            payloads = list(self._outbox)
            self._outbox.clear()
            return payloads

    def _gateway_state(self, serial: str) -> GatewayState:
        try:
            return self.gateway_states[serial]
        except KeyError:
            raise KeyError(f"no gateway {serial} in this installation") from None

    def _sensor(self, mac: str) -> Eversensor:
        for sensor in self.installation.eversensors:
            if sensor.mac == mac:
                return sensor
        raise KeyError(f"no sensor {mac} in this installation")


def _skip_before(next_at: datetime, horizon: datetime, interval: timedelta) -> datetime:
    """Jump a device clock that lags beyond the history forward on its own cadence, so a
    long-past installation start costs nothing."""
    if next_at >= horizon:
        return next_at
    return next_at + interval * math.ceil((horizon - next_at) / interval)


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current
