"""The stores' wire format (dal/wire_format.py) writes what boto3's TypeSerializer writes for
the JSON documents they keep, refuses what is not a JSON value DynamoDB holds exactly (boto3
takes sets and bytes, which no store passes), and reads back what it wrote."""

from decimal import Decimal, Inexact, Rounded
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from sensorhook.dal.wire_format import attribute_value, plain, plain_item

DOCUMENTS: list[Any] = [
    None,
    True,
    False,
    "",
    "steam trap é ✓",
    0,
    -7,
    10**37,
    Decimal("21.5"),
    Decimal("1.10"),
    Decimal("-0.000001"),
    Decimal("1E+5"),
    [],
    [1, "a", None, [True, {"x": Decimal("2.25")}]],
    {},
    {
        "name": "ds-sensor-readings",
        "status": "active",
        "attempts": 3,
        "last": {"code": 503, "at": "2026-11-30T12:00:00.000Z", "ratio": Decimal("0.75")},
        "headers": [{"key": "x-api-key", "value": "k"}],
        "gave_up_at": None,
    },
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=repr)
def test_a_json_value_is_written_as_boto3_writes_it_and_read_back_unchanged(
    document: Any,
) -> None:
    written = attribute_value(document)

    assert written == TypeSerializer().serialize(document)
    assert plain(written) == document
    assert plain_item({"doc": written}) == {"doc": document}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1.5, TypeError),  # a float's binary value is not the decimal it prints
        (Decimal("NaN"), TypeError),
        (Decimal("Infinity"), TypeError),
        (Decimal("-Infinity"), TypeError),
        (Decimal("1." + "1" * 40), (Inexact, Rounded)),  # more digits than DynamoDB holds
        ({"when": object()}, TypeError),
        (b"bytes", TypeError),
        ({1, 2}, TypeError),  # no store keeps a set
    ],
    ids=["float", "NaN", "Infinity", "-Infinity", "40 digits", "an object", "bytes", "a set"],
)
def test_what_is_not_a_json_value_dynamodb_holds_exactly_is_refused(
    value: Any, error: type[Exception] | tuple[type[Exception], ...]
) -> None:
    with pytest.raises(error):
        attribute_value(value)
