"""`sensorhook status`: the installation on one screen."""

from datetime import UTC, datetime
from typing import Any

import typer
from rich.table import Table

from cli.commands.endpoints import endpoint_rows, endpoints_table
from cli.features import FORWARDING_ENDPOINTS, INCIDENTS
from cli.output import JsonOption, ago, console, duration, print_json, styled, target
from cli.queues import queue_stats
from cli.target import Target
from infra.constants import Output

NOT_DEPLOYED = "not deployed"


def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Subscriptions, gateways, silent sensors, queues, quarantine, endpoints and incidents.

    Sections the stack does not have (an older deployment without forwarding endpoints or the
    recovery machine's incidents) read "not deployed".

    [b]Example[/b]: sensorhook status   (or: sensorhook --stage prod status --json | jq .queues)
    """
    found = target(ctx)
    report = gather(found)
    if json_output:
        print_json(report)
    else:
        render(report)


def gather(found: Target) -> dict[str, Any]:
    from sensorhook.dal.archive import Archive
    from sensorhook.dal.health_store import HealthStore
    from sensorhook.dal.subscriptions_store import SubscriptionsStore

    now = datetime.now(UTC)
    dynamodb = found.client("dynamodb")
    report: dict[str, Any] = {
        "stack": {
            "name": found.name,
            "mode": "local" if found.local else "deployed",
            "region": found.region,
            "status": found.status,
            "api_url": found.outputs.get(Output.API_URL),
        },
        "checked_at": now,
    }
    states = (
        SubscriptionsStore(found.output(Output.SUBSCRIPTIONS_TABLE), dynamodb).all()
        if found.has(Output.SUBSCRIPTIONS_TABLE)
        else None
    )
    if states is not None:
        report["subscriptions"] = [
            {
                "name": state.name,
                "provider": state.provider,
                "event_type": state.event_type,
                "status": state.status.value,
                "last_event_at": state.last_event_at,
                "last_error": state.last_error,
                "last_reconciled_at": state.last_reconciled_at,
            }
            for state in sorted(states.values(), key=lambda state: state.name)
        ]
    else:
        report["subscriptions"] = NOT_DEPLOYED
    health = HealthStore(
        found.output(Output.GATEWAYS_TABLE), found.output(Output.SENSOR_STATE_TABLE), dynamodb
    )
    report["gateways"] = [
        {
            "provider": gateway.provider,
            "gateway_id": gateway.gateway_id,
            "health": gateway.health.value if gateway.health else "unjudged",
            "since": gateway.health_changed_at,
            "last_contact_at": max(
                (
                    moment
                    for moment in (
                        gateway.reported_at,
                        gateway.last_reading_at,
                        gateway.api_last_contact_at,
                    )
                    if moment is not None
                ),
                default=None,
            ),
        }
        for gateway in sorted(health.gateways(), key=lambda g: (g.provider, g.gateway_id))
    ]
    sensors = health.sensors()
    report["sensors"] = {
        "known": len(sensors),
        "silent": [
            {
                "provider": sensor.provider,
                "sensor_id": sensor.sensor_id,
                "last_measured_at": sensor.newest_measured_at,
            }
            for sensor in sorted(sensors, key=lambda s: (s.provider, s.sensor_id))
            if sensor.silent
        ],
    }
    report["queues"] = {
        role: queue_stats(found, found.output(output))
        for role, output in (
            ("ingest", Output.INGEST_QUEUE_URL),
            ("dead-letter", Output.DLQ_URL),
            ("lake-writer failures", Output.LAKE_WRITER_FAILURES_QUEUE_URL),
        )
        if found.has(output)
    }
    quarantined = list(
        Archive(found.output(Output.BUCKET_NAME), found.client("s3")).list_quarantine()
    )
    report["quarantine"] = {
        "count": len(quarantined),
        "oldest_at": min((entry.quarantined_at for entry in quarantined), default=None),
    }
    report["forwarding_endpoints"] = (
        endpoint_rows(found) if FORWARDING_ENDPOINTS.deployed(found) else NOT_DEPLOYED
    )
    # An open incident lives on its subscription's row until the recovery machine closes it
    # (docs/recovery.md); the incidents table keeps the record of each execution.
    report["incidents"] = (
        [
            {
                "subscription": state.name,
                "incident_id": state.incident_id,
                "cause": state.incident_cause,
                "started_at": state.incident_started_at,
            }
            for state in sorted((states or {}).values(), key=lambda state: state.name)
            if state.incident_id
        ]
        if INCIDENTS.deployed(found)
        else NOT_DEPLOYED
    )
    report["attention"] = attention(report)
    return report


def attention(report: dict[str, Any]) -> list[str]:
    """What an operator should look at, in words."""
    notes: list[str] = []
    subscriptions = report["subscriptions"]
    if isinstance(subscriptions, list):
        for state in subscriptions:
            if state["status"] in ("error", "silent"):
                notes.append(f"subscription {state['name']}: {state['status']}")
    offline = [g["gateway_id"] for g in report["gateways"] if g["health"] == "offline"]
    if offline:
        notes.append(f"{len(offline)} gateway(s) offline: {', '.join(offline)}")
    if report["sensors"]["silent"]:
        notes.append(f"{len(report['sensors']['silent'])} silent sensor(s)")
    for role in ("dead-letter", "lake-writer failures"):
        stats = report["queues"].get(role)
        if stats and stats["waiting"] + stats["in_flight"]:
            notes.append(f"{stats['waiting'] + stats['in_flight']} message(s) in the {role} queue")
    if report["quarantine"]["count"]:
        notes.append(f"{report['quarantine']['count']} delivery(ies) in quarantine")
    if isinstance(report["forwarding_endpoints"], list):
        for endpoint in report["forwarding_endpoints"]:
            if endpoint["status"] not in ("OK", "New"):
                notes.append(f"endpoint {endpoint['name']}: {endpoint['status']}")
    if isinstance(report["incidents"], list) and report["incidents"]:
        notes.append(f"{len(report['incidents'])} open incident(s)")
    return notes


def render(report: dict[str, Any]) -> None:
    out = console()
    now: datetime = report["checked_at"]
    stack = report["stack"]
    out.print(
        f"[b]sensorhook[/b] {stack['name']} ({stack['mode']}, {stack['region']}, "
        f"{stack['status']})  {stack['api_url'] or ''}"
    )
    for section in (_subscriptions, _gateways, _silent_sensors, _queues):
        out.print(section(report, now))
    out.print(_endpoints(report, now))
    out.print(_incidents(report, now))
    if report["attention"]:
        out.print("[yellow]Needs attention:[/yellow] " + "; ".join(report["attention"]))
    else:
        out.print("[green]All quiet.[/green]")


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def _subscriptions(report: dict[str, Any], now: datetime) -> Table | str:
    if not isinstance(report["subscriptions"], list):
        return f"Subscriptions: {styled(NOT_DEPLOYED)}"
    table = _table(
        "Subscriptions", "name", "provider", "event type", "state", "last event", "last error"
    )
    for state in report["subscriptions"]:
        table.add_row(
            state["name"],
            state["provider"],
            state["event_type"],
            styled(state["status"]),
            ago(state["last_event_at"], now),
            state["last_error"] or "-",
        )
    return table


def _gateways(report: dict[str, Any], now: datetime) -> Table | str:
    if not report["gateways"]:
        return "Gateways: none seen yet"
    table = _table("Gateways", "provider", "gateway", "health", "since", "last contact")
    for gateway in report["gateways"]:
        table.add_row(
            gateway["provider"],
            gateway["gateway_id"],
            styled(gateway["health"]),
            ago(gateway["since"], now),
            ago(gateway["last_contact_at"], now),
        )
    return table


def _silent_sensors(report: dict[str, Any], now: datetime) -> Table | str:
    silent, known = report["sensors"]["silent"], report["sensors"]["known"]
    if not silent:
        return f"Silent sensors: [green]none[/green] of {known}"
    table = _table(
        f"Silent sensors ({len(silent)} of {known})", "provider", "sensor", "last reading"
    )
    for sensor in silent:
        table.add_row(sensor["provider"], sensor["sensor_id"], ago(sensor["last_measured_at"], now))
    return table


def _queues(report: dict[str, Any], now: datetime) -> Table:
    table = _table("Queues", "queue", "waiting", "in flight", "oldest")
    for role, stats in report["queues"].items():
        waiting = stats["waiting"]
        shown = f"[red]{waiting}[/red]" if waiting and role != "ingest" else str(waiting)
        table.add_row(role, shown, str(stats["in_flight"]), duration(stats["oldest_age_s"]))
    quarantine = report["quarantine"]
    table.add_row(
        "quarantine (S3)",
        f"[red]{quarantine['count']}[/red]" if quarantine["count"] else "0",
        "-",
        ago(quarantine["oldest_at"], now),
    )
    return table


def _endpoints(report: dict[str, Any], now: datetime) -> Table | str:
    rows = report["forwarding_endpoints"]
    if not isinstance(rows, list):
        return f"Forwarding endpoints: {styled(rows)}"
    if not rows:
        return "Forwarding endpoints: none configured"
    return endpoints_table(rows, now)


def _incidents(report: dict[str, Any], now: datetime) -> Table | str:
    incidents = report["incidents"]
    if not isinstance(incidents, list):
        return f"Open incidents: {styled(incidents)}"
    if not incidents:
        return "Open incidents: [green]none[/green]"
    table = _table("Open incidents", "subscription", "incident", "cause", "started")
    for incident in incidents:
        table.add_row(
            incident["subscription"],
            incident["incident_id"],
            styled(incident["cause"] or "-"),
            ago(incident["started_at"], now),
        )
    return table
