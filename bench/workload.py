"""The bench's workload: one real body per flavor, requests and SQS batches shaped as AWS
delivers them, and the environment the handlers read. Shared by the CPU figures and the cost
model, so both measure the same deliveries."""

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("SENSORHOOK_SAMPLES_DIR", ROOT.parent / "shared" / "samples"))
FIXTURES = ROOT / "tests" / "fixtures"

BENCH_ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "sensorhook-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "sensorhook",
    "INGEST_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/ingest",
    "BUCKET_NAME": "bench-bucket",
    "V2020_SIGNING_SECRET_ARN": "v2020-signing",
    "DS_HEADER_SECRET_ARN": "ds-headers",
    "EFENTO_HEADER_SECRET_ARN": "efento-headers",
    "READINGS_TABLE": "readings",
    "SENSOR_STATE_TABLE": "sensor-state",
    "GATEWAYS_TABLE": "gateways",
    "IDEMPOTENCY_TABLE": "idempotency",
    "EVENT_BUS_NAME": "bus",
}
SUBSCRIPTION_ID, SIGNING_KEY = "subscription-bench", "bench-signing-secret-0123456789"
HEADER_NAME, HEADER_VALUE = "X-Sensorhook-Key", "bench-header-value-0123456789abcdef"
SECRETS = {
    "v2020-signing": json.dumps({"keys": {SUBSCRIPTION_ID: SIGNING_KEY}}),
    "ds-headers": json.dumps({"headers": {HEADER_NAME: HEADER_VALUE}}),
    "efento-headers": json.dumps({"headers": {HEADER_NAME: HEADER_VALUE}}),
}


def bodies() -> dict[Any, bytes]:
    from sensorhook.core.flavors import Flavor

    return {
        Flavor.EVERACTIVE_V2020_STEAM_TRAP: (
            FIXTURES / "everactive-v2020/steam-trap-state-change.json"
        ).read_bytes(),
        Flavor.EVERACTIVE_DS_SENSOR_READING: (
            SAMPLES / "everactive-ds/sensor-reading-mhm.json"
        ).read_bytes(),
        Flavor.EVERACTIVE_DS_GATEWAY_STATUS: (
            SAMPLES / "everactive-ds/gateway-status-v3.json"
        ).read_bytes(),
        Flavor.EFENTO_MEASUREMENTS: (FIXTURES / "efento/multi-channel-batch.json").read_bytes(),
    }


def signed_headers(path: str, body: bytes) -> dict[str, str]:
    """Sign like Everactive, with the independent `httpsig` implementation."""
    import base64
    from email.utils import formatdate

    import httpsig

    headers = {
        "host": "bench.execute-api.eu-west-1.amazonaws.com",
        "date": formatdate(usegmt=True),
        "digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "content-length": str(len(body)),
        "content-type": "application/json",
    }
    signer = httpsig.HeaderSigner(
        SUBSCRIPTION_ID,
        SIGNING_KEY,
        algorithm="hmac-sha256",
        headers=["(request-target)", "date", "digest", "host", "content-length"],
    )
    signed = signer.sign(dict(headers), method="POST", path=path)
    headers["signature"] = signed["authorization"].removeprefix("Signature ")
    return headers


def http_api_event(path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": headers.get("host", "bench"),
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "bench",
            },
            "requestId": "bench-request",
            "routeKey": f"POST {path}",
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


class Context:
    function_name = "bench"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    aws_request_id = "bench-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


CONTEXT: Any = Context()


def receiver_request(flavor: Any, body: bytes) -> dict[str, Any]:
    """The HTTP API event of one authentic delivery of `flavor`."""
    from sensorhook.core.flavors import ROUTES, Flavor

    path = ROUTES[flavor]
    if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP:
        headers = signed_headers(path, body)
    else:
        headers = {
            "content-type": "application/json",
            HEADER_NAME.lower(): HEADER_VALUE,
            "content-length": str(len(body)),
        }
    return http_api_event(path, headers, body)


def processor_batch(flavor: Any, body: bytes, size: int) -> dict[str, Any]:
    """An SQS event of `size` distinct deliveries of the same body (distinct dedupe keys, so
    every one is processed, none skipped as a duplicate)."""
    from sensorhook.core.dedupe import event_id_for
    from sensorhook.core.envelope import IngestEnvelope

    text = body.decode()
    envelopes = [
        IngestEnvelope(
            flavor=flavor,
            event_id=f"{event_id_for(flavor, json.loads(text))}-{n}",
            received_at=datetime.now(UTC),
            request_id=f"bench-{n}",
            body=text,
        ).model_dump_json()
        for n in range(size)
    ]
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": "r",
                "body": envelope,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:ingest",
                "awsRegion": "eu-west-1",
            }
            for n, envelope in enumerate(envelopes)
        ]
    }


