"""The fault drill (`make faults`) on the local sandbox: a tenth of the AWS calls the functions
make fail, and after botocore's retries, SQS's redeliveries and a DLQ redrive nothing is lost
and nothing is stored or published twice."""

import pytest

from local.faults import KINDS
from local.faults.drill import run_drill

pytestmark = pytest.mark.slow


def test_with_a_tenth_of_aws_calls_failing_nothing_is_lost_or_doubled() -> None:
    # Given the demo's traffic (every flavor, provider duplicates) with 10% of the functions'
    # DynamoDB, S3, SQS, EventBridge and Secrets Manager requests failing in every way
    figures = run_drill(count=150, rate=50, share=0.10, seed=11)
    # Then faults of every kind were injected, into the services the hot path uses
    assert set(figures.faults["by_kind"]) == set(KINDS)
    assert {"dynamodb", "s3", "sqs", "eventbridge"} <= set(figures.faults["by_service"])
    # And every request was accepted in the end (503s re-sent, as providers retry)
    assert figures.never_accepted == 0
    assert figures.accepted_deliveries == 150
    # And every reading is stored, once in DynamoDB and once in the lake
    assert figures.stored_readings == figures.expected_readings > 0
    assert (figures.lost, figures.extra, figures.doubled_in_lake) == (0, 0, 0)
    assert figures.lake_rows == figures.stored_readings
    # And every gateway status report once in its history and once in the lake
    assert figures.stored_gateway_statuses == figures.expected_gateway_statuses > 0
    assert figures.gateway_status_rows == figures.stored_gateway_statuses
    assert figures.gateway_statuses_doubled_in_lake == 0
    # And every delivery's events were published, none twice per dedupe id
    assert figures.events > 0
    assert (figures.published_twice, figures.deliveries_without_events) == (0, 0)
    # And nothing is left in the DLQ or quarantine
    assert (figures.dlq_left, figures.quarantined) == (0, 0)
    assert figures.ok
