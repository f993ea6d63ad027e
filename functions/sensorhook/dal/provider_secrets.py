"""The receiver's webhook secrets, as the subscriptions reconciler uses them.

- The Data Services header secret is read (never written): its current `headers` are what every
  DS webhook must forward. Rotating it is the operator's put-secret-value (new `headers`, old
  ones in `previous_headers` with `previous_valid_until`); the next reconcile pushes the new
  values to the provider while the receiver still accepts the old ones.
- The v2020-07 signing secret is read and written: the provider generates one secret per
  subscription on create, stored under `keys[<subscription id>]` where the receiver looks for
  it. Writes are read-modify-write of the whole document: the other subscriptions' keys and an
  operator's rotation overlap (`previous_keys`, `previous_valid_until`) are kept, anything else
  is dropped (the `placeholder` CDK generates when it creates the secret), because the
  receiver's `SigningSecret` forbids unknown fields. The subscriptions function runs with a
  reserved concurrency of one, so no two writers race.

Values are never logged; errors name the secret and the kind of failure only.
"""

import json
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from sensorhook.dal.aws_clients import secretsmanager_client


class ProviderSecretUnavailable(Exception):
    """A secret could not be read or written, or does not have the documented shape."""


class _HeaderDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    headers: dict[str, SecretStr]


class _SigningDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    keys: dict[str, SecretStr]
    previous_keys: dict[str, SecretStr] = {}
    previous_valid_until: str | None = None  # the receiver validates it; written back as read


def _read_document(client: Any, secret_id: str) -> dict[str, Any]:
    try:
        text = client.get_secret_value(SecretId=secret_id)["SecretString"]
        document = json.loads(text)
    except (ClientError, KeyError, ValueError) as error:
        raise ProviderSecretUnavailable(f"{secret_id}: {type(error).__name__}") from None
    if not isinstance(document, dict):
        raise ProviderSecretUnavailable(f"{secret_id}: not a JSON object")
    return document


class DsHeaderSecret:
    def __init__(self, secret_id: str, client: Any = None) -> None:
        self._secret_id = secret_id
        self._client = client or secretsmanager_client()

    def current_headers(self) -> dict[str, SecretStr]:
        """The header set the receiver currently requires (name -> value)."""
        try:
            return _HeaderDocument.model_validate(
                _read_document(self._client, self._secret_id)
            ).headers
        except ValidationError:
            raise ProviderSecretUnavailable(f"{self._secret_id}: no `headers` object") from None


class V2020SigningKeys:
    def __init__(self, secret_id: str, client: Any = None) -> None:
        self._secret_id = secret_id
        self._client = client or secretsmanager_client()

    def key_ids(self) -> set[str]:
        """The subscription ids the receiver can verify signatures for."""
        return set(self._document().keys)

    def store(self, subscription_id: str, secret: SecretStr) -> None:
        """Add (or replace) the subscription's signing secret, keeping every other key."""
        document = self._document()
        keys = {name: value.get_secret_value() for name, value in document.keys.items()}
        keys[subscription_id] = secret.get_secret_value()
        self._write(document, keys)

    def drop(self, subscription_id: str) -> None:
        """Forget a deleted subscription's secret, so nothing signed with it is accepted."""
        document = self._document()
        if subscription_id not in document.keys:
            return
        keys = {
            name: value.get_secret_value()
            for name, value in document.keys.items()
            if name != subscription_id
        }
        self._write(document, keys)

    def _document(self) -> _SigningDocument:
        try:
            return _SigningDocument.model_validate(_read_document(self._client, self._secret_id))
        except ValidationError:
            raise ProviderSecretUnavailable(
                f"{self._secret_id}: not a signing-secret document (`keys` object)"
            ) from None

    def _write(self, document: _SigningDocument, keys: dict[str, str]) -> None:
        """The fields the receiver's `SigningSecret` knows, and nothing else."""
        written: dict[str, Any] = {
            "keys": keys,
            "previous_keys": {
                name: value.get_secret_value() for name, value in document.previous_keys.items()
            },
        }
        if document.previous_valid_until is not None:
            written["previous_valid_until"] = document.previous_valid_until
        try:
            self._client.put_secret_value(
                SecretId=self._secret_id, SecretString=json.dumps(written)
            )
        except ClientError as error:
            raise ProviderSecretUnavailable(f"{self._secret_id}: {type(error).__name__}") from None
