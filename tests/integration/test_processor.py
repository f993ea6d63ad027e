"""The processor Lambda on moto: real samples in, readings/state/gateways/archive/events out."""

import gzip
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.core.reading import Reading
from sensorhook.dal.archive import Archive, quarantine_key
from sensorhook.dal.aws_clients import dynamodb_client
from sensorhook.dal.gateways_store import GatewaysStore
from sensorhook.dal.inbox import Inbox
from sensorhook.dal.queue import IngestQueue
from sensorhook.dal.readings_store import ReadingsStore, iso_ms, readings_in
from sensorhook.dal.sensor_state_store import SensorStateStore
from sensorhook.handlers import processor
from sensorhook.logic.replay import replay_quarantine
from sensorhook.providers.registry import normalize
from sensorhook.tools import replay_quarantine as replay_command
from tests.builders import lambda_context
from tests.fixtures.loader import fixture_text, sample_json, sample_text
from tests.integration.conftest import BUCKET, TABLES, Aws

MHM = "everactive-ds/sensor-reading-mhm.json"
GATEWAY_V3 = "everactive-ds/gateway-status-v3.json"
MAC = "01:01:01:ff:fe:00:0c:fe"
RECEIVED_AT = datetime(2022, 6, 28, 20, 20, 3, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_processor(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    yield
    processor.delivery_processor.cache_clear()


def envelope(
    flavor: Flavor, body: str, *, received_at: datetime = RECEIVED_AT, **fields: Any
) -> IngestEnvelope:
    return IngestEnvelope(
        flavor=flavor,
        event_id=event_id_for(flavor, json.loads(body)),
        received_at=received_at,
        request_id=f"req-{received_at:%H%M%S}",
        body=body,
        **fields,
    )


def mhm_envelope(**changes: Any) -> IngestEnvelope:
    """The real MHM reading, optionally with top-level fields changed (a later/earlier one)."""
    body = sample_json(MHM)
    body.update(changes)
    text = json.dumps(body) if changes else sample_text(MHM)
    return envelope(Flavor.EVERACTIVE_DS_SENSOR_READING, text)


def sqs_event(*messages: tuple[str, IngestEnvelope | str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body if isinstance(body, str) else body.model_dump_json(exclude_none=True),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sensorhook-ingest",
                "awsRegion": "us-east-1",
            }
            for message_id, body in messages
        ]
    }


def run(
    *messages: tuple[str, IngestEnvelope | str], context: LambdaContext | None = None
) -> dict[str, Any]:
    return dict(processor.handler(sqs_event(*messages), context or lambda_context()))


def mhm_measured_at(measured_at: datetime, *, received_at: datetime) -> IngestEnvelope:
    """The real MHM reading as if measured at `measured_at` and received at `received_at`."""
    body = sample_json(MHM)
    body.update(
        readingDate=measured_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        timestamp=int(measured_at.timestamp()),
    )
    return envelope(Flavor.EVERACTIVE_DS_SENSOR_READING, json.dumps(body), received_at=received_at)


def readings_store() -> ReadingsStore:
    return ReadingsStore(TABLES["READINGS_TABLE"][0])


def item_count(aws: Aws, variable: str) -> int:
    count: int = aws.dynamodb.scan(TableName=TABLES[variable][0], Select="COUNT")["Count"]
    return count


def writes_readings(params: dict[str, Any]) -> bool:
    """Whether a botocore before-call of UpdateItem writes the readings table."""
    return bool(json.loads(params["body"])["TableName"] == TABLES["READINGS_TABLE"][0])


def reading_count(aws: Aws) -> int:
    """Readings stored, each of every packed item (one item holds a sensor's instant)."""
    items = aws.dynamodb.scan(TableName=TABLES["READINGS_TABLE"][0])["Items"]
    return sum(1 for _ in readings_in(items))


def test_mhm_sample_lands_as_readings_queryable_by_time_range(aws: Aws) -> None:
    # Given the real machine-health reading, measured 2022-06-28T20:19:51Z
    delivery = mhm_envelope()

    # When the processor takes it off the queue
    response = run(("m-1", delivery))

    # Then every reading is stored and a time-range query around the instant returns them
    assert response == {"batchItemFailures": []}
    at = datetime(2022, 6, 28, 20, 19, 51, tzinfo=UTC)
    readings = readings_store().query_range("everactive", MAC, at - timedelta(minutes=1), at)
    assert len(readings) == 16 == reading_count(aws)
    by_metric = {(r.metric, r.channel): r for r in readings}
    assert by_metric[("temperature", "0")].value == pytest.approx(332.3125 - 273.15)
    assert by_metric[("velocity_overall", "axial")].value == pytest.approx(4.113861)
    assert {r.measured_at for r in readings} == {at}
    assert {r.event_id for r in readings} == {delivery.event_id}
    assert {r.gateway_id for r in readings} == {"SYN0001"}
    # and a range that ends a second before the reading finds nothing
    assert (
        readings_store().query_range(
            "everactive", MAC, at - timedelta(hours=1), at - timedelta(seconds=1)
        )
        == []
    )


def test_readings_expire_reading_ttl_days_after_they_were_received(aws: Aws) -> None:
    # (changed on purpose: the TTL counted from the device time before, see test_lake_after_ttl)
    run(("m-1", mhm_envelope()))

    items = aws.dynamodb.scan(TableName=TABLES["READINGS_TABLE"][0])["Items"]

    received = int(RECEIVED_AT.timestamp())
    assert {item["expires_at"]["N"] for item in items} == {str(received + 90 * 86_400)}


def test_sensor_state_keeps_the_newest_reading_and_an_older_one_does_not_overwrite_it(
    aws: Aws,
) -> None:
    state = SensorStateStore(TABLES["SENSOR_STATE_TABLE"][0])
    # Given the real reading at 20:19:51 has been processed
    run(("m-1", mhm_envelope()))
    assert state.get("everactive", MAC, "temperature", "0").value == pytest.approx(59.1625)  # type: ignore[union-attr]

    # When an older reading of the same sensor (20:09:51, other temperatures) arrives late
    older = mhm_envelope(
        readingDate="2022-06-28T20:09:51Z",
        timestamp=1656447591 - 600,
        temperatureMeasurements=[
            {"sensorIndex": 0, "value": 300.15},
            {"sensorIndex": 1, "value": 301.15},
        ],
    )
    assert run(("m-2", older)) == {"batchItemFailures": []}

    # Then the older reading is stored as history, but the state still holds the newer one
    assert reading_count(aws) == 32
    current = state.get("everactive", MAC, "temperature", "0")
    assert current is not None
    assert current.value == pytest.approx(59.1625)
    assert current.measured_at == datetime(2022, 6, 28, 20, 19, 51, tzinfo=UTC)
    # (changed on purpose: one state item per sensor, one entry per metric and channel)
    assert item_count(aws, "SENSOR_STATE_TABLE") == 1
    assert len(state.read("everactive", MAC).channels) == 16

    # And a newer reading does replace it
    newer = mhm_envelope(
        readingDate="2022-06-28T20:29:51Z",
        timestamp=1656447591 + 600,
        temperatureMeasurements=[
            {"sensorIndex": 0, "value": 310.15},
            {"sensorIndex": 1, "value": 311.15},
        ],
    )
    run(("m-3", newer))
    assert state.get("everactive", MAC, "temperature", "0").value == pytest.approx(37.0)  # type: ignore[union-attr]


def test_gateway_status_lands_and_readings_advance_last_reading_at(aws: Aws) -> None:
    gateways = GatewaysStore(TABLES["GATEWAYS_TABLE"][0])
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))

    response = run(("g-1", status), ("m-1", mhm_envelope()))

    assert response == {"batchItemFailures": []}
    item = gateways.get("everactive", "SYN0001")
    assert item is not None
    assert item["reported_at"] == "2022-06-28T19:44:37.000Z"
    assert item["schema"] == "gateway_status_v3.schema.json"
    assert item["online"] is False
    assert item["summary"]["mqtt_queue_size"] == 88
    # the MHM sample was measured at 20:19:51 and received at 20:20:03: the earlier counts
    assert item["last_reading_at"] == "2022-06-28T20:19:51.000Z"


