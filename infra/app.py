"""Builds the CDK app the same way for `cdk synth`, `python app.py` and the tests."""

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import App
from cdk_nag import AwsSolutionsChecks

from infra.config import CONTEXT_KEY, DEFAULT_STAGE, STAGE_CONTEXT_KEY, load_stage_config
from infra.nag import add_nag_checks
from infra.stack import SensorhookStack

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """The `context` block of cdk.json.

    The CDK CLI passes it to the app itself; `python app.py` and the tests run without the CLI,
    so the app reads it as defaults, and context given by the CLI (`-c ...`) still wins.
    """
    context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, dict):
        raise ValueError(f"{CDK_JSON}: 'context' must be an object")
    return context


def _context_pair(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def context_from_args(argv: Sequence[str]) -> dict[str, Any]:
    """cdk.json's context with `-c KEY=VALUE` overrides, as the CDK CLI would pass them, so
    `python app.py -c stage=prod` synthesizes what `cdk synth -c stage=prod` does."""
    parser = argparse.ArgumentParser(
        prog="app.py", description="Synthesize the sensorhook stack into the cloud assembly."
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        type=_context_pair,
        metavar="KEY=VALUE",
        help="context value, e.g. -c stage=prod",
    )
    pairs: list[tuple[str, str]] = parser.parse_args(argv).context
    return {**cdk_json_context(), **dict(pairs)}


def build_app(
    outdir: str, context: Mapping[str, Any] | None = None
) -> tuple[App, SensorhookStack, AwsSolutionsChecks]:
    """The app with its one stack for the stage chosen by context `stage` (default dev).

    `context` replaces cdk.json's context (tests pass variants); cdk-nag runs on the whole app.
    Raises infra.config.ConfigError when the stage configuration is invalid.
    """
    app = App(outdir=outdir, context=dict(context if context is not None else cdk_json_context()))
    stage = app.node.try_get_context(STAGE_CONTEXT_KEY) or DEFAULT_STAGE
    config = load_stage_config(app.node.try_get_context(CONTEXT_KEY), stage)
    stack = SensorhookStack(app, stage=stage, config=config)
    checks = add_nag_checks(app)
    return app, stack, checks
