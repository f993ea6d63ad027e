"""One synthesized stack per session (synth takes seconds): the dev stage as cdk.json
configures it, and the prod stage for the few properties that differ by stage."""

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.app import build_app, cdk_json_context
from infra.constants import stack_name
from tests.infra.cfn import Synth


def _synth(outdir: Path, stage: str) -> Synth:
    context = cdk_json_context()
    context["stage"] = stage
    app, stack, checks = build_app(str(outdir), context)
    app.synth()
    document = json.loads((outdir / f"{stack_name(stage)}.template.json").read_text())
    return Synth(
        stack=stack,
        template=Template.from_json(document),
        resources=document["Resources"],
        outputs=document.get("Outputs", {}),
        checks=checks,
        outdir=outdir,
    )


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synth(tmp_path_factory.mktemp("cdk-dev"), "dev")


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synth(tmp_path_factory.mktemp("cdk-prod"), "prod")
