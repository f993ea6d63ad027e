"""The lake's objects in S3: Parquet tables (dal/lake_parquet.py) put, listed, read and
deleted by version, read by Athena and DuckDB.

pyarrow is imported when an object is written or read, not with this module (the lake
compactor and local tools read and list objects with it too).
"""

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sensorhook.core.normalized import GatewayStatusRecord
from sensorhook.core.reading import Reading
from sensorhook.dal.aws_clients import s3_client

if TYPE_CHECKING:
    import pyarrow as pa


class LakeStore:
    def __init__(self, bucket_name: str, client: Any = None) -> None:
        self._bucket = bucket_name
        self._client = client or s3_client()

    def put_readings(self, key: str, readings: Sequence[Reading]) -> None:
        """Write one Parquet object (snappy) holding `readings`, replacing any at `key`."""
        from sensorhook.dal.lake_parquet import readings_table  # noqa: PLC0415 - pyarrow on use

        self.put_table(key, readings_table(readings))

    def put_gateway_statuses(self, key: str, records: Sequence[GatewayStatusRecord]) -> None:
        """Write one Parquet object (snappy) holding `records`, replacing any at `key`."""
        from sensorhook.dal.lake_parquet import gateway_status_table  # noqa: PLC0415 - pyarrow on use

        self.put_table(key, gateway_status_table(records))

    def put_table(self, key: str, table: "pa.Table") -> None:
        from sensorhook.dal.lake_parquet import parquet_bytes  # noqa: PLC0415 - pyarrow on use

        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=parquet_bytes(table),
            ContentType="application/vnd.apache.parquet",
        )

    def list_objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`."""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield entry["Key"], entry["Size"]

    def get_table(self, key: str) -> tuple["pa.Table", str | None]:
        """The object's rows and the version read (None when the bucket is not versioned)."""
        from sensorhook.dal.lake_parquet import parquet_table  # noqa: PLC0415 - pyarrow on use

        response = self._client.get_object(Bucket=self._bucket, Key=key)
        table = parquet_table(response["Body"].read())
        return table, response.get("VersionId")

    def delete_versions(self, objects: Sequence[tuple[str, str | None]]) -> None:
        """Delete exactly the (key, version) pairs given, 1,000 per request (S3's limit).

        By version, so an object rewritten after it was read (a stream retry) keeps its new
        version. Raises if any was not deleted.
        """
        for start in range(0, len(objects), 1000):
            chunk = objects[start : start + 1000]
            response = self._client.delete_objects(
                Bucket=self._bucket,
                Delete={
                    "Objects": [
                        {"Key": key, "VersionId": version} if version else {"Key": key}
                        for key, version in chunk
                    ],
                    "Quiet": True,
                },
            )
            if response.get("Errors"):
                raise RuntimeError(f"objects not deleted: {response['Errors'][:5]}")
