"""Reading claim-checked bodies: an error on one body fails only its own record, and a body that
is gone is told apart from one the inbox refused (AWS's answers, played by a botocore hook)."""

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.dal.aws_clients import s3_client
from sensorhook.handlers import processor
from tests.fixtures.loader import sample_text
from tests.integration.conftest import BUCKET, Aws
from tests.integration.test_processor import (
    GATEWAY_V3,
    MHM,
    envelope,
    mhm_envelope,
    reading_count,
    run,
)

# The error S3 answers a GetObject of these keys with: (HTTP status, error code)
REFUSALS = {
    "inbox/2022-06-28/denied.json": (403, "AccessDenied"),
    "inbox/2022-06-28/throttled.json": (503, "SlowDown"),
    "inbox/2022-06-28/failing.json": (500, "InternalError"),
}


@pytest.fixture(autouse=True)
def fresh_processor(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    yield
    processor.delivery_processor.cache_clear()


@pytest.fixture
def refusing_inbox(aws: Aws) -> Iterator[None]:
    def refuse(params: dict[str, Any], **_: Any) -> None:
        refusal = REFUSALS.get(params.get("Key", ""))
        if refusal is not None:
            status, code = refusal
            error = {
                "Error": {"Code": code, "Message": code},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
            raise ClientError(error, "GetObject")  # type: ignore[arg-type]

    get_object = "before-parameter-build.s3.GetObject"
    s3_client().meta.events.register(get_object, refuse, unique_id="refuse")
    yield
    s3_client().meta.events.unregister(get_object, unique_id="refuse")


def claim_checked(delivery: IngestEnvelope, key: str) -> IngestEnvelope:
    return delivery.model_copy(update={"body": None, "body_s3_key": key})


def test_an_unreadable_body_fails_only_its_own_record(
    aws: Aws, refusing_inbox: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a batch of claim-checked deliveries: one readable, three the inbox refuses or fails
    # (denied, throttled, a 5xx) and one whose body is gone
    readable_key = "inbox/2022-06-28/readable.json"
    aws.s3.put_object(Bucket=BUCKET, Key=readable_key, Body=sample_text(MHM).encode())
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))
    messages = [
        ("m-readable", claim_checked(mhm_envelope(), readable_key)),
        *((f"m-{key}", claim_checked(status, key)) for key in REFUSALS),
        ("m-gone", claim_checked(status, "inbox/2022-06-28/gone.json")),
    ]

    # When the batch is processed
    response = run(*messages)

    # Then only the unreadable records are reported failed (SQS retries each alone), and the
    # readable delivery is archived and stored
    assert response == {
        "batchItemFailures": [{"itemIdentifier": m} for m, _ in messages if m != "m-readable"]
    }
    assert reading_count(aws) == 16
    assert len(aws.object_keys("raw/")) == 1
    # and the log tells the body that is gone from the ones refused or failed
    messages_logged = [record.getMessage() for record in caplog.records]
    assert messages_logged.count("claim-checked body missing") == 1
    assert messages_logged.count("claim-checked body unreadable; the record is retried") == 3
    errors = " ".join(str(getattr(record, "error", "")) for record in caplog.records)
    for _, code in REFUSALS.values():
        assert code in errors
