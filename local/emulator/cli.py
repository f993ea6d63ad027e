"""`python -m local.emulator stream|test ...`: the emulator from a shell or a script."""

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from local.emulator.api import cli as api_cli
from local.emulator.deliveries import DeliveryFactory, Fault, Secrets, utc_now
from local.emulator.efento_webhook import EfentoWebhooks, WebhookPolicy
from local.emulator.installation import Installation, seeded_rng
from local.emulator.sender import Sender, SendReport, SendResult
from local.emulator.signing import DigestMode
from local.emulator.stream import FaultShares, Stream, backdated_start
from sensorhook.core.flavors import Flavor


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a share is a number from 0 to 1")
    return value


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value

    return parse


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secrets-file",
        type=Path,
        help="JSON with v2020_signing, ds_header, "
        "efento_header in their Secrets Manager shapes (default: local secrets)",
    )
    parser.add_argument("--seed", type=int, help="makes devices and values reproducible")
    parser.add_argument(
        "--digest",
        choices=[m.value for m in DigestMode],
        default=DigestMode.SHA256.value,
        help="v2020-07 Digest header reading",
    )
    parser.add_argument(
        "--timeout",
        type=_positive(float),
        default=10.0,
        help="seconds to wait for a response (Efento: 10)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.emulator",
        description="Play Everactive and Efento webhooks against a URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    stream = commands.add_parser("stream", help="send a realistic stream of webhooks")
    stream.add_argument(
        "--base-url", required=True, help="routes are appended, e.g. http://127.0.0.1:8080"
    )
    stream.add_argument("--rate", type=_positive(float), default=50.0, help="requests per second")
    bound = stream.add_mutually_exclusive_group()
    bound.add_argument("--count", type=_positive(int), help="requests to send (default 100)")
    bound.add_argument("--duration", type=_positive(float), help="seconds to send for")
    stream.add_argument(
        "--sensors",
        type=_positive(int),
        default=6,
        help="Eversensors, and as many Efento measurement points",
    )
    stream.add_argument("--gateways", type=_positive(int), default=2, help="Evergateways")
    stream.add_argument(
        "--flavors", nargs="+", choices=[f.value for f in Flavor], default=[f.value for f in Flavor]
    )
    stream.add_argument("--duplicate-share", type=_share, default=0.02)
    stream.add_argument("--stale-date-share", type=_share, default=0.0)
    stream.add_argument("--bad-signature-share", type=_share, default=0.0)
    stream.add_argument("--malformed-share", type=_share, default=0.0)
    stream.add_argument("--concurrency", type=_positive(int), default=8, help="worker threads")
    stream.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when any response differs from the intended outcome",
    )
    _common(stream)

    test = commands.add_parser(
        "test", help="send one mock payload, show the response (Efento's TEST button)"
    )
    target = test.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="the exact URL to post to")
    target.add_argument("--base-url", help="post to this base URL + the flavor's route")
    test.add_argument("--flavor", required=True, choices=[f.value for f in Flavor])
    test.add_argument(
        "--fault",
        choices=[f.value for f in Fault if f is not Fault.DUPLICATE],
        default=Fault.NONE.value,
    )
    _common(test)
    api_cli.add_parser(commands)
    return parser


def _secrets(path: Path | None) -> Secrets:
    return Secrets.from_file(path) if path else Secrets()


def run_stream(args: argparse.Namespace) -> tuple[SendReport, int]:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    flavors = [Flavor(value) for value in args.flavors]
    count = args.count if args.count or args.duration else 100
    planned = count or int(args.rate * args.duration) + 1
    installation = Installation.create(
        seed=seed,
        sensors=args.sensors,
        gateways=args.gateways,
        start=backdated_start(utc_now(), count=planned, sensors=args.sensors, flavors=flavors),
    )
    rng = seeded_rng(seed, "stream")
    factory = DeliveryFactory(
        secrets=_secrets(args.secrets_file),
        base_url=args.base_url,
        rng=rng,
        digest_mode=DigestMode(args.digest),
    )
    shares = FaultShares(
        duplicate=args.duplicate_share,
        stale_date=args.stale_date_share,
        bad_signature=args.bad_signature_share,
        malformed=args.malformed_share,
    )
    stream = Stream(installation, factory, flavors, shares, rng)
    webhooks = EfentoWebhooks(utc_now, WebhookPolicy(response_timeout_s=args.timeout))
    sender = Sender(timeout_s=args.timeout, concurrency=args.concurrency, efento_webhooks=webhooks)
    report = sender.run(stream, count=count, duration_s=args.duration, rate=args.rate)
    return report, seed


