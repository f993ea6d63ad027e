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
from sensorhook.core.forwarding import ForwardingEndpoint, ForwardingPolicy, is_local_url
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
# An inline Map's sensors, each ~7 history events (+3 per retry), must stay well inside the
# 25,000-event history of a Standard execution and the 256 KB state (docs/recovery.md).
_MAP_MAX_SENSORS_CEILING = 2500
# S3 refuses a transition to STANDARD_IA earlier than 30 days after creation.
_STANDARD_IA_MIN_DAYS = 30
# Lambda keeps this much of an account's concurrency unreserved; a reservation that would eat
# into it fails the deploy.
_LAMBDA_UNRESERVED_MINIMUM = 100
# Functions other than the receiver with a reservation: the subscriptions reconciler (1).
_OTHER_RESERVED_CONCURRENCY = 1
# The receiver's time per request the sizing assumes (docs/configuration.md, "Sizing"): a warm
# request takes ~50 ms, a slow SendMessage or a cold start far longer.
RECEIVER_BUDGET_SECONDS_PER_REQUEST = 0.4


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
    api_throttle_rate_limit: float = Field(default=500.0, gt=0)
    api_throttle_burst_limit: int = Field(default=1000, gt=0)
    receiver_reserved_concurrency: int = Field(default=200, ge=1)

    # concurrency of the account this stage deploys into, for the checks below (not a setting
    # AWS takes from here: `aws lambda get-account-settings` says what it is)
    lambda_account_concurrency: int = Field(default=1000, ge=_LAMBDA_UNRESERVED_MINIMUM)

    # processor and its queue
    processor_timeout_seconds: int = Field(default=60, ge=1, le=900)
    processor_memory_mb: int = Field(default=512, ge=128, le=10_240)
    processor_batch_size: int = Field(default=10, ge=1, le=10_000)
    processor_batching_window_seconds: int = Field(default=5, ge=0, le=300)
    dlq_max_receive_count: int = Field(default=5, ge=1, le=1000)
    future_tolerance_seconds: int = Field(default=300, ge=0, le=86_400)
    chunk_readings: int = Field(default=5000, ge=25, le=50_000)
    chunk_time_guard_seconds: int = Field(default=10, ge=1, le=900)
    # Lambda's range for an SQS event source's maximum concurrency
    processor_max_concurrency: int = Field(default=50, ge=2, le=1000)
    # a processor instance writes a gateway's last relayed reading at most this often (each
    # write is billed, moved or not); 0: on every delivery (docs/health.md)
    gateway_contact_every_seconds: int = Field(default=60, ge=0, le=3600)
    # concurrent readings writes of one delivery (each a round trip; docs/readings.md, "Writes")
    readings_writers: int = Field(default=16, ge=1, le=64)

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

    # forwarding to the user's endpoints under Efento's endpoint policy (docs/forwarding.md)
    forwarding_endpoints: tuple[ForwardingEndpoint, ...] = ()
    forwarding_policy: ForwardingPolicy = ForwardingPolicy()
    # http://127.0.0.1 / http://localhost endpoints: for a stage that only runs locally
    forwarding_local_endpoints: bool = False
    forwarding_batch_size: int = Field(default=10, ge=1, le=100)
    # per endpoint: concurrent forwarder invocations (Lambda's minimum for a mapping is 2)
    forwarding_max_concurrency: int = Field(default=2, ge=2, le=1000)
    forwarding_policy_check_seconds: int = Field(default=300, ge=1, le=86_400)
    forwarding_drain_batch: int = Field(default=50, ge=1, le=1000)
    forwarding_memory_mb: int = Field(default=256, ge=128, le=10_240)
    # subscription recovery state machine (docs/recovery.md)
    recovery_attempts: int = Field(default=6, ge=1, le=20)  # re-enable tries in all
    recovery_backoff_seconds: int = Field(default=60, ge=1, le=3600)  # first retry interval
    recovery_backoff_rate: float = Field(default=2.0, ge=1.0, le=10.0)
    recovery_backoff_max_seconds: int = Field(default=1800, ge=1, le=86_400)
    recovery_confirm_wait_seconds: int = Field(default=900, ge=0, le=86_400)
    recovery_confirm_poll_seconds: int = Field(default=60, ge=1, le=3600)
    recovery_map_concurrency: int = Field(default=4, ge=1, le=40)
    recovery_map_max_sensors: int = Field(default=2000, ge=1, le=_MAP_MAX_SENSORS_CEILING)
    recovery_window_hours: int = Field(default=24, ge=1, le=24)  # the readings API's maximum
    recovery_backfill_max_hours: int = Field(default=168, ge=1, le=24 * 30)
    recovery_backfill_attempts: int = Field(default=4, ge=1, le=10)
    recovery_timeout_seconds: int = Field(default=300, ge=30, le=900)  # per task invocation
    recovery_email: str | None = None  # subscribed to the recovery topic when set

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

    @field_validator("forwarding_endpoints")
    @classmethod
    def _distinct_endpoints(
        cls, value: tuple[ForwardingEndpoint, ...]
    ) -> tuple[ForwardingEndpoint, ...]:
        names = [endpoint.name for endpoint in value]
        if len(set(names)) != len(names):
            raise ValueError("forwarding endpoint names must be unique")
        return value

    @field_validator("alarm_email", "recovery_email")
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
        if self.chunk_time_guard_seconds >= self.processor_timeout_seconds:
            raise ValueError("chunk_time_guard_seconds must be below processor_timeout_seconds")
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
        self._check_concurrency()
        for endpoint in self.forwarding_endpoints:
            if is_local_url(endpoint.url) and not self.forwarding_local_endpoints:
                raise ValueError(
                    f"forwarding endpoint {endpoint.name}: http:// is only for a local stage "
                    "(set forwarding_local_endpoints); deployed endpoints must be https://"
                )
        if self.gateway_contact_every_seconds * 10 > self.gateway_offline_after_seconds:
            raise ValueError(
                "gateway_contact_every_seconds must be at most a tenth of "
                "gateway_offline_after_seconds (a gateway's contact would lag its threshold)"
            )
        if self.recovery_backoff_max_seconds < self.recovery_backoff_seconds:
            raise ValueError(
                "recovery_backoff_max_seconds must be at least recovery_backoff_seconds"
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

    def _check_concurrency(self) -> None:
        """The receiver's reservation fits the account and serves what the API admits, and the
        processor can reach its maximum concurrency in what is left."""
        reservable = (
            self.lambda_account_concurrency
            - _LAMBDA_UNRESERVED_MINIMUM
            - _OTHER_RESERVED_CONCURRENCY
        )
        if self.receiver_reserved_concurrency > reservable:
            raise ValueError(
                f"receiver_reserved_concurrency {self.receiver_reserved_concurrency} does not fit "
                f"an account concurrency of {self.lambda_account_concurrency}: Lambda keeps "
                f"{_LAMBDA_UNRESERVED_MINIMUM} unreserved and the subscriptions function "
                f"reserves {_OTHER_RESERVED_CONCURRENCY}, so at most {reservable} (raise the "
                "account's limit: docs/operations.md)"
            )
        servable = self.receiver_reserved_concurrency / RECEIVER_BUDGET_SECONDS_PER_REQUEST
        if self.api_throttle_rate_limit > servable:
            raise ValueError(
                f"api_throttle_rate_limit {self.api_throttle_rate_limit:g}/s is more than "
                f"receiver_reserved_concurrency {self.receiver_reserved_concurrency} serves at "
                f"{RECEIVER_BUDGET_SECONDS_PER_REQUEST} s per request ({servable:g}/s): requests "
                "the API admits would be throttled by Lambda; raise the reservation or lower the "
                "rate"
            )
        unreserved = reservable + _LAMBDA_UNRESERVED_MINIMUM - self.receiver_reserved_concurrency
        if self.processor_max_concurrency > unreserved:
            raise ValueError(
                f"processor_max_concurrency {self.processor_max_concurrency} is more than the "
                f"{unreserved} unreserved concurrency left in an account of "
                f"{self.lambda_account_concurrency}"
            )

    @property
    def retain_data(self) -> bool:
        """Prod keeps tables and buckets when the stack goes, and protects tables from deletion."""
        return self.removal_policy == "retain"

    @property
    def forwarder_timeout_seconds(self) -> int:
        """Worst case of one batch: every delivery answered just before the slowest endpoint's
        timeout, paced at its rate limit."""
        per_delivery = max(
            (e.timeout_seconds + 1 / e.rate_limit_per_second for e in self.forwarding_endpoints),
            default=10.0,
        )
        return min(900, int(per_delivery * self.forwarding_batch_size) + 30)

    @property
    def recovery_confirm_checks(self) -> int:
        """How many times Confirm looks for the first delivery before the bounded wait ends."""
        return max(1, -(-self.recovery_confirm_wait_seconds // self.recovery_confirm_poll_seconds))

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
