"""DynamoDB's wire format, for the stores' documents and items, without boto3.

boto3's TypeSerializer and TypeDeserializer would do it, but importing boto3 imports
s3transfer, its thread pools and multiprocessing: about 30 ms of CPU in the cold start of
each function that imported boto3 for them alone (subscriptions, gateway health, recovery;
docs/cost.md, "Cold start"). Their documents are JSON (strings, numbers as Decimal or int,
booleans, null, lists and maps), which is all `attribute_value` writes, with boto3's rules
for what it writes: a float is refused (its binary value is not the decimal it prints), and a
number DynamoDB cannot hold exactly is refused. Items are read back with Powertools'
deserializer, boto3's mapping without boto3 (Binary aside, which no item here holds), as are
the readings table's items and the stream images the lake writer gets.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.shared.dynamodb_deserializer import DYNAMODB_CONTEXT, TypeDeserializer

AttributeValue = dict[str, Any]

_DESERIALIZER = TypeDeserializer()


def attribute_value(value: Any) -> AttributeValue:
    """`value`, a JSON value, as a DynamoDB attribute value (what boto3's TypeSerializer gives
    for the same value); TypeError for anything else, a float included."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):  # before int: a bool is an int
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        # the context traps inexact and rounded values: 38 digits at most, as DynamoDB holds
        number = str(DYNAMODB_CONTEXT.create_decimal(value))
        if number in ("Infinity", "-Infinity", "NaN", "sNaN"):
            raise TypeError(f"{number} is not a number DynamoDB can store")
        return {"N": number}
    if isinstance(value, Mapping):
        return {"M": {str(name): attribute_value(item) for name, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [attribute_value(item) for item in value]}
    raise TypeError(f"not a JSON value DynamoDB stores here: {type(value).__name__}")


def plain(value: AttributeValue) -> Any:
    """An attribute value back as Python: Decimal numbers, sets for the set types."""
    return _DESERIALIZER.deserialize(value)


def plain_item(item: Mapping[str, AttributeValue]) -> dict[str, Any]:
    """A wire-format item (what the low-level client returns) as Python values."""
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
