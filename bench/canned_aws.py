"""AWS without the network: every botocore HTTP send answered in memory.

The handlers run unmodified (clients, request serialization, response parsing all real); only
the socket is gone, so the figures are the CPU a function spends, not AWS's latency.
"""

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.httpsession import URLLib3Session


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _json(payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"content-type": "application/x-amz-json-1.0"}, json.dumps(payload).encode()


class CannedTables:
    """The items PutItem wrote, answered back to GetItem once `publish` made them visible.

    The cost model publishes between batches: every record of a batch reads the state the
    batches before it left (a batch of ten sensors' next deliveries), not the state another
    record of the same batch wrote (its records repeat one sensor's body). Conditions are not
    evaluated: every write succeeds."""

    def __init__(self) -> None:
        self._written: dict[str, list[dict[str, Any]]] = {}
        self._visible: dict[str, list[dict[str, Any]]] = {}
        # the items UpdateItem left, by table and key (what it is billed on)
        self._updated: dict[str, dict[str, Any]] = {}
        self._updated_visible: dict[str, dict[str, Any]] = {}

    def put(self, payload: dict[str, Any]) -> None:
        self._written.setdefault(payload["TableName"], []).append(payload["Item"])

    def update(self, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Apply an UpdateItem to the item the batches before left; returns the item before
        (None: none) and after it, which DynamoDB bills the larger of. Each record of a batch
        updates the item as those batches left it, and the next batch finds it as one record
        left it: the ten records stand for ten sensors, each with an item of its own (their
        ten deliveries' sources in one item would be no sensor's)."""
        from bench.cost import applied_update

        key = json.dumps([payload["TableName"], sorted(payload["Key"].items())])
        before = self._updated_visible.get(key)
        after = applied_update(before, payload)
        self._updated[key] = after
        return before, after

    def get(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        key = payload["Key"]
        for item in reversed(self._visible.get(payload["TableName"], [])):
            if all(item.get(name) == value for name, value in key.items()):
                return item
        return None

    def publish(self) -> None:
        self._visible = {table: list(items) for table, items in self._written.items()}
        self._updated_visible = dict(self._updated)


def _answer(
    request: AWSRequest, secrets: dict[str, str], tables: CannedTables | None = None
) -> tuple[int, dict[str, str], bytes]:
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else target
    body = request.body or b"{}"
    payload = json.loads(body) if target else {}
    operation = target.rpartition(".")[2]
    if operation == "SendMessage":
        md5 = hashlib.md5(payload["MessageBody"].encode(), usedforsecurity=False).hexdigest()
        return _json({"MessageId": "bench", "MD5OfMessageBody": md5})
    if operation == "GetSecretValue":
        return _json({"SecretString": secrets[payload["SecretId"]], "Name": payload["SecretId"]})
    if operation == "BatchWriteItem":
        return _json({"UnprocessedItems": {}})
    if tables is not None and operation == "PutItem":
        tables.put(payload)
    if tables is not None and operation == "UpdateItem":
        from bench.cost import STORED_IMAGES

        request.context[STORED_IMAGES] = tables.update(payload)
    if operation in {"UpdateItem", "PutItem", "DeleteItem", "GetItem"}:
        item = tables.get(payload) if tables is not None and operation == "GetItem" else None
        return _json({"Item": item} if item is not None else {})
    if operation == "PutEvents":
        return _json(
            {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in payload["Entries"]]}
        )
    if not target:  # S3 (REST): PutObject
        return 200, {"ETag": '"bench"'}, b""
    raise NotImplementedError(f"no canned answer for {target}")


@contextmanager
def canned_aws(
    secrets: dict[str, str], *, keep_requests: bool = True, tables: CannedTables | None = None
) -> Iterator[list[AWSRequest | None]]:
    """Patch the HTTP layer; yields the list of every request answered, in order (None for
    each when not `keep_requests`: a run of 100,000 calls would otherwise measure the list).
    With `tables`, GetItem answers what PutItem wrote (CannedTables); without, it finds
    nothing."""
    sent: list[AWSRequest | None] = []

    def send(_session: URLLib3Session, request: AWSRequest) -> AWSResponse:
        sent.append(request if keep_requests else None)
        status, headers, body = _answer(request, secrets, tables)
        return AWSResponse(request.url, status, headers, _Raw(body))

    with mock.patch.object(URLLib3Session, "send", send):
        yield sent
