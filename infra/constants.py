"""Names shared by the constructs, the stack outputs and the tools that read the template.

Physical names carry the stage so that two stages can live in one account; the bucket is the
exception (S3 names are global), its name is a stack output instead.
"""

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

RECEIVER_HANDLER: Final = "sensorhook.handlers.receiver.handler"
PROCESSOR_HANDLER: Final = "sensorhook.handlers.processor.handler"
LAKE_WRITER_HANDLER: Final = "sensorhook.handlers.lake_writer.handler"

# Bucket prefixes (docs/architecture.md, "Stores").
RAW_PREFIX: Final = "raw/"
READINGS_PREFIX: Final = "readings/"
QUARANTINE_PREFIX: Final = "quarantine/"
INBOX_PREFIX: Final = "inbox/"

# Key attributes (docs/architecture.md, "Stores").
READINGS_PARTITION_KEY: Final = "series"
READINGS_SORT_KEY: Final = "point"
READINGS_TTL_ATTRIBUTE: Final = "expires_at"
SENSOR_STATE_PARTITION_KEY: Final = "series"
SENSOR_STATE_SORT_KEY: Final = "metric_channel"
GATEWAYS_PARTITION_KEY: Final = "gateway"
IDEMPOTENCY_PARTITION_KEY: Final = "id"  # Powertools' default key attribute
IDEMPOTENCY_TTL_ATTRIBUTE: Final = "expiration"  # Powertools' default expiry attribute

# SQS keeps a message at most 14 days; the DLQ keeps it that long so it can be redriven.
DLQ_RETENTION_DAYS: Final = 14

# Stack outputs: fixed logical ids that tests and the local mode read.
OUTPUT_API_URL: Final = "ApiUrl"
OUTPUT_INGEST_QUEUE_URL: Final = "IngestQueueUrl"
OUTPUT_DLQ_URL: Final = "DlqUrl"
OUTPUT_LAKE_WRITER_FAILURES_QUEUE_URL: Final = "LakeWriterFailuresQueueUrl"
OUTPUT_BUCKET_NAME: Final = "BucketName"
OUTPUT_ACCESS_LOG_BUCKET_NAME: Final = "AccessLogBucketName"
OUTPUT_READINGS_TABLE: Final = "ReadingsTable"
OUTPUT_SENSOR_STATE_TABLE: Final = "SensorStateTable"
OUTPUT_GATEWAYS_TABLE: Final = "GatewaysTable"
OUTPUT_IDEMPOTENCY_TABLE: Final = "IdempotencyTable"
OUTPUT_EVENT_BUS_NAME: Final = "EventBusName"
OUTPUT_V2020_SIGNING_SECRET_ARN: Final = "V2020SigningSecretArn"
OUTPUT_DS_HEADER_SECRET_ARN: Final = "DsHeaderSecretArn"
OUTPUT_EFENTO_HEADER_SECRET_ARN: Final = "EfentoHeaderSecretArn"
OUTPUT_ALARM_TOPIC_ARN: Final = "AlarmTopicArn"
OUTPUT_RECEIVER_FUNCTION_NAME: Final = "ReceiverFunctionName"
OUTPUT_PROCESSOR_FUNCTION_NAME: Final = "ProcessorFunctionName"
OUTPUT_LAKE_WRITER_FUNCTION_NAME: Final = "LakeWriterFunctionName"


def stack_name(stage: str) -> str:
    return f"{SERVICE_NAME}-{stage}"


def resource_name(stage: str, name: str) -> str:
    """`sensorhook-<stage>-<name>`: the physical name of a function, queue, table or secret."""
    return f"{SERVICE_NAME}-{stage}-{name}"


def event_bus_name(stage: str) -> str:
    return f"{SERVICE_NAME}-{stage}"


def secret_name(stage: str, name: str) -> str:
    """`sensorhook/<stage>/<name>`: Secrets Manager names read as paths."""
    return f"{SERVICE_NAME}/{stage}/{name}"
