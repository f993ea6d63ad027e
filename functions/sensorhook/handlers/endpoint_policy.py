"""Endpoint policy Lambda: the tasks of the policy state machine.

Input `{"task": "evaluate" | "reenable" | "drain" | "operator", "endpoint": name,
"execution": the execution's name, "action": "enable" | "disable"}`; the answer is what the
machine's Choice states read.
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    import json
    from functools import cache
    from typing import Any

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sensorhook.core.settings import endpoint_policy_settings
    from sensorhook.dal.endpoints_store import Transition
    from sensorhook.dal.events import EventPublisher, OutboundEvent
    from sensorhook.handlers.forwarding_parts import build_forwarding
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.domain_events import ENDPOINT_STATUS_CHANGED
    from sensorhook.logic.policy_steps import PolicySteps
    from sensorhook.observability import logger, metrics


@cache
def steps() -> PolicySteps:
    settings = endpoint_policy_settings()
    publisher = EventPublisher(settings.event_bus_name)

    def publish(change: Transition) -> None:
        publisher.publish(
            [OutboundEvent(ENDPOINT_STATUS_CHANGED, json.dumps(change.as_event_detail()))]
        )

    return PolicySteps(
        build_forwarding(settings, machine=None),
        publish,
        check_seconds=settings.policy_check_seconds,
        drain_batch=settings.policy_drain_batch,
    )


@parts_built_first(steps)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task, endpoint = event["task"], event["endpoint"]
    if task == "evaluate":
        return steps().evaluate(endpoint, event["execution"])
    if task == "reenable":
        return steps().reenable(endpoint)
    if task == "drain":
        return steps().drain(endpoint)
    if task == "operator":
        return steps().operator(endpoint, event["action"])
    raise ValueError(f"unknown task {task!r}")
