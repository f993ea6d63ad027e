"""A Secrets Manager secret whose values the provider or the operator issues, never the stack."""

import json
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge

# The generated field that keeps the first value random: the documented shape holds no credential
PLACEHOLDER_KEY = "placeholder"


def provider_issued_secret(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    description: str,
    shape: dict[str, Any],
    removal: RemovalPolicy,
    why_no_rotation_lambda: str,
) -> secretsmanager.Secret:
    """Created in the documented JSON `shape` plus a random placeholder, so no value ever sits in
    the repository or the template; the user puts the real one with put-secret-value."""
    secret = secretsmanager.Secret(
        scope,
        construct_id,
        secret_name=name,
        description=description,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            secret_string_template=json.dumps(shape),
            generate_string_key=PLACEHOLDER_KEY,
            exclude_punctuation=True,
            password_length=32,
        ),
        removal_policy=removal,
    )
    acknowledge(secret, "AwsSolutions-SMG4", why_no_rotation_lambda)
    return secret
