"""One botocore client per service per execution environment, all from one botocore session.

Creating a client costs tens of milliseconds; the stores share these so a warm Lambda never
pays it twice. Tests either pass their own client to a store or clear these caches.

botocore, not boto3: `boto3.client` is this very client from a botocore session, plus S3's
transfer methods (upload_file & co., unused here), but importing boto3 imports s3transfer and
its thread pools, ~15 ms of every cold start (docs/cost.md, "Cold start").
tests/unit/test_cold_start.py keeps boto3 out of the functions that import nothing else of it.
"""

from functools import cache
from typing import Any

from botocore.config import Config
from botocore.loaders import Loader, create_loader
from botocore.session import Session

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


# botocore's client-side parameter validation walks every attribute of every item: two thirds
# of the processor's CPU on a large delivery (make bench). Our requests are built in DynamoDB's
# wire format by the stores and Powertools, and DynamoDB validates them anyway (a bad request
# is a ValidationException, a ClientError like any other).
_DYNAMODB_CONFIG = _CONFIG.merge(Config(parameter_validation=False))


@cache
def _data_loader(data_path: str | None) -> Loader:
    """botocore's service models and endpoints, parsed once per process: a session that
    `clear_cached_clients` replaced reuses them (tests; a Lambda has one session)."""
    return create_loader(data_path)


@cache
def session() -> Session:
    """The session every client here comes from, as boto3's default session is for
    `boto3.client`: credentials and region from the environment, resolved once."""
    shared = Session()
    shared.register_component("data_loader", _data_loader(shared.get_config_variable("data_path")))
    return shared


def _client(service: str, config: Config) -> Any:
    return session().create_client(service, config=config)


@cache
def dynamodb_client() -> Any:
    return _client("dynamodb", _DYNAMODB_CONFIG)


@cache
def s3_client() -> Any:
    return _client("s3", _CONFIG)


@cache
def events_client() -> Any:
    return _client("events", _CONFIG)


@cache
def sqs_client() -> Any:
    return _client("sqs", _CONFIG)


@cache
def stepfunctions_client() -> Any:
    return _client("stepfunctions", _CONFIG)


@cache
def deadline_sqs_client() -> Any:
    """SQS for a caller that must answer an HTTP request in time (the receiver's enqueue)."""
    return _client("sqs", _WITHIN_DEADLINE)


@cache
def deadline_s3_client() -> Any:
    """S3 for a caller that must answer an HTTP request in time (the receiver's claim check)."""
    return _client("s3", _WITHIN_DEADLINE)


@cache
def secretsmanager_client() -> Any:
    return _client("secretsmanager", _CONFIG)


@cache
def deadline_secretsmanager_client() -> Any:
    """Secrets Manager for a caller that must answer an HTTP request in time (the receiver's
    webhook secrets, read when their cache expires)."""
    return _client("secretsmanager", _WITHIN_DEADLINE)


def clear_cached_clients() -> None:
    """Forget every cached client and their session (tests that switch AWS mocks between
    cases, or install hooks that new sessions take: local.faults)."""
    for factory in (
        session,
        dynamodb_client,
        s3_client,
        events_client,
        sqs_client,
        stepfunctions_client,
        deadline_sqs_client,
        deadline_s3_client,
        secretsmanager_client,
        deadline_secretsmanager_client,
    ):
        factory.cache_clear()
