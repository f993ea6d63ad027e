"""The bucket's delivery prefixes as the processor uses them: raw archive, quarantine, and
reading claim-checked bodies from the inbox (dal/inbox.py writes them).

Key layouts are the contract in docs/architecture.md (Athena's partition projection reads
raw/ and operators read quarantine/), so they are built here and nowhere else.
"""

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.aws_clients import s3_client

QUARANTINE_PREFIX = "quarantine/"


class InboxBodyMissing(LookupError):
    """A claim-checked body is not in the inbox (expired or never written): retrying cannot
    help. S3 says so (404) only to a role allowed s3:ListBucket on the inbox; without it, a
    missing key is a 403 like any refusal."""


class InboxBodyUnreadable(RuntimeError):
    """The inbox refused or failed to serve a body (access denied, throttling, a 5xx, a
    connection error); a retry may succeed."""


def raw_key(flavor: Flavor, received_at: datetime, message_ids: Iterable[str]) -> str:
    """Named by the batch's message ids, so a retried identical batch overwrites its object."""
    batch = hashlib.sha256("\n".join(sorted(message_ids)).encode()).hexdigest()[:32]
    return (
        f"raw/provider={flavor.provider}/flavor={flavor.value}"
        f"/date={received_at:%Y-%m-%d}/hour={received_at:%H}/{batch}.jsonl.gz"
    )


def quarantine_key(envelope: IngestEnvelope) -> str:
    """One object per delivery: a re-sent invalid delivery overwrites rather than piles up."""
    return (
        f"{QUARANTINE_PREFIX}provider={envelope.flavor.provider}"
        f"/date={envelope.received_at:%Y-%m-%d}/{envelope.event_id}.json"
    )


@dataclass(frozen=True)
class QuarantinedObject:
    """One quarantine object as listed: its key and when it was (last) quarantined."""

    key: str
    quarantined_at: datetime


@dataclass(frozen=True)
class Quarantined:
    """A quarantined delivery as read: the envelope, why, and the object version read.

    The bucket is versioned: the same delivery quarantined again while a replay runs writes a
    newer version of the same key, which the replay must not delete.
    """

    key: str
    version_id: str | None  # None only on an unversioned bucket
    envelope: IngestEnvelope
    error: str


class Archive:
    def __init__(self, bucket_name: str, client: Any = None) -> None:
        self._bucket = bucket_name
        self._client = client or s3_client()

    def put_raw(self, key: str, envelopes: Sequence[IngestEnvelope]) -> None:
        """One gzip JSON-lines object; each line an envelope with its body inline."""
        lines = "".join(envelope.model_dump_json() + "\n" for envelope in envelopes)
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=gzip.compress(lines.encode(), compresslevel=6, mtime=0),
            ContentType="application/gzip",
        )

    def get_inbox_body(self, key: str) -> str:
        """The body at `key`. Raises InboxBodyMissing or InboxBodyUnreadable."""
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            body: bytes = response["Body"].read()
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("NoSuchKey", "404"):
                raise InboxBodyMissing(key) from error
            raise InboxBodyUnreadable(f"{key}: {code}") from error
        except BotoCoreError as error:
            raise InboxBodyUnreadable(f"{key}: {type(error).__name__}") from error
        return body.decode()

    def put_quarantine(self, key: str, envelope: IngestEnvelope, error: str) -> None:
        document = {"envelope": envelope.model_dump(mode="json"), "error": error}
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(document, ensure_ascii=False).encode(),
            ContentType="application/json",
        )

    def list_quarantine(self, prefix: str = QUARANTINE_PREFIX) -> Iterator[QuarantinedObject]:
        """Quarantined deliveries under `prefix` (which must lie inside quarantine/)."""
        if not prefix.startswith(QUARANTINE_PREFIX):
            raise ValueError(f"prefix must start with {QUARANTINE_PREFIX!r}")
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield QuarantinedObject(entry["Key"], entry["LastModified"])

    def get_quarantined(self, key: str) -> Quarantined:
        """The quarantined envelope (body inline), its error, and the version read."""
        response = self._client.get_object(Bucket=self._bucket, Key=key)
        document = json.loads(response["Body"].read())
        return Quarantined(
            key=key,
            version_id=response.get("VersionId"),
            envelope=IngestEnvelope.model_validate(document["envelope"]),
            error=document["error"],
        )

    def delete_quarantined(self, quarantined: Quarantined) -> None:
        """Delete exactly the version read, and the older versions it superseded.

        Never a plain DeleteObject: on a versioned bucket that puts a delete marker on top,
        hiding a newer version written since the read (the same delivery quarantined again).
        Older versions go first, so the key never falls back to one of them.
        """
        if quarantined.version_id is None:
            self._client.delete_object(Bucket=self._bucket, Key=quarantined.key)
            return
        for version_id in self._versions_older_than(quarantined.key, quarantined.version_id):
            self._client.delete_object(
                Bucket=self._bucket, Key=quarantined.key, VersionId=version_id
            )
        self._client.delete_object(
            Bucket=self._bucket, Key=quarantined.key, VersionId=quarantined.version_id
        )

    def _versions_older_than(self, key: str, version_id: str) -> list[str]:
        """Ids of the key's versions listed after `version_id` (S3 lists one key's versions
        newest first). Delete markers are left alone: one below the version read only keeps
        the key deleted."""
        older: list[str] = []
        seen = False
        paginator = self._client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=key):
            for entry in page.get("Versions", []):
                if entry["Key"] != key:
                    continue
                if seen:
                    older.append(entry["VersionId"])
                seen = seen or entry["VersionId"] == version_id
        return older
