"""The receiver's settings, in a module of their own: the receiver's cold import builds none of
the other functions' models (core/settings.py, about 10 ms of class creation it never uses).
Field names are the environment variable names (case-insensitive); infra sets exactly these."""

from functools import cache

from pydantic import Field

from sensorhook.core.settings_base import FunctionSettings


class ReceiverSettings(FunctionSettings):
    ingest_queue_url: str
    bucket_name: str  # claim-check bodies too large for an SQS message go to inbox/
    v2020_signing_secret_arn: str
    ds_header_secret_arn: str
    efento_header_secret_arn: str
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    inline_body_max_bytes: int = Field(default=200_000, gt=0)
    signature_max_skew_seconds: int = Field(default=300, ge=0)
    secret_cache_seconds: int = Field(default=60, ge=0)


@cache
def receiver_settings() -> ReceiverSettings:
    return ReceiverSettings.from_env()
