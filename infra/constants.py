"""Names shared by the constructs, the stack outputs and the tools that read the template.

Physical names carry the stage so that two stages can live in one account; the bucket is the
exception (S3 names are global), its name is a stack output instead.
"""

from enum import StrEnum
from typing import Final

SERVICE_NAME: Final = "sensorhook"
METRICS_NAMESPACE: Final = "sensorhook"
EVENT_SOURCE: Final = "sensorhook"  # the `source` of every event sensorhook puts on its bus

# The whole functions/ folder is one asset; these never belong in it.
ASSET_EXCLUDES: Final = (
    "tests",
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
)

# Every function's environment carries these beside its settings (and `make bench` imports the
# handlers with them, so it measures the cold start Lambda has). No pydantic plugin is installed
# in a function, yet pydantic would scan every installed distribution's entry points for one
# when the first model is built: tens of milliseconds of each cold start for nothing.
# pyarrow imports numpy, and numpy's OpenBLAS starts a thread (with its buffers) per core when
# it loads, about half of numpy's import; nothing here does linear algebra, one thread will do.
FUNCTION_RUNTIME_ENVIRONMENT: Final = {
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
    "OPENBLAS_NUM_THREADS": "1",
}

RECEIVER_HANDLER: Final = "sensorhook.handlers.receiver.handler"
PROCESSOR_HANDLER: Final = "sensorhook.handlers.processor.handler"
LAKE_WRITER_HANDLER: Final = "sensorhook.handlers.lake_writer.handler"
SUBSCRIPTIONS_HANDLER: Final = "sensorhook.handlers.subscriptions.handler"
GATEWAY_HEALTH_HANDLER: Final = "sensorhook.handlers.gateway_health.handler"
FORWARDER_HANDLER: Final = "sensorhook.handlers.forwarder.handler"
ENDPOINT_POLICY_HANDLER: Final = "sensorhook.handlers.endpoint_policy.handler"

# Fixed logical id of the endpoint policy state machine (`EmbeddedStack.state_machine_arns`).
ENDPOINT_POLICY_STATE_MACHINE_ID: Final = "EndpointPolicyStateMachine"
RECOVERY_HANDLER: Final = "sensorhook.handlers.recovery.handler"
LAKE_COMPACTOR_HANDLER: Final = "sensorhook.handlers.lake_compactor.handler"

# Fixed logical ids of the schedule rules: `EmbeddedStack.fire_schedule(<id>)` in the local mode.
SUBSCRIPTIONS_SCHEDULE_RULE_ID: Final = "SubscriptionsSchedule"
GATEWAY_HEALTH_SCHEDULE_RULE_ID: Final = "GatewayHealthSchedule"
LAKE_COMPACTION_SCHEDULE_RULE_ID: Final = "LakeCompactionSchedule"

# Bucket prefixes (docs/architecture.md, "Stores").
RAW_PREFIX: Final = "raw/"
READINGS_PREFIX: Final = "readings/"
QUARANTINE_PREFIX: Final = "quarantine/"
INBOX_PREFIX: Final = "inbox/"
GATEWAY_STATUS_PREFIX: Final = "gateway_status/"  # gateway status history, Parquet (Athena)
ATHENA_RESULTS_PREFIX: Final = "athena-results/"  # the workgroup's encrypted query results

# Key attributes (docs/architecture.md, "Stores").
READINGS_PARTITION_KEY: Final = "series"
READINGS_SORT_KEY: Final = "point"
READINGS_TTL_ATTRIBUTE: Final = "expires_at"
SENSOR_STATE_PARTITION_KEY: Final = "series"
SENSOR_STATE_SORT_KEY: Final = "metric_channel"
GATEWAYS_PARTITION_KEY: Final = "gateway"
SUBSCRIPTIONS_PARTITION_KEY: Final = "name"  # the subscription's name in cdk.json
ENDPOINTS_PARTITION_KEY: Final = "endpoint"  # a forwarding endpoint's name
ENDPOINTS_SORT_KEY: Final = "entry"  # "state" or "transition#<at>#<version>#<random>"

INCIDENTS_PARTITION_KEY: Final = "incident"  # the recovery execution's name
INCIDENTS_SORT_KEY: Final = "part"  # "summary" or "sensor#<id>"
IDEMPOTENCY_PARTITION_KEY: Final = "id"  # Powertools' default key attribute
IDEMPOTENCY_TTL_ATTRIBUTE: Final = "expiration"  # Powertools' default expiry attribute

