"""Efento's per-point webhook status, driven by a fake clock."""

from datetime import UTC, datetime, timedelta

from local.emulator.efento_webhook import PointWebhook, WebhookPolicy, WebhookStatus
from tests.builders import SettableClock


def FakeClock() -> SettableClock:
    return SettableClock(datetime(2026, 3, 1, tzinfo=UTC))


def fail(hook: PointWebhook, clock: FakeClock, times: int, every_minutes: float = 5) -> None:
    for _ in range(times):
        assert hook.can_send()
        hook.record(None)
        clock.advance(minutes=every_minutes)


def test_new_ok_and_error_follow_the_last_response():
    clock = FakeClock()
    hook = PointWebhook(WebhookPolicy(), clock)
    assert hook.status is WebhookStatus.NEW
    assert hook.record(201) is WebhookStatus.OK
    assert hook.record(500) is WebhookStatus.ERROR
    assert hook.record(None) is WebhookStatus.NO_RESPONSE
    assert hook.can_send()


def test_five_no_responses_in_a_row_pause_the_webhook_for_six_hours():
    clock = FakeClock()
    hook = PointWebhook(WebhookPolicy(), clock)
    # Given four no-responses, then one answered attempt: the streak starts over
    fail(hook, clock, 4)
    hook.record(401)
    fail(hook, clock, 4)
    assert hook.status is WebhookStatus.NO_RESPONSE
    # When the fifth in a row goes unanswered
    hook.record(None)
    # Then the webhook is temporarily disabled for six hours, then sends again
    assert hook.status is WebhookStatus.TEMPORARILY_DISABLED
    assert not hook.can_send()
    clock.advance(hours=5, minutes=59)
    assert not hook.can_send()
    clock.advance(minutes=1)
    assert hook.can_send()
    assert hook.status is WebhookStatus.NO_RESPONSE
    assert hook.record(200) is WebhookStatus.OK


def test_thirty_hours_without_a_response_disable_until_the_user_enables():
    clock = FakeClock()
    hook = PointWebhook(WebhookPolicy(), clock)
    hook.record(200)
    # Given the receiver goes silent; every five misses pause the webhook for six hours
    for _ in range(5):
        fail(hook, clock, 5)
        assert hook.status is WebhookStatus.TEMPORARILY_DISABLED
        clock.advance(hours=6)
    # When an attempt still gets no response 30 hours after the silence began
    hook.record(None)
    # Then the webhook is disabled and stays so
    assert hook.status is WebhookStatus.DISABLED
    clock.advance(hours=100)
    assert not hook.can_send()
    hook.enable()
    assert hook.can_send()


def test_thresholds_are_parameters():
    clock = FakeClock()
    policy = WebhookPolicy(
        no_response_limit=2,
        temporary_disable=timedelta(seconds=10),
        disable_after_silence=timedelta(seconds=30),
    )
    hook = PointWebhook(policy, clock)
    fail(hook, clock, 2, every_minutes=0)
    assert hook.status is WebhookStatus.TEMPORARILY_DISABLED
    clock.advance(seconds=10)
    fail(hook, clock, 1, every_minutes=0)
    clock.advance(seconds=25)
    hook.record(None)
    assert hook.status is WebhookStatus.DISABLED
