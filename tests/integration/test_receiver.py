"""The receiver λ on moto: real Secrets Manager secrets, SQS queue and S3 bucket.

Every response the receiver documents (docs/webhook-auth.md) is driven by a realistic HTTP API
payload v2 event, and every 202 is checked against the envelope actually on the queue.
"""

import io
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import ROUTES, Flavor
from sensorhook.core.receiver_settings import receiver_settings
from sensorhook.dal.aws_clients import (
    clear_cached_clients,
    deadline_secretsmanager_client,
    session,
)
from sensorhook.handlers import receiver
from sensorhook.observability import logger
from tests.builders import http_api_event, lambda_context, signed_v2020_headers
from tests.fixtures.loader import fixture_text, sample_text

REGION = "us-east-1"
KEY_ID = "subscription-id-1"
SIGNING_KEY = "v2020-generated-secret"
DS_HEADERS = {"X-Api-Key": "ds-key-123"}
EFENTO_HEADERS = {"X-Efento-Token": "efento-token-456", "X-Site": "plant-1"}
INLINE_BODY_MAX_BYTES = 3_400
MAX_BODY_BYTES = 40_000

MHM = sample_text("everactive-ds/sensor-reading-mhm.json")  # 3555 bytes: claim-checked
ENVIRONMENTAL = sample_text("everactive-ds/sensor-reading-environmental.json")
GATEWAY_V3 = sample_text("everactive-ds/gateway-status-v3.json")
STEAM_TRAP = fixture_text("everactive-v2020/steam-trap-state-change.json")
EFENTO = fixture_text("efento/example-1-value-change.json")


