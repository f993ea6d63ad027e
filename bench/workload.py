"""The bench's workload: one real body per flavor, requests and SQS batches shaped as AWS
delivers them, and the environment the handlers read. Shared by the CPU figures and the cost
model, so both measure the same deliveries."""

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("SENSORHOOK_SAMPLES_DIR", ROOT.parent / "shared" / "samples"))
FIXTURES = ROOT / "tests" / "fixtures"

BENCH_ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "sensorhook-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "sensorhook",
    "INGEST_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/ingest",
    "BUCKET_NAME": "bench-bucket",
    "V2020_SIGNING_SECRET_ARN": "v2020-signing",
    "DS_HEADER_SECRET_ARN": "ds-headers",
    "EFENTO_HEADER_SECRET_ARN": "efento-headers",
    "READINGS_TABLE": "readings",
    "SENSOR_STATE_TABLE": "sensor-state",
    "GATEWAYS_TABLE": "gateways",
    "IDEMPOTENCY_TABLE": "idempotency",
    "EVENT_BUS_NAME": "bus",
}
SUBSCRIPTION_ID, SIGNING_KEY = "subscription-bench", "bench-signing-secret-0123456789"
HEADER_NAME, HEADER_VALUE = "X-Sensorhook-Key", "bench-header-value-0123456789abcdef"
SECRETS = {
    "v2020-signing": json.dumps({"keys": {SUBSCRIPTION_ID: SIGNING_KEY}}),
    "ds-headers": json.dumps({"headers": {HEADER_NAME: HEADER_VALUE}}),
    "efento-headers": json.dumps({"headers": {HEADER_NAME: HEADER_VALUE}}),
}


def bodies() -> dict[Any, bytes]:
    from sensorhook.core.flavors import Flavor

    return {
        Flavor.EVERACTIVE_V2020_STEAM_TRAP: (
            FIXTURES / "everactive-v2020/steam-trap-state-change.json"
        ).read_bytes(),
        Flavor.EVERACTIVE_DS_SENSOR_READING: (
            SAMPLES / "everactive-ds/sensor-reading-mhm.json"
        ).read_bytes(),
        Flavor.EVERACTIVE_DS_GATEWAY_STATUS: (
            SAMPLES / "everactive-ds/gateway-status-v3.json"
        ).read_bytes(),
        Flavor.EFENTO_MEASUREMENTS: (FIXTURES / "efento/multi-channel-batch.json").read_bytes(),
    }


def signed_headers(path: str, body: bytes) -> dict[str, str]:
    """Sign like Everactive, with the independent `httpsig` implementation."""
    import base64
    from email.utils import formatdate

    import httpsig

    headers = {
        "host": "bench.execute-api.eu-west-1.amazonaws.com",
        "date": formatdate(usegmt=True),
        "digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "content-length": str(len(body)),
        "content-type": "application/json",
    }
    signer = httpsig.HeaderSigner(
        SUBSCRIPTION_ID,
        SIGNING_KEY,
        algorithm="hmac-sha256",
        headers=["(request-target)", "date", "digest", "host", "content-length"],
    )
    signed = signer.sign(dict(headers), method="POST", path=path)
    headers["signature"] = signed["authorization"].removeprefix("Signature ")
    return headers


def http_api_event(path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": headers.get("host", "bench"),
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "bench",
            },
            "requestId": "bench-request",
            "routeKey": f"POST {path}",
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


class Context:
    function_name = "bench"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    aws_request_id = "bench-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


CONTEXT: Any = Context()


def receiver_request(flavor: Any, body: bytes) -> dict[str, Any]:
    """The HTTP API event of one authentic delivery of `flavor`."""
    from sensorhook.core.flavors import ROUTES, Flavor

    path = ROUTES[flavor]
    if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP:
        headers = signed_headers(path, body)
    else:
        headers = {
            "content-type": "application/json",
            HEADER_NAME.lower(): HEADER_VALUE,
            "content-length": str(len(body)),
        }
    return http_api_event(path, headers, body)


def processor_batch(flavor: Any, body: bytes, size: int) -> dict[str, Any]:
    """An SQS event of `size` distinct deliveries of the same body (distinct dedupe keys, so
    every one is processed, none skipped as a duplicate)."""
    from sensorhook.core.dedupe import event_id_for
    from sensorhook.core.envelope import IngestEnvelope

    text = body.decode()
    envelopes = [
        IngestEnvelope(
            flavor=flavor,
            event_id=f"{event_id_for(flavor, json.loads(text))}-{n}",
            received_at=datetime.now(UTC),
            request_id=f"bench-{n}",
            body=text,
        ).model_dump_json()
        for n in range(size)
    ]
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": "r",
                "body": envelope,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:ingest",
                "awsRegion": "eu-west-1",
            }
            for n, envelope in enumerate(envelopes)
        ]
    }
