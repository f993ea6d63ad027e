"""`sensorhook endpoints list|enable|disable`: forwarding endpoints (issue #8) with Efento's
statuses, and the manual re-enable the endpoint policy requires.

Reading comes from the endpoints table; enable and disable start the policy machine (the only
writer of a status), through sensorhook.logic.endpoint_admin, so the operator's action is
stored, timestamped and published like any other transition.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.features import FORWARDING_ENDPOINTS
from cli.output import JsonOption, YesOption, ago, confirm, console, print_json, target
from cli.target import Target
from infra.constants import Output

app = typer.Typer(
    no_args_is_help=True,
    help="""Forwarding endpoints and their Efento-style statuses (issue #8).

On a stack without them (no output ForwardingEndpointsTable, see cli/features.py) every
subcommand says "not deployed in this stack" and exits 1.

[b]Example[/b]: sensorhook endpoints list
""",
)

NameArgument = Annotated[str, typer.Argument(help="the endpoint's name")]

# Efento's six statuses, coloured as its panel does (good, waiting, failing, stopped).
STATUS_STYLES = {
    "New": "cyan",
    "OK": "green",
    "No response": "yellow",
    "Error": "red",
    "Temporarily disabled": "yellow",
    "Disabled": "red",
}


def styled_status(status: str) -> str:
    style = STATUS_STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def endpoint_rows(found: Target) -> list[dict[str, Any]]:
    """Every configured endpoint and any other the table knows, as plain values."""
    from sensorhook.dal.backlog import Backlog
    from sensorhook.dal.endpoints_store import EndpointsStore
    from sensorhook.logic.endpoint_admin import list_endpoints

    store = EndpointsStore(found.output(Output.ENDPOINTS_TABLE), found.client("dynamodb"))
    configured = [
        name.strip()
        for name in found.outputs.get(Output.FORWARDING_ENDPOINTS, "").split(",")
        if name.strip()
    ]
    backlog = (
        Backlog(found.output(Output.BUCKET_NAME), found.client("s3"))
        if found.has(Output.BUCKET_NAME)
        else None
    )
    return [view.as_dict() for view in list_endpoints(store, configured, backlog)]


def endpoints_table(rows: list[dict[str, Any]], now: datetime | None = None) -> Table:
    table = Table(title="Forwarding endpoints", title_justify="left")
    for column in ("name", "status", "since", "last attempt", "last response", "backlog"):
        table.add_column(column)
    for row in rows:
        code = row["last_response_code"]
        table.add_row(
            row["name"],
            styled_status(row["status"]),
            ago(_moment(row["status_since"]), now),
            ago(_moment(row["last_attempt_at"]), now),
            "-" if code is None else str(code),
            "-" if row["backlog_events"] is None else str(row["backlog_events"]),
        )
    return table


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command(name="list")
def list_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List forwarding endpoints with status, last attempt and last response code.

    [b]Example[/b]: sensorhook endpoints list --json
    """
    found = target(ctx)
    FORWARDING_ENDPOINTS.require(found)
    rows = endpoint_rows(found)
    if json_output:
        print_json(rows)
    elif rows:
        console().print(endpoints_table(rows))
    else:
        console().print("No forwarding endpoints are configured.")


def _act(ctx: typer.Context, name: str, action: str, yes: bool, json_output: bool) -> None:
    from sensorhook.dal.endpoints_store import EndpointsStore
    from sensorhook.dal.policy_machine import PolicyMachine
    from sensorhook.logic.endpoint_admin import request_action

    found = target(ctx)
    FORWARDING_ENDPOINTS.require(found)
    known = {row["name"]: row for row in endpoint_rows(found)}
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise typer.BadParameter(f"no endpoint {name!r} (known: {listed})", param_hint="NAME")
    machine_arn = found.output(Output.ENDPOINT_POLICY_STATE_MACHINE_ARN)
    confirm(f"{action} forwarding endpoint {name} (now {known[name]['status']})?", yes)
    store = EndpointsStore(found.output(Output.ENDPOINTS_TABLE), found.client("dynamodb"))
    machine = PolicyMachine(machine_arn, found.client("stepfunctions"))
    execution = request_action(store, machine, name, action)
    result = {
        "endpoint": name,
        "action": action,
        "execution": execution,
        "state_machine": machine_arn,
    }
    if json_output:
        print_json(result)
    else:
        console().print(
            f"{action.capitalize()} of [b]{name}[/b] requested: the endpoint policy applies it "
            f"(execution {execution}); `sensorhook endpoints list` shows the new status."
        )


@app.command()
def enable(
    ctx: typer.Context, name: NameArgument, yes: YesOption = False, json_output: JsonOption = False
) -> None:
    """Re-enable an endpoint the policy disabled (the manual re-enable).

    [b]Example[/b]: sensorhook endpoints enable warehouse-erp
    """
    _act(ctx, name, "enable", yes, json_output)


@app.command()
def disable(
    ctx: typer.Context, name: NameArgument, yes: YesOption = False, json_output: JsonOption = False
) -> None:
    """Stop forwarding to an endpoint until it is enabled again.

    [b]Example[/b]: sensorhook endpoints disable warehouse-erp --yes
    """
    _act(ctx, name, "disable", yes, json_output)
