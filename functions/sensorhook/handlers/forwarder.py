"""Forwarder Lambda: one endpoint's queue batch -> deliveries, retries, or the backlog.

Each endpoint has its own queue and event source mapping, so a batch belongs to one endpoint
(named by its queue). Messages to retry are handed back with their delay as the visibility
timeout and reported as batch item failures; all others are done (delivered or kept in S3).
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    from functools import cache
    from typing import Any

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sensorhook.core.settings import forwarder_settings
    from sensorhook.dal.forwarding_queue import ForwardingQueues
    from sensorhook.dal.policy_machine import PolicyMachine
    from sensorhook.handlers.forwarding_parts import build_forwarding
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.forwarding import Forwarding, QueuedEvent
    from sensorhook.observability import logger, metrics


@cache
def parts() -> tuple[Forwarding, ForwardingQueues]:
    settings = forwarder_settings()
    forwarding = build_forwarding(settings, PolicyMachine(settings.state_machine_arn))
    return forwarding, ForwardingQueues()


def _queued(record: dict[str, Any]) -> QueuedEvent:
    attributes = record.get("attributes", {})
    return QueuedEvent(
        message_id=record["messageId"],
        receipt_handle=record["receiptHandle"],
        body=record["body"],
        arrived_at_ms=int(attributes.get("SentTimestamp", 0)),
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
    )


@parts_built_first(parts)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    forwarding, queues = parts()
    prefix = forwarder_settings().queue_name_prefix
    failures: list[dict[str, str]] = []
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for record in event.get("Records", []):
        by_queue.setdefault(record["eventSourceARN"], []).append(record)
    for queue_arn, records in by_queue.items():
        endpoint = queue_arn.rsplit(":", 1)[1].removeprefix(prefix)
        outcome = forwarding.forward_batch(endpoint, [_queued(record) for record in records])
        receipts = {record["messageId"]: record["receiptHandle"] for record in records}
        for message_id, delay in outcome.retry_after_s.items():
            queues.retry_later(queue_arn, receipts[message_id], delay)
            failures.append({"itemIdentifier": message_id})
        logger.info(
            "forwarded batch",
            extra={
                "endpoint": endpoint,
                "delivered": outcome.delivered,
                "kept": outcome.kept,
                "retrying": len(outcome.retry_after_s),
            },
        )
    return {"batchItemFailures": failures}
