"""Each function's configuration, validated once at cold start from its environment.

Field names are the environment variable names (case-insensitive); infra sets exactly these,
and an infrastructure test checks that every function's environment matches its model. The
receiver's is in core/receiver_settings.py, so the receiver's cold import creates none of
these classes.
"""

import re
from functools import cache
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sensorhook.core.flavors import ROUTES, Flavor
from sensorhook.core.settings_base import FunctionSettings


class ProcessorSettings(FunctionSettings):
    readings_table: str
    sensor_state_table: str
    gateways_table: str
    idempotency_table: str
    bucket_name: str
    event_bus_name: str
    reading_ttl_days: int = Field(default=90, ge=0)  # 0 keeps hot readings forever
    idempotency_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    # a device time later than receipt plus this is a clock running ahead (docs/configuration.md)
    future_tolerance_seconds: int = Field(default=300, ge=0)
    # a large delivery is stored this many readings at a time, each chunk recorded as done
    chunk_readings: int = Field(default=5000, gt=0)
    # no chunk starts with less time left than this: the delivery fails, SQS retries it, and
    # the retry resumes after the last chunk stored
    chunk_time_guard_seconds: int = Field(default=10, gt=0)
    # when each sensor's state comes due for gateway health's silence check (the same figures
    # as GatewayHealthSettings; dal/sensor_state_store.py)
    sensor_silent_after_periods: float = Field(default=3.0, gt=0)
    default_sensor_period_seconds: int = Field(default=60, gt=0)
    # a gateway's last relayed reading is written at most this often (dal/gateways_store.py)
    gateway_contact_every_seconds: int = Field(default=60, ge=0)
    # concurrent UpdateItem calls of one delivery's readings (dal/readings_store.py `WRITERS`)
    readings_writers: int = Field(default=16, ge=1)


class LakeWriterSettings(FunctionSettings):
    bucket_name: str


class LakeCompactorSettings(FunctionSettings):
    bucket_name: str
    compaction_days_back: int = Field(default=3, ge=1)  # yesterday and the days before it
    compaction_max_rows: int = Field(default=4_000_000, gt=0)  # per compacted object


class ProviderApiSettings(FunctionSettings):
    """Where and as whom a control-plane function calls the Everactive API."""

    ds_api_base_url: str  # e.g. https://api.data.everactive.com/ds/v1
    ds_api_token_url: str
    ds_api_credentials_secret_arn: str  # {"client_id", "client_secret"}
    api_timeout_seconds: float = Field(default=5.0, gt=0)
    api_max_attempts: int = Field(default=4, ge=1)


