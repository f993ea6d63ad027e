"""Small corrections to moto 5.2.5 models that CDK templates trip over.

Each returns its undo, so the runtime leaves moto as it found it.
"""

from collections.abc import Callable

from moto.events.models import EventBus


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
