#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c stage=prod`, or without the CLI `python app.py -c stage=prod`
(stage dev when none is given).

Writes the cloud assembly to $CDK_OUTDIR (set by the CLI), else cdk.out/; the local mode reads
cdk.out/sensorhook-<stage>.template.json and the staged Lambda asset from there.
"""

import os
import sys

from infra.app import build_app, context_from_args
from infra.config import ConfigError

try:
    app = build_app(
        outdir=os.environ.get("CDK_OUTDIR", "cdk.out"), context=context_from_args(sys.argv[1:])
    )[0]
except ConfigError as error:
    sys.exit(f"sensorhook configuration: {error}")
app.synth()
