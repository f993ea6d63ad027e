"""An EventBridge schema registry holding the JSON Schema of every event detail-type sensorhook
publishes (schemas/events/), so users can browse them and generate code bindings."""

import json

from aws_cdk import aws_eventschemas as eventschemas
from constructs import Construct

from infra.constants import EVENT_SOURCE, resource_name
from infra.event_schemas import event_schemas


def registry_schema_name(detail_type: str) -> str:
    """`sensorhook@readings.received`: EventBridge's own naming, source@detail-type."""
    return f"{EVENT_SOURCE}@{detail_type}"


class EventSchemas(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str) -> None:
        super().__init__(scope, construct_id)
        self.registry = eventschemas.CfnRegistry(
            self,
            "Registry",
            registry_name=resource_name(stage, "events"),
            description="sensorhook event details (source: sensorhook), one schema per detail-type",
        )
        self.schemas: dict[str, eventschemas.CfnSchema] = {}
        for detail_type, schema in event_schemas().items():
            cfn = eventschemas.CfnSchema(
                self,
                f"Schema-{detail_type}",
                registry_name=self.registry.attr_registry_name,
                schema_name=registry_schema_name(detail_type),
                type="JSONSchemaDraft4",
                description=schema.get("description", detail_type)[:256],
                content=json.dumps(schema),
            )
            self.schemas[detail_type] = cfn
