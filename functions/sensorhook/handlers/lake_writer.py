"""Lake writer Lambda: the readings table's DynamoDB stream (NEW_AND_OLD_IMAGES) -> Parquet
in S3.

Not Powertools' BatchProcessor: it goes on past a failed record, but lake objects are written
per batch, and records written past a failure would be written again when the stream retries
from it. Instead one record is reported as the only failure (the stream's checkpoint): the
first unreadable record (only the records before it are written), or, when a write failed,
the batch's first record (the retry rewrites the batch's objects under the same names).
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    from functools import cache
    from typing import TYPE_CHECKING, Any

    from aws_lambda_powertools.utilities.typing import LambdaContext

    # Imported with the handler although LakeStore defers it: nearly every stream batch writes
    # Parquet, so pyarrow belongs to this function's cold start, not to its first request.
    import sensorhook.dal.lake_parquet  # noqa: F401
    from sensorhook.core.settings import lake_writer_settings
    from sensorhook.dal.lake_store import LakeStore
    from sensorhook.dal.wire_format import plain_item
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.lake import StreamChange, shard_label, write_to_lake
    from sensorhook.observability import logger, metrics

    if TYPE_CHECKING:  # the batch package imports asyncio and its processors: ~40 ms
        from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


@cache
def lake_store() -> LakeStore:
    """Settings validated and the S3 client created once per execution environment."""
    return LakeStore(lake_writer_settings().bucket_name)


@parts_built_first(lake_store)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> "PartialItemFailureResponse":
    records: list[dict[str, Any]] = event["Records"]
    if not records:
        return {"batchItemFailures": []}
    changes = [_change(record) for record in records]
    shard = shard_label(records[0].get("eventSourceARN") or "")
    result = write_to_lake(changes, shard, lake_store())
    if result.retry_from is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": result.retry_from}]}


def _change(record: dict[str, Any]) -> StreamChange:
    """One stream record as Powertools' DynamoDBStreamEvent would give it, images deserialized
    by the same deserializer: that class's package imports some forty event types, ~15 ms of
    this function's cold start (docs/cost.md, "Cold start")."""
    stream_record: dict[str, Any] = record["dynamodb"]
    event_name = record.get("eventName")
    return StreamChange(
        sequence_number=stream_record.get("SequenceNumber"),  # type: ignore[arg-type]
        new_image=None if event_name == "REMOVE" else _image(stream_record, "NewImage"),
        old_image=(_image(stream_record, "OldImage") or None) if event_name == "MODIFY" else None,
        modified=event_name == "MODIFY",
    )


def _image(stream_record: dict[str, Any], name: str) -> dict[str, Any]:
    return plain_item(stream_record.get(name) or {})
