"""The Glue catalog and Athena workgroup against the writers they describe: every projected
partition key and template against keys the writers really build, every column against the
canonical `Reading` model, and the workgroup's enforced settings."""

import base64
import json
import re
import types
import typing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.config import StageConfig
from infra.constructs.catalog import ATHENA_ENGINE_VERSION, glue_database_name
from infra.lake_catalog import (
    QUERIES_DIR,
    TABLES,
    VIEWS,
    LakeTable,
    named_queries,
)
from sensorhook.core.flavors import Flavor
from sensorhook.core.normalized import GatewayStatus
from sensorhook.core.reading import Reading
from sensorhook.dal.archive import raw_key
from sensorhook.logic.lake import gateway_status_key, lake_key
from tests.infra.cfn import Synth, logical_ids, render

AT = datetime(2026, 3, 7, 4, 5, 6, tzinfo=UTC)

# Java date formats Glue's projection uses, and the strftime each writer uses for them.
_JAVA_TO_STRFTIME = {"yyyy-MM-dd": "%Y-%m-%d"}

_PYTHON_TO_ATHENA = {
    str: "string",
    float: "double",
    int: "int",
    bool: "boolean",
    datetime: "timestamp",
}


def _reading(provider: str) -> Reading:
    return Reading(
        provider=provider,
        sensor_id="sensor-1",
        sensor_family="environmental",
        gateway_id=None,
        metric="temperature",
        channel="",
        value=1.5,
        unit="Cel",
        status="OK",
        measured_at=AT,
        received_at=AT,
        event_id="event-1",
    )


def _status(provider: str) -> GatewayStatus:
    return GatewayStatus(
        provider=provider, gateway_id="gw-1", reported_at=AT, schema_name="gateway_status_v3"
    )


def writer_keys(table: LakeTable) -> list[str]:
    """Keys the real writers build for this table, one per provider (or flavor)."""
    if table.name == "readings_files":
        return [lake_key(_reading(flavor.provider), "batch") for flavor in Flavor]
    if table.name == "gateway_status_files":
        return [gateway_status_key(_status(flavor.provider), "batch") for flavor in Flavor]
    if table.name == "raw_archive":
        return [raw_key(flavor, AT, ["message-1"]) for flavor in Flavor]
    raise AssertionError(f"no writer known for {table.name}: add it here")


def _glue_tables(dev: Synth) -> dict[str, dict[str, Any]]:
    tables = {}
    for logical_id in logical_ids(dev.resources, "AWS::Glue::Table"):
        table_input = dev.resources[logical_id]["Properties"]["TableInput"]
        tables[table_input["Name"]] = table_input
    return tables


