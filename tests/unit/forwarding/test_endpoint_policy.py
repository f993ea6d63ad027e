"""Efento's statuses and thresholds, decided from an endpoint's record."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sensorhook.core.forwarding import EndpointStatus as S
from sensorhook.core.forwarding import ForwardingPolicy
from sensorhook.logic.endpoint_policy import (
    EndpointRecord,
    Next,
    Outcome,
    classify,
    decide,
    may_deliver,
    needs_policy,
    next_step,
    retry_delay,
)

NOW = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
POLICY = ForwardingPolicy()


def record(**fields: object) -> EndpointRecord:
    return replace(EndpointRecord(name="partner"), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (200, Outcome.OK),
        (204, Outcome.OK),
        (299, Outcome.OK),
        (301, Outcome.ERROR),
        (404, Outcome.ERROR),
        (410, Outcome.GONE),
        (429, Outcome.ERROR),
        (500, Outcome.ERROR),
        (None, Outcome.NO_RESPONSE),
    ],
)
def test_classify(code: int | None, outcome: Outcome):
    assert classify(code) is outcome


def test_new_until_the_first_delivery_then_the_answer_decides():
    assert decide(record(), NOW, POLICY) is S.NEW
    assert decide(record(last_outcome=Outcome.OK), NOW, POLICY) is S.OK
    assert decide(record(last_outcome=Outcome.ERROR), NOW, POLICY) is S.ERROR
    assert (
        decide(record(last_outcome=Outcome.NO_RESPONSE, consecutive_no_responses=1), NOW, POLICY)
        is S.NO_RESPONSE
    )


def test_five_no_responses_in_a_row_disable_temporarily():
    four = record(
        status=S.NO_RESPONSE,
        last_outcome=Outcome.NO_RESPONSE,
        consecutive_no_responses=4,
        failing_since=NOW,
    )
    assert decide(four, NOW, POLICY) is S.NO_RESPONSE
    assert may_deliver(four, NOW, POLICY)
    five = replace(four, consecutive_no_responses=5)
    assert decide(five, NOW, POLICY) is S.TEMPORARILY_DISABLED
    assert not may_deliver(five, NOW, POLICY)  # the forwarder stops at once
    assert needs_policy(five, NOW, POLICY)


def test_thirty_hours_without_success_disable_and_win_over_temporary():
    failing = record(
        status=S.ERROR, last_outcome=Outcome.ERROR, failing_since=NOW - timedelta(hours=30)
    )
    assert decide(failing, NOW - timedelta(seconds=1), POLICY) is S.ERROR
    assert decide(failing, NOW, POLICY) is S.DISABLED
    both = replace(failing, last_outcome=Outcome.NO_RESPONSE, consecutive_no_responses=9)
    assert decide(both, NOW, POLICY) is S.DISABLED


def test_410_disables():
    assert decide(record(status=S.OK, last_outcome=Outcome.GONE), NOW, POLICY) is S.DISABLED


def test_a_disable_is_left_only_by_the_machine_or_an_operator():
    for status in (S.TEMPORARILY_DISABLED, S.DISABLED):
        healed = record(status=status, last_outcome=Outcome.OK)
        assert decide(healed, NOW, POLICY) is status
        assert not may_deliver(healed, NOW, POLICY)


def test_a_backlog_comes_first():
    waiting = record(status=S.OK, last_outcome=Outcome.OK, backlog=True)
    assert not may_deliver(waiting, NOW, POLICY)
    assert needs_policy(waiting, NOW, POLICY)
    assert next_step(waiting, NOW, POLICY, 300).next is Next.DRAIN


def test_next_steps():
    held = record(status=S.TEMPORARILY_DISABLED, status_since=NOW - timedelta(hours=1))
    assert next_step(held, NOW, POLICY, 300) == next_step(held, NOW, POLICY, 300)
    step = next_step(held, NOW, POLICY, 300)
    assert (step.next, step.wait_seconds) == (Next.HOLD, 5 * 3600)
    failing = record(
        status=S.ERROR,
        last_outcome=Outcome.ERROR,
        failing_since=NOW - timedelta(hours=29, minutes=58),
    )
    step = next_step(failing, NOW, POLICY, 300)
    assert (step.next, step.wait_seconds) == (Next.WATCH, 300)  # looks again every check
    assert (
        next_step(record(status=S.OK, last_outcome=Outcome.OK), NOW, POLICY, 300).next is Next.DONE
    )
    assert next_step(record(status=S.DISABLED), NOW, POLICY, 300).next is Next.DONE


def test_retry_delay_is_exponential_with_jitter_and_honours_retry_after():
    rng = random.Random(1)  # noqa: S311 - jitter, not cryptography
    for attempt, ceiling in ((1, 5), (2, 20), (3, 80), (4, 320), (9, 36000), (30, 36000)):
        delays = {retry_delay(POLICY, attempt, rng=rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling + 1 for d in delays), (attempt, delays)
        if ceiling >= 20:
            assert len(delays) > 1  # jittered
    assert retry_delay(POLICY, 1, retry_after_s=120, rng=rng) >= 120
    assert retry_delay(POLICY, 1, retry_after_s=10**9, rng=rng) == 12 * 3600
