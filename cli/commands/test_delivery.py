"""`sensorhook test-delivery FLAVOR`: the TEST button.

One mock payload from the provider emulator (local/emulator), authenticated with the stack's
own webhook secrets, posted to the stack's route for the flavor (or to --url). When it went to
the stack, the command then watches where it lands: its events on the bus (through a temporary
tap opened before sending), the gateways table for a gateway status, or quarantine.
"""

import random
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.bus_tap import BusTap
from cli.output import JsonOption, console, print_json, styled, target
from cli.target import Target
from infra.constants import EVENT_SOURCE, Output
from sensorhook.core.flavors import ROUTES, Flavor


class TestFault(StrEnum):
    """What to get wrong on purpose (the emulator's faults, less `duplicate`)."""

    NONE = "none"
    STALE_DATE = "stale-date"
    BAD_SIGNATURE = "bad-signature"
    MALFORMED = "malformed"


def test_delivery(
    ctx: typer.Context,
    flavor: Annotated[Flavor, typer.Argument(help="the webhook flavor to send")],
    url: Annotated[
        str | None, typer.Option(help="post here instead of the stack's route for the flavor")
    ] = None,
    fault: Annotated[TestFault, typer.Option(help="send it wrong on purpose")] = TestFault.NONE,
    secrets_file: Annotated[
        Path | None,
        typer.Option(help="webhook secrets JSON (docs/emulator.md) instead of the stack's"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the response", min=0.1)] = 10,
    wait: Annotated[
        float, typer.Option(help="seconds to wait for it to land (0: do not check)", min=0)
    ] = 30,
    seed: Annotated[int | None, typer.Option(help="makes the payload reproducible")] = None,
    json_output: JsonOption = False,
) -> None:
    """Send one mock FLAVOR payload with the right authentication; show the response and
    whether the delivery landed.

    [b]Example[/b]: sensorhook test-delivery efento-measurements
    (or: sensorhook test-delivery everactive-v2020-07 --url https://hooks.example.com/in)
    """
    from local.emulator import DeliveryFactory, Fault, Installation, Intent, Secrets, Sender
    from local.emulator.installation import seeded_rng

    found = target(ctx) if url is None or secrets_file is None else None
    secrets = (
        Secrets.from_file(secrets_file)
        if secrets_file
        else Secrets.model_validate(found.webhook_secrets if found else {})
    )
    stack_url = found.api_url + ROUTES[flavor] if found else None
    post_url = url or stack_url or ""
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    installation = Installation.create(seed=seed, sensors=3, gateways=1, start=_now())
    factory = DeliveryFactory(secrets=secrets, exact_url=post_url, rng=seeded_rng(seed, "test"))
    if fault is TestFault.STALE_DATE and flavor is not Flavor.EVERACTIVE_V2020_STEAM_TRAP:
        delivery = factory.authentic(installation.payload(flavor, stale=True))
    else:
        delivery = factory.with_fault(installation.payload(flavor), Fault(fault.value))
    watch = (
        found is not None
        and wait > 0
        and post_url == stack_url
        and delivery.intent is Intent.ACCEPTED
        and delivery.event_id is not None
    )
    sender = Sender(timeout_s=timeout, concurrency=1)
    landing: dict[str, Any] | None = None
    if not watch or found is None:
        result = sender.send(delivery)
    elif flavor is Flavor.EVERACTIVE_DS_GATEWAY_STATUS:
        result = sender.send(delivery)
        if result.status == 202:
            landing = _watch(found, delivery, wait, None, installation.gateways[0].serial)
    else:
        pattern = {"source": [EVENT_SOURCE], "detail": {"event_id": [delivery.event_id]}}
        with BusTap(found, pattern) as tap:  # open before sending: events are not kept
            result = sender.send(delivery)
            if result.status == 202:
                landing = _watch(found, delivery, wait, tap, None)
    sender.close()

    report = {
        "request": {
            "url": delivery.url,
            "flavor": flavor.value,
            "fault": delivery.fault.value,
            "detail": delivery.detail,
            "event_id": delivery.event_id,
            "bytes": len(delivery.body),
            "expected_status": delivery.expected_status,
        },
        "response": {
            "status": result.status,
            "latency_ms": None if result.latency_s is None else round(result.latency_s * 1000),
            "body": result.response_body.decode("utf-8", "replace"),
            "error": result.error,
        },
        "landed": landing if landing is not None else _why_not_watched(found, watch, result.status),
    }
    if json_output:
        print_json(report)
    else:
        _print(report)
    as_expected = result.status == delivery.expected_status
    landed_ok = not watch or result.status != 202 or report["landed"]["where"] != "nowhere"
    raise typer.Exit(0 if as_expected and landed_ok else 1)


def _now() -> datetime:
    return datetime.now(UTC)


def _why_not_watched(found: Target | None, watch: bool, status: int | None) -> dict[str, Any]:
    if found is None:
        reason = "no stack to look in"
    elif not watch:
        reason = "not sent to this stack's route, sent with a fault, or --wait 0"
    else:
        reason = f"the response was {status}, not 202"
    return {"where": "not checked", "detail": reason}


def _watch(
    found: Target, delivery: Any, wait_s: float, tap: BusTap | None, gateway_id: str | None
) -> dict[str, Any]:
    """Where the delivery came to rest within `wait_s`: its events (readings and steam trap
    changes), the gateways table (a gateway status: the installation's one new gateway), or
    quarantine."""
    from sensorhook.dal.gateways_store import GatewaysStore

    began = time.monotonic()
    deadline = began + wait_s
    events: list[dict[str, Any]] = []
    gateways = GatewaysStore(found.output(Output.GATEWAYS_TABLE), found.client("dynamodb"))
    while time.monotonic() < deadline:
        if tap is not None:
            events.extend(tap.receive(1))
            if events:
                # a delivery's events go out together; give the rest a moment
                events.extend(tap.receive(1))
                kinds = sorted({event["detail-type"] for event in events})
                return {
                    "where": "events",
                    "detail": f"{len(events)} event(s): {', '.join(kinds)}",
                    "after_s": round(time.monotonic() - began, 1),
                }
        elif gateway_id and (item := gateways.get("everactive", gateway_id)) is not None:
            return {
                "where": "gateways table",
                "detail": f"gateway {gateway_id} reported at {item.get('reported_at')}",
                "after_s": round(time.monotonic() - began, 1),
            }
        quarantined = _quarantined(found, delivery)
        if quarantined is not None:
            return {
                "where": "quarantine",
                "detail": quarantined,
                "after_s": round(time.monotonic() - began, 1),
            }
        if tap is None:
            time.sleep(0.5)
    return {
        "where": "nowhere",
        "detail": f"not landed within {wait_s:g} s: see `sensorhook status` (queue, DLQ)",
    }


def _quarantined(found: Target, delivery: Any) -> str | None:
    """The quarantine error, if the delivery is in quarantine (received today or yesterday)."""
    from sensorhook.dal.archive import QUARANTINE_PREFIX, Archive

    archive = Archive(found.output(Output.BUCKET_NAME), found.client("s3"))
    today = _now()
    for day in (today, today - timedelta(days=1)):
        prefix = f"{QUARANTINE_PREFIX}provider={delivery.flavor.provider}/date={day:%Y-%m-%d}/"
        for entry in archive.list_quarantine(prefix + delivery.event_id):
            if entry.key == f"{prefix}{delivery.event_id}.json":
                return archive.get_quarantined(entry.key).error
    return None


def _print(report: dict[str, Any]) -> None:
    request, response, landed = report["request"], report["response"], report["landed"]
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("POST", request["url"])
    table.add_row(
        "sent",
        f"{request['flavor']}, {request['bytes']} bytes, fault {request['fault']}"
        + (f" ({request['detail']})" if request["detail"] else ""),
    )
    table.add_row("event id", request["event_id"] or "-")
    status = response["status"]
    shown = "no response" if status is None else str(status)
    ok = status == request["expected_status"]
    table.add_row(
        "response",
        f"[{'green' if ok else 'red'}]{shown}[/] (expected {request['expected_status']})"
        + (f" in {response['latency_ms']} ms" if response["latency_ms"] is not None else "")
        + (f" - {response['error']}" if response["error"] else ""),
    )
    if response["body"]:
        table.add_row("body", response["body"][:300])
    where = landed["where"]
    style = {"events": "landed", "gateways table": "landed", "quarantine": "silent"}.get(
        where, "failed" if where == "nowhere" else ""
    )
    table.add_row(
        "landed",
        (styled(style).replace(style, where) if style else where)
        + f": {landed['detail']}"
        + (f" (after {landed['after_s']} s)" if "after_s" in landed else ""),
    )
    console().print(table)
