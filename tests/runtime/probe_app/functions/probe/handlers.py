"""Probe handlers: each one leaves a trace the runtime tests can read back through boto3."""

import base64
import json
import os
from typing import Any

import boto3


def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Echo what API Gateway would have passed, so a test can compare it field by field."""
    if event["rawPath"] == "/binary":
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(b"\x00\x01probe").decode(),
            "isBase64Encoded": True,
        }
    echo = {
        "event": event,
        "function": os.environ["PROBE_FUNCTION"],
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    return {"statusCode": 201, "headers": {"x-probe": "yes"}, "body": json.dumps(echo)}


def consume(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Store each message's id; report the ones asking to fail as batch item failures."""
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    failures = []
    for record in event["Records"]:
        message = json.loads(record["body"])
        if message.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        table.put_item(
            Item={
                "pk": message["id"],
                "receive_count": record["attributes"]["ApproximateReceiveCount"],
            }
        )
    return {"batchItemFailures": failures}


def stream(event: dict[str, Any], context: Any) -> None:
    """Write one object per stream record, named after the item's key."""
    s3 = boto3.client("s3")
    for record in event["Records"]:
        key = record["dynamodb"]["NewImage"]["pk"]["S"]
        s3.put_object(
            Bucket=os.environ["BUCKET_NAME"],
            Key=f"stream/{key}.json",
            Body=json.dumps(record).encode(),
        )


def scheduled(event: dict[str, Any], context: Any) -> None:
    boto3.client("s3").put_object(
        Bucket=os.environ["BUCKET_NAME"],
        Key=f"scheduled/{event['id']}.json",
        Body=json.dumps(event),
    )


def on_event(event: dict[str, Any], context: Any) -> None:
    boto3.client("s3").put_object(
        Bucket=os.environ["BUCKET_NAME"], Key=f"events/{event['id']}.json", Body=json.dumps(event)
    )


class ProbeFlaky(Exception):
    """Raised by `flaky` until it has been called `fail_times` times for one id."""


def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A state machine task that fails its first `fail_times` calls per id (counted in the
    table, so every attempt of a Retry is seen), then answers how many calls it took."""
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    calls = table.update_item(
        Key={"pk": f"calls#{event['id']}"},
        UpdateExpression="ADD calls :one",
        ExpressionAttributeValues={":one": 1},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]["calls"]
    if calls <= event["fail_times"]:
        raise ProbeFlaky(f"call {calls} of {event['id']} fails")
    return {"id": event["id"], "calls": int(calls)}
