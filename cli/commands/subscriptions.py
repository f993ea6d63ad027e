"""`sensorhook subscriptions reconcile`: the reconciler's plan as a diff, then its result.

It runs the deployed subscriptions function itself (`{"dry_run": true}` for the plan), so the
plan is made with the function's own settings, role and secrets, exactly as on its schedule.
"""

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.errors import CliError
from cli.output import JsonOption, YesOption, confirm, console, print_json, target
from cli.target import Target
from infra.constants import Output

app = typer.Typer(
    no_args_is_help=True,
    help="""The provider webhook subscriptions cdk.json declares.

[b]Example[/b]: sensorhook subscriptions reconcile --dry-run
""",
)

_MARKS = {"create": "+", "update": "~", "enable": "^", "delete": "-"}
_STYLES = {"create": "green", "update": "yellow", "enable": "cyan", "delete": "red"}


@app.command()
def reconcile(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show the plan; change nothing in the provider")
    ] = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Make the provider's webhooks match cdk.json now: the plan, then (after a yes) the result.

    Header values are never shown; Efento subscriptions are listed as manual (Efento Cloud).

    [b]Example[/b]: sensorhook subscriptions reconcile --yes
    """
    found = target(ctx)
    plan = _invoke(found, dry_run=True)
    actions = plan["plan"]["actions"]
    if dry_run or not actions:
        if json_output:
            print_json(plan)
        else:
            _print_plan(plan)
            if not actions:
                console().print("Nothing to change.")
        raise typer.Exit(1 if plan["errors"] else 0)
    if not json_output:
        _print_plan(plan)
    confirm(f"Apply these {len(actions)} change(s) to the provider?", yes)
    result = _invoke(found, dry_run=False)
    if json_output:
        print_json(result)
    else:
        _print_result(result)
    raise typer.Exit(1 if result["errors"] else 0)


def _invoke(found: Target, *, dry_run: bool) -> dict[str, Any]:
    response = found.client("lambda").invoke(
        FunctionName=found.output(Output.SUBSCRIPTIONS_FUNCTION_NAME),
        Payload=json.dumps({"dry_run": dry_run}).encode(),
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if "FunctionError" in response or not isinstance(payload, dict):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise CliError(f"the subscriptions function failed: {message}")
    return payload


def _print_plan(summary: dict[str, Any]) -> None:
    plan = summary["plan"]
    table = Table(title="Plan" + (" (dry run)" if summary["dry_run"] else ""), title_justify="left")
    for column in ("", "subscription", "provider", "webhook", "callback URL", "what changes"):
        table.add_column(column)
    for action in plan["actions"]:
        kind = action["kind"]
        style = _STYLES[kind]
        table.add_row(
            f"[{style}]{_MARKS[kind]} {kind}[/{style}]",
            action.get("subscription", "(stale webhook)"),
            action["provider"],
            action.get("webhook_id", "(new)"),
            action.get("callback_url", ""),
            ", ".join(action.get("changes", [])) + (" (replace)" if action.get("replace") else ""),
        )
    for name, webhook_id in sorted(plan["unchanged"].items()):
        table.add_row("[dim]= unchanged[/dim]", name, "", webhook_id, "", "")
    for manual in plan["manual"]:
        table.add_row(
            "[cyan]manual[/cyan]",
            manual["subscription"],
            "efento",
            "",
            manual["callback_url"],
            "set in Efento Cloud, headers " + ", ".join(manual["header_names"]),
        )
    for webhook_id in plan["left_alone"]:
        table.add_row("[dim]left alone[/dim]", "", "", webhook_id, "", "points elsewhere")
    for name, error in plan["errors"].items():
        table.add_row("[red]! error[/red]", name, "", "", "", error)
    console().print(table)


def _print_result(summary: dict[str, Any]) -> None:
    table = Table(title="Result", title_justify="left")
    table.add_column("change")
    table.add_column("planned", justify="right")
    table.add_column("applied", justify="right")
    for kind, planned in summary["planned"].items():
        table.add_row(kind, str(planned), str(summary["applied"].get(kind, 0)))
    out = console()
    out.print(table)
    for name, error in summary["errors"].items():
        out.print(f"[red]failed[/red] {name}: {error}")
