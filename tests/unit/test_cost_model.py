"""The bench's cost model: AWS's billing rules applied to recorded requests, and the real
handlers' calls counted per delivery."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.awsrequest import AWSRequest

from bench.cost import KB, Units, call_units, item_bytes, updated_item, write_units

ROOT = Path(__file__).resolve().parents[2]


def _request(target: str, payload: dict) -> AWSRequest:
    return AWSRequest(
        method="POST",
        url="https://dynamodb.eu-west-1.amazonaws.com/",
        headers={"X-Amz-Target": target},
        data=json.dumps(payload).encode(),
    )


def test_item_size_follows_dynamodb_rules() -> None:
    # Given attributes of each kind
    # Then names and string values count their UTF-8 bytes, numbers one byte per two digits
    # plus one, maps and lists three bytes plus one per element
    assert item_bytes({"S": "abc"}, "k") == 1 + 3
    assert item_bytes({"S": "é"}, "k") == 1 + 2
    assert item_bytes({"N": "12345"}, "n") == 1 + 3 + 1
    assert item_bytes({"BOOL": True}, "b") == 1 + 1
    assert item_bytes({"M": {"a": {"S": "x"}}}, "m") == 1 + 3 + (1 + 1) + 1
    assert item_bytes({"L": [{"S": "x"}, {"N": "1"}]}, "l") == 1 + 3 + (1 + 1) + (2 + 1)


def test_a_write_is_billed_per_started_kilobyte() -> None:
    # Given items just under, at and over 1 KB
    def item(size: int) -> dict:
        return {"k": {"S": "x" * (size - 1)}}  # the name takes one byte

    # Then each started KB is one write request unit
    assert write_units(item(KB)) == 1
    assert write_units(item(KB + 1)) == 2
    assert write_units({}) == 1


def test_requests_are_turned_into_billed_units() -> None:
    # Given one call of each kind the handlers make
    big_body = "x" * (64 * 1024 + 1)
    requests = [
        _request("DynamoDB_20120810.PutItem", {"Item": {"pk": {"S": "a"}}}),
        _request(
            "DynamoDB_20120810.BatchWriteItem",
            {"RequestItems": {"t": [{"PutRequest": {"Item": {"pk": {"S": "y" * 1500}}}}] * 3}},
        ),
        _request("DynamoDB_20120810.GetItem", {"Key": {}, "ConsistentRead": True}),
        _request("AmazonSQS.SendMessage", {"MessageBody": big_body}),
        _request(
            "AWSEvents.PutEvents",
            {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}] * 2},
        ),
        AWSRequest(method="PUT", url="https://b.s3.amazonaws.com/raw/k", data=b"x"),
        AWSRequest(method="GET", url="https://b.s3.amazonaws.com/inbox/k"),
    ]
    # When they are priced
    units = call_units(requests).units
    # Then each service's unit rule applies
    assert units.dynamodb_write_request_unit == 1 + 3 * 2
    assert units.dynamodb_read_request_unit == 1
    assert units.sqs_request == 2  # 64 KB chunks
    assert units.eventbridge_event == 2
    assert (units.s3_put_request, units.s3_get_request) == (1, 1)


def test_units_price_with_the_table() -> None:
    # Given a million HTTP API requests
    units = Units(http_api_request=1_000_000)
    # Then they cost the table's price per million
    assert units.dollars() == pytest.approx(1.0)


_COST_TABLE = """
import json, os, sys
sys.path.insert(0, "functions")
from bench.workload import BENCH_ENV, CONTEXT, SECRETS
os.environ.update(BENCH_ENV)
os.environ.pop("AWS_ENDPOINT_URL", None)
from bench.cost import cost_table
from infra.config import StageConfig
print(json.dumps([
    {
        "flavor": c.flavor,
        "row": f"{c.label}: {c.what}",
        "kind": c.kind,
        "events": c.events,
        "ratio": c.ratio,
        "readings": c.readings,
        "operations": dict(c.operations),
        "wru": c.actual.dynamodb_write_request_unit,
        "floor_wru": c.floor.dynamodb_write_request_unit,
    }
    for c in cost_table(StageConfig(), CONTEXT, SECRETS)
]))
"""


def test_the_real_handlers_calls_are_counted_per_delivery() -> None:
    # Given the handlers run on the bench's canned AWS with the default configuration, in an
    # interpreter of their own as `make bench` runs them (their Powertools state stays there)
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", _COST_TABLE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    costs = {cost["row"]: cost for cost in json.loads(done.stdout.splitlines()[-1])}
    # Then every delivery is priced above its floor and below ten times it
    for cost in costs.values():
        assert 1.0 <= cost["ratio"] < 10, cost["row"]
    # and each sensor's change carries a second event, its steady delivery one
    assert costs["everactive-v2020-07: state change"]["events"] == 2
    assert costs["efento (test fixture): fixture: MISSING gap"]["events"] == 2
    assert costs["efento (test fixture): next batch, state stored"]["events"] == 1
    assert costs["efento (as it reports): batch with a gap"]["events"] == 3
    assert costs["efento (as it reports): next batch, state stored"]["events"] == 1
    assert costs["efento (as it reports): next batch, state stored"]["readings"] == 33
    # and the machine-health sample's 16 readings are one packed readings item (one UpdateItem
    # of about 3.5 KB), with one sensor-state write per metric: the floor undercuts that
    mhm = costs["everactive-ds-sensor-reading: MHM sample"]
    assert mhm["readings"] == 16
    assert mhm["operations"]["SendMessage"] == 1
    assert mhm["operations"]["PutEvents"] == 1
    assert "BatchWriteItem" not in mhm["operations"]
    assert mhm["wru"] > mhm["floor_wru"]


_NEXT_BATCH = """
import json, os, sys
from datetime import UTC, datetime, timedelta
sys.path.insert(0, "functions")
from bench.workload import (
    BENCH_ENV, CONTEXT, EFENTO_TRANSMISSION_S, SECRETS, efento_as_it_reports, processor_batch
)
os.environ.update(BENCH_ENV)
os.environ.pop("AWS_ENDPOINT_URL", None)
from bench.canned_aws import CannedTables, canned_aws
from bench.cost import call_units
from sensorhook.core.flavors import Flavor
from sensorhook.handlers import processor

