"""The Athena named queries, locally: the same `.sql` files run through DuckDB over a copy of
the local stack's lake, translated from Athena's dialect (Trino) by sqlglot, never by hand.

Python API (what a CLI wires to):

    from local.lake_sql import LocalLake, named_queries, translate
    named_queries()                       # [NamedQuery(name, description, sql), ...]
    translate("SELECT max_by(v, t) ...")  # Trino SQL -> DuckDB SQL
    with LocalLake(Path(".local/lake")) as lake:
        result = lake.run_named("readings_per_provider_per_day", ["2026-11-29", "2026-11-29"])
        result.columns, result.rows
        lake.query("SELECT count(*) FROM readings")   # any Athena SQL

The command (docs/athena.md):

    .venv/bin/python -m local.lake_sql --list
    .venv/bin/python -m local.lake_sql --named readings_per_provider_per_day 2026-11-29 2026-11-29
    .venv/bin/python -m local.lake_sql "SELECT provider, count(*) FROM readings GROUP BY 1"

The lake directory is a mirror of the bucket's `readings/`, `gateway_status/` and `raw/`
prefixes (`make demo` leaves one in .local/lake; `mirror_bucket` makes one from any bucket).
Tables and views are those of infra/lake_catalog.py, the same definitions the Glue catalog is
rendered from, with the partition keys read from the object keys as Athena's projection does.
"""

import argparse
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot

from infra.lake_catalog import (
    RAW_ARCHIVE,
    TABLES,
    VIEWS,
    LakeTable,
    NamedQuery,
)
from infra.lake_catalog import (
    named_queries as _named_queries,
)
from sensorhook.dal.lake_parquet import GATEWAY_STATUS_SCHEMA, READING_SCHEMA

DEFAULT_LAKE_DIR = Path(__file__).resolve().parent.parent / ".local" / "lake"
_ARROW_SCHEMAS = {"readings_files": READING_SCHEMA, "gateway_status_files": GATEWAY_STATUS_SCHEMA}


def named_queries() -> list[NamedQuery]:
    """Every named query, as deployed to Athena (athena/queries/*.sql)."""
    return _named_queries()


def named_query(name: str) -> NamedQuery:
    for query in named_queries():
        if query.name == name:
            return query
    known = ", ".join(q.name for q in named_queries())
    raise KeyError(f"no named query {name!r}; known: {known}")


def translate(sql: str) -> str:
    """Athena (Trino) SQL -> DuckDB SQL, one statement."""
    (statement,) = sqlglot.transpile(sql, read="trino", write="duckdb")
    return statement


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    seconds: float

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _partition_columns(table: LakeTable) -> str:
    """SQL reading each projected key out of the object's key, as the template places it."""
    expressions = []
    for partition in table.partitions:
        segment = re.search(r"([\w-]+)=\$\{" + partition.name + r"\}", table.template)
        if segment is None:
            raise ValueError(f"{partition.name} is not in {table.template}")
        expressions.append(
            f"regexp_extract(filename, '/{segment.group(1)}=([^/]+)/', 1) AS {partition.name}"
        )
    return ", ".join(expressions)


def _glob(root: Path, table: LakeTable) -> str:
    depth = table.template.count("${")
    suffix = "*.jsonl.gz" if table.format == "json" else "*.parquet"
    return str(root / table.prefix) + "/" + "*/" * depth + suffix


class LocalLake:
    """A DuckDB connection with the catalog's tables and views over a lake directory."""

    def __init__(self, root: Path = DEFAULT_LAKE_DIR) -> None:
        self.root = root
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        for table in TABLES:
            self._create_table(table)
        for view in VIEWS:
            self.connection.execute(f"CREATE VIEW {view.name} AS {translate(view.sql())}")

    def __enter__(self) -> "LocalLake":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def _create_table(self, table: LakeTable) -> None:
        pattern = _glob(self.root, table)
        has_files = any(self.root.glob(str(Path(pattern).relative_to(self.root))))
        partitions = _partition_columns(table)
        columns = ", ".join(c.name for c in table.columns)
        if table is RAW_ARCHIVE:
            types = ", ".join(f"'{c.name}': 'VARCHAR'" for c in table.columns)
            source = (
                f"read_json('{pattern}', format='newline_delimited', columns={{{types}}}, "
                "filename=true)"
            )
        else:
            source = f"read_parquet('{pattern}', filename=true, union_by_name=true)"
        if not has_files:
            # an empty partition set is an empty table in Athena, not an error
            self._create_empty(table)
            return
        # identifiers and paths from the catalog definitions, never from input
        self.connection.execute(
            f"CREATE VIEW {table.name} AS SELECT {columns}, {partitions} FROM {source}"  # noqa: S608
        )

    def _create_empty(self, table: LakeTable) -> None:
        if table.name in _ARROW_SCHEMAS:
            empty = _ARROW_SCHEMAS[table.name].empty_table()
        else:
            empty = pa.table({c.name: pa.array([], pa.string()) for c in table.columns})
        for partition in table.partitions:
            empty = empty.append_column(partition.name, pa.array([], pa.string()))
        self.connection.register(f"{table.name}_empty", empty)
        self.connection.execute(
            f"CREATE VIEW {table.name} AS SELECT * FROM {table.name}_empty"  # noqa: S608
        )

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> QueryResult:
        """Run Athena SQL (with `?` parameters) here, translated for DuckDB."""
        started = time.perf_counter()
        cursor = self.connection.execute(translate(sql), list(parameters))
        rows = cursor.fetchall()
        columns = [d[0] for d in cursor.description or []]
        return QueryResult(columns, rows, time.perf_counter() - started)

    def run_named(self, name: str, parameters: Sequence[Any] = ()) -> QueryResult:
        return self.query(named_query(name).sql, parameters)


