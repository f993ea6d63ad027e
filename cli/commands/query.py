"""`sensorhook query`: SQL over the lake, Athena against a deployed stack and DuckDB against
the local one, with the same named queries (athena/queries/*.sql, docs/athena.md).

Locally the lake lives in the embedded S3: it is mirrored into a temporary directory and read
by local.lake_sql, which translates Athena's SQL (Trino) for DuckDB with sqlglot. Deployed, the
query runs in the stack's workgroup against its Glue database (infra/constructs/catalog.py
names both from the stage: sensorhook-<stage>-lake and sensorhook_<stage>_lake).
"""

import re
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.errors import CliError
from cli.output import JsonOption, console, parse_since, print_json, target
from cli.target import Target
from infra.constants import Output

# Athena's terminal states; anything else is still on its way.
_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def query(
    ctx: typer.Context,
    sql: Annotated[str | None, typer.Argument(help="Athena SQL (with ? parameters)")] = None,
    parameters: Annotated[
        list[str] | None, typer.Argument(help="values for the ? parameters, in order")
    ] = None,
    named: Annotated[str | None, typer.Option("--named", help="a named query (see --list)")] = None,
    list_named: Annotated[bool, typer.Option("--list", help="list the named queries")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="fill a query's first/last day parameters: from this day to today"),
    ] = None,
    workgroup: Annotated[
        str | None, typer.Option(help="Athena workgroup (default: <stack>-lake)")
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="Glue database (default: <stack>_lake, with _ for -)")
    ] = None,
    poll: Annotated[float, typer.Option(help="seconds between Athena status checks")] = 1.0,
    json_output: JsonOption = False,
) -> None:
    """Run SQL or a named query over the lake: Athena deployed, DuckDB locally.

    With --named, the positional values are the named query's parameters. --since 7d fills
    the two day parameters (first day, last day) that most named queries take.

    [b]Examples[/b]

      sensorhook query --list

      sensorhook query --named readings_per_provider_per_day --since 7d

      sensorhook query "SELECT provider, count(*) FROM readings WHERE day = ? GROUP BY 1" 2026-11-29
    """
    from local.lake_sql import named_queries

    if list_named:
        listed = [{"name": q.name, "description": q.description} for q in named_queries()]
        if json_output:
            print_json(listed)
        else:
            table = Table("name", "description", title="Named queries", title_justify="left")
            for item in listed:
                table.add_row(item["name"], item["description"])
            console().print(table)
        return
    text, values = _statement(sql, list(parameters or []), named)
    if since is not None:
        values = _days_since(text, values, since)
    wanted = _placeholders(text)
    if len(values) != wanted:
        raise typer.BadParameter(
            f"the query takes {wanted} parameter(s), {len(values)} given", param_hint="PARAMETERS"
        )
    found = target(ctx)
    if found.local:
        columns, rows, engine = _duckdb(found, text, values)
    else:
        columns, rows = _athena(found, text, values, workgroup, database, poll)
        engine = f"Athena {workgroup or workgroup_name(found)}"
    if json_output:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    out = console()
    out.print(table)
    out.print(f"[dim]{len(rows)} row(s), {engine}[/dim]")


def _statement(sql: str | None, values: list[str], named: str | None) -> tuple[str, list[str]]:
    """The SQL to run and its parameter values: with --named, every positional is a value."""
    from local.lake_sql import named_query

    if named is None:
        if sql is None:
            raise typer.BadParameter("give SQL, --named NAME or --list", param_hint="SQL")
        return sql, values
    try:
        text = named_query(named).sql
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint="--named") from error
    return text, ([sql] if sql is not None else []) + values


def _placeholders(sql: str) -> int:
    """`?` outside string literals and comments."""
    import sqlglot

    return sum(1 for _ in sqlglot.parse_one(sql, read="trino").find_all(sqlglot.exp.Placeholder))


def _days_since(sql: str, values: list[str], since: str) -> list[str]:
    """Append the first and last day (today, UTC) for a query whose remaining two parameters
    are those days."""
    moment = parse_since(since) or datetime.now(UTC)
    if _placeholders(sql) - len(values) != 2:
        raise typer.BadParameter(
            "--since fills two day parameters (first day, last day); this query's remaining "
            "parameters are not those",
            param_hint="--since",
        )
    return [*values, moment.date().isoformat(), datetime.now(UTC).date().isoformat()]


def _duckdb(found: Target, sql: str, values: list[str]) -> tuple[list[str], list[Any], str]:
    from local.lake_sql import LocalLake, mirror_bucket

    with tempfile.TemporaryDirectory(prefix="sensorhook-lake-") as directory:
        root = Path(directory)
        mirror_bucket(found.client("s3"), found.output(Output.BUCKET_NAME), root)
        with LocalLake(root) as lake:
            try:
                result = lake.query(sql, values)
            except Exception as error:  # DuckDB's and sqlglot's errors: the SQL's fault
                raise CliError(f"query failed: {str(error).splitlines()[0]}") from error
    return result.columns, [[_plain(v) for v in row] for row in result.rows], "DuckDB (local)"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def workgroup_name(found: Target) -> str:
    return f"{found.name}-lake"


def database_name(found: Target) -> str:
    return workgroup_name(found).replace("-", "_")


def _literal(value: str) -> str:
    """Athena's execution parameters are SQL literals: numbers as they are, text quoted."""
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value.replace("'", "''") + "'"


def _athena(
    found: Target,
    sql: str,
    values: list[str],
    workgroup: str | None,
    database: str | None,
    poll: float,
) -> tuple[list[str], list[list[Any]]]:
    athena = found.client("athena")
    request: dict[str, Any] = {
        "QueryString": sql,
        "WorkGroup": workgroup or workgroup_name(found),
        "QueryExecutionContext": {"Database": database or database_name(found)},
    }
    if values:
        request["ExecutionParameters"] = [_literal(value) for value in values]
    execution_id = athena.start_query_execution(**request)["QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"][
            "Status"
        ]
        if status["State"] in _DONE:
            break
        time.sleep(poll)
    if status["State"] != "SUCCEEDED":
        reason = status.get("StateChangeReason", "no reason given")
        raise CliError(f"Athena query {execution_id} {status['State']}: {reason}")
    columns: list[str] = []
    rows: list[list[Any]] = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id):
        result_set = page["ResultSet"]
        if not columns:
            columns = [c["Name"] for c in result_set["ResultSetMetadata"]["ColumnInfo"]]
            page_rows = result_set["Rows"][1:]  # a SELECT's first row repeats the header
        else:
            page_rows = result_set["Rows"]
        rows += [[cell.get("VarCharValue") for cell in row["Data"]] for row in page_rows]
    return columns, rows