publish = sys.argv[1] == "publish"
start = datetime(2026, 11, 2, 12, tzinfo=UTC)
tables = CannedTables()
with canned_aws(SECRETS, tables=tables) as recorded:
    first = efento_as_it_reports(start)
    processor.handler(processor_batch(Flavor.EFENTO_MEASUREMENTS, first, 1), CONTEXT)
    if publish:
        tables.publish()
    # the batch after the next: a whole batch lost on the way, a gap of each channel
    later = efento_as_it_reports(start + timedelta(seconds=2 * EFENTO_TRANSMISSION_S))
    before = len(recorded)
    processor.handler(processor_batch(Flavor.EFENTO_MEASUREMENTS, later, 1), CONTEXT)
    print(call_units(recorded[before:]).units.eventbridge_event)
"""


@pytest.mark.parametrize(("publish", "events"), [("publish", 3), ("keep", 1)])
def test_a_later_batch_reads_the_state_an_earlier_one_stored(publish: str, events: int) -> None:
    # Given an Efento sensor's batch processed on the canned AWS, its state published (or not)
    # and then the sensor's batch after a lost one
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", _NEXT_BATCH, publish],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    # Then with the state stored, the processor sees the lost batch (a gap per channel, with
    # the readings' event); without it, nothing stands before the later batch
    assert float(done.stdout.splitlines()[-1]) == events


def test_a_state_read_is_sized_by_the_item_written_back_and_a_due_move_costs_the_index() -> None:
    # Given a sensor's state read (consistent) and the 5 KB item then written under its key,
    # with due_at (the due index's sort key) for a sensor reading each minute
    key = {"series": {"S": "efento#s-1"}, "metric_channel": {"S": "#latest"}}
    item = {
        **key,
        "channels": {"M": {"t#1": {"M": {"blob": {"S": "x" * (5 * KB)}}}}},
        "metrics": {"SS": ["t"]},
        "due_shard": {"S": "sensor"},
        "due_at": {"S": "2026-01-01T00:03:00.000Z"},
    }
    units = call_units(
        [
            _request(
                "DynamoDB_20120810.GetItem",
                {"TableName": "state", "Key": key, "ConsistentRead": True},
            ),
            _request("DynamoDB_20120810.PutItem", {"TableName": "state", "Item": item}),
        ]
    ).units

    # Then the read is 2 RRU (two started 4 KB), the write 6 WRU, and the index's move (a
    # delete and a put of a small entry) is paid on one write in three
    assert units.dynamodb_read_request_unit == 2
    assert units.dynamodb_write_request_unit == pytest.approx(6 + 2 / 3, abs=0.01)


def test_an_update_is_sized_by_the_item_it_leaves_under_the_real_attribute_names() -> None:
    # Given a packed readings write: names behind placeholders, a value over 1 KB
    update = {
        "TableName": "readings",
        "Key": {"series": {"S": "s"}, "point": {"S": "p"}},
        "UpdateExpression": "SET #provider = :provider, #r0 = :r0",
        "ExpressionAttributeNames": {"#provider": "provider", "#r0": "temperature#0"},
        "ExpressionAttributeValues": {
            ":provider": {"S": "efento"},
            ":r0": {"M": {"t": {"S": "x" * 1100}}},
        },
    }
    # Then it is billed on key plus each attribute under its own name: 2 units
    assert updated_item(update) == {
        "series": {"S": "s"},
        "point": {"S": "p"},
        "provider": {"S": "efento"},
        "temperature#0": {"M": {"t": {"S": "x" * 1100}}},
    }
    units = call_units([_request("DynamoDB_20120810.UpdateItem", update)]).units
    assert units.dynamodb_write_request_unit == 2


def test_an_update_adding_to_a_stored_item_is_billed_on_the_whole_item() -> None:
    # Given a readings item of about 3 KB that an earlier batch stored, then an update setting
    # one small attribute of it (as a later delivery adds its readings to a bucket)
    import boto3

    from bench.canned_aws import CannedTables, canned_aws

    key = {"series": {"S": "efento#1"}, "point": {"S": "2026-01-01T00:00:00Z+900s"}}
    first = {
        "TableName": "readings",
        "Key": key,
        "UpdateExpression": "SET #r0 = :r0",
        "ExpressionAttributeNames": {"#r0": "0#temperature#1"},
        "ExpressionAttributeValues": {":r0": {"M": {"t": {"S": "x" * 2900}}}},
    }
    later = {
        **first,
        "ExpressionAttributeNames": {"#r0": "60#temperature#1"},
        "ExpressionAttributeValues": {":r0": {"M": {"v": {"N": "21.5"}}}},
    }
    tables = CannedTables()
    with canned_aws({}, tables=tables) as recorded:
        client = boto3.client(
            "dynamodb",
            region_name="eu-west-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        client.update_item(**first)
        tables.publish()
        client.update_item(**later)

    # Then the later update is billed on the item it leaves (3 units), not its own values (1)
    assert call_units(recorded[-1:]).units.dynamodb_write_request_unit == 3
    assert (
        call_units(
            [_request("DynamoDB_20120810.UpdateItem", later)]
        ).units.dynamodb_write_request_unit
        == 1
    )


def test_the_floor_packs_a_deliverys_readings_in_one_item_whatever_the_layout() -> None:
    # Given one delivery's readings written as two items (two buckets, or two instants), each
    # with the key, the sensor's fields and the delivery's source (about 1.1 KB together)
    from bench.cost import floor_units
    from infra.config import StageConfig

    def item(point: str, reading: str) -> dict:
        return {
            "series": {"S": "efento#1"},
            "point": {"S": point},
            "sensor_family": {"S": "x" * 1000},
            "@source": {"M": {"i": {"S": "e" * 60}}},
            reading: {"M": {"v": {"N": "1"}}},
        }

    two = [item("a", "0#t#1"), item("b", "60#t#1")]
    one = [{**two[0], **two[1], "point": {"S": "a"}}]

    def floor_wru(writes: list) -> float:
        return floor_units(
            b"{}", config=StageConfig(), readings=2, events=1, writes=writes, batch_size=1
        ).dynamodb_write_request_unit

    # Then its floor is one item holding both readings (2 KB: 2 units plus the state's 1), not
    # the two items' sum (3 started KB)
    assert floor_wru(two) == floor_wru(one) == 3
