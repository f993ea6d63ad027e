"""The `sensorhook` command: global options, the command list, and one-line errors."""

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from cli.commands import (
    backfill,
    endpoints,
    migrate,
    query,
    readings,
    replay,
    status,
    subscriptions,
    tail,
    test_delivery,
)
from cli.errors import explain
from cli.output import print_error, route_product_logs
from cli.target import ENDPOINTS_FILE, Selection


class _Group(TyperGroup):
    """Ends a command that raised with one line on stderr and a non-zero exit status, unless
    `--debug` asks for the traceback."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (TyperException, typer.Exit, typer.Abort):
            raise  # usage errors, --help, exit codes and Ctrl-C: Typer says them itself
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            explained = explain(error)
            print_error(str(explained))
            raise typer.Exit(explained.exit_code) from error


app = typer.Typer(
    name="sensorhook",
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help="""Operate a sensorhook installation: the local stack of `make local` or a deployed one.

Without --stack or --stage it uses the local stack when .local/endpoints.json exists,
else the stack of cdk.json's stage (sensorhook-<stage>). Every command takes --json.

[b]Examples[/b]

  sensorhook status

  sensorhook --stage prod replay quarantine --since 2d --dry-run

  sensorhook --stack sensorhook-dev --profile ops test-delivery efento-measurements
""",
)


@app.callback()
def main(
    ctx: typer.Context,
    stack: Annotated[
        str | None,
        typer.Option(envvar="SENSORHOOK_STACK", help="a deployed stack's name"),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(
            envvar="SENSORHOOK_STAGE", help="a cdk.json stage: uses the stack sensorhook-<stage>"
        ),
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="the local stack that `make local` runs")
    ] = False,
    endpoints: Annotated[
        Path, typer.Option(help="the local stack's details file", show_default=False)
    ] = ENDPOINTS_FILE,
    profile: Annotated[str | None, typer.Option(help="AWS profile (deployed stacks)")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (deployed stacks)")] = None,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="SENSORHOOK_DEBUG", help="show tracebacks")
    ] = False,
) -> None:
    if local and (stack or stage):
        raise typer.BadParameter("--local and --stack/--stage exclude each other")
    route_product_logs(debug)
    ctx.obj = Selection(
        stack=stack, stage=stage, local=local, endpoints=endpoints, profile=profile, region=region
    )


app.command(name="status")(status.status)
app.add_typer(replay.app, name="replay")
app.add_typer(subscriptions.app, name="subscriptions")
app.command(name="test-delivery")(test_delivery.test_delivery)
app.add_typer(tail.app, name="tail")
app.command(name="backfill")(backfill.backfill)
app.add_typer(endpoints.app, name="endpoints")
app.command(name="query")(query.query)
app.add_typer(migrate.app, name="migrate")
app.command(name="readings")(readings.readings)


def run() -> None:
    """The console script's entry point."""
    app()
