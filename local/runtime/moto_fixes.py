"""Small corrections to moto 5.2.5: models that CDK templates trip over, and its server's costs.

Each returns its undo, so the runtime leaves moto as it found it.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from moto.events.models import EventBus
from moto.moto_server.werkzeug_app import DomainDispatcherApplication


def event_bus_ref_is_its_name() -> Callable[[], None]:
    """``Ref`` of an ``AWS::Events::EventBus`` is its name in CloudFormation.

    moto's ``EventBus`` has no ``physical_resource_id``, so its ``Ref`` resolves to the model
    object itself, and a rule on that bus fails with ``'EventBus' object has no attribute
    'split'``.
    """

    def physical_resource_id(self: EventBus) -> str:
        return str(self.name)

    EventBus.physical_resource_id = property(physical_resource_id)  # type: ignore[attr-defined]

    def undo() -> None:
        del EventBus.physical_resource_id  # type: ignore[attr-defined]

    return undo


def backend_lookup_is_cached() -> Callable[[], None]:
    """Resolve each request's host to its moto backend once, not on every request.

    moto's server looks the backend up per request under one process-wide lock: it lists
    moto's package directory (``os.listdir`` plus an ``isdir`` per entry, about 200) and then
    tries every service's URL patterns. That is deterministic for a host, and it made every
    call of every function and poller queue behind the lock: the largest single cost of the
    local stack's CPU. The answer for a host never changes, so it is kept.
    """
    original = DomainDispatcherApplication.get_backend_for_host
    resolved: dict[str | None, Any] = {}

    @wraps(original)
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        if host not in resolved:
            resolved[host] = original(self, host)
        return resolved[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]

    def undo() -> None:
        DomainDispatcherApplication.get_backend_for_host = original  # type: ignore[method-assign]

    return undo
