"""`sensorhook migrate sensor-state`: the one-off data migration of a release that changed how
a table is laid out (docs/architecture.md, "Sensor state: migrating an existing deployment")."""

from typing import Annotated, Any

import typer

from cli.output import JsonOption, YesOption, confirm, console, print_json, target
from infra.constants import Output

app = typer.Typer(
    no_args_is_help=True,
    help="""Move an existing deployment's data to the layout this release reads.

Run it once after deploying; running it again is safe (it finds nothing left to move).

[b]Example[/b]: sensorhook --stage prod migrate sensor-state --dry-run
""",
)

DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="count what would move; change nothing")
]


@app.command(name="sensor-state")
def sensor_state(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Fold the per-channel sensor-state items into one `#latest` item per sensor, index the
    sensors flagged silent, and delete the folded items.

    A channel takes an old item only when it is newer than what `#latest` holds, so it is safe
    while the processor runs. Until it has run, gateway health does not see a sensor that has
    not reported since the deploy, and an Efento channel's first batch after the deploy is not
    checked for a gap before it.

    [b]Example[/b]: sensorhook migrate sensor-state --dry-run
    """
    from sensorhook.dal.health_store import HealthStore
    from sensorhook.dal.sensor_state_store import SensorStateStore
    from sensorhook.logic.state_migration import migrate

    found = target(ctx)
    dynamodb = found.client("dynamodb")
    table = found.output(Output.SENSOR_STATE_TABLE)
    if not dry_run:
        confirm(f"Migrate {table} (per-channel items are deleted once folded)?", yes)
    report = migrate(
        SensorStateStore(table, dynamodb),
        HealthStore(found.output(Output.GATEWAYS_TABLE), table, dynamodb),
        dry_run=dry_run,
    )
    figures: dict[str, Any] = report.model_dump()
    if json_output:
        print_json(figures)
        return
    verb = "would move" if dry_run else "moved"
    console().print(
        f"{report.sensors} sensors, {report.legacy_items} per-channel items: {verb} "
        f"{report.channels_moved_forward} channels forward into #latest, "
        f"{'would index' if dry_run else 'indexed'} {report.silent_indexed} silent sensors, "
        f"deleted {report.legacy_items_deleted} items"
    )
