"""Publishing sensorhook's domain events on the EventBridge bus.

PutEvents takes at most 10 entries and 256 KB per request, and it can accept a request while
rejecting some of its entries (FailedEntryCount). Rejected entries are sent again with
backoff, and if they still fail the error is raised so the delivery is retried by SQS:
an event is never dropped silently.
"""

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sensorhook.dal.aws_clients import events_client

SOURCE = "sensorhook"
MAX_ENTRIES_PER_REQUEST = 10
MAX_REQUEST_BYTES = 256 * 1024
_FAILED_ENTRY_RETRIES = 5


class EventPublishError(RuntimeError):
    """Entries EventBridge kept rejecting after every retry."""


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    detail_type: str
    detail: str  # JSON text, already serialized by whoever built the event

    @property
    def size(self) -> int:
        """Entry size as EventBridge counts it: Source + DetailType + Detail, UTF-8 bytes."""
        return len(SOURCE) + len(self.detail_type.encode()) + len(self.detail.encode())


def max_detail_bytes(detail_type: str) -> int:
    """The largest detail (UTF-8 bytes) an entry of `detail_type` may carry."""
    return MAX_REQUEST_BYTES - len(SOURCE) - len(detail_type.encode()) - 1


class EventPublisher:
    def __init__(self, bus_name: str, client: Any = None) -> None:
        self._bus_name = bus_name
        self._client = client or events_client()

    def publish(self, events: Sequence[OutboundEvent]) -> int:
        """Put every event on the bus; returns how many were published."""
        for request in _requests(events):
            self._put(request)
        return len(events)

    def _put(self, events: list[OutboundEvent]) -> None:
        pending = events
        for attempt in range(_FAILED_ENTRY_RETRIES):
            response = self._client.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": event.detail_type,
                        "Detail": event.detail,
                        "EventBusName": self._bus_name,
                    }
                    for event in pending
                ]
            )
            if not response.get("FailedEntryCount"):
                return
            # Result entries are positional: the i-th result is the i-th entry sent.
            pending = [
                event
                for event, result in zip(pending, response["Entries"], strict=True)
                if result.get("ErrorCode")
            ]
            time.sleep(min(0.05 * 2**attempt, 2.0))
        raise EventPublishError(f"{len(pending)} events rejected by EventBridge after retries")


def _requests(events: Sequence[OutboundEvent]) -> Iterator[list[OutboundEvent]]:
    """Group events into PutEvents requests of <= 10 entries and < 256 KB in total."""
    request: list[OutboundEvent] = []
    request_bytes = 0
    for event in events:
        size = event.size
        if size >= MAX_REQUEST_BYTES:
            raise ValueError(f"a {event.detail_type!r} event of {size} bytes exceeds 256 KB")
        if request and (
            len(request) == MAX_ENTRIES_PER_REQUEST or request_bytes + size >= MAX_REQUEST_BYTES
        ):
            yield request
            request, request_bytes = [], 0
        request.append(event)
        request_bytes += size
    if request:
        yield request
