"""Receiver λ: an API Gateway HTTP API (payload v2) request in, logic.receive, the response out.

The HTTP API routes each flavor's POST here and sends everything else through its `$default`
route too, so unknown routes and methods get the receiver's own 404/405.

The event is read as the dict it is, the fields Powertools' APIGatewayProxyEventV2 would give
(path without the stage's prefix, as it strips it): importing that class imports Powertools'
whole data_classes package, some forty event types, ~15 ms of the receiver's cold start
(docs/cost.md, "Cold start"; tests/unit/test_cold_start.py keeps the package out).
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    import base64
    import binascii
    import json
    from dataclasses import dataclass
    from datetime import UTC, datetime
    from functools import cache
    from typing import Any

    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sensorhook.core.receiver_settings import ReceiverSettings, receiver_settings
    from sensorhook.dal.inbox import Inbox
    from sensorhook.dal.queue import IngestQueue
    from sensorhook.dal.webhook_secrets import WebhookSecrets
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.receive import ReceiverResponse, WebhookRequest, receive
    from sensorhook.observability import logger, metrics


@dataclass(frozen=True)
class Receiver:
    """What a warm function keeps between requests: its settings, clients and secret cache."""

    settings: ReceiverSettings
    secrets: WebhookSecrets
    queue: IngestQueue
    inbox: Inbox


@cache
def receiver() -> Receiver:
    settings = receiver_settings()
    return Receiver(
        settings=settings,
        secrets=WebhookSecrets(max_age_seconds=settings.secret_cache_seconds),
        queue=IngestQueue(settings.ingest_queue_url),
        inbox=Inbox(settings.bucket_name),
    )


@parts_built_first(receiver)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parts = receiver()
    try:
        body = _raw_body(event)
    except binascii.Error:
        response = ReceiverResponse(
            status_code=400, body={"message": "body is not valid base64"}, outcome="bad_encoding"
        )
    else:
        response = receive(
            _webhook_request(event, body),
            parts.settings,
            secrets=parts.secrets,
            queue=parts.queue,
            inbox=parts.inbox,
        )
    _count(response)
    return {
        "statusCode": response.status_code,
        "headers": {"content-type": "application/json", **response.headers},
        "body": json.dumps(response.body),
        "isBase64Encoded": False,
    }


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return (
        base64.b64decode(body)
        if event.get("isBase64Encoded")
        else body.encode(errors="surrogatepass")
    )


def _webhook_request(event: dict[str, Any], body: bytes) -> WebhookRequest:
    """The request from an HTTP API payload v2 event (a missing field API Gateway always sends
    raises, as it did through Powertools' data class)."""
    context = event["requestContext"]
    raw_path: str = event["rawPath"]
    stage: str = context["stage"]
    return WebhookRequest(
        method=context["http"]["method"],
        route_key=event.get("routeKey") or "$default",
        path=raw_path if stage == "$default" else raw_path[len(f"/{stage}") :],
        raw_path=raw_path,
        query=event["rawQueryString"] or "",
        headers=event.get("headers") or {},
        body=body,
        source_ip=context["http"]["sourceIp"],
        request_id=context["requestId"],
        received_at=datetime.now(UTC),
    )


def _count(response: ReceiverResponse) -> None:
    """One count per request; dimensions flavor and reason (a handful of values each)."""
    metrics.add_dimension(name="flavor", value=response.flavor or "unknown")
    if response.outcome == "accepted":
        metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_dimension(name="reason", value=response.outcome)
        metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)
