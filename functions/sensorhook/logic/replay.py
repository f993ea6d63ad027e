"""Replay: put quarantined or dead-lettered deliveries back on the ingest queue after a fix.

The envelope goes back unchanged (same event_id), so the processor validates it again; a
quarantined delivery left no idempotency record, so it is not skipped as a duplicate, and a
dead-lettered one that was stored after all is skipped by idempotency rather than doubled.

A delivery leaves quarantine or the DLQ only once SQS has taken its message: a failed send
leaves it in place for the next run. Quarantine deletes exactly the object version it read,
so a delivery quarantined again while the replay runs is still there afterwards.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import ValidationError

from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.archive import QUARANTINE_PREFIX, Archive, QuarantinedObject
from sensorhook.dal.dead_letters import DeadLetter, DeadLetterQueue
from sensorhook.dal.inbox import Inbox, InboxWriteFailed
from sensorhook.dal.queue import EnqueueFailed, IngestQueue, MessageTooLarge
from sensorhook.observability import logger


class Outcome(StrEnum):
    REPLAYED = "replayed"  # re-enqueued and removed (or, in a dry run, would be)
    FAILED = "failed"  # could not be re-enqueued; left in place
    SKIPPED = "skipped"  # outside --since / --flavor; left in place


# Called once per delivery looked at, with its key (quarantine) or message id (DLQ).
OnEach = Callable[[str, Outcome], None]


@dataclass(frozen=True)
class ReplayFilter:
    since: datetime | None = None  # quarantined (or first enqueued, for the DLQ) at or after
    flavor: Flavor | None = None

    def quarantine_prefix(self) -> str:
        """The narrowest listing prefix: quarantine keys carry the provider, not the flavor."""
        if self.flavor is None:
            return QUARANTINE_PREFIX
        return f"{QUARANTINE_PREFIX}provider={self.flavor.provider}/"

    def passes_flavor(self, flavor: Flavor) -> bool:
        # By value, never identity: the flavor arrives from a caller (the CLI) whose import of
        # the enum need not be the one that parsed the envelope.
        return self.flavor is None or flavor == self.flavor


@dataclass
class ReplaySummary:
    dry_run: bool = False
    replayed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def record(self, item: str, outcome: Outcome, on_each: OnEach | None) -> None:
        {
            Outcome.REPLAYED: self.replayed,
            Outcome.FAILED: self.failed,
            Outcome.SKIPPED: self.skipped,
        }[outcome].append(item)
        if on_each is not None:
            on_each(item, outcome)

    def counts(self) -> dict[str, int]:
        return {
            Outcome.REPLAYED: len(self.replayed),
            Outcome.FAILED: len(self.failed),
            Outcome.SKIPPED: len(self.skipped),
        }


def quarantine_candidates(
    archive: Archive, selection: ReplayFilter, *, prefix: str | None = None
) -> list[QuarantinedObject]:
    """The quarantine objects a replay would look at (listed once, for a progress total)."""
    return [
        entry
        for entry in archive.list_quarantine(prefix or selection.quarantine_prefix())
        if selection.since is None or entry.quarantined_at >= selection.since
    ]


def replay_quarantine(
    archive: Archive,
    queue: IngestQueue,
    inbox: Inbox,
    *,
    prefix: str | None = None,
    selection: ReplayFilter | None = None,
    candidates: list[QuarantinedObject] | None = None,
    dry_run: bool = False,
    on_each: OnEach | None = None,
) -> ReplaySummary:
    selection = selection or ReplayFilter()
    summary = ReplaySummary(dry_run=dry_run)
    if candidates is None:
        candidates = quarantine_candidates(archive, selection, prefix=prefix)
    for entry in candidates:
        quarantined = archive.get_quarantined(entry.key)
        envelope = quarantined.envelope
        if not selection.passes_flavor(envelope.flavor):
            summary.record(entry.key, Outcome.SKIPPED, on_each)
            continue
        if dry_run:
            summary.record(entry.key, Outcome.REPLAYED, on_each)
            continue
        if not _enqueue(queue, inbox, envelope, entry.key):
            summary.record(entry.key, Outcome.FAILED, on_each)
            continue
        archive.delete_quarantined(quarantined)
        logger.info(
            "replayed quarantined delivery",
            extra={
                "key": entry.key,
                "version_id": quarantined.version_id,
                "event_id": envelope.event_id,
                "quarantine_error": quarantined.error,
            },
        )
        summary.record(entry.key, Outcome.REPLAYED, on_each)
    return summary


def replay_dead_letters(
    dead_letters: DeadLetterQueue,
    queue: IngestQueue,
    inbox: Inbox,
    *,
    selection: ReplayFilter | None = None,
    dry_run: bool = False,
    on_each: OnEach | None = None,
) -> ReplaySummary:
    """Move the DLQ's deliveries back to the ingest queue (send, then delete by receipt).

    Messages left in place (skipped, failed, or all of them in a dry run) are held invisible
    while the run reads on, so each is looked at once, and are made visible again at the end.
    """
    selection = selection or ReplayFilter()
    summary = ReplaySummary(dry_run=dry_run)
    kept: list[DeadLetter] = []
    try:
        while letters := dead_letters.receive():
            for letter in letters:
                outcome = _replay_letter(
                    dead_letters, queue, inbox, letter, selection=selection, dry_run=dry_run
                )
                if outcome != Outcome.REPLAYED or dry_run:
                    kept.append(letter)
                summary.record(letter.message_id, outcome, on_each)
    finally:
        dead_letters.release(kept)
    return summary


def _replay_letter(
    dead_letters: DeadLetterQueue,
    queue: IngestQueue,
    inbox: Inbox,
    letter: DeadLetter,
    *,
    selection: ReplayFilter,
    dry_run: bool,
) -> Outcome:
    try:
        envelope = IngestEnvelope.model_validate_json(letter.body)
    except ValidationError:
        logger.error("dead letter is not an ingest envelope; kept", extra={"id": letter.message_id})
        return Outcome.FAILED
    if not selection.passes_flavor(envelope.flavor) or (
        selection.since is not None and letter.sent_at < selection.since
    ):
        return Outcome.SKIPPED
    if dry_run:
        return Outcome.REPLAYED
    if not _enqueue(queue, inbox, envelope, letter.message_id):
        return Outcome.FAILED
    dead_letters.delete(letter)
    logger.info(
        "replayed dead-lettered delivery",
        extra={"message_id": letter.message_id, "event_id": envelope.event_id},
    )
    return Outcome.REPLAYED


def _enqueue(queue: IngestQueue, inbox: Inbox, envelope: IngestEnvelope, source: str) -> bool:
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
            "replay failed; delivery kept",
            extra={"source": source, "event_id": envelope.event_id, "reason": str(failure)},
        )
        return False
    return True
