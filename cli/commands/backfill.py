"""`sensorhook backfill`: the recovery state machine's backfill on its own (docs/recovery.md,
"A backfill on its own"): started with cause operator_backfill, followed to its end, and its
incident record printed.

The execution is named from the request (subscription, sensors, range), so running the same
command twice follows the first execution instead of reading the provider's API again.
"""

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import TaskID
from rich.table import Table

from cli.errors import CliError
from cli.features import BACKFILL
from cli.output import JsonOption, YesOption, confirm, console, print_json, progress, target
from cli.target import Target
from infra.constants import Output

# The only provider whose API holds readings to backfill (docs/recovery.md).
PROVIDER = "everactive-ds"
EVENT_TYPE = "sensor_reading"
DEFAULT_SUBSCRIPTION = "ds-sensor-readings"
SENSOR_PART_PREFIX = "sensor#"


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(
            f"{text!r}: give a date or time (2026-05-01 or 2026-05-01T12:00)", param_hint=option
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def recovery_input(
    subscription: str, sensors: list[str] | None, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    """The execution input, validated by the machine's own model before it is sent."""
    from sensorhook.logic.incidents import BackfillRequest, IncidentCause, RecoveryInput

    request = {"sensors": sensors, "start": start.isoformat(), "end": end.isoformat()}
    digest = hashlib.sha256(json.dumps([subscription, request]).encode()).hexdigest()[:16]
    validated = RecoveryInput(
        subscription=subscription,
        provider=PROVIDER,
        event_type=EVENT_TYPE,
        incident_id=f"backfill-{digest}",
        cause=IncidentCause.OPERATOR_BACKFILL,
        detected_at=now,
        backfill=BackfillRequest(sensors=tuple(sensors) if sensors else None, start=start, end=end),
    )
    return json.loads(validated.model_dump_json())


def backfill(
    ctx: typer.Context,
    sensor: Annotated[
        str | None, typer.Argument(help="one Everactive sensor (its MAC address)")
    ] = None,
    all_sensors: Annotated[
        bool, typer.Option("--all", help="every sensor the sensor_state table knows")
    ] = False,
    start: Annotated[str, typer.Option("--from", help="range start (ISO 8601, UTC if bare)")] = "",
    end: Annotated[str, typer.Option("--to", help="range end, excluded (ISO 8601)")] = "",
    subscription: Annotated[
        str, typer.Option(help="the subscription (cdk.json) whose provider API is read")
    ] = DEFAULT_SUBSCRIPTION,
    poll: Annotated[float, typer.Option(help="seconds between progress checks")] = 2.0,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Recover readings the provider still holds for SENSOR (or --all), --from .. --to.

    Starts the recovery state machine with cause operator_backfill, follows it per sensor
    (readings and windows read so far, from the incidents table) and prints the incident
    record at the end. Readings already stored are dropped by the processor's dedupe, so a
    backfill over stored data changes nothing.

    [b]Example[/b]: sensorhook backfill bc:5e:a1:ff:fe:3a:62:ce --from 2026-05-01 --to 2026-05-02
    """
    if (sensor is None) == (not all_sensors):
        raise typer.BadParameter("give one SENSOR or --all", param_hint="SENSOR")
    if not start or not end:
        raise typer.BadParameter("give both --from and --to", param_hint="--from/--to")
    first, last = _moment(start, "--from"), _moment(end, "--to")
    last = min(last, datetime.now(UTC).replace(microsecond=0))  # the API holds no future
    if first >= last:
        raise typer.BadParameter("--from must be before --to (and now)", param_hint="--from/--to")
    found = target(ctx)
    BACKFILL.require(found)
    document = recovery_input(
        subscription, [sensor] if sensor else None, first, last, datetime.now(UTC)
    )
    who = sensor or "every known sensor"
    confirm(f"backfill {who} from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC?", yes)
    execution_arn = start_execution(found, document)
    incident = follow(
        found, execution_arn, len(document["backfill"]["sensors"] or []), poll, json_output
    )
    if json_output:
        print_json({"execution_arn": execution_arn, "incident": incident})
    else:
        out = console()
        out.print(f"[b]Backfill[/b] {incident.get('execution', '')}")
        out.print(summary(incident))
        out.print(
            "[dim]Readings recovered are those read back and enqueued; any already stored are "
            "dropped by the processor's dedupe (the record does not count them).[/dim]"
        )


def start_execution(found: Target, document: dict[str, Any]) -> str:
    machine = found.output(Output.RECOVERY_STATE_MACHINE_ARN)
    name = f"{document['subscription']}-{document['incident_id']}"[:80]
    client = found.client("stepfunctions")
    try:
        return str(
            client.start_execution(stateMachineArn=machine, name=name, input=json.dumps(document))[
                "executionArn"
            ]
        )
    except client.exceptions.ExecutionAlreadyExists:
        # the same backfill was started before: follow it rather than read the API again
        return machine.replace(":stateMachine:", ":execution:") + f":{name}"


def follow(
    found: Target, execution_arn: str, sensors: int, poll: float, quiet: bool
) -> dict[str, Any]:
    """Poll the execution to its end, showing each sensor's progress from the incidents
    table; returns the incident record (the execution's output `incident`)."""
    from sensorhook.dal.incidents_store import IncidentsStore

    client = found.client("stepfunctions")
    name = execution_arn.rsplit(":", 1)[-1]
    incidents = (
        IncidentsStore(found.output(Output.INCIDENTS_TABLE), found.client("dynamodb"))
        if found.has(Output.INCIDENTS_TABLE)
        else None
    )
    with progress(quiet) as bar:
        overall = bar.add_task(f"backfill {name}", total=sensors or None)
        shown: dict[str, TaskID] = {}
        while True:
            described = client.describe_execution(executionArn=execution_arn)
            parts = incidents.parts(name, SENSOR_PART_PREFIX) if incidents else []
            for part in parts:
                sensor = str(part["part"]).removeprefix(SENSOR_PART_PREFIX)
                if sensor not in shown:
                    shown[sensor] = bar.add_task(f"  {sensor}", total=None)
                bar.update(
                    shown[sensor],
                    completed=int(part.get("windows", 0)),
                    description=f"  {sensor}: {int(part.get('readings', 0))} readings"
                    + (f" [red]{part['error']}[/red]" if part.get("error") else ""),
                )
            bar.update(overall, completed=len(parts), total=sensors or len(parts) or None)
            if described["status"] != "RUNNING":
                break
            time.sleep(poll)
    if described["status"] != "SUCCEEDED":
        cause = described.get("cause") or described.get("error") or "no cause given"
        raise CliError(f"backfill execution {name} ended {described['status']}: {cause}")
    output = json.loads(described.get("output") or "{}")
    incident: dict[str, Any] = output.get("incident") or {}
    if not incident:
        raise CliError(f"backfill execution {name} succeeded without an incident record")
    return incident


def summary(incident: dict[str, Any]) -> Table:
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    outcome = incident.get("outcome", "-")
    colour = "green" if outcome == "recovered" else "red"
    failed = incident.get("failed_sensors") or []
    for label, value in (
        ("outcome", f"[{colour}]{outcome}[/{colour}]"),
        ("sensors", incident.get("sensors", 0)),
        ("readings recovered", incident.get("readings_recovered", 0)),
        ("windows read", incident.get("windows_read", 0)),
        ("provider API calls", incident.get("api_calls", 0)),
        ("failed sensors", ", ".join(failed) if failed else "none"),
        ("deferred sensors", incident.get("deferred_sensors", 0)),
        ("took", f"{float(incident.get('duration_s', 0)):.1f} s"),
    ):
        table.add_row(label, str(value))
    for sensor, count in sorted((incident.get("readings_recovered_per_sensor") or {}).items()):
        table.add_row(f"  {sensor}", str(count))
    if incident.get("error"):
        table.add_row("error", f"[red]{incident['error']}[/red]")
    return table
