"""Each function's configuration, validated once at cold start from its environment.

Field names are the environment variable names (case-insensitive); infra sets exactly these,
and an infrastructure test checks that every function's environment matches its model.
"""

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls) -> "_Settings":
        wanted = {name.upper() for name in cls.model_fields}
        return cls.model_validate(
            {k.lower(): v for k, v in os.environ.items() if k.upper() in wanted}
        )


class ReceiverSettings(_Settings):
    ingest_queue_url: str
    bucket_name: str  # claim-check bodies too large for an SQS message go to inbox/
    v2020_signing_secret_arn: str
    ds_header_secret_arn: str
    efento_header_secret_arn: str
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    inline_body_max_bytes: int = Field(default=200_000, gt=0)
    signature_max_skew_seconds: int = Field(default=300, ge=0)
    secret_cache_seconds: int = Field(default=60, ge=0)


class ProcessorSettings(_Settings):
    readings_table: str
    sensor_state_table: str
    gateways_table: str
    idempotency_table: str
    bucket_name: str
    event_bus_name: str
    reading_ttl_days: int = Field(default=90, ge=0)  # 0 keeps hot readings forever
    idempotency_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)


class LakeWriterSettings(_Settings):
    bucket_name: str


class ProviderApiSettings(_Settings):
    """Where and as whom a control-plane function calls the Everactive API."""

    ds_api_base_url: str  # e.g. https://api.data.everactive.com/ds/v1
    ds_api_token_url: str
    ds_api_credentials_secret_arn: str  # {"client_id", "client_secret"}
    api_timeout_seconds: float = Field(default=5.0, gt=0)
    api_max_attempts: int = Field(default=4, ge=1)


class SubscriptionsSettings(ProviderApiSettings):
    subscriptions_table: str
    gateways_table: str  # last contact per gateway: is a silent subscription's installation up?
    desired_subscriptions: str  # JSON list, rendered by infra from the validated CDK config
    webhook_base_url: str  # this deployment's HTTP API URL; callbacks are built from it
    ds_header_secret_arn: str
    v2020_signing_secret_arn: str
    v2020_api_base_url: str
    v2020_api_token_url: str
    v2020_api_credentials_secret_arn: str
    subscription_silent_after_seconds: int = Field(default=3600, gt=0)


class GatewayHealthSettings(ProviderApiSettings):
    gateways_table: str
    sensor_state_table: str
    event_bus_name: str
    gateway_offline_after_seconds: int = Field(default=900, gt=0)  # ~3 missed 5-minute reports
    sensor_silent_after_periods: float = Field(default=3.0, gt=0)
    default_sensor_period_seconds: int = Field(default=60, gt=0)


@cache
def receiver_settings() -> ReceiverSettings:
    return ReceiverSettings.from_env()  # type: ignore[return-value]


@cache
def processor_settings() -> ProcessorSettings:
    return ProcessorSettings.from_env()  # type: ignore[return-value]


@cache
def lake_writer_settings() -> LakeWriterSettings:
    return LakeWriterSettings.from_env()  # type: ignore[return-value]


@cache
def subscriptions_settings() -> SubscriptionsSettings:
    return SubscriptionsSettings.from_env()  # type: ignore[return-value]


@cache
def gateway_health_settings() -> GatewayHealthSettings:
    return GatewayHealthSettings.from_env()  # type: ignore[return-value]
