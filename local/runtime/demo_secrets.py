"""Known webhook secrets for the local stack, so the provider emulator and curl can sign.

The secret ARNs come from the deployed receiver's environment (the variables its settings
model reads), so nothing here restates infrastructure names. Shapes: docs/architecture.md.
"""

import json
from typing import Any

# Demo values only: they protect nothing but a local, loopback-only stack.
DEMO_SUBSCRIPTION_ID = "demo-subscription"
DEMO_WEBHOOK_SECRETS: dict[str, dict[str, Any]] = {
    "V2020_SIGNING_SECRET_ARN": {
        "keys": {DEMO_SUBSCRIPTION_ID: "demo-v2020-signing-secret"},
        "previous_keys": {},
        "previous_valid_until": "2000-01-01T00:00:00Z",
    },
    "DS_HEADER_SECRET_ARN": {
        "headers": {"x-api-key": "demo-data-services-key"},
        "previous_headers": {},
        "previous_valid_until": "2000-01-01T00:00:00Z",
    },
    "EFENTO_HEADER_SECRET_ARN": {
        "headers": {"x-efento-token": "demo-efento-token"},
        "previous_headers": {},
        "previous_valid_until": "2000-01-01T00:00:00Z",
    },
    # the provider emulator's API clients (local.emulator.api.DEMO_API_CREDENTIALS)
    "DS_API_CREDENTIALS_SECRET_ARN": {
        "client_id": "demo-ds-client",
        "client_secret": "demo-ds-client-secret",
    },
    "V2020_API_CREDENTIALS_SECRET_ARN": {
        "client_id": "demo-v2020-client",
        "client_secret": "demo-v2020-client-secret",
    },
}


def put_demo_webhook_secrets(lambda_client: Any, secrets_client: Any) -> dict[str, Any]:
    """Set the demo values in every webhook secret a deployed function is configured with.

    Returns ``{env var name: {"arn": ..., "value": ...}}`` for the secrets it set.
    """

    done: dict[str, Any] = {}
    for page in lambda_client.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            variables = function.get("Environment", {}).get("Variables", {})
            for name, value in DEMO_WEBHOOK_SECRETS.items():
                arn = variables.get(name)
                if arn and name not in done:
                    secrets_client.put_secret_value(SecretId=arn, SecretString=json.dumps(value))
                    done[name] = {"arn": arn, "value": value}
    return done
