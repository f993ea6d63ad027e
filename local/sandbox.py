"""The local sandbox: the stack on the embedded AWS, with the provider emulator as its provider.

`make local` runs it in the foreground; `make demo` and the end-to-end tests drive it. The
emulator's API (OAuth2, Data Services, v2020-07) stands in for Everactive: the control-plane
functions are pointed at it through their own environment variables (the same ones a stage's
CDK config sets), and the demo secrets, API credentials included, are put in the stack's secrets
before anything runs, as a user would after `cdk deploy`.
"""

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local.demo_forwarding import STEP_FUNCTIONS_SPEEDUP, Endpoints, local_endpoints
from local.emulator import Installation
from local.emulator.api import DEMO_API_CREDENTIALS, ProviderApi
from local.emulator.api.cloud import DEFAULT_HISTORY
from local.runtime.demo_secrets import put_demo_webhook_secrets
from local.runtime.stack import DEMO_CREDENTIALS, EmbeddedStack

PROJECT_DIR = Path(__file__).resolve().parents[1]


def provider_api_environment(provider: ProviderApi) -> dict[str, str]:
    """The control-plane settings (core.settings.ProviderApiSettings and friends) that say where
    the provider's API is, pointed at the (started) emulator."""
    return {
        "DS_API_BASE_URL": provider.ds_api_base_url,
        "DS_API_TOKEN_URL": provider.ds_token_url,
        "V2020_API_BASE_URL": provider.v2020_api_base_url,
        "V2020_API_TOKEN_URL": provider.v2020_token_url,
    }