def test_last_reading_at_is_a_moment_the_gateway_was_surely_in_contact(
    aws: Aws,
) -> None:
    gateways = GatewaysStore(TABLES["GATEWAYS_TABLE"][0])

    def last_reading_at() -> str:
        item = gateways.get("everactive", "SYN0001")
        assert item is not None
        return str(item["last_reading_at"])

    # Given a reading whose sensor clock runs a day ahead, received at 20:20:03
    future = mhm_measured_at(RECEIVED_AT + timedelta(days=1), received_at=RECEIVED_AT)

    # When it is processed
    run(("m-1", future))

    # Then the gateway's last contact is the receipt, not a day ahead (it would look online)
    assert last_reading_at() == "2022-06-28T20:20:03.000Z"

    # When the provider delivers at 23:00 a backlog measured at 21:00 (the gateway may have
    # gone quiet since: a late delivery is not a contact)
    delivered = RECEIVED_AT.replace(hour=23, minute=0, second=0)
    measured = RECEIVED_AT.replace(hour=21, minute=0, second=0)
    backlog = mhm_measured_at(measured, received_at=delivered)
    run(("m-2", backlog))

    # Then the gateway's last contact is the measurement, at 21:00
    assert last_reading_at() == "2022-06-28T21:00:00.000Z"

    # And a delivery of an older reading, processed late, never moves it back
    run(("m-3", mhm_measured_at(RECEIVED_AT.replace(hour=20, minute=30), received_at=delivered)))
    assert last_reading_at() == "2022-06-28T21:00:00.000Z"


