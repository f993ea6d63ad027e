"""The receiver's decisions: route, bound, authenticate, check JSON, persist to the queue, answer.

Routing follows the HTTP API's route key, not the path: behind a custom domain whose API
mapping has a base path, the path the client addressed (and signed) is `/<base>/webhooks/...`
while the route key stays `POST /webhooks/...`. Requests API Gateway sent to the `$default`
route (another method, an unknown path) get 405 when the path ends in a webhook route, else 404.

The checks run cheapest and least revealing first: route and method, size, content type, then
authentication, and only then JSON parsing, so an unauthenticated caller learns nothing about
how its body would be read. A missing Content-Type is accepted (both providers always send
`application/json`, and Efento never resends a refused delivery); a present non-JSON one is 415.
No input makes this module raise: every outcome is a ReceiverResponse.
"""

import json
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import FLAVOR_BY_ROUTE_KEY, ROUTES, Flavor
from sensorhook.core.receiver_settings import ReceiverSettings
from sensorhook.core.timestamps import UtcDatetime
from sensorhook.dal.inbox import InboxWriteFailed
from sensorhook.dal.queue import EnqueueFailed, MessageTooLarge
from sensorhook.dal.webhook_secrets import SecretUnavailable
from sensorhook.observability import logger
from sensorhook.providers.custom_headers import HeaderSecret, HeadersRejected, verify_headers
from sensorhook.providers.everactive_v2020.signature import (
    SignatureRejected,
    SigningSecret,
    verify_signed_request,
)

SecretModel = TypeVar("SecretModel", bound=BaseModel)


class WebhookRequest(BaseModel):
    """One HTTP request as the receiver needs it, whatever front delivered it."""

    model_config = ConfigDict(frozen=True)

    method: str
    route_key: str  # the HTTP API route that matched: "POST /webhooks/...", or "$default"
    path: str  # the path with an API stage prefix removed (a custom domain's base path stays)
    raw_path: str  # the path as the client addressed it: what `(request-target)` signs
    query: str = ""
    headers: dict[str, str]  # names lowercased
    body: bytes
    source_ip: str
    request_id: str
    received_at: UtcDatetime

    @field_validator("headers")
    @classmethod
    def _lowercase_names(cls, headers: dict[str, str]) -> dict[str, str]:
        return {name.lower(): value for name, value in headers.items()}


class ReceiverResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = {}
    flavor: Flavor | None = None
    outcome: str  # "accepted" or the rejection reason: a small, fixed set (metric dimension)


class SecretReader(Protocol):
    def read(
        self, secret_id: str, model: type[SecretModel], *, fresh: bool = False
    ) -> SecretModel: ...


class EnvelopeQueue(Protocol):
    def send(self, envelope: IngestEnvelope) -> None: ...


class BodyInbox(Protocol):
    def put_body(self, event_id: str, received_at: datetime, body: bytes) -> str: ...


class _Rejection(Exception):
    """Ends a request early with its response; only ever raised and caught in this module."""

    def __init__(self, status_code: int, outcome: str, message: str, **headers: str) -> None:
        super().__init__(outcome)
        self.status_code, self.outcome, self.message, self.headers = (
            status_code,
            outcome,
            message,
            headers,
        )


_RETRY_LATER = "temporarily unavailable, retry later"


def receive(
    request: WebhookRequest,
    settings: ReceiverSettings,
    *,
    secrets: SecretReader,
    queue: EnvelopeQueue,
    inbox: BodyInbox,
) -> ReceiverResponse:
    """Decide what one webhook request gets, persisting it first when it is accepted."""
    flavor = _route(request)
    try:
        if flavor is None:
            raise _Rejection(404, "not_found", "not found")
        _check_method_size_and_type(request, settings)
        key_id = _authenticate(flavor, request, settings, secrets)
        text, document = _parse_json(request.body)
        delivery = {
            "flavor": flavor,
            "event_id": _event_id(flavor, document),
            "received_at": request.received_at,
            "request_id": request.request_id,
            "auth_key_id": key_id,
        }
        envelope = _persist(
            delivery, request.body, text, settings=settings, queue=queue, inbox=inbox
        )
    except _Rejection as rejection:
        return ReceiverResponse(
            status_code=rejection.status_code,
            body={"message": rejection.message},
            headers=rejection.headers,
            flavor=flavor,
            outcome=rejection.outcome,
        )
    # DEBUG: the trail of an accepted delivery is kept without it (the API's access log has
    # each request's status, the raw archive each envelope with its request id and event id,
    # WebhookAccepted counts them); at INFO it would be ~520 bytes of logs per delivery, more
    # than the rest of the receiver's output (docs/cost.md, "Logs"). LOG_LEVEL=DEBUG prints it.
    logger.debug("webhook accepted", extra={"flavor": flavor, "event_id": envelope.event_id})
    return ReceiverResponse(
        status_code=202,
        body={"status": "accepted", "eventId": envelope.event_id},
        flavor=flavor,
        outcome="accepted",
    )


def _route(request: WebhookRequest) -> Flavor | None:
    """The flavor of the route API Gateway matched; for its catch-all `$default` route, the
    flavor whose route the path ends in (a trailing slash, or another method, which is 405)."""
    flavor = FLAVOR_BY_ROUTE_KEY.get(request.route_key)
    if flavor is not None:
        return flavor
    path = request.path.rstrip("/")
    for candidate, route in ROUTES.items():
        if path.endswith(route):
            return candidate
    return None


