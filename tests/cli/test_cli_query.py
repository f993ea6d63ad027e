"""`sensorhook query`: DuckDB over the local stack's lake (Parquet written by the product's
LakeStore into an S3 served by moto on a free port, found through .local/endpoints.json as
`make local` writes it), and Athena in the stack's workgroup (a stubbed client that checks the
query text, workgroup, database and parameters, and pages its results)."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from cli.target import PROJECT_DIR
from infra.constants import Output, resource_name
from infra.constructs.catalog import glue_database_name
from local.lake_sql import named_query
from sensorhook.core.reading import Reading
from sensorhook.dal.lake_store import LakeStore
from sensorhook.logic.lake import lake_key
from tests.cli.conftest import REGION, Stack
from tests.cli.stubs import stubbed

DAY = datetime(2026, 11, 29, tzinfo=UTC)
LOCAL_BUCKET = "sensorhook-local-bucket"


def _readings(provider: str, count: int) -> list[Reading]:
    return [
        Reading(
            provider=provider,
            sensor_id=f"{provider}-sensor-{n % 3}",
            sensor_family=provider,
            gateway_id="gw-1",
            metric="temperature",
            channel="1",
            value=20.0 + n,
            unit="Cel",
            status="OK",
            measured_at=DAY + timedelta(minutes=n),
            period_s=60,
            received_at=DAY + timedelta(minutes=n, seconds=5),
            event_id=f"{provider}:{n}",
        )
        for n in range(count)
    ]


@pytest.fixture
def local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A local stack's details file whose embedded S3 holds a lake day: 5 Efento and
    3 Everactive readings, the Efento ones written twice (a redelivered batch)."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "SENSORHOOK_STACK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=LOCAL_BUCKET)
        lake = LakeStore(LOCAL_BUCKET, client=s3)
        efento = _readings("efento", 5)
        lake.put_readings(lake_key(efento[0], "shard-00001"), efento)
        lake.put_readings(lake_key(efento[0], "shard-00002"), efento)  # the same batch again
        everactive = _readings("everactive", 3)
        lake.put_readings(lake_key(everactive[0], "shard-00003"), everactive)
        details = tmp_path / "endpoints.json"
        details.write_text(
            json.dumps(
                {
                    "aws_endpoint": endpoint,
                    "api_url": "http://127.0.0.1:1/",
                    "region": REGION,
                    "credentials": {
                        "aws_access_key_id": "testing",
                        "aws_secret_access_key": "testing",
                    },
                    "outputs": {Output.BUCKET_NAME: LOCAL_BUCKET},
                }
            )
        )
        yield details
    finally:
        server.stop()


def _local(sensorhook: Any, details: Path, *args: str) -> Any:
    return sensorhook("--local", "--endpoints", str(details), "query", *args, stack=None)


def test_a_named_query_runs_on_the_local_lake_exactly_once(local_stack: Path, sensorhook) -> None:
    result = _local(
        sensorhook,
        local_stack,
        "--named",
        "readings_per_provider_per_day",
        "2026-11-29",
        "2026-11-29",
        "--json",
    )

    assert result.exit_code == 0, result.output
    # the view the named query reads counts the redelivered Efento batch once
    assert json.loads(result.stdout) == [
        {"day": "2026-11-29", "provider": "efento", "readings": 5},
        {"day": "2026-11-29", "provider": "everactive", "readings": 3},
    ]


def test_sql_with_parameters_prints_a_table(local_stack: Path, sensorhook) -> None:
    result = _local(
        sensorhook,
        local_stack,
        "SELECT sensor_id, count(*) AS n FROM readings WHERE provider = ? GROUP BY 1 ORDER BY 1",
        "everactive",
    )

    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "everactive-sensor" in line]
    assert len(rows) == 3 and all(line.split("│")[2].strip() == "1" for line in rows)
    assert "3 row(s), DuckDB (local)" in result.stdout


def test_since_fills_the_day_parameters(local_stack: Path, sensorhook) -> None:
    result = _local(
        sensorhook,
        local_stack,
        "--named",
        "readings_per_provider_per_day",
        "--since",
        "2026-11-01",
        "--json",
    )

    assert result.exit_code == 0, result.output
    assert {row["provider"] for row in json.loads(result.stdout)} == {"efento", "everactive"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--named", "nope"), "no named query 'nope'"),
        (("--named", "readings_per_provider_per_day", "2026-11-29"), "takes 2 parameter(s), 1"),
        ((), "give SQL, --named NAME or --list"),
    ],
)
def test_usage_errors_say_what_is_wrong(sensorhook, args: tuple[str, ...], message: str) -> None:
    result = sensorhook("query", *args, stack=None)

    assert result.exit_code == 2
    assert message in result.output


def test_bad_sql_is_one_line(local_stack: Path, sensorhook) -> None:
    result = _local(sensorhook, local_stack, "SELECT nope FROM readings")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: query failed:")
    assert "Traceback" not in result.output


def test_list_names_every_named_query(sensorhook) -> None:
    result = sensorhook("query", "--list", "--json", stack=None)

    names = {item["name"] for item in json.loads(result.stdout)}
    assert {path.stem for path in (PROJECT_DIR / "athena" / "queries").glob("*.sql")} == names


def _cell(value: str) -> dict[str, str]:
    return {"VarCharValue": value}


def test_a_deployed_stack_runs_athena_in_its_workgroup(
    stack: Stack, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = named_query("readings_per_provider_per_day").sql
    columns = [{"Name": name, "Type": "varchar"} for name in ("day", "provider", "readings")]
    with stubbed(monkeypatch, "athena") as athena:
        athena.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-1"},
            {
                "QueryString": sql,
                # the names infra/constructs/catalog.py gives the dev stage's workgroup and database
                "WorkGroup": resource_name("dev", "lake"),
                "QueryExecutionContext": {"Database": glue_database_name("dev")},
                "ExecutionParameters": ["'2026-11-28'", "'2026-11-29'"],
            },
        )
        for state in ("RUNNING", "SUCCEEDED"):
            athena.add_response(
                "get_query_execution",
                {"QueryExecution": {"QueryExecutionId": "q-1", "Status": {"State": state}}},
                {"QueryExecutionId": "q-1"},
            )
        athena.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "ResultSetMetadata": {"ColumnInfo": columns},
                    "Rows": [
                        {"Data": [_cell("day"), _cell("provider"), _cell("readings")]},
                        {"Data": [_cell("2026-11-28"), _cell("efento"), _cell("1440")]},
                    ],
                },
                "NextToken": "page-2",
            },
            {"QueryExecutionId": "q-1"},
        )
        athena.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "ResultSetMetadata": {"ColumnInfo": columns},
                    "Rows": [{"Data": [_cell("2026-11-29"), _cell("efento"), _cell("1380")]}],
                }
            },
            {"QueryExecutionId": "q-1", "NextToken": "page-2"},
        )
        result = sensorhook(
            "query",
            "--named",
            "readings_per_provider_per_day",
            "2026-11-28",
            "2026-11-29",
            "--poll",
            "0",
            "--json",
        )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"day": "2026-11-28", "provider": "efento", "readings": "1440"},
        {"day": "2026-11-29", "provider": "efento", "readings": "1380"},
    ]


def test_a_failed_athena_query_is_one_line(
    stack: Stack, sensorhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stubbed(monkeypatch, "athena") as athena:
        athena.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
        athena.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "QueryExecutionId": "q-2",
                    "Status": {
                        "State": "FAILED",
                        "StateChangeReason": "COLUMN_NOT_FOUND: Column 'nope' cannot be resolved",
                    },
                }
            },
        )
        result = sensorhook("query", "SELECT nope FROM readings", "--poll", "0")

    assert result.exit_code == 1
    assert "Athena query q-2 FAILED: COLUMN_NOT_FOUND" in result.stderr