@dataclass
class Receiver:
    sqs: Any
    s3: Any
    secrets: Any
    queue_url: str
    bucket: str
    secret_arns: dict[str, str]

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = receiver.handler(event, lambda_context())
        return response

    def queued(self) -> list[tuple[IngestEnvelope, dict[str, str]]]:
        """Every envelope on the ingest queue, with its message attributes (drains the queue)."""
        found: list[tuple[IngestEnvelope, dict[str, str]]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                attributes = {
                    name: value["StringValue"]
                    for name, value in message.get("MessageAttributes", {}).items()
                }
                found.append((IngestEnvelope.model_validate_json(message["Body"]), attributes))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture(scope="module")
def aws_account() -> Iterator[tuple[Any, Any, Any]]:
    """One mocked account per module: creating boto3 clients is the slow part of a test."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "POWERTOOLS_SERVICE_NAME": "sensorhook-receiver-test",
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            clear_cached_clients()
            yield (
                boto3.client("sqs", region_name=REGION),
                boto3.client("s3", region_name=REGION),
                boto3.client("secretsmanager", region_name=REGION),
            )
        clear_cached_clients()


@pytest.fixture
def aws_receiver(
    aws_account: tuple[Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Receiver]:
    """A fresh queue, bucket and secrets for each test, and a cold receiver configured on them."""
    sqs, s3, secrets = aws_account
    run = uuid.uuid4().hex[:12]
    bucket = f"sensorhook-{run}"
    queue_url = sqs.create_queue(QueueName=f"sensorhook-ingest-{run}")["QueueUrl"]
    s3.create_bucket(Bucket=bucket)
    documents = {
        "V2020_SIGNING_SECRET_ARN": {"keys": {KEY_ID: SIGNING_KEY}},
        "DS_HEADER_SECRET_ARN": {"headers": DS_HEADERS},
        "EFENTO_HEADER_SECRET_ARN": {"headers": EFENTO_HEADERS},
    }
    arns = {}
    for variable, document in documents.items():
        arns[variable] = secrets.create_secret(
            Name=f"{variable.lower()}-{run}", SecretString=json.dumps(document)
        )["ARN"]
        monkeypatch.setenv(variable, arns[variable])
    for name, value in {
        "INGEST_QUEUE_URL": queue_url,
        "BUCKET_NAME": bucket,
        "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "INLINE_BODY_MAX_BYTES": str(INLINE_BODY_MAX_BYTES),
    }.items():
        monkeypatch.setenv(name, value)
    _forget_cold_start()
    yield Receiver(
        sqs=sqs, s3=s3, secrets=secrets, queue_url=queue_url, bucket=bucket, secret_arns=arns
    )
    _forget_cold_start()


def _forget_cold_start() -> None:
    receiver_settings.cache_clear()
    receiver.receiver.cache_clear()


def _post(
    flavor: Flavor, body: str | bytes, headers: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    raw = body.encode() if isinstance(body, str) else body
    auth = {
        Flavor.EFENTO_MEASUREMENTS: EFENTO_HEADERS,
        Flavor.EVERACTIVE_DS_SENSOR_READING: DS_HEADERS,
        Flavor.EVERACTIVE_DS_GATEWAY_STATUS: DS_HEADERS,
    }.get(flavor, {})
    merged = {"content-type": "application/json", **auth, **(headers or {})}
    if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP and headers is None:
        merged = signed_v2020_headers(raw, key_id=KEY_ID, secret=SIGNING_KEY, path=ROUTES[flavor])
    return http_api_event(path=ROUTES[flavor], body=raw, headers=merged, **kwargs)


def _body(response: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response["body"])
    return parsed


def _signed_post(key_id: str, secret: str) -> dict[str, Any]:
    flavor = Flavor.EVERACTIVE_V2020_STEAM_TRAP
    raw = STEAM_TRAP.encode()
    headers = signed_v2020_headers(raw, key_id=key_id, secret=secret, path=ROUTES[flavor])
    return http_api_event(path=ROUTES[flavor], body=raw, headers=headers)


def _put_secret(aws_receiver: Receiver, variable: str, document: dict[str, Any]) -> None:
    aws_receiver.secrets.put_secret_value(
        SecretId=aws_receiver.secret_arns[variable], SecretString=json.dumps(document)
    )


@pytest.fixture
def secret_fetches(aws_receiver: Receiver) -> Iterator[list[str]]:
    """The SecretId of every GetSecretValue call the receiver makes (it cold-starts after this:
    a client copies its session's event hooks when it is created)."""
    fetched: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        fetched.append(params["SecretId"])

    events = session().get_component("event_emitter")  # the session the module's clients use
    hook = "before-parameter-build.secrets-manager.GetSecretValue"
    events.register(hook, record)
    deadline_secretsmanager_client.cache_clear()  # the cold start creates one that copies it
    yield fetched
    events.unregister(hook, record)


# --- 202 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavor", "body"),
    [
        (Flavor.EVERACTIVE_DS_SENSOR_READING, ENVIRONMENTAL),
        (Flavor.EVERACTIVE_DS_GATEWAY_STATUS, GATEWAY_V3),
        (Flavor.EFENTO_MEASUREMENTS, EFENTO),
        (Flavor.EVERACTIVE_V2020_STEAM_TRAP, STEAM_TRAP),
    ],
)
def test_authentic_delivery_is_queued_before_202(
    aws_receiver: Receiver, flavor: Flavor, body: str
) -> None:
    # Given an authentic delivery of a real (or seed-built) body
    event = _post(flavor, body)
    # When the receiver handles it
    response = aws_receiver.invoke(event)
    # Then it answers 202 with the event id, and that envelope is on the queue with the body
    expected_id = event_id_for(flavor, json.loads(body))
    assert response["statusCode"] == 202
    assert _body(response) == {"status": "accepted", "eventId": expected_id}
    [(envelope, attributes)] = aws_receiver.queued()
    assert envelope.flavor is flavor
    assert envelope.event_id == expected_id
    assert envelope.body == body
    assert envelope.body_s3_key is None
    assert envelope.request_id == event["requestContext"]["requestId"]
    assert abs(envelope.received_at - datetime.now(UTC)) < timedelta(seconds=30)
    assert attributes == {"flavor": flavor.value, "event_id": expected_id}
    expected_key_id = KEY_ID if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP else None
    assert envelope.auth_key_id == expected_key_id


def test_steam_trap_event_id_is_the_providers(aws_receiver: Receiver) -> None:
    response = aws_receiver.invoke(_post(Flavor.EVERACTIVE_V2020_STEAM_TRAP, STEAM_TRAP))
    assert _body(response)["eventId"] == "everactive-v2020-07:state-change-event-id-1"


def test_a_resent_body_with_other_whitespace_gets_the_same_event_id(
    aws_receiver: Receiver,
) -> None:
    # Given the same reading delivered twice, once re-serialized compactly
    compact = json.dumps(json.loads(MHM), separators=(",", ":"))
    first = aws_receiver.invoke(_post(Flavor.EVERACTIVE_DS_SENSOR_READING, MHM))
    second = aws_receiver.invoke(_post(Flavor.EVERACTIVE_DS_SENSOR_READING, compact))
    # Then both are accepted under one event id (the processor stores it once)
    assert _body(first)["eventId"] == _body(second)["eventId"]
    assert len(aws_receiver.queued()) == 2


def test_large_body_is_claim_checked_to_the_inbox(aws_receiver: Receiver) -> None:
    # Given a machine-health reading larger than the inline limit
    assert len(MHM.encode()) > INLINE_BODY_MAX_BYTES
    response = aws_receiver.invoke(_post(Flavor.EVERACTIVE_DS_SENSOR_READING, MHM))
    # Then the body is in S3 under inbox/<date>/<event id>.json and the envelope points at it
    assert response["statusCode"] == 202
    [(envelope, _)] = aws_receiver.queued()
    assert envelope.body is None
    day = envelope.received_at.strftime("%Y-%m-%d")
    assert envelope.body_s3_key == f"inbox/{day}/{envelope.event_id}.json"
    stored = aws_receiver.s3.get_object(Bucket=aws_receiver.bucket, Key=envelope.body_s3_key)
    assert stored["Body"].read() == MHM.encode()


def test_base64_encoded_body_is_decoded(aws_receiver: Receiver) -> None:
    event = _post(Flavor.EVERACTIVE_DS_SENSOR_READING, ENVIRONMENTAL, base64_encoded=True)
    assert aws_receiver.invoke(event)["statusCode"] == 202
    [(envelope, _)] = aws_receiver.queued()
    assert envelope.body == ENVIRONMENTAL


def test_signature_covers_the_stage_prefix_the_sender_addressed(aws_receiver: Receiver) -> None:
    # Given an API on a named stage: the sender signs /prod/webhooks/..., the route is /webhooks/...
    path = ROUTES[Flavor.EVERACTIVE_V2020_STEAM_TRAP]
    raw = STEAM_TRAP.encode()
    headers = signed_v2020_headers(raw, key_id=KEY_ID, secret=SIGNING_KEY, path=f"/prod{path}")
    event = http_api_event(path=path, body=raw, headers=headers, stage="prod")
    # Then it is accepted
    assert aws_receiver.invoke(event)["statusCode"] == 202


# --- behind a custom domain -----------------------------------------------------------------

CUSTOM_DOMAIN = "webhooks.example.com"
BASE_PATH = "sensorhook"  # the API mapping's key: https://webhooks.example.com/sensorhook/...


def _through_custom_domain(flavor: Flavor, body: str) -> dict[str, Any]:
    """A delivery to https://webhooks.example.com/sensorhook/<route>, as API Gateway hands it
    over: route key without the base path, rawPath and http.path with it, stage `$default`."""
    raw = body.encode()
    route = ROUTES[flavor]
    headers = {"content-type": "application/json"}
    if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP:
        headers = signed_v2020_headers(
            raw, key_id=KEY_ID, secret=SIGNING_KEY, path=f"/{BASE_PATH}{route}", host=CUSTOM_DOMAIN
        )
    elif flavor is Flavor.EFENTO_MEASUREMENTS:
        headers |= EFENTO_HEADERS
    else:
        headers |= DS_HEADERS
    return http_api_event(
        path=route, body=raw, headers=headers, base_path=BASE_PATH, domain=CUSTOM_DOMAIN
    )


@pytest.mark.parametrize(
    ("flavor", "body"),
    [
        (Flavor.EVERACTIVE_DS_SENSOR_READING, ENVIRONMENTAL),
        (Flavor.EVERACTIVE_DS_GATEWAY_STATUS, GATEWAY_V3),
        (Flavor.EFENTO_MEASUREMENTS, EFENTO),
        (Flavor.EVERACTIVE_V2020_STEAM_TRAP, STEAM_TRAP),
    ],
)
def test_a_custom_domain_mapping_with_a_base_path_reaches_each_flavor(
    aws_receiver: Receiver, flavor: Flavor, body: str
) -> None:
    # Given a delivery through a custom domain whose API mapping has a base path
    event = _through_custom_domain(flavor, body)
    assert event["rawPath"] == f"/{BASE_PATH}{ROUTES[flavor]}"
    # When the receiver handles it
    response = aws_receiver.invoke(event)
    # Then the route key chose the flavor: accepted and queued as that flavor
    assert response["statusCode"] == 202, _body(response)
    [(envelope, _)] = aws_receiver.queued()
    assert envelope.flavor is flavor


def test_behind_a_custom_domain_the_signature_covers_the_base_path_the_sender_addressed(
    aws_receiver: Receiver,
) -> None:
    # Given a v2020-07 delivery signed over the path without the mapping's base path
    flavor = Flavor.EVERACTIVE_V2020_STEAM_TRAP
    event = _through_custom_domain(flavor, STEAM_TRAP)
    signed_without_base = signed_v2020_headers(
        STEAM_TRAP.encode(),
        key_id=KEY_ID,
        secret=SIGNING_KEY,
        path=ROUTES[flavor],
        host=CUSTOM_DOMAIN,
    )
    event["headers"] = {name.lower(): value for name, value in signed_without_base.items()}
    # Then it is refused: `(request-target)` is the path the client addressed, base path included
    assert aws_receiver.invoke(event)["statusCode"] == 401
    assert aws_receiver.queued() == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", ROUTES[Flavor.EFENTO_MEASUREMENTS], 405),
        ("DELETE", ROUTES[Flavor.EVERACTIVE_V2020_STEAM_TRAP], 405),
        ("POST", "/webhooks/efento/other", 404),
        ("POST", "/", 404),
    ],
)
def test_behind_a_custom_domain_the_default_route_answers_404_or_405(
    aws_receiver: Receiver, method: str, path: str, status: int
) -> None:
    event = http_api_event(
        path=path,
        method=method,
        body=EFENTO,
        headers={"content-type": "application/json", **EFENTO_HEADERS},
        route_key="$default",
        base_path=BASE_PATH,
        domain=CUSTOM_DOMAIN,
    )
    assert aws_receiver.invoke(event)["statusCode"] == status
    assert aws_receiver.queued() == []


