"""Athena on the day of deploy: the Glue database, tables with partition projection (no
crawler, no MSCK REPAIR: a new day is queryable as soon as its first object lands), the
exactly-once views, an Athena workgroup with its settings enforced, and the named queries.

The tables, views and queries are data in infra/lake_catalog.py (shared with the local
DuckDB side); this construct only renders them as CloudFormation.
"""

import base64
import json

from aws_cdk import Aws, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import StageConfig
from infra.constants import ATHENA_RESULTS_PREFIX, resource_name
from infra.lake_catalog import TABLES, VIEWS, DedupeView, LakeTable, named_queries

ATHENA_ENGINE_VERSION = "Athena engine version 3"

_FORMATS = {
    "parquet": glue.CfnTable.StorageDescriptorProperty(
        input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        serde_info=glue.CfnTable.SerdeInfoProperty(
            serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        ),
    ),
    "json": glue.CfnTable.StorageDescriptorProperty(
        input_format="org.apache.hadoop.mapred.TextInputFormat",
        output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        serde_info=glue.CfnTable.SerdeInfoProperty(
            serialization_library="org.openx.data.jsonserde.JsonSerDe",
            parameters={"ignore.malformed.json": "false"},
        ),
    ),
}


def glue_database_name(stage: str) -> str:
    """Glue/Athena names: lower case, digits and underscores."""
    return resource_name(stage, "lake").replace("-", "_")


def projection_parameters(table: LakeTable, bucket_name: str) -> dict[str, str]:
    parameters = {
        "projection.enabled": "true",
        "storage.location.template": f"s3://{bucket_name}/{table.template}",
        "classification": table.format,
    }
    for partition in table.partitions:
        for key, value in partition.parameters.items():
            parameters[f"projection.{partition.name}.{key}"] = value
    return parameters


def presto_view_text(view: DedupeView, database: str) -> str:
    """The encoding Athena reads a Glue view in (what CREATE VIEW stores)."""
    document = {
        "originalSql": view.sql(),
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": [{"name": c.name, "type": _presto_type(c.type)} for c in view.columns],
    }
    encoded = base64.b64encode(json.dumps(document).encode()).decode()
    return f"/* Presto View: {encoded} */"


def _presto_type(hive_type: str) -> str:
    return {"string": "varchar", "int": "integer"}.get(hive_type, hive_type)


class Catalog(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        config: StageConfig,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        self.database_name = glue_database_name(stage)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="sensorhook's lake: readings, gateway status history, raw archive",
            ),
        )
        self.tables: dict[str, glue.CfnTable] = {}
        for table in TABLES:
            self.tables[table.name] = self._table(table, bucket, account)
        for view in VIEWS:
            self.tables[view.name] = self._view(view, account)

        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=resource_name(stage, "lake"),
            description="sensorhook lake queries: results encrypted in the bucket, cost capped",
            state="ENABLED",
            recursive_delete_option=not config.retain_data,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=config.athena_bytes_scanned_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version=ATHENA_ENGINE_VERSION
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=bucket.s3_url_for_object(ATHENA_RESULTS_PREFIX),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                    expected_bucket_owner=Aws.ACCOUNT_ID,
                ),
            ),
        )
        self.named_queries: dict[str, athena.CfnNamedQuery] = {}
        for query in named_queries():
            named = athena.CfnNamedQuery(
                self,
                f"Query-{query.name}",
                name=query.name,
                description=query.description[:1024],
                database=self.database_name,
                work_group=self.workgroup.ref,
                query_string=query.sql,
            )
            named.add_dependency(self.database)
            self.named_queries[query.name] = named

    def _table(self, table: LakeTable, bucket: s3.IBucket, account: str) -> glue.CfnTable:
        fmt = _FORMATS[table.format]
        cfn = glue.CfnTable(
            self,
            f"Table-{table.name}",
            catalog_id=account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table.name,
                description=table.description,
                table_type="EXTERNAL_TABLE",
                parameters=projection_parameters(table, bucket.bucket_name),
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=p.name, type="string")
                    for p in table.partitions
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=bucket.s3_url_for_object(table.prefix),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=c.name, type=c.type)
                        for c in table.columns
                    ],
                    input_format=fmt.input_format,
                    output_format=fmt.output_format,
                    serde_info=fmt.serde_info,
                ),
            ),
        )
        cfn.add_dependency(self.database)
        return cfn

    def _view(self, view: DedupeView, account: str) -> glue.CfnTable:
        cfn = glue.CfnTable(
            self,
            f"View-{view.name}",
            catalog_id=account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=view.name,
                description=view.description,
                table_type="VIRTUAL_VIEW",
                parameters={"presto_view": "true", "comment": "Presto View"},
                view_original_text=presto_view_text(view, self.database_name),
                view_expanded_text="/* Presto View */",
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=c.name, type=c.type) for c in view.columns
                    ],
                ),
            ),
        )
        cfn.add_dependency(self.tables[view.table.name])
        return cfn
