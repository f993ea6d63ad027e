"""Replay quarantine: put quarantined deliveries back on the ingest queue after a fix deploys.

The envelope goes back unchanged (same event_id), so the processor validates it again; a
quarantined delivery left no idempotency record, so it is not skipped as a duplicate. The
quarantine object is deleted only once SQS has taken the message: a failed send leaves it in
place for the next run.
"""

from dataclasses import dataclass, field

from sensorhook.dal.archive import QUARANTINE_PREFIX, Archive
from sensorhook.dal.inbox import Inbox, InboxWriteFailed
from sensorhook.dal.queue import EnqueueFailed, IngestQueue, MessageTooLarge
from sensorhook.observability import logger


@dataclass
class ReplaySummary:
    replayed: list[str] = field(default_factory=list)  # quarantine keys re-enqueued, deleted
    failed: list[str] = field(default_factory=list)  # quarantine keys left in place


def replay_quarantine(
    archive: Archive, queue: IngestQueue, inbox: Inbox, *, prefix: str = QUARANTINE_PREFIX
) -> ReplaySummary:
    summary = ReplaySummary()
    for key in archive.list_quarantine(prefix):
        envelope, error = archive.get_quarantined(key)
        try:
            try:
                queue.send(envelope)
            except MessageTooLarge:
                # Quarantine keeps bodies inline; one too big for SQS is claim-checked again,
                # exactly as the receiver does it.
                body_key = inbox.put_body(
                    envelope.event_id, envelope.received_at, (envelope.body or "").encode()
                )
                queue.send(envelope.model_copy(update={"body": None, "body_s3_key": body_key}))
        except (EnqueueFailed, InboxWriteFailed) as failure:
            logger.error(
                "replay failed; quarantine object kept",
                extra={"key": key, "event_id": envelope.event_id, "reason": str(failure)},
            )
            summary.failed.append(key)
            continue
        archive.delete(key)
        logger.info(
            "replayed quarantined delivery",
            extra={"key": key, "event_id": envelope.event_id, "quarantine_error": error},
        )
        summary.replayed.append(key)
    return summary
