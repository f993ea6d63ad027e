"""Re-enqueue quarantined deliveries onto the ingest queue, after a fix has been deployed.

    python -m sensorhook.tools.replay_quarantine --bucket B --queue-url Q [--prefix P]

`--prefix` narrows the replay, e.g. `quarantine/provider=efento/date=2024-05-01/`. Each object
is deleted only after SQS accepted its message; the exit status is 1 if any was left behind.
"""

import argparse
import sys

from sensorhook.dal.archive import QUARANTINE_PREFIX, Archive
from sensorhook.dal.inbox import Inbox
from sensorhook.dal.queue import IngestQueue
from sensorhook.logic.replay import replay_quarantine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensorhook.tools.replay_quarantine")
    parser.add_argument("--bucket", required=True, help="the sensorhook bucket")
    parser.add_argument("--queue-url", required=True, help="the ingest queue URL")
    parser.add_argument(
        "--prefix", default=QUARANTINE_PREFIX, help="only keys under this quarantine/ prefix"
    )
    args = parser.parse_args(argv)
    summary = replay_quarantine(
        Archive(args.bucket), IngestQueue(args.queue_url), Inbox(args.bucket), prefix=args.prefix
    )
    print(f"replayed {len(summary.replayed)}, failed {len(summary.failed)}")
    for key in summary.failed:
        print(f"kept: {key}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
