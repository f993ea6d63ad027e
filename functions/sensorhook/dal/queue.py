"""The ingest queue: where the receiver puts every authentic delivery (SQS)."""

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sensorhook.core.envelope import IngestEnvelope
from sensorhook.dal.aws_clients import deadline_sqs_client

# SQS's message limit, counting the body and the attributes; we keep 1 KiB for the attributes.
SQS_MAX_MESSAGE_BYTES = 262_144
_MAX_BODY_BYTES = SQS_MAX_MESSAGE_BYTES - 1024


class EnqueueFailed(Exception):
    """SQS did not take the message; the delivery is not persisted and the provider must retry."""


class MessageTooLarge(ValueError):
    """The envelope does not fit in one SQS message; the body has to be claim-checked."""


class IngestQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._queue_url = queue_url
        self._client = client or deadline_sqs_client()

    def send(self, envelope: IngestEnvelope) -> None:
        """Put the envelope on the queue, with flavor and event id as message attributes.

        Raises MessageTooLarge before calling SQS when the envelope cannot fit, else
        EnqueueFailed when SQS refuses or cannot be reached.
        """
        message = envelope.model_dump_json(exclude_none=True)
        if len(message.encode()) > _MAX_BODY_BYTES:
            raise MessageTooLarge(envelope.event_id)
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=message,
                MessageAttributes={
                    "flavor": {"DataType": "String", "StringValue": envelope.flavor.value},
                    "event_id": {"DataType": "String", "StringValue": envelope.event_id},
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise EnqueueFailed(type(error).__name__) from error
