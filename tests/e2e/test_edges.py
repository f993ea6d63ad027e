"""End to end at the edges, on the local sandbox: a burst of 256 simultaneous deliveries, every
delivery sent three times at once, bodies that are not UTF-8 on every route."""

import http.client
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from infra.constants import Output
from local.demo import WEBHOOK_SECRET_NAMES, _drain_queue, _observe_bus, _paginate, _queue_depth
from local.emulator import (
    DeliveryFactory,
    FaultShares,
    Installation,
    Secrets,
    Stream,
    backdated_start,
)
from local.emulator.deliveries import Delivery
from local.faults.drill import publication_key
from local.runtime.demo_secrets import DEMO_SUBSCRIPTION_ID, DEMO_WEBHOOK_SECRETS
from local.sandbox import Sandbox, sandbox
from sensorhook.core.flavors import ROUTES, Flavor
from sensorhook.dal.readings_store import readings_in
from sensorhook.providers.registry import normalize
from tests.builders import signed_v2020_headers

pytestmark = pytest.mark.slow

BURST = 256


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    provider = Installation.create(
        seed=5, sensors=1, gateways=1, start=datetime.now(UTC) - timedelta(hours=1)
    )
    with sandbox(provider, schedule_speedup=0, batching_window_cap=0.5) as running:
        running.stack.drain(timeout=60)
        yield running


@pytest.fixture(scope="module")
def observer(box: Sandbox) -> str:
    return _observe_bus(box.stack)


def _deliveries(box: Sandbox, count: int, seed: int) -> list[Delivery]:
    """`count` distinct authentic deliveries of every flavor, as the emulator sends them."""
    flavors = list(Flavor)
    installation = Installation.create(
        seed=seed,
        sensors=8,
        gateways=2,
        start=backdated_start(datetime.now(UTC), count=count, sensors=8, flavors=flavors),
    )
    factory = DeliveryFactory(
        secrets=Secrets.model_validate(
            {"webhook_secrets": {name: box.secrets[name] for name in WEBHOOK_SECRET_NAMES}}
        ),
        base_url=box.stack.api_url,
    )
    no_faults = FaultShares(duplicate=0.0, stale_date=0.0, bad_signature=0.0, malformed=0.0)
    stream = Stream(installation, factory, flavors, no_faults, rng=random.Random(seed))  # noqa: S311
    deliveries: dict[str, Delivery] = {}
    for delivery in stream:
        assert delivery.event_id is not None
        deliveries.setdefault(delivery.event_id, delivery)
        if len(deliveries) == count:
            return list(deliveries.values())
    raise AssertionError("the stream ended early")


def _post_all_at_once(requests: list[Delivery]) -> list[int | str]:
    """Every request on its own connection, released together."""
    start = threading.Barrier(len(requests))
    statuses: list[int | str] = [0] * len(requests)

    def post(index: int, delivery: Delivery) -> None:
        split = urlsplit(delivery.url)
        connection = http.client.HTTPConnection(split.netloc, timeout=60)
        try:
            start.wait()
            connection.request("POST", split.path, body=delivery.body, headers=delivery.headers)
            statuses[index] = connection.getresponse().status
        except OSError as error:  # a reset or a refused connection
            statuses[index] = type(error).__name__
        finally:
            connection.close()

    threads = [
        threading.Thread(target=post, args=(index, delivery))
        for index, delivery in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _stored_and_published(
    box: Sandbox, observer: str, deliveries: list[Delivery]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]], Counter[str], set[str]]:
    """Readings expected and stored, publications on the bus, deliveries that published."""
    box.stack.drain(timeout=300)
    expected: set[tuple[str, str]] = set()
    for delivery in deliveries:
        normalized = normalize(
            delivery.flavor,
            delivery.body.decode(),
            event_id=str(delivery.event_id),
            received_at=datetime.now(UTC),
        )
        expected.update((r.series_key, r.point_key) for r in normalized.readings)
    items = _paginate(
        box.stack.client("dynamodb"),
        "scan",
        "Items",
        TableName=box.stack.outputs[Output.READINGS_TABLE],
    )
    stored = {(r.series_key, r.point_key) for r in readings_in(items)}  # packed items unpacked
    published = [
        e
        for e in _drain_queue(box.stack.client("sqs"), observer)
        if e["detail-type"] in ("readings.received", "steam_trap.state_changed")
    ]
    keys = Counter(publication_key(event) for event in published)
    return expected, stored, keys, {e["detail"]["event_id"] for e in published}