def test_a_gateways_last_contact_is_written_once_a_minute(
    aws: Aws,
) -> None:
    gateways_table = TABLES["GATEWAYS_TABLE"][0]
    writes: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == gateways_table:
            writes.append(params["ExpressionAttributeValues"][":at"]["S"])

    client = dynamodb_client()
    client.meta.events.register("provide-client-params.dynamodb.UpdateItem", count)
    try:
        # Given readings relayed by one gateway, measured 0, 20, 40, 60 and 70 s after the first
        # (GATEWAY_CONTACT_EVERY_SECONDS: 60 by default)
        for n, offset_s in enumerate((0, 20, 40, 60, 70)):
            measured = RECEIVED_AT + timedelta(seconds=offset_s)
            # When each is processed, in its own batch
            run((f"m-{n}", mhm_measured_at(measured, received_at=measured)))
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", count)

    # Then the contact was written at the first and a minute later, and holds the latter
    assert writes == ["2022-06-28T20:20:03.000Z", "2022-06-28T20:21:03.000Z"]
    item = GatewaysStore(gateways_table).get("everactive", "SYN0001")
    assert item is not None and item["last_reading_at"] == "2022-06-28T20:21:03.000Z"


def test_a_gateways_last_contact_write_that_failed_is_made_again(aws: Aws) -> None:
    gateways = GatewaysStore(TABLES["GATEWAYS_TABLE"][0], contact_every=timedelta(minutes=1))
    real = gateways._client

    class Throttled:
        def update_item(self, **_: Any) -> Any:
            raise real.exceptions.ProvisionedThroughputExceededException(
                {"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem"
            )

    # Given a contact write that failed
    gateways._client = Throttled()
    with pytest.raises(real.exceptions.ProvisionedThroughputExceededException):
        gateways.advance_last_reading_at("everactive", "SYN0001", RECEIVED_AT)

    # Then the next contact within the minute is written, not taken as stored
    gateways._client = real
    assert gateways.advance_last_reading_at("everactive", "SYN0001", RECEIVED_AT)
    assert not gateways.advance_last_reading_at(
        "everactive", "SYN0001", RECEIVED_AT + timedelta(seconds=30)
    )


def test_a_gateways_contact_on_every_delivery_is_not_written_again_for_the_same_instant(
    aws: Aws,
) -> None:
    gateways = GatewaysStore(TABLES["GATEWAYS_TABLE"][0], contact_every=timedelta(0))
    writes: list[str] = []
    real = gateways._client

    class Counting:
        def update_item(self, **request: Any) -> Any:
            writes.append(request["ExpressionAttributeValues"][":at"]["S"])
            return real.update_item(**request)

    gateways._client = Counting()
    later = RECEIVED_AT + timedelta(seconds=1)
    for at in (RECEIVED_AT, RECEIVED_AT, later, RECEIVED_AT):
        gateways.advance_last_reading_at("everactive", "SYN0001", at)

    # every later instant is written (a write is billed moved or not: none for the same one)
    assert writes == [iso_ms(RECEIVED_AT), iso_ms(later)]


def test_an_older_gateway_status_does_not_replace_a_newer_one(aws: Aws) -> None:
    gateways = GatewaysStore(TABLES["GATEWAYS_TABLE"][0])
    newer = sample_json(GATEWAY_V3)
    older = {**newer, "timestamp": "2022-06-28T18:44:37Z"}
    older["Services"] = {**newer["Services"], "online": True}

    run(("g-1", envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, json.dumps(newer))))
    run(("g-2", envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, json.dumps(older))))

    item = gateways.get("everactive", "SYN0001")
    assert item is not None
    assert (item["reported_at"], item["online"]) == ("2022-06-28T19:44:37.000Z", False)


