"""The local runtime on the probe CDK app: deploy, HTTP front, pollers, events and schedules."""

import http.client
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from local.runtime import EmbeddedStack
from local.runtime.assembly import synthesize

pytestmark = pytest.mark.slow

PROBE_APP = Path(__file__).parent / "probe_app"


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    # rate(5 minutes) at 300x fires every second, so the automatic schedule test stays short.
    with EmbeddedStack(PROBE_APP, schedule_speedup=300.0) as running:
        yield running


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        url, data=body, headers={"content-type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 - loopback test server
        return response.status, dict(response.headers), response.read()


def _object(stack: EmbeddedStack, key: str) -> dict:
    s3 = stack.client("s3")
    body = s3.get_object(Bucket=stack.outputs["BucketName"], Key=key)["Body"].read()
    return json.loads(body)


def _keys(stack: EmbeddedStack, prefix: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.outputs["BucketName"], Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_template_deploys_with_outputs_resolved_to_local_resources(stack: EmbeddedStack) -> None:
    # Given the probe app deployed into moto
    # When reading the stack outputs
    outputs = stack.outputs
    # Then the API output is the local front, and the other outputs name real moto resources
    assert outputs["ApiUrl"] == stack.api_url
    secret = stack.client("secretsmanager").describe_secret(SecretId=outputs["SecretArn"])
    assert secret["ARN"] == outputs["SecretArn"]
    assert stack.client("dynamodb").describe_table(TableName=outputs["TableName"])
    assert stack.client("events").describe_event_bus(Name=outputs["BusName"])


def test_synth_is_cached_by_source_hash(stack: EmbeddedStack) -> None:
    # Given the stack already synthesized the probe app
    # When synthesizing again with unchanged sources
    began = time.monotonic()
    again = synthesize(PROBE_APP, PROBE_APP / ".local")
    # Then the cached assembly comes back without running the app
    assert time.monotonic() - began < 1.0
    assert (again / "probe-dev.template.json").is_file()


def test_http_front_builds_a_v2_event_for_the_matching_route(stack: EmbeddedStack) -> None:
    # Given a templated POST route
    # When posting JSON with a repeated query parameter
    status, headers, body = _post(
        f"{stack.api_url}/hooks/everactive?page=1&page=2", b'{"a": 1}', "application/json"
    )
    # Then the function's response comes back, and it saw the event API Gateway would send
    assert status == 201
    assert headers["x-probe"] == "yes"
    echo = json.loads(body)
    event = echo["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /hooks/{name}"
    assert event["rawPath"] == "/hooks/everactive"
    assert event["rawQueryString"] == "page=1&page=2"
    assert event["queryStringParameters"] == {"page": "1,2"}
    assert event["pathParameters"] == {"name": "everactive"}
    assert event["headers"]["content-type"] == "application/json"
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["timeEpoch"] > 0
    # And it ran with its own environment and a Lambda context
    assert echo["function"] == "ApiFunction"
    assert 0 < echo["remaining_ms"] <= 10_000


def test_http_front_base64_encodes_binary_bodies_and_uses_default_route(
    stack: EmbeddedStack,
) -> None:
    # Given the $default route, When posting a binary body to an unrouted path
    status, _, body = _post(f"{stack.api_url}/other", b"\xff\x00", "application/octet-stream")
    # Then the catch-all route got it base64-encoded
    event = json.loads(body)["event"]
    assert status == 201
    assert event["routeKey"] == "$default"
    assert event["isBase64Encoded"] is True
    assert event["body"] == "/wA="


def test_http_front_decodes_a_base64_response(stack: EmbeddedStack) -> None:
    with urllib.request.urlopen(f"{stack.api_url}/binary") as response:  # noqa: S310
        assert response.read() == b"\x00\x01probe"
        assert response.headers["content-type"] == "application/octet-stream"


def test_http_front_rejects_bodies_over_10_mb_like_api_gateway(stack: EmbeddedStack) -> None:
    # Given a request announcing an 11 MB body (the front answers before reading it)
    parts = urlsplit(stack.api_url)
    connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=10)
    connection.putrequest("POST", "/hooks/big")
    connection.putheader("content-type", "application/json")
    connection.putheader("content-length", str(11 * 1024 * 1024))
    connection.endheaders()
    # When reading the response, Then it is API Gateway's own 413
    response = connection.getresponse()
    assert response.status == 413
    connection.close()


def test_lambda_invoke_api_runs_the_handler_in_process(stack: EmbeddedStack) -> None:
    # Given the Lambda API of the embedded AWS (moto's invoke, our runner)
    response = stack.client("lambda").invoke(
        FunctionName=stack.physical_ids["ApiFunctionCE271BD4"],
        Payload=json.dumps({"rawPath": "/binary"}),
    )
    # Then the handler's result is the payload
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read())["isBase64Encoded"] is True


def test_sqs_partial_failure_keeps_only_the_failed_message_then_redrives_it(
    stack: EmbeddedStack,
) -> None:
    # Given two good messages and one the consumer reports as a batch item failure
    sqs = stack.client("sqs")
    queue_url = stack.outputs["QueueUrl"]
    for message in ({"id": "good-1"}, {"id": "bad", "fail": True}, {"id": "good-2"}):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
    # When the poller has worked through retries (visibility 2 s, maxReceiveCount 2)
    stack.drain(timeout=20)
    # Then each good message was processed once, never redelivered with the failed one
    table = stack.client("dynamodb")
    for key in ("good-1", "good-2"):
        item = table.get_item(TableName=stack.outputs["TableName"], Key={"pk": {"S": key}})["Item"]
        assert item["receive_count"] == {"S": "1"}
    # And only the failed message reached the DLQ, leaving the source queue empty
    dead = sqs.receive_message(QueueUrl=stack.outputs["DlqUrl"], MaxNumberOfMessages=10)
    assert [json.loads(m["Body"])["id"] for m in dead["Messages"]] == ["bad"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_stream_insert_reaches_the_stream_function_and_modify_is_filtered(
    stack: EmbeddedStack,
) -> None:
    # Given a new item, then a change to it
    dynamodb = stack.client("dynamodb")
    table = stack.outputs["TableName"]
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "stream-1"}, "v": {"N": "1"}})
    stack.drain(timeout=10)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "stream-1"}, "v": {"N": "2"}})
    stack.drain(timeout=10)
    # Then the INSERT arrived as a Lambda stream record, and the MODIFY was filtered out
    record = _object(stack, "stream/stream-1.json")
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["dynamodb"]["NewImage"]["v"] == {"N": "1"}


