"""The local HTTP API front under a burst of simultaneous connections, and behind a custom
domain's API mapping: with a stand-in function, so only the front is under test."""

import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from local.runtime.http_front import HttpFront, http_apis
from local.runtime.lambda_runner import Invocation
from tests.runtime.test_runtime_parts import TEMPLATE

BURST = 256


class StandInFunction:
    """Answers 202 after a moment, recording each event and how many ran at once."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, arn: str, event: dict[str, Any]) -> Invocation:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.events.append(event)
        threading.Event().wait(0.002)
        with self._lock:
            self.running -= 1
        return Invocation(json.dumps({"statusCode": 202, "body": "{}"}), False, "")


def _front(function: StandInFunction, **options: Any) -> HttpFront:
    [spec] = http_apis(TEMPLATE)
    return HttpFront(spec, function, {"Fn": "arn:fn"}, "123456789012", **options)


@pytest.fixture
def function() -> StandInFunction:
    return StandInFunction()


@pytest.fixture
def front(function: StandInFunction) -> Iterator[HttpFront]:
    front = _front(function)
    yield front
    front.stop()


def test_a_burst_of_256_connections_is_held_by_the_kernel_before_the_front_accepts(
    front: HttpFront, function: StandInFunction
) -> None:
    # Given a front that is listening but not yet accepting (its accept loop has not started),
    # so every connection must wait in the listen backlog
    host, port = front.url.removeprefix("http://").split(":")
    # When 256 clients connect at once: each handshake completes in the kernel, or times out
    # (a SYN dropped from a full backlog is retried only after a second)
    connections = [socket.create_connection((host, int(port)), timeout=0.9) for _ in range(BURST)]
    # And each sends a request, and then the front starts
    body = b'{"a": 1}'
    for connection in connections:
        connection.sendall(
            b"POST /hooks/exact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )
    front.start()
    statuses: Counter[str] = Counter()
    for connection in connections:
        connection.settimeout(30)
        response = http.client.HTTPResponse(connection)
        response.begin()
        statuses[str(response.status)] += 1
        connection.close()
    # Then every one was answered 202: no reset, no refusal
    assert statuses == Counter({"202": BURST})
    assert len(function.events) == BURST


def test_a_burst_of_simultaneous_requests_is_answered_in_turn_within_the_invocation_slots(
    function: StandInFunction,
) -> None:
    front = _front(function, invocation_slots=4)
    front.start()
    host, port = front.url.removeprefix("http://").split(":")
    start = threading.Barrier(BURST)
    statuses: list[int | str] = []

    def post() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            start.wait()
            connection.request("POST", "/hooks/exact", body=b"{}")
            statuses.append(connection.getresponse().status)
        except OSError as error:  # a reset or refusal would land here
            statuses.append(type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    front.stop()
    assert Counter(statuses) == Counter({202: BURST})
    assert function.most_at_once <= 4


def test_behind_a_custom_domain_mapping_the_event_keeps_the_base_path_and_the_route_key(
    function: StandInFunction,
) -> None:
    # Given the front serving the API as a custom domain's mapping with base path "sensorhook"
    front = _front(function, base_path="sensorhook")
    front.start()
    host, port = front.url.removeprefix("http://").split("/")[0].split(":")
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("POST", "/sensorhook/hooks/exact?x=1", body=b"{}")
        assert connection.getresponse().status == 202
        connection.close()
        # And a path outside the mapping is API Gateway's own 404
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("POST", "/hooks/exact", body=b"{}")
        assert connection.getresponse().status == 404
        connection.close()
    finally:
        front.stop()
    # Then the function saw the route key without the base path, the paths with it
    [event] = function.events
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /hooks/exact"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/sensorhook/hooks/exact"
    assert event["rawQueryString"] == "x=1"
    assert event["requestContext"]["stage"] == "$default"
    assert front.url.endswith("/sensorhook")