def test_every_delivery_is_archived_raw_and_a_retried_batch_overwrites_its_object(
    aws: Aws,
) -> None:
    # Given a batch with a sensor reading and a gateway status
    reading = mhm_envelope()
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))

    # When it is processed, then retried as the same batch
    run(("m-1", reading), ("g-1", status))
    run(("m-1", reading), ("g-1", status))

    # Then there is one object per flavor, partitioned by provider/flavor/date/hour
    reading_keys = aws.object_keys(
        "raw/provider=everactive/flavor=everactive-ds-sensor-reading/date=2022-06-28/hour=20/"
    )
    status_keys = aws.object_keys(
        "raw/provider=everactive/flavor=everactive-ds-gateway-status/date=2022-06-28/hour=20/"
    )
    assert len(reading_keys) == len(status_keys) == 1
    assert reading_keys[0].endswith(".jsonl.gz")
    # and it gunzips to the delivery: the envelope with the exact body received
    lines = gzip.decompress(aws.object_bytes(reading_keys[0])).decode().splitlines()
    assert [IngestEnvelope.model_validate_json(line) for line in lines] == [reading]
    assert json.loads(lines[0])["body"] == sample_text(MHM)


def test_a_claim_checked_body_is_fetched_archived_inline_and_processed(aws: Aws) -> None:
    # Given a delivery whose body the receiver left in the inbox
    inline = mhm_envelope()
    inbox_key = f"inbox/2022-06-28/{inline.event_id}.json"
    aws.s3.put_object(Bucket=BUCKET, Key=inbox_key, Body=sample_text(MHM).encode())
    claim_checked = inline.model_copy(update={"body": None, "body_s3_key": inbox_key})

    # When it is processed
    response = run(("m-1", claim_checked))

    # Then its readings are stored and the archive line carries the body inline
    assert response == {"batchItemFailures": []}
    assert reading_count(aws) == 16
    [key] = aws.object_keys("raw/provider=everactive/")
    line = json.loads(gzip.decompress(aws.object_bytes(key)))
    assert (line["body"], line["body_s3_key"]) == (sample_text(MHM), inbox_key)


def test_the_same_delivery_twice_in_one_batch_is_stored_and_published_once(aws: Aws) -> None:
    delivery = mhm_envelope()

    response = run(("m-1", delivery), ("m-2", delivery))

    assert response == {"batchItemFailures": []}
    assert reading_count(aws) == 16
    events = aws.published_events()
    assert [event["detail-type"] for event in events] == ["readings.received"]
    assert events[0]["detail"]["count"] == 16


