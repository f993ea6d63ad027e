"""The one-off move of sensor_state from one item per metric and channel to one `#latest` item
per sensor (docs/architecture.md, "Sensor state: migrating an existing deployment").

After the release is deployed the processor writes only `#latest` items; the per-channel items
of the layout before stay where they were, unread by the processor and by gateway health. This
folds each sensor's per-channel items into its `#latest` item by the processor's own merge
(a channel moves forward only to a newer reading, so it is safe beside live traffic and safe
to run twice), puts every sensor flagged silent into the due index (so health notices when it
is heard again), and then deletes the folded items. A dry run reads and counts, and writes
nothing.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from sensorhook.core.reading import Reading
from sensorhook.dal.health_store import HealthStore
from sensorhook.dal.readings_store import reading_from_item
from sensorhook.dal.sensor_state_store import SensorStateStore


class MigrationReport(BaseModel):
    dry_run: bool
    sensors: int = 0  # sensors with items of the layout before
    legacy_items: int = 0
    channels_moved_forward: int = 0  # channels whose `#latest` entry an old item replaced
    silent_indexed: int = 0  # silent sensors put into the due index
    legacy_items_deleted: int = 0


def legacy_reading(item: dict[str, Any]) -> tuple[Reading, datetime]:
    """A per-channel item of the layout before (deserialized) as its reading and `state_at`."""
    at = datetime.fromisoformat(item.get("state_at") or item["measured_at"])
    fields = {k: v for k, v in item.items() if k not in ("series", "metric_channel", "state_at")}
    return reading_from_item(fields), at


def migrate(state: SensorStateStore, health: HealthStore, *, dry_run: bool) -> MigrationReport:
    report = MigrationReport(dry_run=dry_run)
    for series, items in _by_series(state.legacy_items()):
        report.sensors += 1
        report.legacy_items += len(items)
        readings = [legacy_reading(item) for item in items]
        if dry_run:
            provider, sensor_id = readings[0][0].provider, readings[0][0].sensor_id
            _, changed = state.read(provider, sensor_id).merged(readings)
            report.channels_moved_forward += changed
            continue
        report.channels_moved_forward += state.update(readings)
        report.legacy_items_deleted += state.delete_legacy(
            series, [item["metric_channel"] for item in items]
        )
    report.silent_indexed = health.index_silent_sensors(dry_run=dry_run)
    return report


def _by_series(
    items: Iterator[dict[str, Any]],
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Items grouped by series (a Scan returns a partition's items together)."""
    series: str | None = None
    group: list[dict[str, Any]] = []
    for item in items:
        if item["series"] != series and group:
            yield series or "", group
            group = []
        series = item["series"]
        group.append(item)
    if group:
        yield series or "", group
