"""`sensorhook replay quarantine|dlq`: deliveries back onto the ingest queue after a fix."""

from typing import Annotated, Any

import typer
from rich.table import Table

from cli.output import (
    JsonOption,
    YesOption,
    confirm,
    console,
    parse_since,
    print_json,
    progress,
    styled,
    target,
)
from infra.constants import Output
from sensorhook.core.flavors import Flavor

app = typer.Typer(
    no_args_is_help=True,
    help="""Put quarantined or dead-lettered deliveries back on the ingest queue.

Run it after the fix is deployed. Each delivery goes back unchanged (same event_id) and
leaves quarantine or the DLQ only once SQS took it; a failed one stays and the exit
status is 1, so running it again is always safe. `make replay-quarantine` is an alias.

[b]Example[/b]: sensorhook replay quarantine --flavor efento-measurements --since 1d --dry-run
""",
)

SinceOption = Annotated[
    str | None,
    typer.Option(help="only what arrived since: a time (2026-05-01T12:00) or a span (2h, 7d)"),
]
FlavorOption = Annotated[Flavor | None, typer.Option(help="only this flavor")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="count what would be replayed; change nothing")
]


@app.command()
def quarantine(
    ctx: typer.Context,
    since: SinceOption = None,
    flavor: FlavorOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Re-enqueue quarantined deliveries, deleting exactly the object version read.

    --since compares with when the delivery was quarantined. A delivery quarantined again
    while this runs (a newer version of its object) is left in quarantine.

    [b]Example[/b]: sensorhook replay quarantine --since 2026-05-01T00:00 --yes
    """
    from sensorhook.dal.archive import Archive
    from sensorhook.dal.inbox import Inbox
    from sensorhook.dal.queue import IngestQueue
    from sensorhook.logic.replay import ReplayFilter, quarantine_candidates, replay_quarantine

    found = target(ctx)
    bucket = found.output(Output.BUCKET_NAME)
    s3 = found.client("s3")
    archive = Archive(bucket, s3)
    selection = ReplayFilter(since=parse_since(since), flavor=flavor)
    candidates = quarantine_candidates(archive, selection)
    if candidates and not dry_run:
        confirm(
            f"Re-enqueue up to {len(candidates)} quarantined deliveries to {found.name}'s ingest "
            "queue, deleting each from quarantine once queued?",
            yes,
        )
    with progress(disabled=json_output or not candidates) as bar:
        task = bar.add_task("quarantine", total=len(candidates))
        summary = replay_quarantine(
            archive,
            IngestQueue(found.output(Output.INGEST_QUEUE_URL), found.client("sqs")),
            Inbox(bucket, s3),
            selection=selection,
            candidates=candidates,
            dry_run=dry_run,
            on_each=lambda _key, _outcome: bar.advance(task),
        )
    _report("quarantine", summary, json_output)


@app.command()
def dlq(
    ctx: typer.Context,
    since: SinceOption = None,
    flavor: FlavorOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Move the ingest dead-letter queue's deliveries back to the ingest queue.

    --since compares with when the delivery was first enqueued. Deliveries already stored
    are skipped by idempotency when processed again, so a replay never doubles a reading.

    [b]Example[/b]: sensorhook replay dlq --flavor everactive-ds-sensor-reading --yes
    """
    from sensorhook.dal.dead_letters import DeadLetterQueue
    from sensorhook.dal.inbox import Inbox
    from sensorhook.dal.queue import IngestQueue
    from sensorhook.logic.replay import ReplayFilter, replay_dead_letters

    found = target(ctx)
    dlq_url = found.output(Output.DLQ_URL)
    sqs = found.client("sqs")
    waiting = int(
        sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )
    if waiting and not dry_run:
        confirm(
            f"Move about {waiting} dead-lettered deliveries back to {found.name}'s ingest queue?",
            yes,
        )
    with progress(disabled=json_output or not waiting) as bar:
        task = bar.add_task("dead-letter queue", total=waiting)
        summary = replay_dead_letters(
            DeadLetterQueue(dlq_url, sqs),
            IngestQueue(found.output(Output.INGEST_QUEUE_URL), sqs),
            Inbox(found.output(Output.BUCKET_NAME), found.client("s3")),
            selection=ReplayFilter(since=parse_since(since), flavor=flavor),
            dry_run=dry_run,
            on_each=lambda _id, _outcome: bar.advance(task),
        )
    _report("dead-letter queue", summary, json_output)


def _report(source: str, summary: Any, json_output: bool) -> None:
    counts = summary.counts()
    if json_output:
        print_json(
            {
                "source": source,
                "dry_run": summary.dry_run,
                "counts": counts,
                "failed": summary.failed,
            }
        )
    else:
        verb = "would replay" if summary.dry_run else "replayed"
        out = console()
        out.print(f"Replay of the {source}" + (" (dry run)" if summary.dry_run else ""))
        table = Table()
        table.add_column("outcome")
        table.add_column("deliveries", justify="right")
        table.add_row(styled("replayed") if not summary.dry_run else verb, str(counts["replayed"]))
        table.add_row(styled("skipped") + " (filter)", str(counts["skipped"]))
        table.add_row(styled("failed") + " (kept)", str(counts["failed"]))
        out.print(table)
        for item in summary.failed:
            out.print(f"kept: {item}")
        if not any(counts.values()):
            out.print(f"Nothing to replay in the {source}.")
    if summary.failed:
        raise typer.Exit(1)
