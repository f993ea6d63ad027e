"""Webhook secrets from Secrets Manager, cached briefly in the function and never logged.

Powertools parameters caches each secret's JSON for `max_age` seconds, so a rotation is seen
within that time and a warm function does not call Secrets Manager per request. The parsed
model is kept beside it and rebuilt only when Powertools hands back a new document.
"""

from typing import Any, TypeVar

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from pydantic import BaseModel, ValidationError

SecretModel = TypeVar("SecretModel", bound=BaseModel)


class SecretUnavailable(Exception):
    """The secret could not be read or does not have the documented shape.

    The message names the secret and the kind of failure only, never its content.
    """


class WebhookSecrets:
    def __init__(self, max_age_seconds: int, client: Any = None) -> None:
        self._max_age_seconds = max_age_seconds
        # A client from boto3's default session: Powertools would otherwise build a new Session,
        # whose fresh service-model loading costs hundreds of milliseconds of cold start.
        self._provider = SecretsProvider(boto3_client=client or boto3.client("secretsmanager"))
        self._parsed: dict[str, tuple[object, BaseModel]] = {}

    def read(self, secret_id: str, model: type[SecretModel]) -> SecretModel:
        """The secret `secret_id` (ARN or name) as `model`. Raises SecretUnavailable."""
        try:
            document = self._provider.get(
                secret_id, max_age=self._max_age_seconds, transform="json"
            )
        except (GetParameterError, TransformParameterError) as error:
            raise SecretUnavailable(f"{secret_id}: {type(error).__name__}") from None
        cached = self._parsed.get(secret_id)
        if cached is not None and cached[0] is document and isinstance(cached[1], model):
            return cached[1]
        try:
            parsed = model.model_validate(document)
        except ValidationError:
            raise SecretUnavailable(f"{secret_id}: not a valid {model.__name__}") from None
        self._parsed[secret_id] = (document, parsed)
        return parsed
