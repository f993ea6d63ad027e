"""The CDK app: every AWS resource sensorhook runs on, composed from one construct per capability.

The Lambda code's shared types (the webhook routes, each function's settings model) are the single
source of truth for routes and environment variables, so infra imports them from the asset
folder `functions/` instead of restating them.
"""

import sys
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.append(str(FUNCTIONS_DIR))