def test_the_route_key_not_the_path_chooses_the_flavor(aws_receiver: Receiver) -> None:
    # Given an Efento delivery whose path (behind some mapping) ends like another flavor's route
    event = _post(Flavor.EFENTO_MEASUREMENTS, EFENTO)
    event["rawPath"] = event["requestContext"]["http"]["path"] = (
        "/efento" + ROUTES[Flavor.EVERACTIVE_DS_SENSOR_READING]
    )
    # Then API Gateway's route decides: it is accepted as Efento, with Efento's headers
    assert aws_receiver.invoke(event)["statusCode"] == 202
    [(envelope, _)] = aws_receiver.queued()
    assert envelope.flavor is Flavor.EFENTO_MEASUREMENTS


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json; charset=utf-8", "Application/JSON", "application/vnd.efento+json"],
)
def test_json_content_types_and_a_missing_one_are_accepted(
    aws_receiver: Receiver, content_type: str | None
) -> None:
    event = _post(Flavor.EFENTO_MEASUREMENTS, EFENTO)
    event["headers"].pop("content-type")
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    assert aws_receiver.invoke(event)["statusCode"] == 202


def test_previous_headers_are_accepted_during_a_rotation(aws_receiver: Receiver) -> None:
    # Given the DS secret rotated with an overlap
    aws_receiver.secrets.put_secret_value(
        SecretId=aws_receiver.secret_arns["DS_HEADER_SECRET_ARN"],
        SecretString=json.dumps(
            {
                "headers": {"X-Api-Key": "rotated"},
                "previous_headers": DS_HEADERS,
                "previous_valid_until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            }
        ),
    )
    # Then the old and the new header are both accepted
    old = aws_receiver.invoke(_post(Flavor.EVERACTIVE_DS_SENSOR_READING, MHM))
    new = aws_receiver.invoke(
        _post(Flavor.EVERACTIVE_DS_SENSOR_READING, MHM, {"X-Api-Key": "rotated"})
    )
    assert (old["statusCode"], new["statusCode"]) == (202, 202)


def test_the_stacks_secret_document_with_a_key_written_into_it_verifies(
    aws_receiver: Receiver,
) -> None:
    # Given the signing secret as the stack creates it (a generated `placeholder` beside the key
    # sets), with the reconciler's key for the subscription written into it
    _put_secret(
        aws_receiver,
        "V2020_SIGNING_SECRET_ARN",
        {"keys": {KEY_ID: SIGNING_KEY}, "previous_keys": {}, "placeholder": "g3n3rat3d"},
    )
    # When a request signed with that key arrives
    response = aws_receiver.invoke(_signed_post(KEY_ID, SIGNING_KEY))
    # Then it is accepted: the placeholder is not a reason to refuse the document
    assert response["statusCode"] == 202


def test_a_key_added_after_the_secret_was_cached_is_accepted_at_once(
    aws_receiver: Receiver,
) -> None:
    # Given a warm receiver that has read (and cached) the signing secret
    assert aws_receiver.invoke(_signed_post(KEY_ID, SIGNING_KEY))["statusCode"] == 202
    # When a new subscription's key is added and its first delivery arrives within the cache age
    _put_secret(
        aws_receiver,
        "V2020_SIGNING_SECRET_ARN",
        {"keys": {KEY_ID: SIGNING_KEY, "subscription-id-2": "new-subscription-secret"}},
    )
    response = aws_receiver.invoke(_signed_post("subscription-id-2", "new-subscription-secret"))
    # Then the unknown keyId made the receiver read the secret afresh, and it is accepted
    assert response["statusCode"] == 202
    [(envelope, _)] = aws_receiver.queued()[1:]
    assert envelope.auth_key_id == "subscription-id-2"


def test_unknown_key_ids_force_at_most_one_fresh_read_per_ten_seconds(
    aws_receiver: Receiver, secret_fetches: list[str]
) -> None:
    # Given requests signed with keyIds the secret does not hold, one right after the other
    first = aws_receiver.invoke(_signed_post("made-up-1", "guess"))
    second = aws_receiver.invoke(_signed_post("made-up-2", "guess"))
    # Then both are 401, and Secrets Manager was read twice only: the cold read and one fresh
    # read for the first unknown keyId; the second is answered from the cache
    assert (first["statusCode"], second["statusCode"]) == (401, 401)
    assert secret_fetches == [aws_receiver.secret_arns["V2020_SIGNING_SECRET_ARN"]] * 2


# --- 4xx ------------------------------------------------------------------------------------


def test_unknown_route_is_404(aws_receiver: Receiver) -> None:
    event = http_api_event(path="/webhooks/unknown", body=MHM, route_key="$default")
    response = aws_receiver.invoke(event)
    assert response["statusCode"] == 404
    assert aws_receiver.queued() == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_other_method_on_a_webhook_route_is_405(aws_receiver: Receiver, method: str) -> None:
    path = ROUTES[Flavor.EFENTO_MEASUREMENTS]
    event = http_api_event(path=path, method=method, route_key="$default", headers=EFENTO_HEADERS)
    response = aws_receiver.invoke(event)
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "POST"


def test_declared_length_over_the_limit_is_413_before_authentication(
    aws_receiver: Receiver,
) -> None:
    # Given an unauthenticated request announcing a body over the limit
    event = http_api_event(
        path=ROUTES[Flavor.EFENTO_MEASUREMENTS],
        body="{}",
        headers={"content-type": "application/json", "content-length": str(MAX_BODY_BYTES + 1)},
    )
    # Then it is refused for size, without reading further
    assert aws_receiver.invoke(event)["statusCode"] == 413


def test_actual_body_over_the_limit_is_413(aws_receiver: Receiver) -> None:
    # Given an authentic request whose body exceeds the limit, with a Content-Length that lies
    big = json.dumps([json.loads(MHM)] * 20)
    assert len(big) > MAX_BODY_BYTES
    event = _post(Flavor.EVERACTIVE_DS_SENSOR_READING, big, {"content-length": "10"})
    assert aws_receiver.invoke(event)["statusCode"] == 413
    assert aws_receiver.queued() == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415(aws_receiver: Receiver, content_type: str) -> None:
    event = _post(Flavor.EVERACTIVE_DS_SENSOR_READING, MHM, {"content-type": content_type})
    assert aws_receiver.invoke(event)["statusCode"] == 415


@pytest.mark.parametrize(
    ("flavor", "headers"),
    [
        (Flavor.EVERACTIVE_DS_SENSOR_READING, {"X-Api-Key": "wrong"}),
        (Flavor.EVERACTIVE_DS_GATEWAY_STATUS, {"X-Api-Key": "ds-key-12"}),
        (Flavor.EFENTO_MEASUREMENTS, {"X-Site": "plant-2"}),
        (Flavor.EFENTO_MEASUREMENTS, {"X-Efento-Token": DS_HEADERS["X-Api-Key"]}),
        (Flavor.EVERACTIVE_V2020_STEAM_TRAP, {"content-type": "application/json"}),
    ],
)
def test_unauthenticated_request_is_401_and_not_queued(
    aws_receiver: Receiver, flavor: Flavor, headers: dict[str, str]
) -> None:
    response = aws_receiver.invoke(_post(flavor, MHM, headers))
    assert response["statusCode"] == 401
    assert _body(response) == {"message": "unauthorized"}
    assert aws_receiver.queued() == []


def test_ds_headers_do_not_open_the_efento_route(aws_receiver: Receiver) -> None:
    # Given the Efento route (its route key and path) with the Data Services headers
    event = _post(Flavor.EFENTO_MEASUREMENTS, EFENTO, DS_HEADERS)
    for name in EFENTO_HEADERS:
        event["headers"].pop(name.lower())
    assert aws_receiver.invoke(event)["statusCode"] == 401


def test_a_signing_secret_without_keys_yet_is_401_not_503(aws_receiver: Receiver) -> None:
    # Given the signing secret as the stack creates it, before any subscription exists
    _put_secret(
        aws_receiver,
        "V2020_SIGNING_SECRET_ARN",
        {"keys": {}, "previous_keys": {}, "placeholder": "g3n3rat3d"},
    )
    # When a signed request arrives
    response = aws_receiver.invoke(_signed_post(KEY_ID, SIGNING_KEY))
    # Then its keyId is unknown: unauthenticated, not a fault of ours
    assert response["statusCode"] == 401


def test_tampered_signed_body_is_401(aws_receiver: Receiver) -> None:
    raw = STEAM_TRAP.encode()
    headers = signed_v2020_headers(
        raw, key_id=KEY_ID, secret=SIGNING_KEY, path=ROUTES[Flavor.EVERACTIVE_V2020_STEAM_TRAP]
    )
    tampered = raw.replace(b"Good", b"Gold")
    event = http_api_event(
        path=ROUTES[Flavor.EVERACTIVE_V2020_STEAM_TRAP], body=tampered, headers=headers
    )
    assert aws_receiver.invoke(event)["statusCode"] == 401


def test_unauthenticated_malformed_json_is_401_not_400(aws_receiver: Receiver) -> None:
    # Authentication comes first: an unauthenticated caller learns nothing about parsing
    event = _post(Flavor.EFENTO_MEASUREMENTS, "{not json", {"X-Site": "nope"})
    assert aws_receiver.invoke(event)["statusCode"] == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "body is not valid UTF-8 JSON"),
        ("", "body is not valid UTF-8 JSON"),
        (b"\xff\xfe{}", "body is not valid UTF-8"),
        ("42", "body must be a JSON object or array"),
        ('"text"', "body must be a JSON object or array"),
        ("[" * 100_00 + "]" * 100_00, "body is nested too deeply"),
        ('{"a": "\\ud800"}', "body contains an invalid Unicode escape"),
    ],
)
def test_authentic_malformed_json_is_400_with_a_plain_message(
    aws_receiver: Receiver, body: str | bytes, message: str
) -> None:
    response = aws_receiver.invoke(_post(Flavor.EFENTO_MEASUREMENTS, body))
    assert response["statusCode"] == 400
    assert _body(response) == {"message": message}
    assert aws_receiver.queued() == []


