"""Replay against a versioned bucket (as infra makes it): the quarantine object version that
was read is the one deleted, never a newer one written meanwhile, and no older one resurfaces."""

from datetime import UTC, datetime

import pytest

from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.archive import Archive, quarantine_key
from sensorhook.dal.inbox import Inbox
from sensorhook.dal.queue import IngestQueue
from sensorhook.logic.replay import replay_quarantine
from tests.integration.conftest import BUCKET, Aws

DELIVERY = IngestEnvelope(
    flavor=Flavor.EFENTO_MEASUREMENTS,
    event_id="efento:replay-race",
    received_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
    request_id="req-1",
    body='{"measurements": []}',
)
KEY = quarantine_key(DELIVERY)


@pytest.fixture
def versioned(aws: Aws) -> Aws:
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return aws


class QuarantinedAgainWhileQueued(IngestQueue):
    """The processor takes the replayed message and quarantines the delivery again before the
    replay gets to its delete: the window a plain DeleteObject would lose it in."""

    def __init__(self, queue_url: str, archive: Archive) -> None:
        super().__init__(queue_url)
        self._archive = archive

    def send(self, envelope: IngestEnvelope) -> None:
        super().send(envelope)
        self._archive.put_quarantine(quarantine_key(envelope), envelope, "quarantined again")


def test_a_delivery_quarantined_again_during_the_replay_stays_in_quarantine(
    versioned: Aws,
) -> None:
    # Given a quarantined delivery
    archive = Archive(BUCKET)
    archive.put_quarantine(KEY, DELIVERY, "an earlier release rejected it")

    # When it is replayed, and quarantined again between the send and the delete
    summary = replay_quarantine(
        archive,
        QuarantinedAgainWhileQueued(versioned.ingest_queue_url, archive),
        Inbox(BUCKET),
    )

    # Then the replay deleted only the version it read: the new quarantine is still there
    assert summary.replayed == [KEY]
    assert [entry.key for entry in archive.list_quarantine()] == [KEY]
    assert archive.get_quarantined(KEY).error == "quarantined again"


def test_a_replayed_delivery_leaves_no_older_version_behind_to_resurface(versioned: Aws) -> None:
    # Given a delivery quarantined twice (the provider re-sent it): two versions of one key
    archive = Archive(BUCKET)
    archive.put_quarantine(KEY, DELIVERY, "first time")
    archive.put_quarantine(KEY, DELIVERY, "second time")

    # When it is replayed
    first = replay_quarantine(archive, IngestQueue(versioned.ingest_queue_url), Inbox(BUCKET))

    # Then it is gone from quarantine for good: no earlier version became current
    assert first.replayed == [KEY]
    assert list(archive.list_quarantine()) == []
    again = replay_quarantine(archive, IngestQueue(versioned.ingest_queue_url), Inbox(BUCKET))
    assert again.replayed == []
    messages = versioned.sqs.receive_message(
        QueueUrl=versioned.ingest_queue_url, MaxNumberOfMessages=10
    )["Messages"]
    assert [IngestEnvelope.model_validate_json(m["Body"]) for m in messages] == [DELIVERY]
