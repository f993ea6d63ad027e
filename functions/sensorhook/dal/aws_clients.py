"""One boto3 client per service per execution environment.

Creating a client costs tens of milliseconds; the stores share these so a warm Lambda never
pays it twice. Tests either pass their own client to a store or clear these caches.
"""

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode backs off on throttling and transient 5xx for every call we make.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
# The receiver answers within the provider's deadline (Efento: 10 s) and its own 6 s timeout:
# two attempts of at most 0.5 s to connect and 1.5 s to answer leave time for a 503, where
# botocore's defaults (60 s, five attempts) would let Lambda kill the request mid-retry.
_WITHIN_DEADLINE = Config(
    connect_timeout=0.5,
    read_timeout=1.5,
    retries={"mode": "standard", "total_max_attempts": 2},
)


@cache
def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=_CONFIG)


@cache
def s3_client() -> Any:
    return boto3.client("s3", config=_CONFIG)


@cache
def events_client() -> Any:
    return boto3.client("events", config=_CONFIG)


@cache
def sqs_client() -> Any:
    return boto3.client("sqs", config=_CONFIG)


@cache
def deadline_sqs_client() -> Any:
    """SQS for a caller that must answer an HTTP request in time (the receiver's enqueue)."""
    return boto3.client("sqs", config=_WITHIN_DEADLINE)


@cache
def deadline_s3_client() -> Any:
    """S3 for a caller that must answer an HTTP request in time (the receiver's claim check)."""
    return boto3.client("s3", config=_WITHIN_DEADLINE)


@cache
def secretsmanager_client() -> Any:
    return boto3.client("secretsmanager", config=_CONFIG)


@cache
def deadline_secretsmanager_client() -> Any:
    """Secrets Manager for a caller that must answer an HTTP request in time (the receiver's
    webhook secrets, read when their cache expires)."""
    return boto3.client("secretsmanager", config=_WITHIN_DEADLINE)


@cache
def stepfunctions_client() -> Any:
    return boto3.client("stepfunctions", config=_CONFIG)


def clear_cached_clients() -> None:
    """Forget every cached client (tests that switch AWS mocks between cases)."""
    for factory in (
        dynamodb_client,
        s3_client,
        events_client,
        sqs_client,
        deadline_sqs_client,
        deadline_s3_client,
        secretsmanager_client,
        deadline_secretsmanager_client,
        stepfunctions_client,
    ):
        factory.cache_clear()