def test_authentic_bodies_nested_up_to_the_parsers_limit_are_202_or_400(
    aws_receiver: Receiver,
) -> None:
    # Given authentic array bodies of some nesting depth
    def status(depth: int) -> int:
        response = aws_receiver.invoke(_post(Flavor.EFENTO_MEASUREMENTS, "[" * depth + "]" * depth))
        refused = (400, {"message": "body is nested too deeply"})
        assert response["statusCode"] == 202 or (response["statusCode"], _body(response)) == refused
        return int(response["statusCode"])

    # When the shallowest depth the receiver refuses is searched for (parsing succeeds a few
    # levels deeper than hashing the canonical body for the event id does)
    accepted, refused = 1, 2_000
    assert (status(accepted), status(refused)) == (202, 400)
    while refused - accepted > 1:
        middle = (accepted + refused) // 2
        accepted, refused = (middle, refused) if status(middle) == 202 else (accepted, middle)
    # Then every depth probed, the shallowest refused among them, was a 202 or a plain 400
    assert 500 < refused <= 1_000


# Bytes that are not UTF-8 text, each inside an otherwise authentic-looking JSON body: an
# invalid byte, Latin-1 text, an overlong encoding, a UTF-8-encoded surrogate (CESU-8), a
# truncated sequence, and a JSON escape that decodes to a lone surrogate.
NOT_UTF8 = {
    "invalid byte": (b'{"note": "\xff"}', "body is not valid UTF-8"),
    "latin-1": (b'{"note": "caf\xe9"}', "body is not valid UTF-8"),
    "overlong": (b'{"note": "\xc0\xaf"}', "body is not valid UTF-8"),
    "encoded surrogate": (b'{"note": "\xed\xa0\x80"}', "body is not valid UTF-8"),
    "truncated": (b'{"note": "\xe2\x82"}', "body is not valid UTF-8"),
    "lone surrogate escape": (b'{"note": "\\udc80"}', "body contains an invalid Unicode escape"),
}


