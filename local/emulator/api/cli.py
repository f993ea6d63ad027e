"""`python -m local.emulator api`: the provider API in the foreground, for the local demo or a
hand-driven session (curl, the reconcile dry run)."""

import argparse
import random
import time
from datetime import timedelta

from local.emulator.api.server import DEMO_API_CREDENTIALS, DS_PREFIX, V2020_PREFIX, ProviderApi
from local.emulator.deliveries import utc_now
from local.emulator.installation import Installation
from local.emulator.sender import Sender

HISTORY_AT_START = timedelta(hours=1)  # readings the API can serve right away


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    api = commands.add_parser(
        "api", help="serve the provider's API (tokens, Data Services, v2020-07)"
    )
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    api.add_argument("--sensors", type=int, default=6, help="Eversensors")
    api.add_argument("--gateways", type=int, default=2, help="Evergateways")
    api.add_argument("--seed", type=int, help="makes devices and values reproducible")
    api.add_argument("--token-ttl", type=int, default=86400, help="token lifetime, seconds")
    api.add_argument(
        "--deliver-every",
        type=float,
        default=0.0,
        help="seconds between webhook rounds to the subscriptions made through the API (0: off)",
    )


def serve(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    installation = Installation.create(
        seed=seed,
        sensors=args.sensors,
        gateways=args.gateways,
        start=utc_now() - HISTORY_AT_START,
    )
    api = ProviderApi(installation, host=args.host, port=args.port, token_ttl_s=args.token_ttl)
    base_url = api.start()
    print(f"Everactive API emulator on {base_url} (seed {seed})")
    print(f"  Data Services: {base_url}{DS_PREFIX}, token {base_url}/auth/token (JSON)")
    print(f"  v2020-07:      {base_url}{V2020_PREFIX}, token {base_url}{V2020_PREFIX}/auth/token")
    print(f"  demo clients:  {', '.join(DEMO_API_CREDENTIALS)} (secrets: docs/control-plane.md)")
    print(f"  gateways:      {', '.join(g.serial for g in installation.gateways)}", flush=True)
    try:
        while True:
            time.sleep(args.deliver_every or 3600)
            if args.deliver_every:
                _deliver_round(api)
    except KeyboardInterrupt:
        return 0
    finally:
        api.stop()


def _deliver_round(api: ProviderApi) -> None:
    report = api.deliver(Sender(concurrency=4))
    if report.results:
        statuses = report.summary()["responses_by_status"]
        print(f"delivered {len(report.results)} webhooks: {statuses}", flush=True)
