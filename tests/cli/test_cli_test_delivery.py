"""`sensorhook test-delivery` (the TEST button) against a stub receiver that checks the
authentication independently, with the moto stack's secrets and bus."""

import json
import threading
import time
from collections.abc import Iterator

import boto3
import pytest

from infra.constants import Output
from local.emulator import Secrets
from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import FLAVOR_BY_ROUTE, ROUTES, Flavor
from tests.cli.conftest import BUS, Stack
from tests.emulator.stub_receiver import StubReceiver, running

# The stack's webhook secrets: not the emulator's defaults, so a test passes only if the CLI
# authenticated with what the stack holds.
STACK_SECRETS = Secrets.model_validate(
    {
        "v2020_signing": {"keys": {"sub-42": "stack-v2020-secret"}},
        "ds_header": {"headers": {"x-api-key": "stack-ds-key"}},
        "efento_header": {"headers": {"x-efento-token": "stack-efento-token"}},
    }
)


@pytest.fixture
def receiver(stack: Stack) -> Iterator[tuple[StubReceiver, str]]:
    """The stub in the stack's place: its URL is the stack's ApiUrl, the secrets the stack's."""
    client = boto3.client("secretsmanager", region_name="us-east-1")
    for section, output in (
        ("v2020_signing", Output.V2020_SIGNING_SECRET_ARN),
        ("ds_header", Output.DS_HEADER_SECRET_ARN),
        ("efento_header", Output.EFENTO_HEADER_SECRET_ARN),
    ):
        value = getattr(STACK_SECRETS, section).model_dump()
        arn = client.create_secret(Name=f"sensorhook/dev/{section}", SecretString=json.dumps(value))
        stack.outputs[output] = arn["ARN"]
    stub = StubReceiver(STACK_SECRETS)
    with running(stub) as url:
        stack.add_outputs({Output.API_URL: url + "/"})
        yield stub, url


def _act_like_the_processor(stack: Stack, stub: StubReceiver) -> threading.Thread:
    """Once the stub took a delivery, publish its readings event (same event_id)."""

    def publish() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not stub.requests:
            time.sleep(0.05)
        request = stub.requests[0]
        flavor = FLAVOR_BY_ROUTE[request.path]
        event_id = event_id_for(flavor, json.loads(request.body))
        stack.events.put_events(
            Entries=[
                {
                    "Source": "sensorhook",
                    "DetailType": "readings.received",
                    "Detail": json.dumps({"event_id": event_id, "sensor_id": "x", "count": 1}),
                    "EventBusName": BUS,
                }
            ]
        )

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    return thread


def test_a_test_delivery_authenticates_with_the_stacks_secrets_and_lands(
    stack: Stack, receiver, sensorhook
) -> None:
    # Given the stack's route, and a processor that publishes what it stores
    stub, url = receiver
    processor = _act_like_the_processor(stack, stub)

    # When the operator presses TEST for Efento
    result = sensorhook("test-delivery", "efento-measurements", "--wait", "10", "--json")
    processor.join()

    # Then the stub accepted it (its own check of the stack's token), and it landed
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["request"]["url"] == url + "/webhooks/efento/measurements"
    assert report["response"]["status"] == 202
    assert report["landed"]["where"] == "events"
    assert report["landed"]["detail"] == "1 event(s): readings.received"
    assert [r.status for r in stub.requests] == [202]


@pytest.mark.parametrize(
    "flavor",
    ["everactive-v2020-07", "everactive-ds-sensor-reading", "everactive-ds-gateway-status"],
)
def test_every_flavor_is_sent_with_the_right_authentication(
    stack: Stack, receiver, sensorhook, flavor: str
) -> None:
    stub, _ = receiver

    result = sensorhook("test-delivery", flavor, "--wait", "0")

    assert result.exit_code == 0, result.output
    assert [r.status for r in stub.requests] == [202]
    assert "202" in result.stdout and "not checked" in result.stdout


def test_a_delivery_that_does_not_land_is_said_and_exits_1(
    stack: Stack, receiver, sensorhook
) -> None:
    stub, _ = receiver

    result = sensorhook("test-delivery", "everactive-ds-sensor-reading", "--wait", "1")

    assert result.exit_code == 1
    assert [r.status for r in stub.requests] == [202]
    assert "nowhere: not landed within 1 s" in result.stdout
    assert stack.events.list_rules(EventBusName=BUS)["Rules"] == []  # the tap is gone


def test_a_fault_shows_the_refusal_as_expected(stack: Stack, receiver, sensorhook) -> None:
    stub, _ = receiver

    result = sensorhook(
        "test-delivery", "everactive-v2020-07", "--fault", "bad-signature", "--json"
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["response"]["status"] == report["request"]["expected_status"] == 401
    assert report["landed"]["where"] == "not checked"
    assert [r.status for r in stub.requests] == [401]


def test_any_url_with_a_secrets_file_needs_no_stack(sensorhook, tmp_path) -> None:
    # Given a receiver somewhere else, and its secrets in a file
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(STACK_SECRETS.model_dump_json())
    stub = StubReceiver(STACK_SECRETS)
    with running(stub) as url:
        # When the TEST button posts there (no stack is reachable: no credentials, no moto)
        result = sensorhook(
            "test-delivery",
            "efento-measurements",
            "--url",
            url + ROUTES[Flavor.EFENTO_MEASUREMENTS],
            "--secrets-file",
            str(secrets_file),
            stack=None,
        )

    # Then the response is shown; landing is not checked outside the stack
    assert result.exit_code == 0, result.output
    assert f"{url}/webhooks/efento/measurements" in result.stdout
    assert "not checked: no stack to look in" in result.stdout
    assert [r.status for r in stub.requests] == [202]
