"""The demo's periodic provider deliveries pause while a phase drains (local/demo_recovery.py):
a drain beside them must not keep finding new work."""

import threading
import time
from types import SimpleNamespace
from typing import Any

from local.demo_recovery import ProviderDeliveries


class Provider:
    """Counts deliveries; each takes `takes_s`, and says when one is under way."""

    def __init__(self, takes_s: float = 0.0) -> None:
        self.takes_s = takes_s
        self.delivering = threading.Event()
        self.count = 0

    def deliver(self) -> None:
        self.delivering.set()
        time.sleep(self.takes_s)
        self.count += 1
        self.delivering.clear()


def deliveries(provider: Provider) -> ProviderDeliveries:
    box: Any = SimpleNamespace(provider=provider)
    return ProviderDeliveries(box, every_s=0.01)


def test_no_delivery_is_made_while_paused_and_they_resume_after() -> None:
    # Given the provider delivering every 10 ms
    provider = Provider()
    periodic = deliveries(provider)
    with periodic.running():
        time.sleep(0.1)
        assert provider.count > 0
        # When a phase pauses them (as its drain does)
        with periodic.paused():
            paused_at = provider.count
            time.sleep(0.2)
            # Then none is made meanwhile
            assert provider.count == paused_at
        # And they resume after
        time.sleep(0.1)
        assert provider.count > paused_at


def test_a_pause_waits_for_a_delivery_under_way() -> None:
    # Given a delivery under way that takes 200 ms
    provider = Provider(takes_s=0.2)
    periodic = deliveries(provider)
    with periodic.running():
        assert provider.delivering.wait(1)
        # When a phase pauses the deliveries
        with periodic.paused():
            # Then the pause began only once that delivery was made
            assert not provider.delivering.is_set()
            assert provider.count >= 1


def test_two_phases_pausing_at_once_both_keep_it_paused() -> None:
    # Given two phases pausing, the first one ending its pause first
    provider = Provider()
    periodic = deliveries(provider)
    with periodic.running():
        first, second = periodic.paused(), periodic.paused()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        at = provider.count
        time.sleep(0.1)
        # Then no delivery is made until the second ends too
        assert provider.count == at
        second.__exit__(None, None, None)
        time.sleep(0.1)
        assert provider.count > at
