#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c stage=prod`, or `python app.py` (stage dev) without the CLI.

Writes the cloud assembly to $CDK_OUTDIR (set by the CLI), else cdk.out/; the local mode reads
cdk.out/sensorhook-<stage>.template.json and the staged Lambda asset from there.
"""

import os

from infra.app import build_app

app, _, _ = build_app(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
app.synth()
