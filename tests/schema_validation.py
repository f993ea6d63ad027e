"""Validate published events against schemas/events/<detail-type>.json with `jsonschema`."""

from functools import cache
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

from infra.event_schemas import event_schemas


@cache
def validators() -> dict[str, Draft4Validator]:
    return {
        detail_type: Draft4Validator(schema, format_checker=FormatChecker())
        for detail_type, schema in event_schemas().items()
    }


def validate_event(event: dict[str, Any]) -> None:
    """An EventBridge event (as a rule target receives it) against its detail-type's schema."""
    detail_type = event["detail-type"]
    known = validators()
    if detail_type not in known:
        raise AssertionError(f"no schema for detail-type {detail_type!r} in schemas/events/")
    known[detail_type].validate(event["detail"])
