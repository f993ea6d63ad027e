"""The provider API's client id and secret, from Secrets Manager, cached and never logged.

An `ApiCredentials` is the `credentials` callable of `EveractiveApi`: the token source calls
it on each token fetch (about daily), and WebhookSecrets' `max_age` cache keeps a burst of fetches
(a refresh after a 401) from reading Secrets Manager twice, while a rotation is seen within
`max_age_seconds`.
"""

from typing import Any

from sensorhook.dal.webhook_secrets import WebhookSecrets
from sensorhook.providers.everactive_api.models import ClientCredentials


class ApiCredentials:
    def __init__(
        self,
        secret_id: str,
        *,
        max_age_seconds: int = 300,
        secrets: WebhookSecrets | None = None,
        client: Any = None,
    ) -> None:
        self._secret_id = secret_id
        self._secrets = secrets or WebhookSecrets(max_age_seconds=max_age_seconds, client=client)

    def __call__(self) -> ClientCredentials:
        """Raises SecretUnavailable (naming the secret, never its content)."""
        return self._secrets.read(self._secret_id, ClientCredentials)