@dataclass
class Sandbox:
    stack: EmbeddedStack
    provider: ProviderApi
    secrets: dict[str, Any]
    endpoints: Endpoints  # the dev stage's forwarding endpoints, served on this machine

    def function_name(self, output: str) -> str:
        return self.stack.outputs[output]

    def invoke(self, output: str, event: Mapping[str, Any] | None = None) -> Any:
        """Invoke a deployed function by its stack output, as `aws lambda invoke` would."""
        response = self.stack.client("lambda").invoke(
            FunctionName=self.function_name(output), Payload=json.dumps(event or {}).encode()
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if "FunctionError" in response:
            raise RuntimeError(f"{output} failed: {payload}")
        return payload


@contextlib.contextmanager
def sandbox(
    installation: Installation,
    *,
    api_port: int = 0,
    aws_port: int = 0,
    provider_port: int = 0,
    schedule_speedup: float = 60.0,
    step_functions_speedup: float | None = None,
    batching_window_cap: float | None = None,
    environment: Mapping[str, str] | None = None,
    forwarding_policy: Mapping[str, Any] | None = None,
    provider_history: timedelta = DEFAULT_HISTORY,
    retention_day_s: float | None = None,
) -> Iterator[Sandbox]:
    provider = ProviderApi(installation, port=provider_port, history=provider_history)
    provider.start()
    secrets: dict[str, Any] = {}

    with local_endpoints(forwarding_policy) as endpoints:

        def put_secrets(stack: EmbeddedStack) -> None:
            secrets.update(
                put_demo_webhook_secrets(stack.client("lambda"), stack.client("secretsmanager"))
            )
            endpoints.give_secrets(stack)

        try:
            with EmbeddedStack(
                PROJECT_DIR,
                aws_port=aws_port,
                api_port=api_port,
                schedule_speedup=schedule_speedup,
                # the forwarding policy's six-hour hold runs in seconds unless told otherwise
                step_functions_speedup=step_functions_speedup or STEP_FUNCTIONS_SPEEDUP,
                batching_window_cap=batching_window_cap,
                environment_overrides={
                    **provider_api_environment(provider),
                    **endpoints.environment(),
                    **(environment or {}),
                },
                on_deployed=put_secrets,
                retention_day_s=retention_day_s,
            ) as stack:
                yield Sandbox(stack, provider, secrets, endpoints)
        finally:
            provider.stop()


# How long one day of the stack's retention periods lasts in `make local` (docs/local-mode.md,
# "Long runs"): hot readings (30 days on dev) stay readable for half an hour, idempotency
# records (7 days) for 7 minutes, and everything the stack expires is gone within 6 hours (the
# raw archive's 180 days, then its delete marker's 180 more), so a long run levels off.
# `make soak` takes a shorter day so that it levels off within its warm-up.
RETENTION_DAY_S = 60.0


def add_retention_argument(
    parser: argparse.ArgumentParser, default: float = RETENTION_DAY_S
) -> None:
    parser.add_argument(
        "--retention-day-s",
        type=float,
        default=default,
        help="seconds one day of the stack's TTLs, lifecycle rules and retention periods lasts "
        f"(default {default:g}; 0: nothing expires, as nothing would within a session in AWS)",
    )


def write_endpoints(box: Sandbox, target: Path) -> Path:
    """The running stack's details for scripts and the `sensorhook` CLI (which finds the local
    stack by this file): endpoints, credentials, stack outputs, webhook secrets."""
    stack = box.stack
    details = {
        "api_url": stack.api_url,
        "aws_endpoint": stack.aws_endpoint,
        "region": stack.region,
        "credentials": {k.lower(): v for k, v in DEMO_CREDENTIALS.items()},
        "outputs": stack.outputs,
        "webhook_secrets": box.secrets,
        "provider_emulator": {"base_url": box.provider.base_url, **DEMO_API_CREDENTIALS},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(details, indent=2) + "\n")
    return target


def _deliver_periodically(box: Sandbox, every_s: float, stopping: threading.Event) -> None:
    """Like the real provider: whatever the installation produced goes to the webhooks that
    the reconciler registered."""
    while not stopping.wait(every_s):
        report = box.provider.deliver()
        if report.sent:
            logging.getLogger("local.sandbox").info(
                "emulator delivered", extra={"summary": report.summary()["responses_by_status"]}
            )


def serve(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    installation = Installation.create(
        seed=args.seed, sensors=args.sensors, gateways=args.gateways, start=now - timedelta(hours=1)
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with sandbox(
        installation,
        api_port=args.api_port,
        aws_port=args.aws_port,
        provider_port=args.provider_port,
        schedule_speedup=args.schedule_speedup,
        batching_window_cap=args.batching_window_cap,
        retention_day_s=args.retention_day_s or None,
    ) as box:
        stack = box.stack
        target = write_endpoints(box, PROJECT_DIR / ".local" / "endpoints.json")
        print(f"sensorhook local stack {stack.artifact.name if stack.artifact else ''} is up")
        print(f"  webhooks (HTTP API):  {stack.api_url}")
        print(f"  AWS endpoint:         {stack.aws_endpoint}  (region {stack.region})")
        print("  credentials:          AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
        print(
            f"  provider emulator:    {box.provider.base_url} (Everactive API: OAuth2, /ds/v1, "
            "/v2020-07); schedules run "
            f"{args.schedule_speedup:g}x faster than deployed"
        )
        for name, secret in box.secrets.items():
            print(f"  {name}: {json.dumps(secret['value'])}")
        for name, receiver in box.endpoints.receivers.items():
            print(f"  forwarding endpoint {name}: {receiver.url} ({receiver.scheme})")
        print(f"  details for scripts:  {target}")
        print("Ctrl-C to stop.", flush=True)
        delivering = threading.Thread(
            target=_deliver_periodically,
            args=(box, args.deliver_every, stopping),
            daemon=True,
        )
        if args.deliver_every > 0:
            delivering.start()
        with contextlib.suppress(KeyboardInterrupt):
            stopping.wait()
        stopping.set()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make local", description=__doc__.splitlines()[0])
    parser.add_argument("--api-port", type=int, default=8080, help="webhooks (HTTP API) port")
    parser.add_argument("--aws-port", type=int, default=5000, help="embedded AWS port")
    parser.add_argument("--provider-port", type=int, default=8090, help="provider emulator port")
    parser.add_argument("--schedule-speedup", type=float, default=60.0)
    parser.add_argument("--batching-window-cap", type=float, default=1.0)
    parser.add_argument(
        "--deliver-every",
        type=float,
        default=10.0,
        help="seconds between the emulator's deliveries to registered webhooks (0: never)",
    )
    add_retention_argument(parser)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sensors", type=int, default=3)
    parser.add_argument("--gateways", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
