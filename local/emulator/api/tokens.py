"""OAuth2 client_credentials tokens: opaque random strings with an expiry on the emulator's
clock, so a test can let them lapse without waiting."""

import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

Clock = Callable[[], datetime]


class TokenIssuer:
    def __init__(self, *, ttl_s: int, clock: Clock) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self.clock = clock
        self._expires_at: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._expires_at[token] = self.clock() + self.ttl
        return token

    def is_valid(self, token: str) -> bool:
        with self._lock:
            expires_at = self._expires_at.get(token)
        return expires_at is not None and self.clock() < expires_at

    def revoke_all(self) -> None:
        with self._lock:
            self._expires_at.clear()