# The cost model's deliveries (bench/cost.py): per sensor, in the order they are processed,
# each a batch of its own. A batch's records see the state the batches before it wrote
# (bench/canned_aws.py, CannedTables), as a batch of ten sensors' next deliveries would.
CHANGE, STEADY, WARM_UP = "change", "steady", "warm-up"  # WARM_UP: processed, not measured
# Efento as its sensors report (docs/cost.md, "Efento as it reports"): a temperature and
# humidity sensor, one measurement a minute per channel, sent every 15 minutes
EFENTO_PERIOD_S, EFENTO_BATCH_MEASUREMENTS = 60, 15
EFENTO_TRANSMISSION_S = EFENTO_PERIOD_S * EFENTO_BATCH_MEASUREMENTS
# Where its batches start past the quarter hour (the readings table's buckets are 900 s from
# the epoch): halfway, the middle of what a sensor's clock gives; a second sensor's start on it
EFENTO_PHASE_S = 450


@dataclass(frozen=True)
class Step:
    flavor: Any
    body: bytes
    kind: str  # CHANGE, STEADY or WARM_UP
    what: str  # what the delivery is, as the report prints it
    every_s: int = 60  # the sensor's deliveries' spacing (its state's due index moves by it)


@dataclass(frozen=True)
class SensorDeliveries:
    label: str
    steps: list[Step]


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, indent=2) + "\n").encode()


def _shifted(stamp: Any, seconds: int) -> Any:
    """A timestamp `seconds` later, in the format it was written in (Efento's fixture mixes
    epoch seconds, ISO with `Z`, with `+00:00`, naive, and with a space)."""
    if isinstance(stamp, int):
        return stamp + seconds
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    if stamp.endswith("Z"):
        text = moment.replace(tzinfo=None).isoformat(
            timespec="milliseconds" if "." in stamp else "seconds"
        )
        return text + "Z"
    if " " in stamp:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.isoformat()


def ds_reading_next(body: bytes) -> bytes:
    """The same machine-health sensor's next reading, a minute later (same values)."""
    payload = json.loads(body)
    payload["readingDate"] = _shifted(payload["readingDate"], 60)
    payload["timestamp"] += 60
    payload["packetNumberGateway"] += 1
    payload["packetNumberEversensor"] += 1
    return _json_bytes(payload)


def v2020_next_change(body: bytes) -> bytes:
    """The same trap's next state change, a day later, back to the state it left: v2020-07's
    only webhook is the state change (seeds/everactive-api-v2020-07.txt), so every delivery of
    the flavor carries one."""
    payload = json.loads(body)
    payload["eventId"] = payload["eventId"].rstrip("0123456789") + "2"
    payload["eventTimestamp"] += 86_400
    payload["trapStartState"], payload["trapEndState"] = (
        payload["trapEndState"],
        payload["trapStartState"],
    )
    return _json_bytes(payload)


def efento_fixture_next(body: bytes) -> bytes:
    """The fixture's sensor's next batch: every channel's first measurement one period after
    its last one in the fixture (its 300 s channel from 08:15, its 600 s ones from 08:20), all
    OK (the fixture's MISSING measurement measured now), so the batch reveals no gap."""
    payload = json.loads(body)
    for channel in payload["measurementsEvents"]:
        # the fixture's last measurement of every channel is at 08:10
        shift = 600 + channel["events"][0]["period"]
        for event in channel["events"]:
            event["timestamp"] = _shifted(event["timestamp"], shift)
            if event["status"] == "MISSING":
                event["status"], event["value"] = "OK", 21.6
    payload["firstMeasurementTimestamp"] = _shifted(payload["firstMeasurementTimestamp"], 900)
    payload["lastMeasurementTimestamp"] = _shifted(payload["lastMeasurementTimestamp"], 900)
    payload["measurementsReceivedAt"] = _shifted(payload["measurementsReceivedAt"], 900)
    return _json_bytes(payload)