def test_the_same_delivery_in_separate_batches_is_stored_and_published_once(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a delivery processed once
    run(("m-1", mhm_envelope()))
    assert len(aws.published_events()) == 1
    capsys.readouterr()

    # When the provider re-sends it with other whitespace and key order (same event id)
    resent = envelope(
        Flavor.EVERACTIVE_DS_SENSOR_READING,
        json.dumps(dict(reversed(list(sample_json(MHM).items()))), indent=4),
        received_at=RECEIVED_AT + timedelta(minutes=5),
    )
    assert resent.event_id == mhm_envelope().event_id
    response = run(("m-2", resent))

    # Then nothing new is stored or published: the readings keep the first receipt
    assert response == {"batchItemFailures": []}
    assert aws.published_events() == []
    readings = readings_store().query_range(
        "everactive", MAC, RECEIVED_AT - timedelta(hours=1), RECEIVED_AT
    )
    assert {r.received_at for r in readings} == {RECEIVED_AT}
    # and the skipped duplicate is counted, not the stored kind
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [metric.get("DuplicateDeliveriesSkipped") for metric in emf] == [[1.0]]
    assert all("DeliveriesStored" not in metric for metric in emf)


def test_the_same_delivery_twice_at_the_same_moment_is_stored_and_published_once(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first processing of a delivery held inside its readings write
    delivery = mhm_envelope()
    writing, release = threading.Event(), threading.Event()
    readings_writes = 0

    def hold_the_first_write(params: dict[str, Any], **_: Any) -> None:
        nonlocal readings_writes
        if not writes_readings(params):
            return
        readings_writes += 1
        if readings_writes == 1:
            writing.set()
            release.wait(timeout=10)

    dynamodb_client().meta.events.register("before-call.dynamodb.UpdateItem", hold_the_first_write)
    with ThreadPoolExecutor(max_workers=1) as first_environment:
        first = first_environment.submit(run, ("m-1", delivery), context=lambda_context())
        try:
            assert writing.wait(timeout=10)

            # When a second execution environment gets a copy of it (with another delivery)
            processor.delivery_processor.cache_clear()
            second_batch = BatchProcessor(EventType.SQS)
            monkeypatch.setattr(processor, "_batch_processor", second_batch)
            status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))
            second = run(("m-2", delivery), ("g-1", status), context=lambda_context())
        finally:
            release.set()
        first_response = first.result(timeout=10)

    # Then the copy is reported failed (in progress elsewhere) and was not written
    assert second == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert [type(error) for _, error, _ in second_batch.exceptions] == [
        IdempotencyAlreadyInProgressError
    ]
    assert first_response == {"batchItemFailures": []}
    assert readings_writes == 1

    # When SQS retries the copy after the first processing completed
    retried = run(("m-2", delivery), context=lambda_context())

    # Then it is skipped as a duplicate: stored once, published once
    assert retried == {"batchItemFailures": []}
    assert readings_writes == 1
    assert reading_count(aws) == 16
    assert [e["detail-type"] for e in aws.published_events()] == ["readings.received"]


def test_readings_received_event_carries_the_canonical_readings(aws: Aws) -> None:
    delivery = mhm_envelope()

    run(("m-1", delivery))

    [event] = aws.published_events()
    assert (event["source"], event["detail-type"]) == ("sensorhook", "readings.received")
    detail = event["detail"]
    assert (detail["provider"], detail["sensor_id"], detail["event_id"], detail["count"]) == (
        "everactive",
        MAC,
        delivery.event_id,
        16,
    )
    stored = readings_store().query_range(
        "everactive", MAC, RECEIVED_AT - timedelta(hours=1), RECEIVED_AT
    )
    assert sorted(detail["readings"], key=lambda r: (r["metric"], r["channel"])) == sorted(
        (r.model_dump(mode="json") for r in stored), key=lambda r: (r["metric"], r["channel"])
    )


def test_a_steam_trap_state_change_is_published(aws: Aws) -> None:
    change = envelope(
        Flavor.EVERACTIVE_V2020_STEAM_TRAP,
        fixture_text("everactive-v2020/steam-trap-state-change.json"),
    )

    run(("s-1", change))

    events = {event["detail-type"]: event["detail"] for event in aws.published_events()}
    assert set(events) == {"steam_trap.state_changed", "readings.received"}
    trap = events["steam_trap.state_changed"]
    assert (trap["event_id"], trap["end_state"], trap["end_condition"]) == (
        change.event_id,
        "Blowthrough",
        "Failure",
    )


