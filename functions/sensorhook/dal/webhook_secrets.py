"""Webhook secrets from Secrets Manager, cached briefly in the function and never logged.

Each secret's JSON is cached for `max_age_seconds`, so a rotation is seen within that time and
a warm function does not call Secrets Manager per request. The parsed model is kept beside it
and rebuilt only when a new document was read.

The cache is ours, not Powertools parameters' SecretsProvider (which it mirrors: one
GetSecretValue, its SecretString as JSON, kept for max_age): Powertools' parameters package
imports boto3, and boto3 imports s3transfer, ~20 ms of the receiver's 250 ms cold start budget
(docs/cost.md, "Cold start"; tests/unit/test_cold_start.py keeps boto3 out).

A caller that finds the cached document out of date (a v2020 keyId it does not know yet: a
subscription created moments ago) may ask for a fresh read. That bypasses the cache at most once
per secret every FORCED_REFRESH_SECONDS, so requests with made-up keyIds cannot turn into one
Secrets Manager call each.
"""

import json
import time
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
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
        # The functions' shared session (no fresh service-model loading), with the receiver's
        # deadline timeouts: an expired cache is re-read on the request path.
        self._client = client or deadline_secretsmanager_client()
        self._documents: dict[str, tuple[float, object]] = {}  # id -> (monotonic read time, JSON)
        self._parsed: dict[str, tuple[object, BaseModel]] = {}
        self._forced_at: dict[str, float] = {}

    def read(self, secret_id: str, model: type[SecretModel], *, fresh: bool = False) -> SecretModel:
        """The secret `secret_id` (ARN or name) as `model`. Raises SecretUnavailable.

        `fresh` reads past the cache unless this secret was already read so within the last
        FORCED_REFRESH_SECONDS; then the cached document is returned.
        """
        document = self._document(secret_id, force=fresh and self._may_force_fetch(secret_id))
        cached = self._parsed.get(secret_id)
        if cached is not None and cached[0] is document and isinstance(cached[1], model):
            return cached[1]
        try:
            parsed = model.model_validate(document)
        except ValidationError:
            raise SecretUnavailable(f"{secret_id}: not a valid {model.__name__}") from None
        self._parsed[secret_id] = (document, parsed)
        return parsed

    def _document(self, secret_id: str, *, force: bool) -> object:
        """The secret's JSON document, from the cache while it is younger than max age."""
        now = time.monotonic()
        cached = self._documents.get(secret_id)
        if cached is not None and not force and now - cached[0] <= self._max_age_seconds:
            return cached[1]
        try:
            answer = self._client.get_secret_value(SecretId=secret_id)
        except (BotoCoreError, ClientError) as error:
            raise SecretUnavailable(f"{secret_id}: {type(error).__name__}") from None
        try:
            document = json.loads(answer.get("SecretString", answer.get("SecretBinary", "")))
        except ValueError:  # the message would quote the secret: only its kind is told
            raise SecretUnavailable(f"{secret_id}: not JSON") from None
        if document is not None:  # a `null` secret is read again next time, as Powertools did
            self._documents[secret_id] = (now, document)
        return document

    def _may_force_fetch(self, secret_id: str) -> bool:
        now = time.monotonic()
        last = self._forced_at.get(secret_id)
        if last is not None and now - last < FORCED_REFRESH_SECONDS:
            return False
        self._forced_at[secret_id] = now
        return True
