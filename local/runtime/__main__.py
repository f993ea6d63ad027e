"""``python -m local.runtime serve``: the sensorhook stack on this machine, until Ctrl-C."""

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from local.runtime.demo_secrets import put_demo_webhook_secrets
from local.runtime.http_front import to_json
from local.runtime.stack import DEMO_CREDENTIALS, EmbeddedStack


def endpoints(stack: EmbeddedStack, webhook_secrets: dict[str, Any]) -> dict[str, Any]:
    """What scripts (demo, provider emulator, e2e tests) need to talk to the running stack."""
    return {
        "api_url": stack.api_url,
        "aws_endpoint": stack.aws_endpoint,
        "region": stack.region,
        "credentials": {
            "aws_access_key_id": DEMO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": DEMO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        },
        "stack_name": stack.artifact.name if stack.artifact else None,
        "outputs": stack.outputs,
        "http_apis": [to_json(front.spec) for front in stack.fronts],
        "webhook_secrets": webhook_secrets,
    }


def serve(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir).resolve()
    secrets: dict[str, Any] = {}
    stack = EmbeddedStack(
        project_dir,
        stack_name=args.stack,
        aws_port=args.aws_port,
        api_port=args.api_port,
        schedule_speedup=args.schedule_speedup,
        batching_window_cap=args.batching_window_cap,
        on_deployed=lambda deployed: secrets.update(
            put_demo_webhook_secrets(deployed.client("lambda"), deployed.client("secretsmanager"))
        ),
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with stack:
        details = endpoints(stack, secrets)
        target = project_dir / ".local" / "endpoints.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(details, indent=2) + "\n")
        print(f"sensorhook local stack {details['stack_name']} is up", flush=True)
        print(f"  webhooks (HTTP API):  {stack.api_url}")
        print(f"  AWS endpoint:         {stack.aws_endpoint}  (region {stack.region})")
        print("  credentials:          AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
        print(f"  try: aws --endpoint-url {stack.aws_endpoint} dynamodb list-tables")
        for name, secret in secrets.items():
            print(f"  {name}: {json.dumps(secret['value'])}")
        print(f"  details for scripts:  {target}")
        print("Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopping.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.runtime")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the stack in the foreground")
    serve_parser.add_argument("--project-dir", default=".", help="folder holding app.py")
    serve_parser.add_argument("--stack", default=None, help="stack name if the app has several")
    serve_parser.add_argument("--aws-port", type=int, default=0, help="0 picks a free port")
    serve_parser.add_argument("--api-port", type=int, default=0, help="0 picks a free port")
    serve_parser.add_argument(
        "--schedule-speedup",
        type=float,
        default=60.0,
        help="schedules fire this many times faster than real time (0: only on demand)",
    )
    serve_parser.add_argument(
        "--batching-window-cap",
        type=float,
        default=None,
        help="cap event source batching windows at this many seconds (default: as deployed)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
