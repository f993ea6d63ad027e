"""The ingest dead-letter queue (SQS), read by the replay: receive, delete, give back."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sensorhook.dal.aws_clients import sqs_client

# Long enough for one replay to look at every message once; a crashed run's messages come
# back by themselves after it.
_HOLD_SECONDS = 300
_BATCH = 10


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    sent_at: datetime  # when it was first put on the ingest queue (SQS keeps it on a move)


class DeadLetterQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._queue_url = queue_url
        self._client = client or sqs_client()

    def receive(self) -> list[DeadLetter]:
        """Up to ten messages, held invisible for the replay; [] once none is left visible."""
        response = self._client.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=_BATCH,
            VisibilityTimeout=_HOLD_SECONDS,
            WaitTimeSeconds=1,  # long polling asks every SQS server: an empty answer means empty
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        return [
            DeadLetter(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message["Body"],
                sent_at=datetime.fromtimestamp(
                    int(message["Attributes"]["SentTimestamp"]) / 1000, UTC
                ),
            )
            for message in response.get("Messages", [])
        ]

    def delete(self, letter: DeadLetter) -> None:
        self._client.delete_message(QueueUrl=self._queue_url, ReceiptHandle=letter.receipt_handle)

    def release(self, letters: list[DeadLetter]) -> None:
        """Make held messages visible again now, rather than when their hold runs out."""
        for start in range(0, len(letters), _BATCH):
            self._client.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": letter.receipt_handle,
                        "VisibilityTimeout": 0,
                    }
                    for index, letter in enumerate(letters[start : start + _BATCH])
                ],
            )