def estimated_scan_bytes(root: Path, sql: str) -> int:
    """What Athena would scan for `sql` over this lake, as an upper bound: the compressed size of
    the columns the query names, in every Parquet object of the tables it reads (Athena reads
    only those columns' chunks; partition pruning can only lower it). Athena bills at least
    10 MB per query."""
    parsed = sqlglot.parse_one(sql, read="trino")
    named = {column.name for column in parsed.find_all(sqlglot.exp.Column)}
    tables = {table.name for table in parsed.find_all(sqlglot.exp.Table)}
    total = 0
    for view in VIEWS:
        if view.name in tables:
            tables.add(view.table.name)
            named |= set(view.identity) | set(view.order)  # the view's window reads these
    for table in TABLES:
        if table.name not in tables or table.format != "parquet":
            continue
        for path in (root / table.prefix).rglob("*.parquet"):
            metadata = pq.ParquetFile(path).metadata
            for group in range(metadata.num_row_groups):
                row_group = metadata.row_group(group)
                for index in range(row_group.num_columns):
                    chunk = row_group.column(index)
                    if chunk.path_in_schema in named:
                        total += chunk.total_compressed_size
    return total


def mirror_bucket(s3: Any, bucket: str, root: Path) -> int:
    """Copy the bucket's lake prefixes (every table's) into `root`; returns objects copied."""
    copied = 0
    paginator = s3.get_paginator("list_objects_v2")
    for table in TABLES:
        for page in paginator.paginate(Bucket=bucket, Prefix=table.prefix):
            for entry in page.get("Contents", []):
                target = root / entry["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
                copied += 1
    return copied


def _print(result: QueryResult) -> None:
    widths = [
        max([len(c)] + [len(str(row[i])) for row in result.rows])
        for i, c in enumerate(result.columns)
    ]
    print("  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)))
    for row in result.rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    print(f"({len(result.rows)} rows, {result.seconds * 1000:.1f} ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.lake_sql",
        description="Run Athena SQL or a named query against the local lake through DuckDB.",
    )
    parser.add_argument("sql", nargs="?", help="Athena SQL (or, with --named, its parameters)")
    parser.add_argument("parameters", nargs="*", help="values for the query's ? parameters")
    parser.add_argument("--named", metavar="NAME", help="run the named query NAME")
    parser.add_argument("--list", action="store_true", help="list the named queries")
    parser.add_argument("--lake", type=Path, default=DEFAULT_LAKE_DIR, help="lake directory")
    parser.add_argument("--show-sql", action="store_true", help="print the DuckDB translation")
    parser.add_argument(
        "--scan", action="store_true", help="print the bytes Athena would scan (upper bound)"
    )
    args = parser.parse_args(argv)
    if args.list:
        for query in named_queries():
            print(f"{query.name}\n    {query.description}")
        return 0
    if args.named:
        sql = named_query(args.named).sql
        parameters = ([args.sql] if args.sql else []) + args.parameters
    elif args.sql:
        sql, parameters = args.sql, args.parameters
    else:
        parser.error("give SQL, --named NAME or --list")
    if not args.lake.is_dir():
        parser.error(f"no lake at {args.lake}: run `make demo` first (it leaves one there)")
    if args.show_sql:
        print(translate(sql))
    if args.scan:
        print(f"Athena would scan at most {estimated_scan_bytes(args.lake, sql):,} bytes")
    with LocalLake(args.lake) as lake:
        try:
            _print(lake.query(sql, parameters))
        except duckdb.Error as error:
            print(f"query failed: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
