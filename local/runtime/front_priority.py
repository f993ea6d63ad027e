"""The HTTP front answers first: event source pollers hold their next batch while it is busy.

In AWS the receiver and the functions behind its queue run on machines of their own: a
processor working through a backlog does not slow the receiver's answers. Here every function
shares one process and one GIL, and a processor batch (tens of AWS calls a delivery) takes the
interpreter for hundreds of milliseconds at a time; under a burst the front answered at the
rate the pollers left it (docs/local-mode.md, "Throughput").

So a poller starts its next batch (and the scheduler fires a due rule) only while the front
has been answering (any request in flight) for at most `busy_share` of the last `window_s`, or
once it has held that batch for `longest_hold_s`. A front answering the emulator's default 50
requests/s, at the 4-5 ms a request took in the throughput runs, is busy about a quarter of
the time and holds nothing; one answering as fast as it
can holds every batch.
Nothing is skipped or lost: the records wait in their queue or stream, as they would in AWS for
a consumer slower than its producer, and are processed when the burst ends (or, under a stream
the process cannot keep up with, a batch per poller per `longest_hold_s` until it does). A
poller that is flushing (`drain`) does not hold: whoever drains wants the results now.
"""

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

BUSY_SHARE = 0.5
WINDOW_S = 1.0
# A stream beyond what the process can answer and process at once still moves its queues on.
LONGEST_HOLD_S = 30.0
# How often a holding poller looks again at a front whose share of busy time falls as it idles.
_LOOK_EVERY_S = 0.01


class FrontPriority:
    """Knows how busy the fronts have been lately; pollers wait their turn here."""

    def __init__(
        self,
        *,
        busy_share: float = BUSY_SHARE,
        window_s: float = WINDOW_S,
        longest_hold_s: float = LONGEST_HOLD_S,
    ) -> None:
        if not 0 <= busy_share <= 1 or window_s <= 0 or longest_hold_s < 0:
            raise ValueError("busy_share in [0, 1], window_s > 0 and longest_hold_s >= 0")
        self.busy_share = busy_share
        self.window_s = window_s
        self.longest_hold_s = longest_hold_s
        self._lock = threading.Lock()
        self._answering = 0
        self._busy_since: float | None = None  # while any request is in flight
        self._busy: deque[tuple[float, float]] = deque()  # past (start, end) busy periods
        self.held_s = 0.0  # how long pollers held batches for the front, summed

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Wrap the answer to one request."""
        with self._lock:
            self._answering += 1
            if self._busy_since is None:
                self._busy_since = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._answering -= 1
                if self._answering == 0 and self._busy_since is not None:
                    self._busy.append((self._busy_since, time.monotonic()))
                    self._busy_since = None

    def busy(self, now: float | None = None) -> float:
        """The share of the last `window_s` the front spent answering."""
        now = time.monotonic() if now is None else now
        since = now - self.window_s
        with self._lock:
            while self._busy and self._busy[0][1] <= since:
                self._busy.popleft()
            spent = sum(end - max(start, since) for start, end in self._busy)
            if self._busy_since is not None:
                spent += now - max(self._busy_since, since)
        return spent / self.window_s

    def wait_turn(
        self, stopping: threading.Event, released: threading.Event | None = None
    ) -> float:
        """Block while the front has been busy over `busy_share` of the window, at most
        `longest_hold_s`, or until `stopping` (or `released`: a poller asked to flush) is set;
        returns the seconds held."""
        began = time.monotonic()
        deadline = began + self.longest_hold_s
        while not stopping.is_set() and not (released is not None and released.is_set()):
            now = time.monotonic()
            if now >= deadline or self.busy(now) <= self.busy_share:
                break
            stopping.wait(min(_LOOK_EVERY_S, deadline - now))
        held = time.monotonic() - began
        with self._lock:
            self.held_s += held
        return held
