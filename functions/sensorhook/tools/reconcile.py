"""Reconcile the declared webhook subscriptions now, from a shell, with the function's settings.

    python -m sensorhook.tools.reconcile [--dry-run]

Reads the same environment variables as the subscriptions Lambda (SubscriptionsSettings; copy
them from the deployed function's configuration). `--dry-run` prints the plan and changes
nothing: no provider call other than reads, no secret or table write. Header values are never
printed. The exit status is 1 if anything could not be planned or applied.
"""

import argparse
import json
import sys

from sensorhook.core.settings import SubscriptionsSettings
from sensorhook.handlers.subscriptions import build_reconciler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensorhook.tools.reconcile")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan without changing anything"
    )
    args = parser.parse_args(argv)
    reconciler = build_reconciler(SubscriptionsSettings.from_env())
    result = reconciler.run(dry_run=args.dry_run)
    print(json.dumps(result.summary(), indent=2, default=str))
    return 1 if result.error_count else 0


if __name__ == "__main__":
    sys.exit(main())