def test_an_invalid_authentic_body_is_quarantined_with_its_error_and_a_metric(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an authentic sensor reading without its MAC address
    body = sample_json(MHM)
    del body["macAddress"]
    invalid = envelope(Flavor.EVERACTIVE_DS_SENSOR_READING, json.dumps(body))
    capsys.readouterr()

    # When it is processed
    response = run(("m-1", invalid))

    # Then it is acknowledged (not retried), nothing is stored, and it waits in quarantine
    assert response == {"batchItemFailures": []}
    assert reading_count(aws) == 0
    document = json.loads(aws.object_bytes(quarantine_key(invalid)))
    assert quarantine_key(invalid).startswith("quarantine/provider=everactive/date=2022-06-28/")
    assert IngestEnvelope.model_validate(document["envelope"]) == invalid
    assert "macAddress" in document["error"]
    # and the QuarantinedPayloads metric was emitted
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [1.0] in [metric.get("QuarantinedPayloads") for metric in emf]
    # and the raw archive still has it
    assert len(aws.object_keys("raw/provider=everactive/")) == 1


@pytest.mark.parametrize(
    "case",
    ["efento error code beyond int32", "data services value beyond dynamodb"],
)
def test_an_authentic_value_no_store_can_hold_is_quarantined_not_retried(
    aws: Aws, case: str
) -> None:
    # Given an authentic delivery with a value the stores cannot hold: an Efento ERROR whose
    # error code is 2**40 (the lake's error_code is int32), or a Data Services temperature
    # of 1e200 (DynamoDB numbers stop below 1e126)
    if case.startswith("efento"):
        body = json.loads(fixture_text("efento/multi-channel-batch.json"))
        body["measurementsEvents"][0]["events"][0].update(status="ERROR", value=2**40)
        delivery = envelope(Flavor.EFENTO_MEASUREMENTS, json.dumps(body))
        field = "error_code"
    else:
        body = sample_json(MHM)
        body["temperatureMeasurements"][0]["value"] = 1e200
        delivery = envelope(Flavor.EVERACTIVE_DS_SENSOR_READING, json.dumps(body))
        field = "value"

    # When it is processed
    response = run(("m-1", delivery))

    # Then it is acknowledged and quarantined with the failing field named, nothing stored
    assert response == {"batchItemFailures": []}
    document = json.loads(aws.object_bytes(quarantine_key(delivery)))
    assert field in document["error"]
    assert reading_count(aws) == 0
    assert aws.published_events() == []


def test_a_record_that_fails_is_the_only_one_reported_failed(aws: Aws) -> None:
    # Given a batch where one delivery's claim-checked body is gone from the inbox
    good = mhm_envelope()
    lost = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3)).model_copy(
        update={"body": None, "body_s3_key": "inbox/2022-06-28/gone.json"}
    )

    # When it is processed
    response = run(("m-good", good), ("m-lost", lost), ("m-garbage", '{"not": "an envelope"}'))

    # Then only the broken records are reported failed (SQS retries, then dead-letters them)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "m-lost"}, {"itemIdentifier": "m-garbage"}]
    }
    assert reading_count(aws) == 16


def test_a_failed_raw_archive_fails_the_whole_batch(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the processor points at a bucket that does not exist
    monkeypatch.setenv("BUCKET_NAME", "no-such-bucket")
    processor.processor_settings.cache_clear()

    # When a batch arrives
    response = run(
        ("m-1", mhm_envelope()),
        ("g-1", envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))),
    )

    # Then every record is reported failed and nothing was stored
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "g-1"}]}
    assert reading_count(aws) == 0


def test_replay_re_enqueues_quarantined_deliveries_and_then_deletes_them(aws: Aws) -> None:
    archive = Archive(BUCKET)
    # Given a valid delivery that an earlier (buggy) release quarantined
    delivery = mhm_envelope()
    archive.put_quarantine(quarantine_key(delivery), delivery, "earlier release rejected it")

    # When the operator replays quarantine
    summary = replay_quarantine(archive, IngestQueue(aws.ingest_queue_url), Inbox(BUCKET))

    # Then it is back on the ingest queue and gone from quarantine
    assert (summary.replayed, summary.failed) == ([quarantine_key(delivery)], [])
    assert aws.object_keys("quarantine/") == []
    [message] = aws.sqs.receive_message(QueueUrl=aws.ingest_queue_url)["Messages"]
    assert IngestEnvelope.model_validate_json(message["Body"]) == delivery
    # and the processor stores it: quarantine left no idempotency record to skip it
    assert run(("m-1", IngestEnvelope.model_validate_json(message["Body"]))) == {
        "batchItemFailures": []
    }
    assert reading_count(aws) == 16


