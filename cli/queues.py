"""Queue depths and the oldest message's age: what an operator reads of a queue and the
functions never do. Read-only: peeking would count as a receive and push ingest messages
towards the DLQ, so the age comes from CloudWatch's ApproximateAgeOfOldestMessage.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from cli.target import Target

_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


def queue_stats(target: Target, queue_url: str) -> dict[str, Any]:
    attributes = target.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=_ATTRIBUTES
    )["Attributes"]
    waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
    in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
    return {
        "queue": queue_url.rsplit("/", 1)[-1],
        "waiting": waiting,
        "in_flight": in_flight,
        "oldest_age_s": _oldest_age_s(target, queue_url) if waiting + in_flight else None,
    }


def _oldest_age_s(target: Target, queue_url: str) -> float | None:
    """The newest one-minute maximum of the last ten minutes; None where CloudWatch has none
    (the local stack publishes no SQS metrics)."""
    now = datetime.now(UTC)
    response = target.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_url.rsplit("/", 1)[-1]}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(response.get("Datapoints", []), key=lambda point: point["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None