@pytest.mark.parametrize("flavor", list(Flavor))
@pytest.mark.parametrize("case", list(NOT_UTF8))
def test_a_body_that_is_not_utf8_is_400_on_every_route_and_nothing_is_kept(
    aws_receiver: Receiver, flavor: Flavor, case: str
) -> None:
    # Given an authentic delivery (signed over exactly these bytes for v2020-07) whose body is
    # JSON-shaped but not UTF-8 text, in a field no dedupe key reads
    base = json.loads({Flavor.EVERACTIVE_V2020_STEAM_TRAP: STEAM_TRAP}.get(flavor, EFENTO))
    good = json.dumps({**base, "note": "x"}).encode()
    bad_note, message = NOT_UTF8[case]
    raw = good.replace(b'"note": "x"', bad_note[1:-1])
    assert raw != good
    event = _post(flavor, raw)
    # When the receiver handles it
    response = aws_receiver.invoke(event)
    # Then its one fate is a 400 that says why; nothing reached the queue or the inbox
    assert (response["statusCode"], _body(response)) == (400, {"message": message})
    assert aws_receiver.queued() == []
    assert "Contents" not in aws_receiver.s3.list_objects_v2(Bucket=aws_receiver.bucket)


def test_undecodable_base64_body_is_400(aws_receiver: Receiver) -> None:
    event = _post(Flavor.EFENTO_MEASUREMENTS, EFENTO)
    event["isBase64Encoded"], event["body"] = True, "abc"
    response = aws_receiver.invoke(event)
    assert response["statusCode"] == 400
    assert _body(response) == {"message": "body is not valid base64"}