class DesiredSubscription(BaseModel):
    """One webhook subscription declared per stage in cdk.json (`subscriptions`).

    Infra validates it at synth and renders the list into DESIRED_SUBSCRIPTIONS; the
    subscriptions function reads it back with this same model, so both agree on every rule.
    `route` and `secret` follow from (provider, event_type) and are filled in when left out.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    # (provider, event_type) -> (route, secret): the only consistent combinations.
    COMBINATIONS: ClassVar[dict[tuple[str, str], tuple[Flavor, str]]] = {
        ("everactive-ds", "sensor_reading"): (Flavor.EVERACTIVE_DS_SENSOR_READING, "ds-header"),
        ("everactive-ds", "gateway_status"): (Flavor.EVERACTIVE_DS_GATEWAY_STATUS, "ds-header"),
        ("everactive-v2020-07", "steam_trap_state_change"): (
            Flavor.EVERACTIVE_V2020_STEAM_TRAP,
            "v2020-signing",
        ),
        ("efento", "measurements"): (Flavor.EFENTO_MEASUREMENTS, "efento-header"),
    }
    # Efento Cloud's webhook limits (seed: efento-cloud-measurement-webhooks, "Limitations").
    EFENTO_MAX_HEADERS: ClassVar[int] = 5
    EFENTO_MAX_HEADER_CHARS: ClassVar[int] = 512
    EFENTO_MAX_URL_CHARS: ClassVar[int] = 500

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    provider: Literal["everactive-ds", "everactive-v2020-07", "efento"]
    event_type: Literal[
        "sensor_reading", "gateway_status", "steam_trap_state_change", "measurements"
    ]
    route: Flavor | None = None
    secret: Literal["ds-header", "v2020-signing", "efento-header"] | None = None
    # Header names the provider must send; values live in the header secret, never here.
    # Empty: whatever names the secret holds.
    header_names: tuple[str, ...] = ()
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        combination = self.COMBINATIONS.get((self.provider, self.event_type))
        if combination is None:
            allowed = ", ".join(e for p, e in self.COMBINATIONS if p == self.provider)
            raise ValueError(f"{self.provider} has no event type {self.event_type} ({allowed})")
        route, secret = combination
        if self.route not in (None, route):
            raise ValueError(f"{self.provider} {self.event_type} is served on route {route}")
        if self.secret not in (None, secret):
            raise ValueError(f"{self.provider} {self.event_type} is authenticated by {secret}")
        object.__setattr__(self, "route", route)
        object.__setattr__(self, "secret", secret)
        names = [name.lower() for name in self.header_names]
        if len(set(names)) != len(names):
            raise ValueError("header_names must be unique ignoring case")
        if not all(re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) for name in names):
            raise ValueError("header_names must be HTTP field names")
        if self.provider == "everactive-v2020-07" and names:
            raise ValueError("v2020-07 webhooks are signed by the provider; no header_names")
        if self.provider == "efento" and (
            len(names) > self.EFENTO_MAX_HEADERS
            or any(len(name) > self.EFENTO_MAX_HEADER_CHARS for name in names)
        ):
            raise ValueError(
                f"Efento allows at most {self.EFENTO_MAX_HEADERS} headers, names of at most "
                f"{self.EFENTO_MAX_HEADER_CHARS} characters"
            )
        return self

    @property
    def flavor(self) -> Flavor:
        """The route this subscription delivers to (always set once validated)."""
        return self.COMBINATIONS[(self.provider, self.event_type)][0]

    def callback_url(self, webhook_base_url: str) -> str:
        return webhook_base_url.rstrip("/") + ROUTES[self.flavor]


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
    # started per incident (logic/incidents.py); empty (the dry-run tool): detect only
    recovery_state_machine_arn: str = ""


class GatewayHealthSettings(ProviderApiSettings):
    gateways_table: str
    sensor_state_table: str
    event_bus_name: str
    # a silent readings subscription's incident: opened on its row, its recovery started;
    # without a machine ARN, silence is only judged and published
    subscriptions_table: str = ""
    desired_subscriptions: str = "[]"  # JSON list: which subscription carries the readings
    recovery_state_machine_arn: str = ""
    gateway_offline_after_seconds: int = Field(default=900, gt=0)  # ~3 missed 5-minute reports
    sensor_silent_after_periods: float = Field(default=3.0, gt=0)
    default_sensor_period_seconds: int = Field(default=60, gt=0)


class ForwardingSettings(FunctionSettings):
    """What both forwarding functions (forwarder and endpoint policy) read (docs/forwarding.md)."""

    endpoints_table: str
    bucket_name: str  # the backlog lives under forwarding-backlog/
    forwarding_endpoints: str  # JSON list, rendered by infra (core.forwarding.render_endpoints)
    forwarding_policy: str  # JSON object: core.forwarding.ForwardingPolicy
    endpoint_secret_arns: str  # JSON object: endpoint name -> its signing secret's ARN
    secret_cache_seconds: int = Field(default=60, ge=0)


class ForwarderSettings(ForwardingSettings):
    state_machine_arn: str  # the endpoint policy, started when a transition is due
    queue_name_prefix: str  # `<prefix><endpoint name>` is each endpoint's queue


class EndpointPolicySettings(ForwardingSettings):
    event_bus_name: str  # endpoint.status_changed goes here
    policy_check_seconds: int = Field(
        default=300, gt=0
    )  # how often a failing endpoint is looked at
    policy_drain_batch: int = Field(default=50, gt=0)  # backlog events per drain step


class RecoverySettings(ProviderApiSettings):
    """The recovery state machine's task function (docs/recovery.md)."""

    subscriptions_table: str
    incidents_table: str
    gateways_table: str
    sensor_state_table: str
    readings_table: str  # each sensor's newest reading before the incident: where its gap starts
    ingest_queue_url: str  # backfilled readings enter exactly where webhook deliveries do
    event_bus_name: str
    desired_subscriptions: str
    backfill_window_seconds: int = Field(default=24 * 3600, gt=0, le=24 * 3600)
    backfill_max_hours: int = Field(default=168, gt=0)
    map_max_items: int = Field(default=2000, gt=0)


@cache
def processor_settings() -> ProcessorSettings:
    return ProcessorSettings.from_env()


@cache
def lake_writer_settings() -> LakeWriterSettings:
    return LakeWriterSettings.from_env()


@cache
def lake_compactor_settings() -> LakeCompactorSettings:
    return LakeCompactorSettings.from_env()


@cache
def subscriptions_settings() -> SubscriptionsSettings:
    return SubscriptionsSettings.from_env()


@cache
def gateway_health_settings() -> GatewayHealthSettings:
    return GatewayHealthSettings.from_env()


@cache
def forwarder_settings() -> ForwarderSettings:
    return ForwarderSettings.from_env()


@cache
def endpoint_policy_settings() -> EndpointPolicySettings:
    return EndpointPolicySettings.from_env()


def recovery_settings() -> RecoverySettings:
    return RecoverySettings.from_env()
