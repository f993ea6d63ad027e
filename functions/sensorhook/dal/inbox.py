"""The claim-check inbox: bodies too large for an SQS message wait in S3 under inbox/."""

from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sensorhook.dal.aws_clients import deadline_s3_client

INBOX_PREFIX = "inbox/"


class InboxWriteFailed(Exception):
    """S3 did not take the body; the delivery is not persisted and the provider must retry."""


def inbox_key(event_id: str, received_at: datetime) -> str:
    """`inbox/<yyyy-mm-dd>/<event_id>.json`, as docs/architecture.md fixes it."""
    return f"{INBOX_PREFIX}{received_at:%Y-%m-%d}/{event_id}.json"


class Inbox:
    def __init__(self, bucket_name: str, client: Any = None) -> None:
        self._bucket_name = bucket_name
        self._client = client or deadline_s3_client()

    def put_body(self, event_id: str, received_at: datetime, body: bytes) -> str:
        """Store the raw body and return its key. Raises InboxWriteFailed."""
        key = inbox_key(event_id, received_at)
        try:
            self._client.put_object(
                Bucket=self._bucket_name, Key=key, Body=body, ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as error:
            raise InboxWriteFailed(type(error).__name__) from error
        return key