# --- 503 ------------------------------------------------------------------------------------


def test_queue_failure_is_503_so_the_provider_retries(aws_receiver: Receiver) -> None:
    # Given the ingest queue is gone
    aws_receiver.sqs.delete_queue(QueueUrl=aws_receiver.queue_url)
    # Then an authentic delivery is answered 503, not 202
    response = aws_receiver.invoke(_post(Flavor.EVERACTIVE_DS_SENSOR_READING, ENVIRONMENTAL))
    assert response["statusCode"] == 503
    assert "message" in _body(response)


def test_claim_check_failure_is_503(aws_receiver: Receiver) -> None:
    aws_receiver.s3.delete_bucket(Bucket=aws_receiver.bucket)
    response = aws_receiver.invoke(_post(Flavor.EVERACTIVE_DS_SENSOR_READING, MHM))
    assert response["statusCode"] == 503
    assert aws_receiver.queued() == []


def test_a_header_secret_without_headers_is_503_not_open(aws_receiver: Receiver) -> None:
    # Given the Efento header secret as the stack creates it: no header configured yet
    _put_secret(
        aws_receiver,
        "EFENTO_HEADER_SECRET_ARN",
        {"headers": {}, "previous_headers": {}, "placeholder": "g3n3rat3d"},
    )
    # When a delivery arrives
    response = aws_receiver.invoke(_post(Flavor.EFENTO_MEASUREMENTS, EFENTO))
    # Then it is refused as a misconfiguration (an empty set would let anyone in), and retried
    assert response["statusCode"] == 503
    assert aws_receiver.queued() == []


