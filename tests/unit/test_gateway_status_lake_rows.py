"""The lake writer's gateway status rows: one per history item's INSERT, none from a MODIFY or
a REMOVE (a history item is written once; anything else would be a second row), named by
the stream batch like readings so a retried batch overwrites its own objects."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.lake_sql import LocalLake
from sensorhook.core.normalized import GatewayStatus, GatewayStatusRecord
from sensorhook.dal.gateway_history import history_item, record_from_item
from sensorhook.dal.lake_parquet import gateway_status_table, parquet_bytes
from sensorhook.dal.readings_store import readings_from_item
from sensorhook.dal.wire_format import plain_item
from sensorhook.logic.lake import StreamChange, write_to_lake

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class RecordingLake:
    def __init__(self) -> None:
        self.objects: dict[str, list[GatewayStatusRecord]] = {}

    def put_readings(self, key: str, rows: list[Any]) -> None:
        raise AssertionError(f"no reading expected, got {key}")

    def put_gateway_statuses(self, key: str, rows: list[GatewayStatusRecord]) -> None:
        self.objects[key] = list(rows)


def _image(gateway: str, event_id: str = "everactive-ds-gateway-status:x") -> dict[str, Any]:
    return plain_item(
        history_item(_status(gateway), event_id=event_id, received_at=AT, ttl_s=86_400)
    )


def _item(record: GatewayStatusRecord) -> dict[str, Any]:
    return history_item(
        record.status, event_id=record.event_id, received_at=record.received_at, ttl_s=86_400
    )


def _status(gateway: str) -> GatewayStatus:
    return GatewayStatus(
        provider="everactive",
        gateway_id=gateway,
        reported_at=AT,
        schema_name="gateway_status_v3",
        online=True,
        summary={"mqtt_queue_size": 88, "firmware": "v1"},
    )


def test_an_insert_is_one_row_with_the_reports_fields() -> None:
    lake = RecordingLake()
    result = write_to_lake([StreamChange("100", new_image=_image("gw-1"))], "s", lake)  # type: ignore[arg-type]

    assert result.retry_from is None
    assert list(lake.objects) == [
        "gateway_status/date=2026-11-29/provider=everactive/s-100.parquet"
    ]
    (record,) = lake.objects[result.keys[0]]
    assert record.status.gateway_id == "gw-1"
    assert record.status.online is True
    assert record.status.summary == {"mqtt_queue_size": 88, "firmware": "v1"}
    assert (record.event_id, record.received_at) == ("everactive-ds-gateway-status:x", AT)


def test_a_modify_or_remove_of_a_history_item_adds_no_row() -> None:
    lake = RecordingLake()
    changes = [
        StreamChange(
            "100",
            new_image=_image("gw-1", "copy"),
            old_image=_image("gw-1"),
            modified=True,
        ),
        StreamChange("101", new_image=None),
    ]

    result = write_to_lake(changes, "s", lake)  # type: ignore[arg-type]

    assert result.retry_from is None
    assert lake.objects == {}


def test_a_history_item_holds_no_reading() -> None:
    # readers that scan the readings table (the demo's checks, the fault drill) see none
    assert readings_from_item(_image("gw-1")) == []


def test_history_objects_written_before_read_with_the_new_ones_each_report_once(
    tmp_path: Path,
) -> None:
    # Given an object the processor wrote before (one per delivery, named by its event id's
    # hash) and, after the upgrade, a lake writer batch holding that report again (a re-send
    # after the upgrade) and a later one
    first = record_from_item(_image("gw-1"))
    later = first.model_copy(
        update={"status": first.status.model_copy(update={"reported_at": AT.replace(hour=13)})}
    )
    partition = tmp_path / "gateway_status" / "date=2026-11-29" / "provider=everactive"
    partition.mkdir(parents=True)
    old_name = hashlib.sha256(first.event_id.encode()).hexdigest()[:32]
    (partition / f"{old_name}.parquet").write_bytes(parquet_bytes(gateway_status_table([first])))
    lake = RecordingLake()
    write_to_lake(
        [
            StreamChange("200", new_image=_image("gw-1")),
            StreamChange("201", new_image=plain_item(_item(later))),
        ],
        "s",
        lake,  # type: ignore[arg-type]
    )
    for key, records in lake.objects.items():
        (tmp_path / key).write_bytes(parquet_bytes(gateway_status_table(records)))

    # Then Athena's tables (run locally) read both objects with their columns, and the view
    # keeps each report once
    with LocalLake(tmp_path) as local:
        files = local.query("SELECT gateway_id, reported_at FROM gateway_status_files").rows
        reports = local.query(
            "SELECT gateway_id, reported_at, event_id FROM gateway_status ORDER BY reported_at"
        ).rows
    assert len(files) == 3
    assert [row[:2] for row in reports] == [("gw-1", AT), ("gw-1", AT.replace(hour=13))]
