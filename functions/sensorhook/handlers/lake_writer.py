"""Lake writer Lambda: the readings table's DynamoDB stream (NEW_AND_OLD_IMAGES) -> Parquet
in S3.

Not Powertools' BatchProcessor: it goes on past a failed record, but lake objects are written
per batch, and records written past a failure would be written again when the stream retries
from it. Instead one record is reported as the only failure (the stream's checkpoint): the
first unreadable record (only the records before it are written), or, when a write failed,
the batch's first record (the retry rewrites the batch's objects under the same names).
"""

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

# Imported with the handler although LakeStore defers it: nearly every stream batch writes
# Parquet, so pyarrow belongs to this function's cold start, not to its first request.
import sensorhook.dal.lake_parquet  # noqa: F401
from sensorhook.core.settings import lake_writer_settings
from sensorhook.dal.lake_store import LakeStore
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
    records = list(DynamoDBStreamEvent(event).records)
    if not records:
        return {"batchItemFailures": []}
    changes = [
        StreamChange(
            sequence_number=record.dynamodb.sequence_number,  # type: ignore[union-attr,arg-type]
            new_image=(
                None
                if record.event_name is DynamoDBRecordEventName.REMOVE
                else record.dynamodb.new_image  # type: ignore[union-attr]
            ),
            old_image=(
                record.dynamodb.old_image or None  # type: ignore[union-attr]
                if record.event_name is DynamoDBRecordEventName.MODIFY
                else None
            ),
            modified=record.event_name is DynamoDBRecordEventName.MODIFY,
        )
        for record in records
    ]
    result = write_to_lake(changes, shard_label(records[0].event_source_arn or ""), lake_store())
    if result.retry_from is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": result.retry_from}]}