def test_unreadable_secret_is_503_not_401(aws_receiver: Receiver) -> None:
    # Given the signing secret was deleted: the caller is not at fault, a retry may succeed
    aws_receiver.secrets.delete_secret(
        SecretId=aws_receiver.secret_arns["V2020_SIGNING_SECRET_ARN"],
        ForceDeleteWithoutRecovery=True,
    )
    response = aws_receiver.invoke(_post(Flavor.EVERACTIVE_V2020_STEAM_TRAP, STEAM_TRAP))
    assert response["statusCode"] == 503


# --- nothing crashes ------------------------------------------------------------------------


def _random_request(rng: random.Random) -> dict[str, Any]:
    """A request built from realistic pieces, then broken in one or more random ways."""
    flavor = rng.choice(list(Flavor))
    body: bytes = rng.choice([MHM, EFENTO, STEAM_TRAP, ENVIRONMENTAL]).encode()
    mutation = rng.randrange(8)
    if mutation == 0:
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    elif mutation == 1:
        body = body[: rng.randrange(len(body))]
    elif mutation == 2:
        position = rng.randrange(len(body))
        body = body[:position] + bytes([rng.randrange(256)]) + body[position + 1 :]
    elif mutation == 3:
        body = rng.choice([b"null", b"1e999999", b"9" * 5000, b'"\\udfff"', b"[]", b"{}"])
    event = _post(flavor, body)
    headers: dict[str, str] = event["headers"]
    for _ in range(rng.randrange(3)):
        name = rng.choice([*headers, "signature", "date", "digest", "content-length", "x-api-key"])
        headers[name] = rng.choice(
            [
                "",
                "garbage",
                'keyId="x",algorithm="hmac-sha256",headers="date",signature="@@"',
                "SHA-256=!!!",
                "Mon, 32 Foo 9999 99:99:99 ZZZ",
                "-1",
                "99999999999999999999999",
                "é" * rng.randrange(1, 600),
                headers.get(name, "")[::-1],
            ]
        )
    if rng.random() < 0.1:
        event["requestContext"]["http"]["method"] = rng.choice(["GET", "PATCH", "post"])
    if rng.random() < 0.1:
        event["rawPath"] = rng.choice(["/", "//", "/webhooks/efento", "/%00", ""])
        event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    if rng.random() < 0.05:
        event["routeKey"] = rng.choice(["", "POST /", "GET /webhooks/efento/measurements", "$x"])
    if rng.random() < 0.05:
        event["rawPath"] = f"/{rng.choice(['a', 'sensorhook', '%20'])}{event['rawPath']}"
    return event


