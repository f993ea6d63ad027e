"""`sensorhook readings`: one sensor's series over a time range from the readings table, the
documented one-call read (`ReadingsStore.query_range`: one paginated Query, packed items
unpacked into flat readings; docs/readings.md), against the local or a deployed stack."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from cli.output import JsonOption, console, parse_since, print_json, target
from infra.constants import Output

# The providers whose readings the table keys (series = provider#sensor_id).
PROVIDERS = ("everactive", "efento")


def _moment(text: str, option: str) -> datetime:
    """An ISO 8601 time (UTC if bare) or a span back from now, as --since takes them."""
    try:
        return parse_since(text) or datetime.now(UTC)
    except typer.BadParameter as error:
        raise typer.BadParameter(str(error.message), param_hint=option) from error


def readings(
    ctx: typer.Context,
    sensor: Annotated[str, typer.Argument(help="the sensor id (Everactive MAC, Efento point)")],
    provider: Annotated[
        str | None,
        typer.Option(help=f"{' or '.join(PROVIDERS)} (default: whichever has the sensor)"),
    ] = None,
    start: Annotated[
        str, typer.Option("--from", help="range start: ISO 8601 (UTC if bare) or a span (2h, 7d)")
    ] = "1h",
    end: Annotated[
        str | None, typer.Option("--to", help="range end, included (default: now)")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="only this metric (e.g. temperature)")] = None,
    json_output: JsonOption = False,
) -> None:
    """Print one sensor's readings measured --from .. --to (whole seconds, both included),
    oldest first.

    [b]Examples[/b]

      sensorhook readings 4242 --provider efento --from 2026-11-29 --to 2026-11-29T12:00

      sensorhook readings 01:01:01:ff:fe:00:0c:fe --from 2h --metric temperature --json
    """
    from sensorhook.dal.readings_store import ReadingsStore

    if provider is not None and provider not in PROVIDERS:
        raise typer.BadParameter(f"one of {', '.join(PROVIDERS)}", param_hint="--provider")
    first = _moment(start, "--from")
    last = _moment(end, "--to") if end else datetime.now(UTC)
    if first > last:
        raise typer.BadParameter("--from must not be after --to", param_hint="--from/--to")
    found = target(ctx)
    store = ReadingsStore(found.output(Output.READINGS_TABLE), found.client("dynamodb"))
    series = [
        reading
        for name in ([provider] if provider else PROVIDERS)
        for reading in store.query_range(name, sensor, first, last)
        if metric is None or reading.metric == metric
    ]
    if json_output:
        print_json([reading.model_dump(mode="json") for reading in series])
        return
    table = Table(
        "measured_at",
        "metric",
        "channel",
        "value",
        "unit",
        "status",
        "event_id",
        title=f"{sensor}: {first:%Y-%m-%d %H:%M:%S} .. {last:%Y-%m-%d %H:%M:%S} UTC",
        title_justify="left",
    )
    for reading in series:
        value = reading.text_value if reading.value is None else f"{reading.value:g}"
        table.add_row(
            reading.measured_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            reading.metric,
            reading.channel,
            value or "",
            reading.unit,
            reading.status,
            reading.event_id,
        )
    out = console()
    out.print(table)
    out.print(f"[dim]{len(series)} reading(s)[/dim]")