def test_put_events_reaches_a_lambda_target_of_a_bus_rule(stack: EmbeddedStack) -> None:
    # Given a rule on the custom bus matching source "probe", detail-type "poked"
    entry = {
        "Source": "probe",
        "DetailType": "poked",
        "Detail": json.dumps({"n": 1}),
        "EventBusName": stack.outputs["BusName"],
    }
    # When one matching and one non-matching event are put
    stack.client("events").put_events(Entries=[entry, {**entry, "DetailType": "ignored"}])
    stack.drain(timeout=10)
    # Then only the matching one reached the target
    delivered = [_object(stack, key) for key in _keys(stack, "events/")]
    assert [(e["detail-type"], e["detail"]) for e in delivered] == [("poked", {"n": 1})]


def test_schedule_fires_on_demand_and_on_the_compressed_clock(stack: EmbeddedStack) -> None:
    # Given the rate(5 minutes) rule
    # When fired on demand
    [outcome] = stack.fire_schedule("Every5MinutesA8475E51")
    assert not outcome.errored
    # Then its target got a Scheduled Event, and the compressed clock fires it again by itself
    deadline = time.monotonic() + 5
    while len(_keys(stack, "scheduled/")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    events = [_object(stack, key) for key in _keys(stack, "scheduled/")]
    assert len(events) >= 2
    assert {e["detail-type"] for e in events} == {"Scheduled Event"}
    assert {e["source"] for e in events} == {"aws.events"}
