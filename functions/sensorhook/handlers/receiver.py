"""Receiver λ: an API Gateway HTTP API (payload v2) request in, logic.receive, the response out.

The HTTP API routes each flavor's POST here and sends everything else through its `$default`
route too, so unknown routes and methods get the receiver's own 404/405.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from sensorhook.core.settings import ReceiverSettings, receiver_settings
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
    http_event = APIGatewayProxyEventV2(event)
    parts = receiver()
    try:
        body = _raw_body(http_event)
    except binascii.Error:
        response = ReceiverResponse(
            status_code=400, body={"message": "body is not valid base64"}, outcome="bad_encoding"
        )
    else:
        request = WebhookRequest(
            method=http_event.http_method,
            route_key=http_event.get("routeKey") or "$default",
            path=http_event.path,
            raw_path=http_event.raw_path,
            query=http_event.raw_query_string or "",
            headers=http_event.headers,
            body=body,
            source_ip=http_event.request_context.http.source_ip,
            request_id=http_event.request_context.request_id,
            received_at=datetime.now(UTC),
        )
        response = receive(
            request,
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


def _raw_body(http_event: APIGatewayProxyEventV2) -> bytes:
    body = http_event.body or ""
    return (
        base64.b64decode(body)
        if http_event.is_base64_encoded
        else body.encode(errors="surrogatepass")
    )


def _count(response: ReceiverResponse) -> None:
    """One count per request; dimensions flavor and reason (a handful of values each)."""
    metrics.add_dimension(name="flavor", value=response.flavor or "unknown")
    if response.outcome == "accepted":
        metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_dimension(name="reason", value=response.outcome)
        metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)
