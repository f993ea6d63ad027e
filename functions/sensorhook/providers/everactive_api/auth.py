"""OAuth2 client_credentials for both Everactive flavors, with a cached bearer token.

Data Services posts the credentials as JSON; v2020-07 posts a form to `<base>/auth/token`, as
OAuth2 specifies. The token is reused until shortly before `expires_in`, so a warm function
asks for one about once a day; the secret is read from the credentials callable on each fetch
(so a rotation is picked up) and is never logged.
"""

import json
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from pydantic import ValidationError

from sensorhook.providers.everactive_api.models import (
    AccessToken,
    ApiError,
    ApiFlavor,
    AuthenticationFailed,
    ClientCredentials,
    api_error_from_response,
)
from sensorhook.providers.everactive_api.transport import ApiRequest, RetryingSender

# OAuth2 answers a refused client with 400 (invalid_grant/invalid_request) or 401
# (invalid_client); some gateways say 403. None of them gets better by asking again.
_REFUSED = frozenset({400, 401, 403})


def default_token_url(flavor: ApiFlavor, base_url: str) -> str | None:
    """v2020-07 serves its token endpoint under the API base; Data Services' is configured."""
    return f"{base_url.rstrip('/')}/auth/token" if flavor is ApiFlavor.V2020_07 else None


class TokenSource:
    def __init__(
        self,
        *,
        flavor: ApiFlavor,
        token_url: str,
        credentials: Callable[[], ClientCredentials],
        sender: RetryingSender,
        clock: Callable[[], float],
        refresh_margin_s: float = 60.0,
    ) -> None:
        self._flavor = flavor
        self._token_url = token_url
        self._path = urlsplit(token_url).path or "/"
        self._credentials = credentials
        self._sender = sender
        self._clock = clock
        self._refresh_margin_s = refresh_margin_s
        self._token: str | None = None
        self._valid_until = 0.0

    def bearer(self) -> str:
        """A token valid for at least the refresh margin, fetched only when needed."""
        if self._token is None or self._clock() >= self._valid_until:
            token = self._fetch()
            # A token shorter-lived than twice the margin is kept for half its life instead of
            # being refetched on every call.
            margin = min(self._refresh_margin_s, token.expires_in / 2)
            self._token = token.access_token.get_secret_value()
            self._valid_until = self._clock() + token.expires_in - margin
        return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` after a 401; a newer one fetched meanwhile is kept."""
        if token == self._token:
            self._token = None

    def _fetch(self) -> AccessToken:
        credentials = self._credentials()
        fields = {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret.get_secret_value(),
        }
        if self._flavor is ApiFlavor.V2020_07:
            content_type, body = "application/x-www-form-urlencoded", urlencode(fields).encode()
        else:
            content_type, body = "application/json", json.dumps(fields).encode()
        response = self._sender.send(
            ApiRequest(
                method="POST",
                url=self._token_url,
                path_template=self._path,
                headers={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
            )
        )
        if response.status in _REFUSED:
            refused = api_error_from_response(response.status, response.body)
            raise AuthenticationFailed(
                response.status, refused.code, refused.message or "token refused", refused.errors
            )
        if not 200 <= response.status < 300:
            raise api_error_from_response(response.status, response.body)
        try:
            document = json.loads(response.body)
            if isinstance(document, dict) and isinstance(document.get("data"), dict):
                document = document["data"]
            return AccessToken.model_validate(document)
        except (ValueError, ValidationError):
            raise ApiError(
                response.status, "invalid_token_response", "token endpoint answer unreadable"
            ) from None
