"""Every detail-type the code publishes has a JSON Schema in schemas/events/, generated from the
models that build it; events the processor and health build validate against them.

The detail-types are found in the code, not listed here: every `OutboundEvent(<detail-type>, …)`
in functions/ (constants resolved), and every `detail_type=` / `"DetailType":` in infra/ (events
Step Functions states publish). A new detail-type without a schema fails this test.
"""

import ast
import json
from datetime import UTC, datetime

import pytest
from jsonschema import Draft4Validator, ValidationError

from infra.event_schemas import SCHEMAS_DIR, event_schemas
from local.event_schemas import main as schemas_command
from sensorhook.dal.health_store import GatewayHealth
from sensorhook.logic.health import (
    GatewayHealthChanged,
    SensorSilenceChanged,
    gateway_event,
    sensor_event,
)
from tests.code_scan import ROOT, assignments, python_files, strings
from tests.schema_validation import validate_event

AT = datetime(2026, 3, 7, 4, 5, 6, tzinfo=UTC)


def published_detail_types() -> dict[str, list[str]]:
    """detail-type -> where it is published."""
    found: dict[str, list[str]] = {}
    for path, tree, module in python_files("functions", "infra"):
        assigned = assignments(tree)
        for node in ast.walk(tree):
            candidates: list[ast.AST] = []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name == "OutboundEvent" and node.args:
                    candidates.append(node.args[0])
                candidates += [k.value for k in node.keywords if k.arg == "detail_type"]
            if isinstance(node, ast.Dict):
                candidates += [
                    v
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant) and k.value == "DetailType"
                ]
            for candidate in candidates:
                for value in strings(candidate, module, assigned):
                    found.setdefault(value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_code_publishes_the_detail_types_docs_events_lists() -> None:
    # the discovery itself works: it finds what the processor and gateway health publish
    assert {
        "readings.received",
        "steam_trap.state_changed",
        "gateway.offline",
        "gateway.online",
        "sensor.silent",
        "sensor.resumed",
    } <= set(published_detail_types())


def test_every_published_detail_type_has_a_schema() -> None:
    missing = {
        detail_type: where
        for detail_type, where in published_detail_types().items()
        if not (SCHEMAS_DIR / f"{detail_type}.json").exists()
    }
    assert missing == {}, (
        "add the detail's model to local/event_schemas.py and run "
        "`.venv/bin/python -m local.event_schemas --write`"
    )


def test_every_schema_is_a_draft_04_schema_of_a_published_detail_type() -> None:
    published = set(published_detail_types())
    for detail_type, schema in event_schemas().items():
        Draft4Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
        assert detail_type in published, f"{detail_type}.json describes nothing published"


def test_the_schema_files_are_what_the_models_generate() -> None:
    assert schemas_command(["--check"]) == 0


def _as_received(detail_type: str, detail: str) -> dict[str, object]:
    return {"source": "sensorhook", "detail-type": detail_type, "detail": json.loads(detail)}


@pytest.mark.parametrize("health", list(GatewayHealth))
def test_gateway_health_events_match_their_schema(health: GatewayHealth) -> None:
    change = GatewayHealthChanged(
        provider="everactive",
        gateway_id="GW-1",
        health=health,
        last_contact_at=None if health is GatewayHealth.OFFLINE else AT,
        offline_after_s=900,
        detected_at=AT,
    )
    event = gateway_event(change)
    validate_event(_as_received(event.detail_type, event.detail))


@pytest.mark.parametrize("silent", [True, False])
def test_sensor_silence_events_match_their_schema(silent: bool) -> None:
    change = SensorSilenceChanged(
        provider="efento",
        sensor_id="282C02424EFF",
        silent=silent,
        last_measured_at=AT,
        expected_period_s=60,
        silent_after_s=180,
        detected_at=AT,
    )
    event = sensor_event(change)
    validate_event(_as_received(event.detail_type, event.detail))


def test_a_detail_that_drifts_from_its_schema_fails() -> None:
    change = GatewayHealthChanged(
        provider="everactive",
        gateway_id="GW-1",
        health=GatewayHealth.OFFLINE,
        last_contact_at=None,
        offline_after_s=900,
        detected_at=AT,
    )
    event = _as_received("gateway.offline", change.model_dump_json())
    event["detail"]["renamed_field"] = 1  # type: ignore[index]
    with pytest.raises(ValidationError):
        validate_event(event)
    online_as_offline = _as_received(
        "gateway.offline",
        change.model_copy(update={"health": GatewayHealth.ONLINE}).model_dump_json(),
    )
    with pytest.raises(ValidationError):
        validate_event(online_as_offline)
