"""The webhook status Efento Cloud shows per measurement point, and when it stops sending.

From the Efento manual: New, OK (2xx), No response (timeout), Error (any other code);
Temporarily disabled for six hours after five no-responses in a row; Disabled, until a user
re-enables it, after 30 hours without a response. Efento never resends a batch, so a batch due
while the webhook is (temporarily) disabled is lost.

Two readings the manual leaves open, chosen here (docs/emulator.md): an Error response is a
response, so it breaks a no-response streak and the 30-hour silence; the silence is counted from
the first unanswered attempt after the last response, and the streak restarts when a temporary
disable ends.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

Clock = Callable[[], datetime]


class WebhookStatus(StrEnum):
    NEW = "New"
    OK = "OK"
    NO_RESPONSE = "No response"
    ERROR = "Error"
    TEMPORARILY_DISABLED = "Temporarily disabled"
    DISABLED = "Disabled"


@dataclass(frozen=True)
class WebhookPolicy:
    response_timeout_s: float = 10.0
    no_response_limit: int = 5
    temporary_disable: timedelta = timedelta(hours=6)
    disable_after_silence: timedelta = timedelta(hours=30)


@dataclass
class PointWebhook:
    """One measurement point's webhook, as Efento Cloud tracks it."""

    policy: WebhookPolicy
    clock: Clock
    _last: WebhookStatus = WebhookStatus.NEW
    _streak: int = 0
    _silent_since: datetime | None = None
    _paused_until: datetime | None = None
    _disabled: bool = False

    @property
    def status(self) -> WebhookStatus:
        if self._disabled:
            return WebhookStatus.DISABLED
        if self._paused_until is not None and self.clock() < self._paused_until:
            return WebhookStatus.TEMPORARILY_DISABLED
        return self._last

    def can_send(self) -> bool:
        return self.status not in (WebhookStatus.DISABLED, WebhookStatus.TEMPORARILY_DISABLED)

    def record(self, status_code: int | None) -> WebhookStatus:
        """The outcome of one attempt: an HTTP status, or None when nothing came back in time."""
        now = self.clock()
        if status_code is not None:
            self._last = WebhookStatus.OK if 200 <= status_code < 300 else WebhookStatus.ERROR
            self._streak, self._silent_since = 0, None
            return self.status
        self._last = WebhookStatus.NO_RESPONSE
        self._streak += 1
        self._silent_since = self._silent_since or now
        if now - self._silent_since >= self.policy.disable_after_silence:
            self._disabled = True
        elif self._streak >= self.policy.no_response_limit:
            self._paused_until = now + self.policy.temporary_disable
            self._streak = 0
        return self.status

    def enable(self) -> None:
        """What the user does in Efento Cloud after a permanent disable."""
        self._disabled, self._paused_until = False, None
        self._streak, self._silent_since = 0, None


@dataclass
class EfentoWebhooks:
    """All points' webhooks; safe to use from the sender's worker threads."""

    clock: Clock
    policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    _points: dict[int, PointWebhook] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def point(self, point_id: int) -> PointWebhook:
        with self._lock:
            return self._point(point_id)

    def can_send(self, point_id: int) -> bool:
        with self._lock:
            return self._point(point_id).can_send()

    def record(self, point_id: int, status_code: int | None) -> WebhookStatus:
        with self._lock:
            return self._point(point_id).record(status_code)

    def statuses(self) -> dict[int, WebhookStatus]:
        with self._lock:
            return {point_id: hook.status for point_id, hook in sorted(self._points.items())}

    def _point(self, point_id: int) -> PointWebhook:
        if point_id not in self._points:
            self._points[point_id] = PointWebhook(self.policy, self.clock)
        return self._points[point_id]