def _check_method_size_and_type(request: WebhookRequest, settings: ReceiverSettings) -> None:
    if request.method.upper() != "POST":
        raise _Rejection(405, "method_not_allowed", "method not allowed", allow="POST")
    declared = request.headers.get("content-length", "")
    declared_length = int(declared) if declared.isascii() and declared.isdigit() else 0
    if max(declared_length, len(request.body)) > settings.max_body_bytes:
        raise _Rejection(413, "too_large", "payload too large")
    if not _is_json_content_type(request.headers.get("content-type")):
        raise _Rejection(415, "unsupported_media_type", "content type must be application/json")


def _is_json_content_type(value: str | None) -> bool:
    if value is None:
        return True
    media_type = value.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _authenticate(
    flavor: Flavor, request: WebhookRequest, settings: ReceiverSettings, secrets: SecretReader
) -> str | None:
    """The keyId for the signed flavor, None for header flavors."""
    try:
        if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP:
            return _verify_signature(request, settings, secrets)
        secret_arn = (
            settings.efento_header_secret_arn
            if flavor is Flavor.EFENTO_MEASUREMENTS
            else settings.ds_header_secret_arn
        )
        secret = secrets.read(secret_arn, HeaderSecret)
        verify_headers(request.headers, secret, request.received_at)
        return None
    except (SignatureRejected, HeadersRejected) as rejected:
        logger.info(
            "webhook authentication failed",
            extra={"flavor": flavor, "check": rejected.check, "source_ip": request.source_ip},
        )
        raise _Rejection(401, "unauthorized", "unauthorized") from None
    except SecretUnavailable as error:
        # Not the caller's fault: a retry may succeed once the secret is readable again.
        logger.error("webhook secret unavailable", extra={"flavor": flavor, "error": str(error)})
        raise _Rejection(503, "secret_unavailable", _RETRY_LATER) from None


def _verify_signature(
    request: WebhookRequest, settings: ReceiverSettings, secrets: SecretReader
) -> str:
    """Verify against the cached signing secret and, for a keyId it does not know, once more
    against a fresh read: a subscription created moments ago signs with a key the cache has
    not seen yet (the secret reader limits how often that read reaches Secrets Manager)."""

    def verify(secret: SigningSecret) -> str:
        return verify_signed_request(
            method=request.method,
            path=request.raw_path,
            query=request.query,
            headers=request.headers,
            body=request.body,
            secret=secret,
            now=request.received_at,
            max_skew_seconds=settings.signature_max_skew_seconds,
        )

    try:
        return verify(secrets.read(settings.v2020_signing_secret_arn, SigningSecret))
    except SignatureRejected as rejected:
        if rejected.check != "unknown_key_id":
            raise
    return verify(secrets.read(settings.v2020_signing_secret_arn, SigningSecret, fresh=True))


def _parse_json(body: bytes) -> tuple[str, Any]:
    """The body as text and parsed JSON, or a 400: a body that is not UTF-8 text (invalid
    bytes, or a `\\ud800` escape that decodes to a lone surrogate) is never accepted, since no
    store could hold it and the delivery would be neither stored nor quarantined."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise _Rejection(400, "not_utf8", "body is not valid UTF-8") from None
    try:
        document = json.loads(text)
        json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise _Rejection(400, "not_utf8", "body contains an invalid Unicode escape") from None
    except ValueError:
        raise _Rejection(400, "malformed_json", "body is not valid UTF-8 JSON") from None
    except RecursionError:
        raise _Rejection(400, "malformed_json", "body is nested too deeply") from None
    if not isinstance(document, dict | list):
        raise _Rejection(400, "malformed_json", "body must be a JSON object or array")
    return text, document


def _event_id(flavor: Flavor, document: Any) -> str:
    try:
        return event_id_for(flavor, document)
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800": valid JSON, not text
        raise _Rejection(400, "malformed_json", "body contains an invalid Unicode escape") from None
    except RecursionError:  # parsed just within the limit, but too deep to serialize again
        raise _Rejection(400, "malformed_json", "body is nested too deeply") from None


def _persist(
    delivery: dict[str, Any],
    body: bytes,
    text: str,
    *,
    settings: ReceiverSettings,
    queue: EnvelopeQueue,
    inbox: BodyInbox,
) -> IngestEnvelope:
    """Enqueue the body inline when it fits, else claim-check it to the inbox first.

    A body under the inline limit may still not fit once escaped into the envelope's JSON;
    the queue says so before calling SQS, and that body is claim-checked too.
    """
    try:
        if len(body) <= settings.inline_body_max_bytes:
            try:
                envelope = IngestEnvelope(**delivery, body=text)
                queue.send(envelope)
                return envelope
            except MessageTooLarge:
                pass  # its escaped envelope is over SQS's limit: claim-check it below instead
        key = inbox.put_body(delivery["event_id"], delivery["received_at"], body)
        envelope = IngestEnvelope(**delivery, body_s3_key=key)
        queue.send(envelope)
        return envelope
    except (EnqueueFailed, InboxWriteFailed) as error:
        logger.error(
            "webhook not persisted",
            extra={
                "flavor": delivery["flavor"],
                "event_id": delivery["event_id"],
                "error": str(error),
            },
        )
        raise _Rejection(503, "enqueue_failed", _RETRY_LATER) from None
