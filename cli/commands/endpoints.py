"""`sensorhook endpoints list|enable|disable`: shells until forwarding endpoints (issue #8)
are deployed."""

from typing import Annotated

import typer

from cli.features import FORWARDING_ENDPOINTS
from cli.output import JsonOption, YesOption, target

app = typer.Typer(
    no_args_is_help=True,
    help="""Forwarding endpoints and their Efento-style statuses (issue #8; not wired yet).

On a stack without them (no output ForwardingEndpointsTable, see cli/features.py) every
subcommand says "not deployed in this stack" and exits 1.

[b]Example[/b]: sensorhook endpoints list
""",
)

NameArgument = Annotated[str, typer.Argument(help="the endpoint's name")]


@app.command(name="list")
def list_endpoints(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List forwarding endpoints with status and last response.

    [b]Example[/b]: sensorhook endpoints list --json
    """
    FORWARDING_ENDPOINTS.require(target(ctx))
    raise FORWARDING_ENDPOINTS.not_wired()


@app.command()
def enable(
    ctx: typer.Context, name: NameArgument, yes: YesOption = False, json_output: JsonOption = False
) -> None:
    """Re-enable an endpoint the policy disabled (the manual re-enable).

    [b]Example[/b]: sensorhook endpoints enable warehouse-erp
    """
    FORWARDING_ENDPOINTS.require(target(ctx))
    raise FORWARDING_ENDPOINTS.not_wired()


@app.command()
def disable(
    ctx: typer.Context, name: NameArgument, yes: YesOption = False, json_output: JsonOption = False
) -> None:
    """Stop forwarding to an endpoint.

    [b]Example[/b]: sensorhook endpoints disable warehouse-erp --yes
    """
    FORWARDING_ENDPOINTS.require(target(ctx))
    raise FORWARDING_ENDPOINTS.not_wired()
