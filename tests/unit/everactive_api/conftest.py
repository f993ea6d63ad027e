"""Log capture for the API client's tests: every record with its structured keys."""

import json
import logging
from collections.abc import Callable

import pytest


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, object]]]:
    """The records so far as dicts (message plus the `extra` keys), as CloudWatch gets them."""
    caplog.set_level(logging.INFO)

    def records() -> list[dict[str, object]]:
        return [json.loads(json.dumps(vars(record), default=str)) for record in caplog.records]

    return records