def test_a_delivery_quarantined_by_processing_is_processed_again_after_replay(aws: Aws) -> None:
    # Given an invalid body quarantined by the processor itself
    body = sample_json(MHM)
    del body["macAddress"]
    invalid = envelope(Flavor.EVERACTIVE_DS_SENSOR_READING, json.dumps(body))
    run(("m-1", invalid))

    # When it is replayed and processed again (the "fix" has not changed this body)
    replay_quarantine(Archive(BUCKET), IngestQueue(aws.ingest_queue_url), Inbox(BUCKET))
    [message] = aws.sqs.receive_message(QueueUrl=aws.ingest_queue_url)["Messages"]
    run(("m-2", message["Body"]))

    # Then it was validated again, not skipped as a duplicate: it is back in quarantine
    assert aws.object_keys("quarantine/") == [quarantine_key(invalid)]


def test_replay_claim_checks_a_body_too_large_for_an_sqs_message(aws: Aws) -> None:
    archive = Archive(BUCKET)
    # Given a quarantined delivery whose body (padded with whitespace) exceeds an SQS message
    padded = sample_text(MHM).replace("\n", "\n" + " " * 3000)
    assert len(padded) > 300_000
    delivery = envelope(Flavor.EVERACTIVE_DS_SENSOR_READING, padded)
    archive.put_quarantine(quarantine_key(delivery), delivery, "earlier release rejected it")

    # When it is replayed
    replay_quarantine(archive, IngestQueue(aws.ingest_queue_url), Inbox(BUCKET))

    # Then the message points at the inbox, and the processor fetches and stores it
    [message] = aws.sqs.receive_message(QueueUrl=aws.ingest_queue_url)["Messages"]
    queued = IngestEnvelope.model_validate_json(message["Body"])
    assert queued.body is None
    assert queued.body_s3_key == f"inbox/2022-06-28/{delivery.event_id}.json"
    assert run(("m-1", queued)) == {"batchItemFailures": []}
    assert reading_count(aws) == 16


def test_efento_state_holds_each_channels_newest_extrapolated_reading(aws: Aws) -> None:
    # Given an Efento batch with several measurements per channel
    batch = envelope(Flavor.EFENTO_MEASUREMENTS, fixture_text("efento/multi-channel-batch.json"))
    readings = normalize(
        batch.flavor, batch.body or "", event_id=batch.event_id, received_at=RECEIVED_AT
    ).readings

    # When it is processed
    assert run(("e-1", batch)) == {"batchItemFailures": []}

    # Then each (metric, channel) state is the newest reading of that channel
    state = SensorStateStore(TABLES["SENSOR_STATE_TABLE"][0])
    newest: dict[tuple[str, str], Reading] = {}
    for reading in readings:
        key = (reading.metric, reading.channel)
        if key not in newest or newest[key].measured_at < reading.measured_at:
            newest[key] = reading
    assert len(readings) > len(newest)
    for (metric, channel), reading in newest.items():
        assert state.get(reading.provider, reading.sensor_id, metric, channel) == reading
    # (changed on purpose: one state item per sensor, one entry per metric and channel)
    assert item_count(aws, "SENSOR_STATE_TABLE") == 1
    assert len(state.read(readings[0].provider, readings[0].sensor_id).channels) == len(newest)
    assert reading_count(aws) == len(readings)


def test_the_replay_command_reports_what_it_replayed(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = mhm_envelope()
    Archive(BUCKET).put_quarantine(quarantine_key(delivery), delivery, "earlier release")

    status = replay_command.main(["--bucket", BUCKET, "--queue-url", aws.ingest_queue_url])

    assert status == 0
    assert "replayed 1, failed 0" in capsys.readouterr().out
    assert aws.object_keys("quarantine/") == []


def test_copies_of_one_reading_relayed_by_other_gateways_are_stored_and_published_once(
    aws: Aws,
) -> None:
    # Given the real reading, and a copy relayed by another gateway with another packet counter
    first = mhm_envelope()
    copy = mhm_envelope(gatewaySerialNumber="SYN0002", packetNumberGateway=90210)
    assert copy.body != first.body

    # When both are processed, in one batch and again in another
    assert run(("m-1", first), ("m-2", copy)) == {"batchItemFailures": []}
    assert run(("m-3", copy)) == {"batchItemFailures": []}

    # Then the readings are stored once and `readings.received` goes out once, for the first
    assert reading_count(aws) == 16
    [event] = aws.published_events()
    assert event["detail"]["event_id"] == first.event_id == copy.event_id
    assert {r["gateway_id"] for r in event["detail"]["readings"]} == {"SYN0001"}
