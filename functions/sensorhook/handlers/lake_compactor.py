"""Lake compactor Lambda (daily schedule): the last days' small lake objects -> a few large ones.

Today's partitions are left alone (the lake writer is still adding to them); a reading that
arrives late for an earlier day lands as a small object and is compacted by the next run.
"""

from sensorhook.handlers.cold_start import long_lived_imports

# the collector paused, then what the imports created frozen (handlers/cold_start.py)
with long_lived_imports():
    from datetime import UTC, datetime, timedelta
    from functools import cache
    from typing import Any

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sensorhook.core.settings import lake_compactor_settings
    from sensorhook.dal.lake_store import LakeStore
    from sensorhook.handlers.wiring import parts_built_first
    from sensorhook.logic.compaction import compact_days
    from sensorhook.observability import logger, metrics


@cache
def lake_store() -> LakeStore:
    return LakeStore(lake_compactor_settings().bucket_name)


@parts_built_first(lake_store)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    settings = lake_compactor_settings()
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(1, settings.compaction_days_back + 1)]
    results = compact_days(lake_store(), days, max_rows=settings.compaction_max_rows)
    return {
        "partitions": sum(1 for r in results if r.objects_before),
        "objects_before": sum(r.objects_before for r in results),
        "objects_after": sum(r.objects_after for r in results),
    }
