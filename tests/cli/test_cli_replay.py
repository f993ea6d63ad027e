"""`sensorhook replay quarantine|dlq` against the moto stack."""

import json
from datetime import UTC, datetime, timedelta

from infra.constants import Output
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.archive import Archive, quarantine_key
from tests.cli.conftest import BUCKET, Stack

NOW = datetime.now(UTC)


def _envelope(flavor: Flavor, event_id: str) -> IngestEnvelope:
    return IngestEnvelope(
        flavor=flavor, event_id=event_id, received_at=NOW, request_id="r-1", body='{"a": 1}'
    )


EFENTO = _envelope(Flavor.EFENTO_MEASUREMENTS, "efento:one")
DS = _envelope(Flavor.EVERACTIVE_DS_SENSOR_READING, "ds:one")


def _quarantine(stack: Stack, *envelopes: IngestEnvelope) -> Archive:
    archive = Archive(BUCKET, stack.s3)
    for envelope in envelopes:
        archive.put_quarantine(quarantine_key(envelope), envelope, "an earlier release")
    return archive


def _queued(stack: Stack) -> list[IngestEnvelope]:
    return [
        IngestEnvelope.model_validate_json(message["Body"])
        for message in stack.queue_messages(Output.INGEST_QUEUE_URL)
    ]


def test_replay_quarantine_re_enqueues_one_flavor_and_counts(stack: Stack, sensorhook) -> None:
    # Given an Efento and a Data Services delivery in quarantine
    archive = _quarantine(stack, EFENTO, DS)

    # When the operator replays the Efento ones
    result = sensorhook(
        "replay", "quarantine", "--flavor", "efento-measurements", "--yes", "--json"
    )

    # Then only the Efento delivery went back to the queue, and left quarantine
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "source": "quarantine",
        "dry_run": False,
        "counts": {"replayed": 1, "failed": 0, "skipped": 0},
        "failed": [],
    }
    assert _queued(stack) == [EFENTO]
    assert [entry.key for entry in archive.list_quarantine()] == [quarantine_key(DS)]


def test_replay_asks_first_and_a_no_changes_nothing(stack: Stack, sensorhook) -> None:
    archive = _quarantine(stack, EFENTO)

    result = sensorhook("replay", "quarantine", input="n\n")

    assert result.exit_code == 1
    assert "Re-enqueue up to 1 quarantined deliveries" in result.stdout
    assert "not confirmed, nothing changed" in result.stderr
    assert _queued(stack) == []
    assert len(list(archive.list_quarantine())) == 1


def test_replay_dry_run_counts_and_changes_nothing(stack: Stack, sensorhook) -> None:
    archive = _quarantine(stack, EFENTO, DS)

    result = sensorhook("replay", "quarantine", "--dry-run")

    assert result.exit_code == 0, result.output
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    assert ["would replay", "2"] in rows
    assert "Replay of the quarantine (dry run)" in result.stdout
    assert _queued(stack) == []
    assert len(list(archive.list_quarantine())) == 2


def test_replay_since_leaves_older_quarantine_alone(stack: Stack, sensorhook) -> None:
    _quarantine(stack, EFENTO)
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()

    result = sensorhook("replay", "quarantine", "--since", later, "--yes", "--json")

    assert json.loads(result.stdout)["counts"] == {"replayed": 0, "failed": 0, "skipped": 0}
    assert _queued(stack) == []


def test_a_failed_enqueue_keeps_the_delivery_and_exits_1(stack: Stack, sensorhook) -> None:
    # Given the ingest queue refusing messages (here: it is gone)
    archive = _quarantine(stack, EFENTO)
    stack.sqs.delete_queue(QueueUrl=stack.outputs[Output.INGEST_QUEUE_URL])

    result = sensorhook("replay", "quarantine", "--yes")

    assert result.exit_code == 1
    assert f"kept: {quarantine_key(EFENTO)}" in result.stdout
    assert len(list(archive.list_quarantine())) == 1


def _dead_letter(stack: Stack, body: str) -> None:
    stack.sqs.send_message(QueueUrl=stack.outputs[Output.DLQ_URL], MessageBody=body)


def test_replay_dlq_moves_one_flavor_back_and_leaves_the_rest_visible(
    stack: Stack, sensorhook
) -> None:
    # Given two dead-lettered deliveries of different flavors
    _dead_letter(stack, EFENTO.model_dump_json(exclude_none=True))
    _dead_letter(stack, DS.model_dump_json(exclude_none=True))

    # When the Data Services one is replayed
    result = sensorhook(
        "replay", "dlq", "--flavor", "everactive-ds-sensor-reading", "--yes", "--json"
    )

    # Then it is on the ingest queue, and the Efento one waits, visible, in the DLQ
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"replayed": 1, "failed": 0, "skipped": 1}
    assert _queued(stack) == [DS]
    [left] = stack.queue_messages(Output.DLQ_URL)
    assert IngestEnvelope.model_validate_json(left["Body"]) == EFENTO


def test_replay_dlq_keeps_what_is_not_an_envelope(stack: Stack, sensorhook) -> None:
    _dead_letter(stack, "not an envelope")

    result = sensorhook("replay", "dlq", "--yes")

    assert result.exit_code == 1
    assert stack.depth(Output.DLQ_URL) == 1
    assert _queued(stack) == []


def test_replay_dlq_dry_run_changes_nothing(stack: Stack, sensorhook) -> None:
    _dead_letter(stack, EFENTO.model_dump_json(exclude_none=True))

    result = sensorhook("replay", "dlq", "--dry-run", "--json")

    assert json.loads(result.stdout)["counts"]["replayed"] == 1
    assert stack.depth(Output.DLQ_URL) == 1
    assert _queued(stack) == []
