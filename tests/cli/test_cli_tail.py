"""`sensorhook tail events|logs` against the moto stack."""

import json
import threading
import time

from cli.bus_tap import TAP_PREFIX
from infra.constants import Output
from tests.cli.conftest import BUS, FUNCTIONS, Stack


def _publish_once_tapped(stack: Stack, entries: list[dict[str, str]]) -> threading.Thread:
    """Puts `entries` on the bus as soon as the CLI's tap rule exists."""

    def publish() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rules = stack.events.list_rules(EventBusName=BUS, NamePrefix=TAP_PREFIX)["Rules"]
            targets = (
                rules
                and stack.events.list_targets_by_rule(Rule=rules[0]["Name"], EventBusName=BUS)[
                    "Targets"
                ]
            )
            if targets:
                stack.events.put_events(
                    Entries=[{**entry, "EventBusName": BUS} for entry in entries]
                )
                return
            time.sleep(0.05)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    return thread


def _entry(detail_type: str, sensor_id: str) -> dict[str, str]:
    return {
        "Source": "sensorhook",
        "DetailType": detail_type,
        "Detail": json.dumps({"provider": "efento", "sensor_id": sensor_id, "count": 2}),
    }


def test_tail_events_follows_the_bus_and_removes_its_tap(stack: Stack, sensorhook) -> None:
    # Given events published while the tail runs (one of a detail-type it does not follow)
    publisher = _publish_once_tapped(
        stack,
        [
            _entry("readings.received", "point-1"),
            _entry("sensor.silent", "point-2"),
            _entry("readings.received", "point-3"),
        ],
    )

    # When the operator tails readings.received until two arrived
    result = sensorhook(
        "tail",
        "events",
        "--detail-type",
        "readings.received",
        "--count",
        "2",
        "--for",
        "20",
        "--json",
    )
    publisher.join()

    # Then both are printed as JSON lines, and the temporary rule and queue are gone
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [event["detail"]["sensor_id"] for event in events] == ["point-1", "point-3"]
    assert stack.events.list_rules(EventBusName=BUS, NamePrefix=TAP_PREFIX)["Rules"] == []
    queues = stack.sqs.list_queues(QueueNamePrefix=TAP_PREFIX).get("QueueUrls", [])
    assert queues == []


def test_tail_events_prints_one_line_per_event(stack: Stack, sensorhook) -> None:
    publisher = _publish_once_tapped(stack, [_entry("readings.received", "point-9")])

    result = sensorhook("tail", "events", "--count", "1", "--for", "20")
    publisher.join()

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if "readings.received" in line]
    assert "provider=efento sensor_id=point-9 count=2" in line


def test_tail_logs_prints_a_functions_log_lines(stack: Stack, sensorhook) -> None:
    # Given the processor's log group with two lines
    group = f"/aws/lambda/{FUNCTIONS[Output.PROCESSOR_FUNCTION_NAME]}"
    stack.logs.create_log_group(logGroupName=group)
    stack.logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now_ms = int(time.time() * 1000)
    stack.logs.put_log_events(
        logGroupName=group,
        logStreamName="s1",
        logEvents=[
            {"timestamp": now_ms - 2000, "message": '{"message": "stored delivery"}'},
            {"timestamp": now_ms - 1000, "message": '{"message": "quarantined delivery"}'},
        ],
    )

    result = sensorhook("tail", "logs", "processor", "--since", "5m", "--no-follow")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        '{"message": "stored delivery"}',
        '{"message": "quarantined delivery"}',
    ]


def test_tail_logs_of_a_function_without_a_log_group_is_one_line(stack: Stack, sensorhook) -> None:
    result = sensorhook("tail", "logs", "receiver", "--no-follow")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: FilterLogEvents failed: ResourceNotFoundException")
