"""`sensorhook tail events|logs`: follow the bus or a function's log group."""

import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.text import Text

from cli.bus_tap import BusTap
from cli.output import JsonOption, console, parse_since, print_json, target
from infra.constants import EVENT_SOURCE, Output

app = typer.Typer(
    no_args_is_help=True,
    help="""Follow what sensorhook publishes or logs, e.g. while a demo runs. Ctrl-C stops.

[b]Example[/b]: sensorhook tail events --detail-type readings.received
""",
)

ForOption = Annotated[
    float | None, typer.Option("--for", help="stop after this many seconds", min=0)
]
CountOption = Annotated[int | None, typer.Option(help="stop after this many", min=1)]


class Function(StrEnum):
    RECEIVER = "receiver"
    PROCESSOR = "processor"
    LAKE_WRITER = "lake-writer"
    SUBSCRIPTIONS = "subscriptions"
    GATEWAY_HEALTH = "gateway-health"


_FUNCTION_OUTPUTS = {
    Function.RECEIVER: Output.RECEIVER_FUNCTION_NAME,
    Function.PROCESSOR: Output.PROCESSOR_FUNCTION_NAME,
    Function.LAKE_WRITER: Output.LAKE_WRITER_FUNCTION_NAME,
    Function.SUBSCRIPTIONS: Output.SUBSCRIPTIONS_FUNCTION_NAME,
    Function.GATEWAY_HEALTH: Output.GATEWAY_HEALTH_FUNCTION_NAME,
}


class _Clock:
    """Stops a follow loop after --for seconds or --count items."""

    def __init__(self, seconds: float | None, count: int | None) -> None:
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._left = count

    def took(self, items: int = 1) -> None:
        if self._left is not None:
            self._left -= items

    @property
    def done(self) -> bool:
        out_of_items = self._left is not None and self._left <= 0
        return out_of_items or (self._deadline is not None and time.monotonic() >= self._deadline)

    def wait_s(self, longest: int) -> int:
        if self._deadline is None:
            return longest
        return max(0, min(longest, int(self._deadline - time.monotonic())))


@app.command()
def events(
    ctx: typer.Context,
    detail_type: Annotated[
        list[str] | None, typer.Option(help="only these detail-types (repeatable)")
    ] = None,
    seconds: ForOption = None,
    count: CountOption = None,
    json_output: JsonOption = False,
) -> None:
    """Follow the event bus through a temporary rule and SQS queue, removed on exit.

    [b]Example[/b]: sensorhook tail events --for 60 --json | jq .detail.sensor_id
    """
    pattern: dict[str, Any] = {"source": [EVENT_SOURCE]}
    if detail_type:
        pattern["detail-type"] = list(detail_type)
    clock = _Clock(seconds, count)
    out = console()
    with BusTap(target(ctx), pattern) as tap:
        if not json_output:
            out.print(f"[dim]following {tap.name} (Ctrl-C stops)[/dim]", highlight=False)
        try:
            while not clock.done:
                for event in tap.receive(clock.wait_s(5)):
                    if clock.done:
                        break
                    _print_event(event, json_output)
                    clock.took()
        except KeyboardInterrupt:
            pass


def _print_event(event: dict[str, Any], json_output: bool) -> None:
    if json_output:
        typer.echo(json.dumps(event, separators=(",", ":")))
        return
    detail = event.get("detail", {})
    about = " ".join(
        f"{key}={detail[key]}"
        for key in ("provider", "sensor_id", "gateway_id", "trap_id", "count", "health", "silent")
        if key in detail
    )
    console().print(
        f"{event.get('time', '')}  [b]{event.get('detail-type', '')}[/b]  {about}",
        highlight=False,
    )


@app.command()
def logs(
    ctx: typer.Context,
    function: Annotated[Function, typer.Argument(help="whose log group")],
    since: Annotated[str, typer.Option(help="start this far back (10m, 2h) or at a time")] = "10m",
    filter_pattern: Annotated[
        str | None, typer.Option("--filter", help="a CloudWatch Logs filter pattern")
    ] = None,
    follow: Annotated[bool, typer.Option(help="keep following new lines")] = True,
    seconds: ForOption = None,
    count: CountOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a function's log lines since --since, then follow new ones.

    [b]Example[/b]: sensorhook tail logs processor --since 1h --filter '"quarantined"'
    """
    found = target(ctx)
    group = f"/aws/lambda/{found.output(_FUNCTION_OUTPUTS[function])}"
    client = found.client("logs")
    start = parse_since(since) or datetime.now(UTC)
    start_ms = int(start.timestamp() * 1000)
    seen: set[str] = set()  # ids printed at start_ms: the next poll starts there again
    clock = _Clock(seconds, count)
    try:
        while True:
            request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
            if filter_pattern:
                request["filterPattern"] = filter_pattern
            for page in client.get_paginator("filter_log_events").paginate(**request):
                for line in page.get("events", []):
                    if line["eventId"] in seen or clock.done:
                        continue
                    if line["timestamp"] > start_ms:
                        start_ms, seen = line["timestamp"], set()
                    seen.add(line["eventId"])
                    _print_line(line, json_output)
                    clock.took()
            if not follow or clock.done:
                return
            time.sleep(min(2, max(clock.wait_s(2), 0.2)))
            if clock.done:
                return
    except KeyboardInterrupt:
        return


def _print_line(line: dict[str, Any], json_output: bool) -> None:
    at = datetime.fromtimestamp(line["timestamp"] / 1000, UTC)
    if json_output:
        print_json(
            {"timestamp": at, "stream": line.get("logStreamName"), "message": line["message"]}
        )
    else:
        console().print(Text.assemble((f"{at:%H:%M:%S} ", "dim"), line["message"].rstrip()))
