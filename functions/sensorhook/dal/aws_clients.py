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


def clear_cached_clients() -> None:
    """Forget every cached client (tests that switch AWS mocks between cases)."""
    for factory in (dynamodb_client, s3_client, events_client, sqs_client):
        factory.cache_clear()
