"""A Step Functions or Athena client that answers as AWS would, from canned responses
(botocore's Stubber checks every request against the API model and the expected parameters),
put in place of the target's own client for that service."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cli.target import Target
from tests.cli.conftest import REGION


@contextmanager
def stubbed(monkeypatch: pytest.MonkeyPatch, service: str) -> Iterator[Stubber]:
    client = boto3.client(service, region_name=REGION)
    original = Target.client

    def client_for(self: Target, name: str) -> Any:
        return client if name == service else original(self, name)

    monkeypatch.setattr(Target, "client", client_for)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
