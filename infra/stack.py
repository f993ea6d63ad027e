"""The sensorhook stack: composes the capability constructs and publishes the outputs that the
tests and the local mode read (fixed logical ids, see infra/constants.py)."""

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra import constants as names
from infra.config import StageConfig
from infra.constants import Output
from infra.constructs.catalog import Catalog
from infra.constructs.control_plane import ControlPlane
from infra.constructs.dashboard import Dashboard
from infra.constructs.event_schemas import EventSchemas
from infra.constructs.events import EventsBus
from infra.constructs.forwarding import Forwarding
from infra.constructs.ingest import Ingest
from infra.constructs.lake_compaction import LakeCompaction
from infra.constructs.monitoring import Monitoring
from infra.constructs.processing import Processing
from infra.constructs.recovery import Recovery
from infra.constructs.storage import Storage


class SensorhookStack(Stack):
    def __init__(self, scope: Construct, *, stage: str, config: StageConfig) -> None:
        super().__init__(
            scope,
            names.stack_name(stage),
            description=f"sensorhook ({stage}): sensor-cloud webhooks into this account",
        )
        self.stage = stage
        self.config = config

        self.storage = Storage(self, "Storage", stage=stage, config=config)
        self.events = EventsBus(self, "Events", stage=stage, config=config)
        self.ingest = Ingest(self, "Ingest", stage=stage, config=config, bucket=self.storage.bucket)
        self.processing = Processing(
            self,
            "Processing",
            stage=stage,
            config=config,
            ingest_queue=self.ingest.queue,
            bucket=self.storage.bucket,
            readings_table=self.storage.readings_table,
            sensor_state_table=self.storage.sensor_state_table,
            gateways_table=self.storage.gateways_table,
            idempotency_table=self.storage.idempotency_table,
            bus=self.events.bus,
        )
        self.control_plane = ControlPlane(
            self,
            "ControlPlane",
            stage=stage,
            config=config,
            webhook_base_url=self.ingest.stage.url,
            gateways_table=self.storage.gateways_table,
            sensor_state_table=self.storage.sensor_state_table,
            bus=self.events.bus,
            ds_header_secret=self.ingest.ds_header_secret,
            v2020_signing_secret=self.ingest.v2020_signing_secret,
            # the callbacks must be answered before the provider is told about them
            reconcile_after=[self.ingest, self.processing],
        )
        self.forwarding = Forwarding(
            self,
            "Forwarding",
            stage=stage,
            config=config,
            bus=self.events.bus,
            bucket=self.storage.bucket,
        )
        self.recovery = Recovery(
            self,
            "Recovery",
            stage=stage,
            config=config,
            desired_subscriptions=self.control_plane.desired_subscriptions,
            subscriptions_function=self.control_plane.subscriptions.function,
            subscriptions_table=self.control_plane.subscriptions_table,
            gateways_table=self.storage.gateways_table,
            sensor_state_table=self.storage.sensor_state_table,
            readings_table=self.storage.readings_table,
            ingest_queue=self.ingest.queue,
            bus=self.events.bus,
            ds_api_credentials=self.control_plane.ds_api_credentials,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            stage=stage,
            config=config,
            ingest_queue=self.ingest.queue,
            dead_letter_queue=self.ingest.dead_letter_queue,
            lake_writer_failures=self.processing.lake_writer_failures,
            functions={
                "Receiver": self.ingest.receiver.function,
                "Processor": self.processing.processor.function,
                "LakeWriter": self.processing.lake_writer.function,
                "Subscriptions": self.control_plane.subscriptions.function,
                "GatewayHealth": self.control_plane.gateway_health.function,
                "Forwarder": self.forwarding.forwarder.function,
                "EndpointPolicy": self.forwarding.policy.function.function,
                "Recovery": self.recovery.function.function,
            },
            lake_writer=self.processing.lake_writer.function,
        )
        self.control_plane.add_alarms(self.monitoring.topic, config)
        self.catalog = Catalog(
            self, "Catalog", stage=stage, config=config, bucket=self.storage.bucket
        )
        self.event_schemas = EventSchemas(self, "EventSchemas", stage=stage)
        self.dashboard = Dashboard(
            self,
            "Dashboard",
            stage=stage,
            functions={
                "Processor": self.processing.processor.function,
                "LakeWriter": self.processing.lake_writer.function,
            },
            queues={
                "Ingest": self.ingest.queue,
                "DeadLetter": self.ingest.dead_letter_queue,
                "LakeWriterFailures": self.processing.lake_writer_failures,
            },
        )
        self.lake_compaction = LakeCompaction(
            self, "LakeCompaction", stage=stage, config=config, bucket=self.storage.bucket
        )
        self._outputs()

    def _outputs(self) -> None:
        storage, ingest, processing = self.storage, self.ingest, self.processing
        control_plane = self.control_plane
        for logical_id, value in (
            (Output.API_URL, ingest.stage.url),
            (Output.INGEST_QUEUE_URL, ingest.queue.queue_url),
            (Output.DLQ_URL, ingest.dead_letter_queue.queue_url),
            (
                Output.LAKE_WRITER_FAILURES_QUEUE_URL,
                processing.lake_writer_failures.queue_url,
            ),
            (Output.BUCKET_NAME, storage.bucket.bucket_name),
            (Output.ACCESS_LOG_BUCKET_NAME, storage.access_log_bucket.bucket_name),
            (Output.READINGS_TABLE, storage.readings_table.table_name),
            (Output.SENSOR_STATE_TABLE, storage.sensor_state_table.table_name),
            (Output.GATEWAYS_TABLE, storage.gateways_table.table_name),
            (Output.IDEMPOTENCY_TABLE, storage.idempotency_table.table_name),
            (Output.EVENT_BUS_NAME, self.events.bus.event_bus_name),
            (Output.V2020_SIGNING_SECRET_ARN, ingest.v2020_signing_secret.secret_arn),
            (Output.DS_HEADER_SECRET_ARN, ingest.ds_header_secret.secret_arn),
            (Output.EFENTO_HEADER_SECRET_ARN, ingest.efento_header_secret.secret_arn),
            (Output.ALARM_TOPIC_ARN, self.monitoring.topic.topic_arn),
            (Output.RECEIVER_FUNCTION_NAME, ingest.receiver.function.function_name),
            (Output.PROCESSOR_FUNCTION_NAME, processing.processor.function.function_name),
            (
                Output.LAKE_WRITER_FUNCTION_NAME,
                processing.lake_writer.function.function_name,
            ),
            (Output.SUBSCRIPTIONS_TABLE, control_plane.subscriptions_table.table_name),
            (
                Output.SUBSCRIPTIONS_FUNCTION_NAME,
                control_plane.subscriptions.function.function_name,
            ),
            (
                Output.GATEWAY_HEALTH_FUNCTION_NAME,
                control_plane.gateway_health.function.function_name,
            ),
            (
                Output.LAKE_COMPACTOR_FUNCTION_NAME,
                self.lake_compaction.compactor.function.function_name,
            ),
            (
                Output.DS_API_CREDENTIALS_SECRET_ARN,
                control_plane.ds_api_credentials.secret_arn,
            ),
            (
                Output.V2020_API_CREDENTIALS_SECRET_ARN,
                control_plane.v2020_api_credentials.secret_arn,
            ),
            (Output.ENDPOINTS_TABLE, self.forwarding.table.table_name),
            (
                Output.ENDPOINT_POLICY_STATE_MACHINE_ARN,
                self.forwarding.policy.state_machine.state_machine_arn,
            ),
            (Output.FORWARDER_FUNCTION_NAME, self.forwarding.forwarder.function.function_name),
            (
                Output.FORWARDING_ENDPOINTS,
                ",".join(e.name for e in self.config.forwarding_endpoints) or "-",
            ),
            (Output.FORWARDING_QUEUE_PREFIX, self.forwarding.queue_name_prefix),
            (Output.RECOVERY_STATE_MACHINE_ARN, self.recovery.state_machine.state_machine_arn),
            (Output.RECOVERY_TOPIC_ARN, self.recovery.topic.topic_arn),
            (Output.INCIDENTS_TABLE, self.recovery.incidents_table.table_name),
            (Output.RECOVERY_FUNCTION_NAME, self.recovery.function.function.function_name),
        ):
            CfnOutput(self, logical_id, value=value)
