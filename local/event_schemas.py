"""JSON Schemas (draft-04, what EventBridge's schema registry takes) of every event detail
sensorhook publishes, generated from the pydantic models that produce the details.

    .venv/bin/python -m local.event_schemas --write   # after changing an event's model
    .venv/bin/python -m local.event_schemas --check   # what tests/unit/test_event_schemas.py runs

The files live in schemas/events/<detail-type>.json; the stack puts each into an EventBridge
schema registry (infra/constructs/event_schemas.py), so users can generate code bindings.
"""

import argparse
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from infra.event_schemas import SCHEMAS_DIR, schema_path
from sensorhook.core.forwarding import EndpointStatus
from sensorhook.core.normalized import SteamTrapStateChanged
from sensorhook.core.reading import Reading
from sensorhook.core.timestamps import UtcDatetime
from sensorhook.logic.domain_events import (
    ENDPOINT_STATUS_CHANGED,
    READINGS_GAP_DETECTED,
    READINGS_RECEIVED,
    STEAM_TRAP_STATE_CHANGED,
    SUBSCRIPTION_DISABLED,
    SUBSCRIPTION_RECOVERED,
)
from sensorhook.logic.efento_gaps import GapDetected
from sensorhook.logic.health import (
    GATEWAY_OFFLINE,
    GATEWAY_ONLINE,
    SENSOR_RESUMED,
    SENSOR_SILENT,
    GatewayHealthChanged,
    SensorSilenceChanged,
)
from sensorhook.logic.recovery import IncidentRecord

DRAFT_04 = "http://json-schema.org/draft-04/schema#"


class ReadingsReceived(BaseModel):
    """The detail of `readings.received` (built as text in sensorhook.logic.domain_events)."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    sensor_id: str
    event_id: str
    dedupe_id: str
    count: int
    readings: list[Reading]


class SteamTrapStateChangedEvent(SteamTrapStateChanged):
    """The detail of `steam_trap.state_changed`: the change and its dedupe_id."""

    dedupe_id: str


class GapDetectedEvent(GapDetected):
    """The detail of `readings.gap_detected`: the gap and its dedupe_id."""

    model_config = ConfigDict(extra="forbid")

    dedupe_id: str


class IncidentEvent(IncidentRecord):
    """The detail of `subscription.recovered` / `subscription.disabled`: the incident record
    without its per-sensor map (sensorhook.logic.recovery._event_detail)."""

    model_config = ConfigDict(extra="forbid")

    readings_recovered_per_sensor: dict[str, int] = Field(default={}, exclude=True)


class EndpointStatusChanged(BaseModel):
    """The detail of `endpoint.status_changed` (sensorhook.dal.endpoints_store)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    endpoint: str
    from_status: EndpointStatus = Field(alias="from")
    to_status: EndpointStatus = Field(alias="to")
    at: UtcDatetime
    reason: str
    last_response_code: int | None


def _draft_04(model: type[BaseModel], title: str, description: str) -> dict[str, Any]:
    """pydantic's schema, closed (no unknown fields) and in draft-04 terms."""
    schema = model.model_json_schema(mode="serialization", ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    close(definitions)
    document: dict[str, Any] = {"$schema": DRAFT_04, "title": title, "description": description}
    document.update(schema)
    document["title"], document["description"] = title, description
    if definitions:
        document["definitions"] = definitions
    return document


def _with(fixed: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Pin properties to one value for a detail-type (draft-04 has no `const`: a 1-value enum)."""

    def apply(schema: dict[str, Any]) -> dict[str, Any]:
        schema = copy.deepcopy(schema)
        for name, value in fixed.items():
            schema["properties"][name] = {"enum": [value]}
        return schema

    return apply


_SOURCES: dict[str, tuple[type[BaseModel], str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    READINGS_RECEIVED: (
        ReadingsReceived,
        "One sensor's canonical readings from one delivery, once stored.",
        _with({}),
    ),
    STEAM_TRAP_STATE_CHANGED: (
        SteamTrapStateChangedEvent,
        "An Everactive steam trap changed state (v2020-07 Steam Trap State Change).",
        _with({}),
    ),
    GATEWAY_OFFLINE: (
        GatewayHealthChanged,
        "A gateway went silent for longer than the configured threshold.",
        _with({"health": "offline"}),
    ),
    GATEWAY_ONLINE: (
        GatewayHealthChanged,
        "A gateway that was offline is in contact again.",
        _with({"health": "online"}),
    ),
    SENSOR_SILENT: (
        SensorSilenceChanged,
        "A sensor missed more measurement periods than the configured threshold.",
        _with({"silent": True}),
    ),
    SENSOR_RESUMED: (
        SensorSilenceChanged,
        "A silent sensor measures again.",
        _with({"silent": False}),
    ),
    READINGS_GAP_DETECTED: (
        GapDetectedEvent,
        "Efento measurement periods missing from a channel's series (docs/recovery.md).",
        _with({}),
    ),
    SUBSCRIPTION_RECOVERED: (
        IncidentEvent,
        "A broken subscription was recovered and its gap backfilled (docs/recovery.md).",
        _with({"outcome": "recovered"}),
    ),
    SUBSCRIPTION_DISABLED: (
        IncidentEvent,
        "Recovery gave up: the subscription is disabled until an operator acts.",
        _with({"outcome": "gave_up"}),
    ),
    ENDPOINT_STATUS_CHANGED: (
        EndpointStatusChanged,
        "A forwarding endpoint's status changed (Efento's statuses, docs/forwarding.md).",
        _with({}),
    ),
}


def generated_schemas() -> dict[str, dict[str, Any]]:
    """detail-type -> its schema, from the models."""
    schemas = {}
    for detail_type, (model, description, adjust) in _SOURCES.items():
        schemas[detail_type] = adjust(_draft_04(model, f"sensorhook {detail_type}", description))
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.event_schemas", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="write schemas/events/*.json")
    group.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for detail_type, schema in generated_schemas().items():
        path: Path = schema_path(detail_type)
        if args.write:
            SCHEMAS_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(render(schema))
        elif not path.exists() or path.read_text() != render(schema):
            stale.append(path.name)
    if stale:
        print(f"out of date (run --write): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