def test_a_few_hundred_broken_requests_never_yield_a_5xx(aws_receiver: Receiver) -> None:
    rng = random.Random(20240501)  # noqa: S311 - a reproducible fuzz, not cryptography
    statuses = {aws_receiver.invoke(_random_request(rng))["statusCode"] for _ in range(300)}
    assert all(status < 500 for status in statuses)
    assert {202, 400, 401, 404, 405, 415} <= statuses  # the fuzz reaches every stage


@pytest.mark.slow
def test_ten_thousand_broken_requests_never_yield_a_5xx(aws_receiver: Receiver) -> None:
    # Given ten thousand requests built from real bodies and broken at random (another seed)
    rng = random.Random(20261129)  # noqa: S311 - a reproducible fuzz, not cryptography
    statuses: Counter[int] = Counter()
    for _ in range(10_000):
        statuses[aws_receiver.invoke(_random_request(rng))["statusCode"]] += 1
    # Then none got a 5xx (the queue never refused here, so not even a 503), and every stage
    # of the receiver was reached
    assert sum(statuses.values()) == 10_000
    assert [status for status in statuses if status >= 500] == [], statuses
    assert {202, 400, 401, 404, 405, 413, 415} <= set(statuses), statuses


# What the receiver prints for an accepted delivery: at the default INFO, only its metrics (the
# access log and the raw archive keep the trail); at DEBUG, the `webhook accepted` line with the
# delivery's event id (docs/cost.md, "Logs").


@pytest.fixture
def printed_json(
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[[], list[dict[str, object]]]]:
    """What the receiver's logger and metrics print, as JSON lines (the logger keeps the
    stream it was created with, so it is pointed at a buffer; metrics print to stdout)."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    level = logger.log_level
    capsys.readouterr()

    def lines() -> list[dict[str, object]]:
        text = buffer.getvalue() + capsys.readouterr().out
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    try:
        yield lines
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
        logger.setLevel(level)


def test_an_accepted_delivery_prints_only_its_metrics_at_info(
    aws_receiver: Receiver, printed_json: Callable[[], list[dict[str, object]]]
) -> None:
    logger.setLevel("INFO")

    response = aws_receiver.invoke(_post(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, GATEWAY_V3))

    assert response["statusCode"] == 202
    lines = printed_json()
    assert [line.get("WebhookAccepted") for line in lines] == [[1.0]]
    assert all("message" not in line for line in lines)


def test_debug_prints_the_accepted_line_with_the_event_id(
    aws_receiver: Receiver, printed_json: Callable[[], list[dict[str, object]]]
) -> None:
    logger.setLevel("DEBUG")

    response = aws_receiver.invoke(_post(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, GATEWAY_V3))

    event_id = json.loads(response["body"])["eventId"]
    accepted = [line for line in printed_json() if line.get("message") == "webhook accepted"]
    assert [line["event_id"] for line in accepted] == [event_id]