# SQS keeps a message at most 14 days; the DLQ keeps it that long so it can be redriven.
DLQ_RETENTION_DAYS: Final = 14


class Output(StrEnum):
    """Stack outputs: fixed logical ids that the tests and the local mode read.

    (`noqa: S105`: the *SECRET_ARN members name outputs holding ARNs, not secret values.)
    """

    API_URL = "ApiUrl"
    INGEST_QUEUE_URL = "IngestQueueUrl"
    DLQ_URL = "DlqUrl"
    LAKE_WRITER_FAILURES_QUEUE_URL = "LakeWriterFailuresQueueUrl"
    BUCKET_NAME = "BucketName"
    ACCESS_LOG_BUCKET_NAME = "AccessLogBucketName"
    READINGS_TABLE = "ReadingsTable"
    SENSOR_STATE_TABLE = "SensorStateTable"
    GATEWAYS_TABLE = "GatewaysTable"
    IDEMPOTENCY_TABLE = "IdempotencyTable"
    EVENT_BUS_NAME = "EventBusName"
    V2020_SIGNING_SECRET_ARN = "V2020SigningSecretArn"  # noqa: S105
    DS_HEADER_SECRET_ARN = "DsHeaderSecretArn"  # noqa: S105
    EFENTO_HEADER_SECRET_ARN = "EfentoHeaderSecretArn"  # noqa: S105
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    RECEIVER_FUNCTION_NAME = "ReceiverFunctionName"
    PROCESSOR_FUNCTION_NAME = "ProcessorFunctionName"
    LAKE_WRITER_FUNCTION_NAME = "LakeWriterFunctionName"
    SUBSCRIPTIONS_TABLE = "SubscriptionsTable"
    SUBSCRIPTIONS_FUNCTION_NAME = "SubscriptionsFunctionName"
    RECOVERY_STATE_MACHINE_ARN = "RecoveryStateMachineArn"
    RECOVERY_TOPIC_ARN = "RecoveryTopicArn"
    INCIDENTS_TABLE = "IncidentsTable"
    RECOVERY_FUNCTION_NAME = "RecoveryFunctionName"
    GATEWAY_HEALTH_FUNCTION_NAME = "GatewayHealthFunctionName"
    LAKE_COMPACTOR_FUNCTION_NAME = "LakeCompactorFunctionName"
    DS_API_CREDENTIALS_SECRET_ARN = "DsApiCredentialsSecretArn"  # noqa: S105
    V2020_API_CREDENTIALS_SECRET_ARN = "V2020ApiCredentialsSecretArn"  # noqa: S105
    ENDPOINTS_TABLE = "ForwardingEndpointsTable"  # the name the operator CLI looks for
    ENDPOINT_POLICY_STATE_MACHINE_ARN = "EndpointPolicyStateMachineArn"
    FORWARDER_FUNCTION_NAME = "ForwarderFunctionName"
    FORWARDING_ENDPOINTS = "ForwardingEndpoints"  # the configured names, comma-separated
    FORWARDING_QUEUE_PREFIX = "ForwardingQueuePrefix"


def stack_name(stage: str) -> str:
    return f"{SERVICE_NAME}-{stage}"


def resource_name(stage: str, name: str) -> str:
    """`sensorhook-<stage>-<name>`: the physical name of a function, queue, table or secret."""
    return f"{SERVICE_NAME}-{stage}-{name}"


def state_machine_name(stage: str, name: str) -> str:
    """Fixed, so a function can be told the ARN without a reference back to the machine."""
    return f"{SERVICE_NAME}-{stage}-{name}"


def event_bus_name(stage: str) -> str:
    return f"{SERVICE_NAME}-{stage}"


def secret_name(stage: str, name: str) -> str:
    """`sensorhook/<stage>/<name>`: Secrets Manager names read as paths."""
    return f"{SERVICE_NAME}/{stage}/{name}"


def forwarding_queue_name(stage: str, endpoint: str) -> str:
    """Each forwarding endpoint's queue; the forwarder reads the endpoint from the name."""
    return resource_name(stage, f"forward-{endpoint}")


def forwarding_secret_name(stage: str, endpoint: str) -> str:
    return secret_name(stage, f"forwarding/{endpoint}")