def _print_counts(title: str, counts: dict[str, Any]) -> None:
    text = ", ".join(f"{key} {value}" for key, value in sorted(counts.items())) or "-"
    print(f"{title:<22}{text}")


def _print_summary(summary: dict[str, Any]) -> None:
    print(
        f"sent {summary['sent']} requests in {summary['elapsed_s']} s "
        f"({summary['rate_per_s']}/s); not sent, Efento webhook disabled: "
        f"{summary['not_sent_webhook_disabled']}"
    )
    _print_counts("by flavor:", summary["by_flavor"])
    _print_counts("by intended outcome:", summary["by_intent"])
    _print_counts("by fault:", summary["by_fault"])
    _print_counts("responses:", summary["responses_by_status"])
    print(f"{'unexpected responses:':<22}{summary['unexpected_responses']}")
    print(
        f"{'latency ms:':<22}p50 {summary['latency_ms']['p50']}, p99 {summary['latency_ms']['p99']}"
    )
    print(
        f"{'expected to be kept:':<22}{summary['expected_unique_deliveries']} deliveries, "
        f"{summary['expected_unique_samples']} samples"
    )
    _print_counts("efento webhooks:", summary["efento_webhooks"])
    print(f"{'seed:':<22}{summary['seed']}")


def run_test(args: argparse.Namespace) -> SendResult:
    flavor = Flavor(args.flavor)
    fault = Fault(args.fault)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    installation = Installation.create(seed=seed, sensors=3, gateways=1, start=utc_now())
    factory = DeliveryFactory(
        secrets=_secrets(args.secrets_file),
        base_url=args.base_url or "",
        exact_url=args.url,
        rng=seeded_rng(seed, "test"),
        digest_mode=DigestMode(args.digest),
    )
    signed = flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP
    if fault is Fault.STALE_DATE and not signed:
        delivery = factory.authentic(installation.payload(flavor, stale=True))
    else:
        delivery = factory.with_fault(installation.payload(flavor), fault)
    return Sender(timeout_s=args.timeout, concurrency=1).send(delivery)


def _test_report(result: SendResult) -> dict[str, Any]:
    delivery = result.delivery
    return {
        "request": {
            "url": delivery.url,
            "flavor": delivery.flavor.value,
            "fault": delivery.fault.value,
            "detail": delivery.detail,
            "intent": delivery.intent.value,
            "expected_status": delivery.expected_status,
            "event_id": delivery.event_id,
            "bytes": len(delivery.body),
        },
        "response": {
            "status": result.outcome,
            "latency_ms": None if result.latency_s is None else round(result.latency_s * 1000, 2),
            "headers": dict(result.response_headers),
            "body": result.response_body.decode("utf-8", "replace"),
            "error": result.error,
        },
    }


def _print_test(report: dict[str, Any]) -> None:
    request, response = report["request"], report["response"]
    print(
        f"POST {request['url']}  ({request['flavor']}, {request['bytes']} bytes, "
        f"fault {request['fault']}{' - ' + request['detail'] if request['detail'] else ''})"
    )
    print(f"expected: {request['expected_status']} ({request['intent']})")
    print(
        f"status:   {response['status']}"
        + (f" ({response['error']})" if response["error"] else "")
        + (f" in {response['latency_ms']} ms" if response["latency_ms"] is not None else "")
    )
    for name, value in response["headers"].items():
        print(f"  {name}: {value}")
    if response["body"]:
        print(response["body"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "api":
        return api_cli.serve(args)
    if args.command == "stream":
        report, seed = run_stream(args)
        summary = report.summary() | {"seed": seed}
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            _print_summary(summary)
        return 1 if args.check and summary["unexpected_responses"] else 0
    result = run_test(args)
    test_report = _test_report(result)
    if args.json:
        print(json.dumps(test_report, indent=2))
    else:
        _print_test(test_report)
    return 1 if result.status is None else 0
