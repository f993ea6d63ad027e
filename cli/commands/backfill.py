"""`sensorhook backfill`: a shell until the recovery state machine (issue #7) is deployed."""

from typing import Annotated

import typer

from cli.features import BACKFILL
from cli.output import JsonOption, target


def backfill(
    ctx: typer.Context,
    sensor: Annotated[str | None, typer.Argument(help="one sensor (MAC address or id)")] = None,
    all_sensors: Annotated[bool, typer.Option("--all", help="every sensor")] = False,
    start: Annotated[str | None, typer.Option("--from", help="window start (ISO 8601)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="window end (ISO 8601)")] = None,
    json_output: JsonOption = False,
) -> None:
    """Recover readings the provider still holds for SENSOR (or --all), --from .. --to.

    [b]Not wired yet[/b]: the recovery state machine comes with issue #7. On a stack without
    it (no output RecoveryStateMachineArn, see cli/features.py) this says "not deployed in
    this stack" and exits 1.

    [b]Example[/b]: sensorhook backfill 00:11:22:33:44:55 --from 2026-05-01 --to 2026-05-02
    """
    BACKFILL.require(target(ctx))
    raise BACKFILL.not_wired()
