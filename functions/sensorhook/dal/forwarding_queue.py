"""The endpoints' queues: handing a failed message back later (its retry delay)."""

from functools import cache
from typing import Any

from sensorhook.dal.aws_clients import sqs_client


class ForwardingQueues:
    def __init__(self, client: Any = None) -> None:
        self._client = client or sqs_client()

    @cache  # noqa: B019 - one instance per execution environment; queue URLs never change
    def url(self, queue_arn: str) -> str:
        account, name = queue_arn.split(":")[4:6]
        return str(
            self._client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        )

    def retry_later(self, queue_arn: str, receipt_handle: str, delay_s: int) -> None:
        """The message becomes visible again after `delay_s` (Lambda reports it failed)."""
        self._client.change_message_visibility(
            QueueUrl=self.url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=delay_s
        )