def _template_pattern(template: str) -> re.Pattern[str]:
    """`raw/provider=${provider_key}/` -> a regex capturing each projected key's segment."""
    pattern = re.escape(template)
    pattern = re.sub(r"\\\$\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(pattern + r"[^/]+$")


def _accepts(parameters: dict[str, str], name: str, value: str) -> bool:
    """Whether Athena's projection of key `name` would enumerate `value` (for today's data)."""
    kind = parameters[f"projection.{name}.type"]
    if kind == "enum":
        return value in parameters[f"projection.{name}.values"].split(",")
    if kind == "integer":
        low, high = (int(v) for v in parameters[f"projection.{name}.range"].split(","))
        digits = int(parameters.get(f"projection.{name}.digits", "1"))
        return value.isdigit() and len(value) >= digits and low <= int(value) <= high
    if kind == "date":
        fmt = _JAVA_TO_STRFTIME[parameters[f"projection.{name}.format"]]
        start = parameters[f"projection.{name}.range"].split(",")[0]
        parsed = datetime.strptime(value, fmt).replace(tzinfo=UTC)
        return parsed.strftime(fmt) == value and parsed >= datetime.strptime(start, fmt).replace(
            tzinfo=UTC
        )
    raise AssertionError(f"unknown projection type {kind}")


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_projection_matches_the_keys_the_writers_build(dev: Synth, table: LakeTable) -> None:
    glue_table = _glue_tables(dev)[table.name]
    parameters = glue_table["Parameters"]
    template = render(parameters["storage.location.template"])
    scheme, _, bucket, path_template = template.split("/", 3)
    assert scheme == "s3:" and bucket.startswith("StorageBucket")

    placeholders = set(re.findall(r"\$\{(\w+)\}", path_template))
    projected = {key.split(".")[1] for key in parameters if key.startswith("projection.")} - {
        "enabled"
    }
    partition_keys = {key["Name"] for key in glue_table["PartitionKeys"]}
    assert parameters["projection.enabled"] == "true"
    assert placeholders == projected == partition_keys

    pattern = _template_pattern(path_template)
    for key in writer_keys(table):
        match = pattern.match(key)
        assert match, f"{key} does not fit {path_template}"
        for name, value in match.groupdict().items():
            assert _accepts(parameters, name, value), f"{name}={value} is outside the projection"
        # the table's location is the prefix every key lies under
        assert key.startswith(table.prefix)


def test_every_provider_and_flavor_is_projected(dev: Synth) -> None:
    raw = _glue_tables(dev)["raw_archive"]["Parameters"]
    assert set(raw["projection.flavor_key.values"].split(",")) == {f.value for f in Flavor}
    assert set(raw["projection.provider_key.values"].split(",")) == {f.provider for f in Flavor}


def _athena_type(annotation: Any) -> str:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return _PYTHON_TO_ATHENA[annotation]


def test_readings_columns_are_the_canonical_reading_model(dev: Synth) -> None:
    glue_table = _glue_tables(dev)["readings_files"]
    columns = [(c["Name"], c["Type"]) for c in glue_table["StorageDescriptor"]["Columns"]]

    expected = [(name, _athena_type(f.annotation)) for name, f in Reading.model_fields.items()]

    assert columns == expected


def test_gateway_status_columns_are_the_gateway_status_model(dev: Synth) -> None:
    glue_table = _glue_tables(dev)["gateway_status_files"]
    columns = {c["Name"] for c in glue_table["StorageDescriptor"]["Columns"]}
    # plus the delivery that carried the report
    assert columns == set(GatewayStatus.model_fields) | {"event_id", "received_at"}


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_views_expose_every_column_once_per_identity(dev: Synth, view: Any) -> None:
    glue_view = _glue_tables(dev)[view.name]
    table = _glue_tables(dev)[view.table.name]
    encoded = glue_view["ViewOriginalText"].removeprefix("/* Presto View: ").removesuffix(" */")
    document = json.loads(base64.b64decode(encoded))

    table_columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    table_columns += [k["Name"] for k in table["PartitionKeys"]]
    assert [c["name"] for c in document["columns"]] == table_columns
    assert document["schema"] == glue_database_name("dev")
    assert f"FROM {view.table.name}" in document["originalSql"]
    assert set(view.identity) <= set(table_columns)
    assert glue_view["TableType"] == "VIRTUAL_VIEW"


def test_workgroup_enforces_engine_3_encrypted_results_and_the_cutoff(dev: Synth) -> None:
    (logical_id,) = logical_ids(dev.resources, "AWS::Athena::WorkGroup")
    configuration = dev.resources[logical_id]["Properties"]["WorkGroupConfiguration"]
    cutoff = StageConfig.model_validate(
        dev.stack.node.try_get_context("sensorhook")["stages"]["dev"]
    ).athena_bytes_scanned_cutoff

    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["EngineVersion"]["SelectedEngineVersion"] == ATHENA_ENGINE_VERSION
    assert configuration["BytesScannedCutoffPerQuery"] == cutoff
    results = configuration["ResultConfiguration"]
    assert results["EncryptionConfiguration"]["EncryptionOption"] in {"SSE_S3", "SSE_KMS"}
    assert render(results["OutputLocation"]).endswith("/athena-results/")
    assert "StorageBucket" in render(results["OutputLocation"])


def test_the_cutoff_follows_configuration(tmp_path: Path) -> None:
    from infra.app import build_app, cdk_json_context

    context = cdk_json_context()
    context["sensorhook"]["stages"]["dev"]["athena_bytes_scanned_cutoff"] = 123 * 1024**2
    app, stack, _ = build_app(str(tmp_path), context)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    (workgroup,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Athena::WorkGroup"
    ]
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert configuration["BytesScannedCutoffPerQuery"] == 123 * 1024**2


def test_every_sql_file_is_a_named_query_verbatim(dev: Synth) -> None:
    files = {path.stem: path.read_text() for path in QUERIES_DIR.glob("*.sql")}
    deployed = {
        resource["Properties"]["Name"]: resource["Properties"]["QueryString"]
        for resource in dev.resources.values()
        if resource["Type"] == "AWS::Athena::NamedQuery"
    }
    assert len(files) >= 6
    assert deployed == files
    assert {q.name for q in named_queries()} == set(files)


def test_named_queries_read_only_the_views_that_hold_each_row_once() -> None:
    raw_tables = {t.name for t in TABLES if t.name != "raw_archive"}
    for query in named_queries():
        tokens = set(re.findall(r"\b\w+\b", query.sql))
        assert not tokens & raw_tables, f"{query.name} reads a files table, not its view"
        assert query.description, f"{query.name} has no leading -- description"


def test_projection_starts_before_any_data_and_reaches_tomorrow(dev: Synth) -> None:
    parameters = _glue_tables(dev)["readings_files"]["Parameters"]
    start, end = parameters["projection.day.range"].split(",")
    assert date.fromisoformat(start) <= date(2020, 1, 1)
    assert end == "NOW+1DAYS"
