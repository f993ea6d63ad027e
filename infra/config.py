"""Per-stage configuration, read from CDK context and validated at synth time.

cdk.json holds `"sensorhook": {"stages": {"<stage>": {...}}}`; every key left out takes the
default below (the seeds' and the design's values). A bad value stops `cdk synth` with a message
naming the key, before any resource is defined. docs/configuration.md lists every key.
"""

import re
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from infra.constants import DLQ_RETENTION_DAYS
from sensorhook.core.settings import DesiredSubscription

CONTEXT_KEY = "sensorhook"
STAGE_CONTEXT_KEY = "stage"
DEFAULT_STAGE = "dev"

# CloudWatch Logs accepts only these retention periods (aws_logs.RetentionDays member names).
LOG_RETENTION_CHOICES = (
    "ONE_DAY",
    "THREE_DAYS",
    "FIVE_DAYS",
    "ONE_WEEK",
    "TWO_WEEKS",
    "ONE_MONTH",
    "TWO_MONTHS",
    "THREE_MONTHS",
    "FOUR_MONTHS",
    "FIVE_MONTHS",
    "SIX_MONTHS",
    "ONE_YEAR",
    "THIRTEEN_MONTHS",
    "EIGHTEEN_MONTHS",
    "TWO_YEARS",
    "THREE_YEARS",
    "FIVE_YEARS",
    "SIX_YEARS",
    "SEVEN_YEARS",
    "EIGHT_YEARS",
    "NINE_YEARS",
    "TEN_YEARS",
    "INFINITE",
)

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LAYER_ARN_TEMPLATE = re.compile(
    r"^arn:aws[a-z-]*:lambda:(\{region\}|[a-z0-9-]+):\d{12}:layer:.+:\d+$"
)

# SQS caps a message at 256 KiB; the envelope around an inline body needs some of it.
_SQS_INLINE_CEILING_BYTES = 240_000
# API Gateway HTTP APIs refuse request bodies over 10 MB before the receiver sees them.
_HTTP_API_PAYLOAD_CEILING_BYTES = 10 * 1024 * 1024
# Efento drops a delivery it has no answer to within 10 s; the receiver must be done well before.
_RECEIVER_TIMEOUT_CEILING_SECONDS = 9
# Everactive's public API host (seeds: Data Services API v1 and API v2020-07).
_EVERACTIVE_API = "https://api.data.everactive.com"
# S3 refuses a transition to STANDARD_IA earlier than 30 days after creation.
_STANDARD_IA_MIN_DAYS = 30


class ConfigError(ValueError):
    """The stage configuration in CDK context is missing or invalid."""


