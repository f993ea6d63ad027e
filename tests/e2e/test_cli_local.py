"""The operator CLI against the local sandbox, as a user runs it next to `make local`: the
installed `sensorhook` console script, in its own process, finds the stack through the
endpoints file; then `status`, `test-delivery`, `replay`, `subscriptions reconcile`,
`tail logs`, `query`, `endpoints` and `backfill`."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from infra.constants import Output
from local.emulator import Installation
from local.sandbox import sandbox, write_endpoints
from sensorhook.core.dedupe import event_id_for
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.archive import Archive, quarantine_key
from sensorhook.dal.readings_store import readings_in

pytestmark = pytest.mark.slow
# what `make venv` installs next to the interpreter
SCRIPT = os.path.join(os.path.dirname(sys.executable), "sensorhook")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    installation = Installation.create(
        seed=5, sensors=2, gateways=1, start=datetime.now(UTC) - timedelta(minutes=5)
    )
    with sandbox(installation) as box:
        box.stack.drain(timeout=60)
        endpoints = write_endpoints(box, tmp_path_factory.mktemp("local") / "endpoints.json")

        def sensorhook(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(  # noqa: S603 (our own console script)
                [SCRIPT, "--endpoints", str(endpoints), *args],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "COLUMNS": "300"},
                check=False,
            )

        yield box, installation, sensorhook


def test_status_finds_the_local_stack_and_shows_its_subscriptions(local) -> None:
    _, _, sensorhook = local

    result = sensorhook("status")
    report = json.loads(sensorhook("status", "--json").stdout)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sensorhook local (local, us-east-1, running)")
    states = {s["name"]: s["status"] for s in report["subscriptions"]}
    assert states["ds-sensor-readings"] == states["ds-gateway-status"] == "active"
    assert states["efento-measurements"] == "manual"
    assert report["queues"]["dead-letter"]["waiting"] == 0
    # forwarding and recovery are deployed in the local stack: their sections are shown
    assert {row["name"] for row in report["forwarding_endpoints"]} == set(
        box_outputs(local)[Output.FORWARDING_ENDPOINTS].split(",")
    )
    assert report["incidents"] == []
    assert "Open incidents: none" in result.stdout


def box_outputs(local) -> dict[str, str]:
    box, _, _ = local
    return dict(box.stack.outputs)


def test_endpoints_list_shows_the_stages_forwarding_endpoints(local) -> None:
    _, _, sensorhook = local

    result = sensorhook("endpoints", "list", "--json")

    assert result.returncode == 0, result.stderr
    statuses = {row["name"]: row["status"] for row in json.loads(result.stdout)}
    assert set(statuses) == set(box_outputs(local)[Output.FORWARDING_ENDPOINTS].split(","))
    assert set(statuses.values()) <= {"New", "OK", "No response", "Error"}


def test_backfill_runs_the_recovery_machine_and_prints_its_record(local) -> None:
    _, installation, sensorhook = local
    now = datetime.now(UTC).replace(microsecond=0)
    mac = installation.eversensors[0].mac

    result = sensorhook(
        "backfill",
        mac,
        "--from",
        (now - timedelta(minutes=2)).isoformat(),
        "--to",
        now.isoformat(),
        "--poll",
        "0.5",
        "--yes",
        "--json",
    )

    assert result.returncode == 0, result.stderr
    incident = json.loads(result.stdout)["incident"]
    assert incident["cause"] == "operator_backfill" and incident["outcome"] == "recovered"
    assert incident["sensors"] == 1 and incident["failed_sensors"] == []
    assert incident["readings_recovered"] > 0  # the provider API holds the last two minutes


@pytest.mark.parametrize(
    ("flavor", "where"),
    [
        ("efento-measurements", "events"),
        ("everactive-v2020-07", "events"),
        ("everactive-ds-gateway-status", "gateways table"),
    ],
)
def test_the_test_button_lands_in_the_local_stack(local, flavor: str, where: str) -> None:
    _, _, sensorhook = local

    result = sensorhook("test-delivery", flavor, "--wait", "30", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["response"]["status"] == 202
    assert report["landed"]["where"] == where


def test_replay_puts_a_quarantined_delivery_through_and_it_is_stored(local) -> None:
    # Given a valid Efento delivery that an earlier release quarantined
    box, installation, sensorhook = local
    payload = installation.payload(Flavor.EFENTO_MEASUREMENTS)
    body = json.dumps(payload.body)
    envelope = IngestEnvelope(
        flavor=Flavor.EFENTO_MEASUREMENTS,
        event_id=event_id_for(Flavor.EFENTO_MEASUREMENTS, payload.body),
        received_at=datetime.now(UTC),
        request_id="earlier-release",
        body=body,
    )
    bucket = box.stack.outputs[Output.BUCKET_NAME]
    archive = Archive(bucket, box.stack.client("s3"))
    archive.put_quarantine(quarantine_key(envelope), envelope, "an earlier release rejected it")
    assert json.loads(sensorhook("status", "--json").stdout)["quarantine"]["count"] == 1

    # When the operator replays quarantine
    result = sensorhook("replay", "quarantine", "--yes", "--json")
    box.stack.drain(timeout=60)

    # Then it was re-enqueued and stored, and quarantine is empty
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"] == {"replayed": 1, "failed": 0, "skipped": 0}
    assert json.loads(sensorhook("status", "--json").stdout)["quarantine"]["count"] == 0
    sensor_id = payload.samples[0].sensor_id
    items = box.stack.client("dynamodb").scan(
        TableName=box.stack.outputs[Output.READINGS_TABLE],
        FilterExpression="sensor_id = :s",
        ExpressionAttributeValues={":s": {"S": sensor_id}},
    )["Items"]
    assert any(reading.event_id == envelope.event_id for reading in readings_in(items))


def test_the_dead_letter_queue_is_empty_and_replay_says_so(local) -> None:
    _, _, sensorhook = local

    result = sensorhook("replay", "dlq", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "Nothing to replay in the dead-letter queue." in result.stdout


def test_reconcile_after_the_deploy_has_nothing_to_change(local) -> None:
    _, _, sensorhook = local

    result = sensorhook("subscriptions", "reconcile", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "= unchanged" in result.stdout
    assert "Nothing to change." in result.stdout


def test_tail_logs_reads_a_functions_log_group(local) -> None:
    _, _, sensorhook = local

    result = sensorhook("tail", "logs", "subscriptions", "--since", "30m", "--no-follow")

    assert result.returncode == 0, result.stderr
    assert "subscriptions reconciled" in result.stdout


def test_query_runs_a_named_query_over_the_local_lake(local) -> None:
    box, _, sensorhook = local
    # one Efento delivery through the stack, into the lake
    assert sensorhook("test-delivery", "efento-measurements", "--wait", "30").returncode == 0
    box.stack.drain(timeout=60)
    today = datetime.now(UTC).date().isoformat()
    first = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

    result = sensorhook("query", "--named", "readings_per_provider_per_day", first, today, "--json")
    table = sensorhook("query", "SELECT count(*) AS readings FROM readings")

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(row["readings"] > 0 for row in rows)
    assert "efento" in {row["provider"] for row in rows}
    assert table.returncode == 0, table.stderr
    assert "DuckDB (local)" in table.stdout