def test_a_burst_of_256_simultaneous_deliveries_is_accepted_and_stored_once(
    box: Sandbox, observer: str
) -> None:
    # Given 256 distinct authentic deliveries, each on its own connection, released together
    deliveries = _deliveries(box, BURST, seed=41)
    # When they hit the local HTTP API at once
    statuses = _post_all_at_once(deliveries)
    # Then every one was answered 202 (the queue never refused: no 503), none reset
    assert Counter(statuses) == Counter({202: BURST})
    # And each is stored, its readings once, its events once
    expected, stored, keys, publishers = _stored_and_published(box, observer, deliveries)
    assert expected <= stored
    assert [key for key, n in keys.items() if n > 1] == []
    assert publishers  # the readings and steam trap deliveries published


def test_every_delivery_sent_three_times_at_once_is_stored_and_published_once(
    box: Sandbox, observer: str
) -> None:
    # Given 40 authentic deliveries (every flavor), each sent three times concurrently
    deliveries = _deliveries(box, 40, seed=77)
    before = _readings_count(box)
    statuses = _post_all_at_once([d for d in deliveries for _ in range(3)])
    assert Counter(statuses) == Counter({202: 3 * len(deliveries)})
    # Then the readings are stored once (exactly the deliveries' own, nothing else added)
    expected, stored, keys, publishers = _stored_and_published(box, observer, deliveries)
    assert expected <= stored
    assert _readings_count(box) - before == len(expected)
    # And each delivery's events were published once: no publication twice, none missing
    assert [key for key, n in keys.items() if n > 1] == []
    with_events = {
        str(d.event_id) for d in deliveries if d.flavor is not Flavor.EVERACTIVE_DS_GATEWAY_STATUS
    }
    assert publishers == with_events
    assert _queue_depth(box.stack.client("sqs"), box.stack.outputs[Output.DLQ_URL]) == 0


def _readings_count(box: Sandbox) -> int:
    table = box.stack.outputs[Output.READINGS_TABLE]
    items = _paginate(box.stack.client("dynamodb"), "scan", "Items", TableName=table)
    return sum(1 for _ in readings_in(items))


@pytest.mark.parametrize("flavor", list(Flavor))
def test_a_body_that_is_not_utf8_gets_a_400_through_the_local_api_on_every_route(
    box: Sandbox, flavor: Flavor
) -> None:
    # Given an authentic request (signed over these bytes for v2020-07) whose body is not UTF-8
    body = b'{"eventId": "x-1", "note": "caf\xe9"}'
    split = urlsplit(box.stack.api_url)
    path = split.path + ROUTES[flavor]
    headers: dict[str, Any] = {"content-type": "application/json"}
    if flavor is Flavor.EVERACTIVE_V2020_STEAM_TRAP:
        key = DEMO_WEBHOOK_SECRETS["V2020_SIGNING_SECRET_ARN"]["keys"][DEMO_SUBSCRIPTION_ID]
        headers = signed_v2020_headers(
            body, key_id=DEMO_SUBSCRIPTION_ID, secret=key, path=path, host=split.netloc
        )
    else:
        secret = "EFENTO" if flavor is Flavor.EFENTO_MEASUREMENTS else "DS"
        headers |= DEMO_WEBHOOK_SECRETS[f"{secret}_HEADER_SECRET_ARN"]["headers"]
    connection = http.client.HTTPConnection(split.netloc, timeout=30)
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    # Then the answer is a 400 that says why, and nothing was queued
    assert (response.status, json.loads(response.read())) == (
        400,
        {"message": "body is not valid UTF-8"},
    )
    connection.close()
    sqs = box.stack.client("sqs")
    assert _queue_depth(sqs, box.stack.outputs[Output.INGEST_QUEUE_URL]) == 0


def test_the_processor_writes_a_deliverys_readings_from_one_thread_in_the_local_stack(
    box: Sandbox,
) -> None:
    # every function shares the process's one GIL: concurrent writers would only contend
    client = box.stack.client("lambda")
    writers = [
        variables["READINGS_WRITERS"]
        for function in _paginate(client, "list_functions", "Functions")
        if "READINGS_WRITERS" in (variables := function.get("Environment", {}).get("Variables", {}))
    ]
    assert writers == ["1"]  # the processor's; 16 in AWS (infra/config.py)