def efento_as_it_reports(first: datetime, *, missing: bool = False, point_id: int = 1204) -> bytes:
    """One batch of an Efento temperature and humidity sensor (2 channels) measuring every
    EFENTO_PERIOD_S and sending every EFENTO_TRANSMISSION_S, as measurement events (only
    changes are sent, seeds/efento-cloud-measurement-webhooks.txt): the temperature moves by
    0.1 °C every 3 minutes, the humidity once. `missing`: the sensor was out of range for two
    periods, which both channels mark MISSING (a gap, published as an event per channel)."""

    def at(minute: int) -> str:
        return (first + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def event(minute: int, value: float | None, status: str = "OK") -> dict[str, Any]:
        return {
            "timestamp": at(minute),
            "value": value,
            "period": EFENTO_PERIOD_S,
            "status": status,
        }

    temperature = [event(0, 21.3), event(3, 21.4), event(6, 21.5), event(9, 21.4), event(12, 21.3)]
    humidity = [event(0, 45), event(8, 46)]
    if missing:
        temperature = [*temperature[:2], event(6, None, "MISSING"), *temperature[3:]]
        temperature.insert(3, event(8, 21.5))
        humidity = [humidity[0], event(6, None, "MISSING"), humidity[1]]
    last = first + timedelta(seconds=EFENTO_TRANSMISSION_S - EFENTO_PERIOD_S)
    return _json_bytes(
        {
            "measurementPointId": point_id,
            "measurementPointName": "Cold store 2",
            "firstMeasurementTimestamp": at(0),
            "lastMeasurementTimestamp": at(EFENTO_BATCH_MEASUREMENTS - 1),
            "measurementsReceivedAt": (last + timedelta(seconds=4)).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            )[:-3]
            + "Z",
            "signalStrength": -79,
            "batteryStatus": "OK",
            "measurementsEvents": [
                {"channelNumber": 1, "channelType": "TEMPERATURE", "events": temperature},
                {"channelNumber": 2, "channelType": "HUMIDITY", "events": humidity},
            ],
        }
    )


def cost_workload() -> list[SensorDeliveries]:
    """Per flavor, the deliveries the cost model measures, in order: the body as today (for
    v2020-07 and Efento's fixture a change: a second event), then the same sensor's next
    delivery with its state stored (no change, no gap where the flavor has such a thing)."""
    from sensorhook.core.flavors import Flavor

    sample = bodies()
    v2020 = sample[Flavor.EVERACTIVE_V2020_STEAM_TRAP]
    reading = sample[Flavor.EVERACTIVE_DS_SENSOR_READING]
    fixture = sample[Flavor.EFENTO_MEASUREMENTS]
    # a sensor's batches start where its clock put them, not at a quarter hour: the
    # readings table's 900 s buckets (docs/readings.md) then take each batch in two items
    start = datetime(2026, 11, 2, 12, 0, tzinfo=UTC) + timedelta(seconds=EFENTO_PHASE_S)
    on_the_quarter = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    batch = timedelta(seconds=EFENTO_TRANSMISSION_S)
    efento = Flavor.EFENTO_MEASUREMENTS
    return [
        SensorDeliveries(
            "everactive-v2020-07",
            [
                Step(Flavor.EVERACTIVE_V2020_STEAM_TRAP, v2020, CHANGE, "state change"),
                Step(
                    Flavor.EVERACTIVE_V2020_STEAM_TRAP,
                    v2020_next_change(v2020),
                    CHANGE,
                    "next change, state stored",
                ),
            ],
        ),
        SensorDeliveries(
            "everactive-ds-sensor-reading",
            [
                Step(Flavor.EVERACTIVE_DS_SENSOR_READING, reading, STEADY, "MHM sample"),
                Step(
                    Flavor.EVERACTIVE_DS_SENSOR_READING,
                    ds_reading_next(reading),
                    STEADY,
                    "next reading, state stored",
                ),
            ],
        ),
        SensorDeliveries(
            "everactive-ds-gateway-status",
            [
                Step(
                    Flavor.EVERACTIVE_DS_GATEWAY_STATUS,
                    sample[Flavor.EVERACTIVE_DS_GATEWAY_STATUS],
                    STEADY,
                    "v3 sample",
                )
            ],
        ),
        SensorDeliveries(
            "efento (test fixture)",
            [
                Step(efento, fixture, CHANGE, "fixture: MISSING gap"),
                Step(efento, efento_fixture_next(fixture), STEADY, "next batch, state stored"),
            ],
        ),
        SensorDeliveries(
            "efento (as it reports)",
            [
                Step(
                    efento,
                    efento_as_it_reports(start),
                    WARM_UP,
                    "first batch",
                    EFENTO_TRANSMISSION_S,
                ),
                Step(
                    efento,
                    efento_as_it_reports(start + batch, missing=True),
                    CHANGE,
                    "batch with a gap",
                    EFENTO_TRANSMISSION_S,
                ),
                Step(
                    efento,
                    efento_as_it_reports(start + 2 * batch),
                    STEADY,
                    "next batch, state stored",
                    EFENTO_TRANSMISSION_S,
                ),
            ],
        ),
        SensorDeliveries(
            "efento (on the quarter hour)",
            [
                Step(
                    efento,
                    efento_as_it_reports(on_the_quarter, point_id=1205),
                    WARM_UP,
                    "first batch",
                    EFENTO_TRANSMISSION_S,
                ),
                Step(
                    efento,
                    efento_as_it_reports(on_the_quarter + batch, point_id=1205),
                    STEADY,
                    "next batch, state stored",
                    EFENTO_TRANSMISSION_S,
                ),
            ],
        ),
    ]