class SubscriptionConfig(DesiredSubscription):
    """A `subscriptions` entry of cdk.json: the runtime model, refusing unknown keys at synth."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _https(value: str | None) -> str | None:
    if value is not None and not value.startswith("https://"):
        raise ValueError("must be an https:// URL")
    return value


class StageConfig(BaseModel):
    """Everything that may differ between stages. Field names are the cdk.json keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # data lifetime
    removal_policy: Literal["retain", "destroy"] = "retain"
    reading_ttl_days: int = Field(default=90, ge=0)
    idempotency_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    raw_archive_transition_ia_days: int | None = Field(default=90, ge=_STANDARD_IA_MIN_DAYS)
    raw_archive_expiration_days: int | None = Field(default=None, gt=0)
    inbox_expiration_days: int = Field(default=21, gt=DLQ_RETENTION_DAYS)
    noncurrent_version_expiration_days: int = Field(default=30, gt=0)
    access_log_expiration_days: int = Field(default=90, gt=0)
    log_retention: str = "ONE_MONTH"
    event_archive_retention_days: int = Field(default=30, ge=0)

    # receiver and HTTP API
    max_body_bytes: int = Field(default=1_048_576, gt=0, le=_HTTP_API_PAYLOAD_CEILING_BYTES)
    inline_body_max_bytes: int = Field(default=200_000, gt=0, le=_SQS_INLINE_CEILING_BYTES)
    signature_max_skew_seconds: int = Field(default=300, ge=0)
    secret_cache_seconds: int = Field(default=60, ge=0)
    receiver_timeout_seconds: int = Field(default=6, ge=1, le=_RECEIVER_TIMEOUT_CEILING_SECONDS)
    receiver_memory_mb: int = Field(default=512, ge=128, le=10_240)
    api_throttle_rate_limit: float = Field(default=100.0, gt=0)
    api_throttle_burst_limit: int = Field(default=200, gt=0)

    # processor and its queue
    processor_timeout_seconds: int = Field(default=60, ge=1, le=900)
    processor_memory_mb: int = Field(default=512, ge=128, le=10_240)
    processor_batch_size: int = Field(default=10, ge=1, le=10_000)
    processor_batching_window_seconds: int = Field(default=5, ge=0, le=300)
    dlq_max_receive_count: int = Field(default=5, ge=1, le=1000)

    # lake writer
    lake_writer_timeout_seconds: int = Field(default=120, ge=1, le=900)
    lake_writer_memory_mb: int = Field(default=1024, ge=128, le=10_240)
    lake_writer_batch_size: int = Field(default=1000, ge=1, le=10_000)
    lake_writer_batching_window_seconds: int = Field(default=60, ge=0, le=300)
    lake_writer_retry_attempts: int = Field(default=5, ge=0, le=10_000)

    # Athena (docs/athena.md): a query scanning more than this is cancelled (minimum 10 MB)
    athena_bytes_scanned_cutoff: int = Field(default=10 * 1024**3, ge=10 * 1024**2)
    lake_compaction_hour_utc: int = Field(default=1, ge=0, le=23)
    lake_compaction_days_back: int = Field(default=3, ge=1, le=60)
    lake_compaction_max_rows: int = Field(default=4_000_000, gt=0)
    lake_compactor_timeout_seconds: int = Field(default=900, ge=60, le=900)
    lake_compactor_memory_mb: int = Field(default=3008, ge=512, le=10_240)

    # alarms
    alarm_email: str | None = None
    ingest_queue_max_age_seconds: int = Field(default=900, gt=0)
    lake_writer_max_iterator_age_seconds: int = Field(default=3600, gt=0)
    function_errors_threshold: int = Field(default=0, ge=0)

    # control plane: provider API, subscriptions, gateway health (docs/subscriptions.md)
    subscriptions: tuple[SubscriptionConfig, ...] = ()
    webhook_base_url: str | None = None  # callbacks' base when not the HTTP API's own URL
    everactive_ds_api_base_url: str = f"{_EVERACTIVE_API}/ds/v1"
    everactive_ds_api_token_url: str = f"{_EVERACTIVE_API}/auth/token"
    everactive_v2020_api_base_url: str = f"{_EVERACTIVE_API}/v2020-07"
    everactive_v2020_api_token_url: str = f"{_EVERACTIVE_API}/v2020-07/auth/token"
    api_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    api_max_attempts: int = Field(default=4, ge=1, le=10)
    subscriptions_schedule_minutes: int = Field(default=15, ge=1, le=1440)
    subscriptions_timeout_seconds: int = Field(default=300, ge=30, le=900)
    subscription_silent_after_seconds: int = Field(default=3600, gt=0)
    gateway_health_schedule_minutes: int = Field(default=5, ge=1, le=1440)
    gateway_health_timeout_seconds: int = Field(default=120, ge=30, le=900)
    gateway_offline_after_seconds: int = Field(default=900, gt=0)
    sensor_silent_after_periods: float = Field(default=3.0, gt=0)
    default_sensor_period_seconds: int = Field(default=60, gt=0)
    control_plane_memory_mb: int = Field(default=256, ge=128, le=10_240)

    # runtime layers
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    powertools_layer_version: int = Field(default=27, gt=0)
    aws_sdk_pandas_layer_arn: str = (
        "arn:aws:lambda:{region}:336392948345:layer:AWSSDKPandas-Python312-Arm64:20"
    )

    @field_validator("log_retention")
    @classmethod
    def _known_retention(cls, value: str) -> str:
        if value not in LOG_RETENTION_CHOICES:
            raise ValueError(f"must be one of {', '.join(LOG_RETENTION_CHOICES)}")
        return value

    @field_validator(
        "webhook_base_url",
        "everactive_ds_api_base_url",
        "everactive_ds_api_token_url",
        "everactive_v2020_api_base_url",
        "everactive_v2020_api_token_url",
    )
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        return _https(value)

    @field_validator("subscriptions")
    @classmethod
    def _distinct_subscriptions(
        cls, value: tuple[SubscriptionConfig, ...]
    ) -> tuple[SubscriptionConfig, ...]:
        names = [subscription.name for subscription in value]
        if len(set(names)) != len(names):
            raise ValueError("subscription names must be unique")
        kinds = [(s.provider, s.event_type, s.flavor) for s in value]
        if len(set(kinds)) != len(kinds):
            raise ValueError(
                "two subscriptions with the same provider, event type and route would "
                "deliver every event twice"
            )
        return value

    @field_validator("alarm_email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("must be an e-mail address")
        return value

    @field_validator("aws_sdk_pandas_layer_arn")
    @classmethod
    def _layer_arn_shape(cls, value: str) -> str:
        if not _LAYER_ARN_TEMPLATE.match(value):
            raise ValueError(
                "must be a Lambda layer version ARN, with `{region}` where the region goes"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.inline_body_max_bytes > self.max_body_bytes:
            raise ValueError("inline_body_max_bytes must not exceed max_body_bytes")
        if self.processor_batch_size > 10 and self.processor_batching_window_seconds == 0:
            raise ValueError(
                "processor_batch_size above 10 needs processor_batching_window_seconds > 0 (SQS)"
            )
        if (
            self.raw_archive_transition_ia_days is not None
            and self.raw_archive_expiration_days is not None
            and self.raw_archive_expiration_days <= self.raw_archive_transition_ia_days
        ):
            raise ValueError(
                "raw_archive_expiration_days must be later than raw_archive_transition_ia_days"
            )
        for subscription in self.subscriptions:
            if (
                subscription.provider == "efento"
                and self.webhook_base_url is not None
                and len(subscription.callback_url(self.webhook_base_url))
                > SubscriptionConfig.EFENTO_MAX_URL_CHARS
            ):
                raise ValueError(
                    f"subscription {subscription.name}: Efento takes callback URLs of at most "
                    f"{SubscriptionConfig.EFENTO_MAX_URL_CHARS} characters"
                )
        return self

    @property
    def retain_data(self) -> bool:
        """Prod keeps tables and buckets when the stack goes, and protects tables from deletion."""
        return self.removal_policy == "retain"

    @property
    def ingest_visibility_timeout_seconds(self) -> int:
        """AWS's rule for a Lambda-consumed queue: six times the function timeout, plus the
        batching window, so a message is not handed out again while a batch is still running."""
        return 6 * self.processor_timeout_seconds + self.processor_batching_window_seconds


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or '(stage)'}: {issue['msg']}"
        for issue in error.errors()
    )


def load_stage_config(context: Any, stage: str) -> StageConfig:
    """Validate the `sensorhook` context block and return the configuration of `stage`.

    Raises ConfigError naming the stage and every offending key.
    """
    if not _STAGE_NAME.match(stage):
        raise ConfigError(
            f"stage {stage!r} must be lowercase letters, digits or '-', at most 16 characters"
        )
    if not isinstance(context, Mapping) or not isinstance(context.get("stages"), Mapping):
        raise ConfigError(
            f'CDK context "{CONTEXT_KEY}" must be an object with "stages": '
            '{"<stage>": {...}} (see cdk.json)'
        )
    stages = context["stages"]
    if stage not in stages:
        known = ", ".join(sorted(stages)) or "none"
        raise ConfigError(f"stage {stage!r} is not configured in cdk.json (configured: {known})")
    values = stages[stage]
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"stage {stage!r}: configuration must be an object")
    try:
        return StageConfig.model_validate(dict(values))
    except ValidationError as error:
        raise ConfigError(f"stage {stage!r}: {_describe(error)}") from None
