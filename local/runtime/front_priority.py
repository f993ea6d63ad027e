"""The HTTP front answers first: event source pollers hold their next batch while it is busy.

In AWS the receiver and the functions behind its queue run on machines of their own: a
processor working through a backlog does not slow the receiver's answers. Here every function
shares one process and one GIL, and a processor batch (tens of AWS calls a delivery) takes the
interpreter for hundreds of milliseconds at a time; under a burst the front answered at the
rate the pollers left it (docs/local-mode.md, "Throughput"). So a poller starts its next batch
only once the front has been quiet (nothing in flight) for `quiet_s`, or once it has held that
batch for `longest_hold_s`. Nothing is skipped or lost: the records wait in their queue or
stream, as they would in AWS for a consumer slower than its producer, and are processed when
the burst ends (or, under a stream the process cannot keep up with, a batch per poller per
`longest_hold_s` until it does). A poller that is flushing (`drain`) does not hold: whoever
drains wants the results now.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Between two requests of a client sending as fast as it is answered there is no such gap;
# between those of the emulator's default 50 requests/s stream there is, about every request.
QUIET_S = 0.02
# A stream beyond what the process can answer and process at once still moves its queues on.
LONGEST_HOLD_S = 5.0


class FrontPriority:
    """Counts the requests the fronts are answering; pollers wait their turn here."""

    def __init__(self, *, quiet_s: float = QUIET_S, longest_hold_s: float = LONGEST_HOLD_S) -> None:
        if quiet_s < 0 or longest_hold_s < 0:
            raise ValueError("quiet_s and longest_hold_s must not be negative")
        self.quiet_s = quiet_s
        self.longest_hold_s = longest_hold_s
        self._changed = threading.Condition()
        self._answering = 0
        self._last_answered = 0.0  # monotonic time the last request was answered
        self.held_s = 0.0  # how long pollers held batches for the front, summed

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Wrap the answer to one request."""
        with self._changed:
            self._answering += 1
        try:
            yield
        finally:
            with self._changed:
                self._answering -= 1
                self._last_answered = time.monotonic()
                self._changed.notify_all()

    def wait_turn(self, stopping: threading.Event) -> float:
        """Block until the front has been quiet for `quiet_s`, `longest_hold_s` has passed, or
        `stopping` is set; returns the seconds held."""
        began = time.monotonic()
        deadline = began + self.longest_hold_s
        with self._changed:
            while not stopping.is_set():
                now = time.monotonic()
                quiet_at = self._last_answered + self.quiet_s
                if now >= deadline or (self._answering == 0 and now >= quiet_at):
                    break
                # woken when a request ends; `stopping` is looked at least every quiet_s
                self._changed.wait(
                    max(0.001, min(deadline, max(quiet_at, now + self.quiet_s)) - now)
                )
            held = time.monotonic() - began
            self.held_s += held
        return held
