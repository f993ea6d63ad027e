"""Webhook secrets from Secrets Manager, cached briefly in the function and never logged.

Powertools parameters caches each secret's JSON for `max_age` seconds, so a rotation is seen
within that time and a warm function does not call Secrets Manager per request. The parsed
model is kept beside it and rebuilt only when Powertools hands back a new document.

A caller that finds the cached document out of date (a v2020 keyId it does not know yet: a
subscription created moments ago) may ask for a fresh read. That bypasses the cache at most once
per secret every FORCED_REFRESH_SECONDS, so requests with made-up keyIds cannot turn into one
Secrets Manager call each.
"""

import time
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from pydantic import BaseModel, ValidationError

from sensorhook.dal.aws_clients import deadline_secretsmanager_client

SecretModel = TypeVar("SecretModel", bound=BaseModel)

FORCED_REFRESH_SECONDS = 10.0


class SecretUnavailable(Exception):
    """The secret could not be read or does not have the documented shape.

    The message names the secret and the kind of failure only, never its content.
    """


class WebhookSecrets:
    def __init__(self, max_age_seconds: int, client: Any = None) -> None:
        self._max_age_seconds = max_age_seconds
        # A client from boto3's default session (Powertools would otherwise build a new Session,
        # whose fresh service-model loading costs hundreds of milliseconds of cold start), with
        # the receiver's deadline timeouts: an expired cache is re-read on the request path.
        self._provider = SecretsProvider(boto3_client=client or deadline_secretsmanager_client())
        self._parsed: dict[str, tuple[object, BaseModel]] = {}
        self._forced_at: dict[str, float] = {}

    def read(self, secret_id: str, model: type[SecretModel], *, fresh: bool = False) -> SecretModel:
        """The secret `secret_id` (ARN or name) as `model`. Raises SecretUnavailable.

        `fresh` reads past the cache unless this secret was already read so within the last
        FORCED_REFRESH_SECONDS; then the cached document is returned.
        """
        try:
            document = self._provider.get(
                secret_id,
                max_age=self._max_age_seconds,
                transform="json",
                force_fetch=fresh and self._may_force_fetch(secret_id),
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

    def _may_force_fetch(self, secret_id: str) -> bool:
        now = time.monotonic()
        last = self._forced_at.get(secret_id)
        if last is not None and now - last < FORCED_REFRESH_SECONDS:
            return False
        self._forced_at[secret_id] = now
        return True
