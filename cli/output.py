"""Printing: Rich for people, JSON for scripts (`--json`), one line on stderr for errors."""

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.errors import CliError
from cli.target import Selection, Target, resolve

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")]

# Colours of states across commands.
STATE_STYLES = {
    "active": "green",
    "re-enabled": "green",
    "online": "green",
    "ok": "green",
    "landed": "green",
    "replayed": "green",
    "manual": "cyan",
    "disabled": "yellow",
    "silent": "yellow",
    "skipped": "yellow",
    "unjudged": "yellow",
    "not deployed": "dim",
    "offline": "red",
    "error": "red",
    "failed": "red",
}


def console() -> Console:
    """Stdout, created per command so test runners that swap sys.stdout capture it."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def print_error(message: str) -> None:
    Console(file=sys.stderr, highlight=False, soft_wrap=True).print(
        f"[red]error:[/red] {message}", markup=True
    )


def route_product_logs(debug: bool) -> None:
    """The product's Powertools logger writes JSON lines to stdout, as Lambda wants; at a
    terminal they go to stderr (stdout stays the command's output, `--json` parseable), and
    only warnings and errors unless --debug."""
    from sensorhook.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.stream = _CurrentStderr()
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written (test runners swap it per command)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def styled(state: str) -> str:
    style = STATE_STYLES.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def target(ctx: typer.Context) -> Target:
    """The stack the command works on, found once per invocation."""
    root = ctx.find_root()
    meta = root.meta
    if "sensorhook.target" not in meta:
        selection = root.obj if isinstance(root.obj, Selection) else Selection()
        meta["sensorhook.target"] = resolve(selection)
    found: Target = meta["sensorhook.target"]
    return found


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive action; `--yes` skips the question. No answer (a script's
    empty stdin) is a no."""
    if yes:
        return
    try:
        agreed = typer.confirm(question, default=False)
    except typer.Abort:
        agreed = False
    if not agreed:
        raise CliError("not confirmed, nothing changed (--yes skips the question)")


def progress(disabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        disable=disabled,
        transient=False,
    )


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`3m ago`, `2h 5m ago`, `-` for never."""
    if moment is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    return f"{duration(seconds)} ago" if seconds >= 0 else f"in {duration(-seconds)}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`--since`: an ISO 8601 time (UTC if no offset) or a span back from now (30m, 2h, 7d)."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
    if text[-1:] in units and text[:-1].isdigit():
        return (now or datetime.now(UTC)) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(
            f"{text!r}: give a time (2026-05-01T12:00) or a span (30m, 2h, 7d)",
            param_hint="--since",
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
