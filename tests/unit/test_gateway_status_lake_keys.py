"""Gateway status history objects: one per delivery and stored chunk, so a retry overwrites
its own object and no chunk of a delivery overwrites another's."""

from datetime import UTC, datetime
from typing import Any

from sensorhook.core.normalized import GatewayStatus
from sensorhook.logic.lake import write_gateway_statuses

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class RecordingLake:
    def __init__(self) -> None:
        self.objects: dict[str, int] = {}

    def put_gateway_statuses(self, key: str, rows: list[GatewayStatus], **_: Any) -> None:
        self.objects[key] = len(rows)


def _status(gateway: str) -> GatewayStatus:
    return GatewayStatus(
        provider="everactive", gateway_id=gateway, reported_at=AT, schema_name="gateway_status_v3"
    )


def test_each_chunk_of_a_delivery_keeps_its_own_object_and_a_retry_overwrites_it() -> None:
    lake = RecordingLake()
    # Given two chunks of one delivery, and the first chunk written again (a retry)
    for part, gateway in ((0, "gw-1"), (1, "gw-2"), (0, "gw-1")):
        write_gateway_statuses(
            [_status(gateway)],
            event_id="everactive-ds-gateway-status:x",
            received_at=AT,
            store=lake,  # type: ignore[arg-type]
            part=part,
        )
    # Then two objects hold the two chunks' statuses: none lost, none written twice
    assert sorted(lake.objects.values()) == [1, 1]
    assert len(lake.objects) == 2
