"""The stack's EventBridge schema registry holds every schema in schemas/events/, verbatim."""

import json

from infra.constructs.event_schemas import registry_schema_name
from infra.event_schemas import event_schemas
from tests.infra.cfn import Synth, logical_ids


def test_the_registry_holds_every_event_schema(dev: Synth) -> None:
    assert len(logical_ids(dev.resources, "AWS::EventSchemas::Registry")) == 1
    deployed = {
        resource["Properties"]["SchemaName"]: resource["Properties"]
        for resource in dev.resources.values()
        if resource["Type"] == "AWS::EventSchemas::Schema"
    }

    expected = {registry_schema_name(d): schema for d, schema in event_schemas().items()}

    assert set(deployed) == set(expected) and len(expected) >= 6
    for name, schema in expected.items():
        assert deployed[name]["Type"] == "JSONSchemaDraft4"
        assert json.loads(deployed[name]["Content"]) == schema
