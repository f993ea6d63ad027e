"""The lake's tables as Athena sees them, in plain data: columns, partition projection, the
exactly-once views and the named queries. The CDK construct (infra/constructs/catalog.py) and
the local DuckDB side (local/lake_sql.py) both read this module, so the two cannot disagree.

Columns come from the writers' Arrow schemas (sensorhook.dal.lake_parquet), which a test holds
against the canonical `Reading` model; partition templates follow the writers' key layout
(sensorhook.logic.lake, sensorhook.dal.archive), which a test holds against real keys.

Why views: Athena reads every object under a partition. Compaction writes a day's rows into
one new object and only then deletes the small ones, so for a moment both are there; a stream
retry can also rewrite a batch that was already compacted. The `readings` and `gateway_status`
views keep one row per identity (the readings table's key: series and point), so a query sees
each reading exactly once at every moment (docs/athena.md, "Exactly once").
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa

from sensorhook.core.flavors import Flavor
from sensorhook.dal.lake_parquet import GATEWAY_STATUS_SCHEMA, READING_SCHEMA
from sensorhook.logic.lake import (
    FIRST_RECEIVED,
    GATEWAY_STATUS_IDENTITY,
    GATEWAY_STATUS_PREFIX,
    READING_IDENTITY,
    READINGS_PREFIX,
)

QUERIES_DIR: Final = Path(__file__).resolve().parent.parent / "athena" / "queries"
PROJECTION_START_DAY: Final = "2020-01-01"
# Readings may be dated a little ahead of the clock (sensor clocks drift); tomorrow stays visible.
PROJECTION_DAY_RANGE: Final = f"{PROJECTION_START_DAY},NOW+1DAYS"
PROVIDERS: Final = tuple(sorted({flavor.provider for flavor in Flavor}))
FLAVORS: Final = tuple(sorted(flavor.value for flavor in Flavor))


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Athena (Hive DDL) type


@dataclass(frozen=True)
class Projection:
    """One projected partition key: its Glue parameters, and the path segment it fills."""

    name: str
    parameters: dict[str, str]  # projection.<name>.* without the prefix


@dataclass(frozen=True)
class LakeTable:
    name: str
    prefix: str  # under the bucket
    template: str  # the storage.location.template after s3://<bucket>/
    columns: tuple[Column, ...]
    partitions: tuple[Projection, ...]
    format: str  # "parquet" | "json"
    description: str


@dataclass(frozen=True)
class DedupeView:
    """A view keeping one row per `identity` of `table` (the first received)."""

    name: str
    table: LakeTable
    identity: tuple[str, ...]
    order: tuple[str, ...]
    description: str

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.table.columns + tuple(Column(p.name, "string") for p in self.table.partitions)

    def sql(self) -> str:
        """Trino SQL; partition keys lead the window so Athena prunes through the view."""
        names = ", ".join(column.name for column in self.columns)
        keys = [p.name for p in self.table.partitions] + list(self.identity)
        return (  # identifiers from the definitions above, never from input
            f"SELECT {names} FROM ("  # noqa: S608
            f"SELECT *, row_number() OVER (PARTITION BY {', '.join(keys)} "
            f"ORDER BY {', '.join(self.order)}) AS copy_number "
            f"FROM {self.table.name}) WHERE copy_number = 1"
        )


_ARROW_TO_ATHENA = {
    pa.string(): "string",
    pa.float64(): "double",
    pa.int32(): "int",
    pa.bool_(): "boolean",
    pa.timestamp("ms", tz="UTC"): "timestamp",
}


def athena_columns(schema: pa.Schema) -> tuple[Column, ...]:
    return tuple(Column(field.name, _ARROW_TO_ATHENA[field.type]) for field in schema)


def _day(name: str = "day") -> Projection:
    return Projection(
        name,
        {
            "type": "date",
            "format": "yyyy-MM-dd",
            "range": PROJECTION_DAY_RANGE,
            "interval": "1",
            "interval.unit": "DAYS",
        },
    )


def _enum(name: str, values: tuple[str, ...]) -> Projection:
    return Projection(name, {"type": "enum", "values": ",".join(values)})


# Partition keys cannot share a name with a data column, hence `provider_key`, `flavor_key`.
READINGS_FILES = LakeTable(
    name="readings_files",
    prefix=READINGS_PREFIX,
    template=READINGS_PREFIX + "date=${day}/provider=${provider_key}/",
    columns=athena_columns(READING_SCHEMA),
    partitions=(_day(), _enum("provider_key", PROVIDERS)),
    format="parquet",
    description="Canonical readings as written (may hold a row twice while compaction runs); "
    "query the `readings` view instead.",
)
GATEWAY_STATUS_FILES = LakeTable(
    name="gateway_status_files",
    prefix=GATEWAY_STATUS_PREFIX,
    template=GATEWAY_STATUS_PREFIX + "date=${day}/provider=${provider_key}/",
    columns=athena_columns(GATEWAY_STATUS_SCHEMA),
    partitions=(_day(), _enum("provider_key", PROVIDERS)),
    format="parquet",
    description="Gateway status reports as written; query the `gateway_status` view instead.",
)
RAW_ARCHIVE = LakeTable(
    name="raw_archive",
    prefix="raw/",
    template="raw/provider=${provider_key}/flavor=${flavor_key}/date=${day}/hour=${hour}/",
    columns=(
        Column("flavor", "string"),
        Column("event_id", "string"),
        Column("received_at", "string"),  # ISO 8601: from_iso8601_timestamp(received_at)
        Column("request_id", "string"),
        Column("body", "string"),
        Column("body_s3_key", "string"),
        Column("auth_key_id", "string"),
    ),
    partitions=(
        _enum("provider_key", PROVIDERS),
        _enum("flavor_key", FLAVORS),
        _day(),
        Projection("hour", {"type": "integer", "range": "0,23", "digits": "2"}),
    ),
    format="json",
    description="Every authentic delivery exactly as received (gzip JSON lines, one envelope "
    "per line, body inline); a delivery retried by SQS may be archived more than once.",
)
TABLES: Final = (READINGS_FILES, GATEWAY_STATUS_FILES, RAW_ARCHIVE)

READINGS_VIEW = DedupeView(
    name="readings",
    table=READINGS_FILES,
    identity=READING_IDENTITY,
    order=FIRST_RECEIVED,
    description="Canonical readings, each exactly once.",
)
GATEWAY_STATUS_VIEW = DedupeView(
    name="gateway_status",
    table=GATEWAY_STATUS_FILES,
    identity=GATEWAY_STATUS_IDENTITY,
    order=FIRST_RECEIVED,
    description="Gateway status reports over time, each exactly once.",
)
VIEWS: Final = (READINGS_VIEW, GATEWAY_STATUS_VIEW)


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str  # Athena (Trino) SQL; `?` marks a parameter


def named_queries(directory: Path = QUERIES_DIR) -> list[NamedQuery]:
    """Every `athena/queries/*.sql`; its leading `--` comment lines are its description."""
    queries = []
    for path in sorted(directory.glob("*.sql")):
        sql = path.read_text()
        comment = []
        for line in sql.splitlines():
            if not line.startswith("--"):
                break
            comment.append(line.removeprefix("--").strip())
        queries.append(NamedQuery(path.stem, " ".join(comment), sql))
    return queries
