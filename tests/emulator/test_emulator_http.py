"""The emulator over real HTTP, against a recording receiver on 127.0.0.1."""

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from local.emulator import (
    DeliveryFactory,
    EfentoWebhooks,
    Fault,
    FaultShares,
    Installation,
    Intent,
    Secrets,
    Sender,
    Stream,
    WebhookStatus,
    run_in_own_process,
)
from local.emulator.cli import main
from local.emulator.installation import seeded_rng
from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import FLAVOR_BY_ROUTE, ROUTES, Flavor
from tests.emulator.stub_receiver import StubReceiver, running

SECRETS = Secrets.model_validate(
    {
        "v2020_signing": {"keys": {"sub-test": "s3cret"}, "previous_keys": {}},
        "ds_header": {"headers": {"Authorization": "Basic dGVzdDp0ZXN0"}},
        "efento_header": {"headers": {"X-Token": "t0ken", "X-Site": "plant-1"}},
    }
)


@pytest.fixture
def secrets_file(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text(SECRETS.model_dump_json())
    return path


@pytest.mark.parametrize("flavor", list(Flavor))
def test_test_command_posts_one_mock_payload_and_shows_the_response(flavor, secrets_file, capsys):
    stub = StubReceiver(SECRETS)
    with running(stub) as base_url:
        # When the TEST button is pressed for the flavor
        code = main(["test", "--base-url", base_url, "--flavor", flavor.value,
                     "--secrets-file", str(secrets_file), "--seed", "4"])  # fmt: skip
    # Then one authentic request reached the flavor's route and the response is shown
    out = capsys.readouterr().out
    assert code == 0
    assert [r.path for r in stub.requests] == [ROUTES[flavor]]
    assert stub.requests[0].status == 202
    assert "status:   202" in out
    assert '{"status": 202}' in out


@pytest.mark.parametrize(
    ("fault", "status"),
    [("bad-signature", 401), ("malformed", 400), ("stale-date", 401)],
)
def test_test_command_faults_get_the_intended_rejection(fault, status, secrets_file, capsys):
    stub = StubReceiver(SECRETS)
    with running(stub) as base_url:
        main(["test", "--base-url", base_url, "--flavor", "everactive-v2020-07", "--fault",
              fault, "--secrets-file", str(secrets_file), "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["request"]["expected_status"] == status
    assert report["response"]["status"] == str(status)


def test_test_command_posts_to_an_exact_url(capsys):
    stub = StubReceiver(Secrets())
    with running(stub) as base_url:
        main(["test", "--url", f"{base_url}/anything", "--flavor", "efento-measurements"])
    assert [r.path for r in stub.requests] == ["/anything"]
    assert "status:   404" in capsys.readouterr().out


def test_stream_command_sends_every_fault_and_each_gets_its_intended_outcome(secrets_file, capsys):
    stub = StubReceiver(SECRETS)
    with running(stub) as base_url:
        # When a stream with every kind of fault is sent
        code = main(["stream", "--base-url", base_url, "--count", "240", "--rate", "400",
                     "--seed", "9", "--secrets-file", str(secrets_file), "--json", "--check",
                     "--duplicate-share", "0.1", "--stale-date-share", "0.1",
                     "--bad-signature-share", "0.1", "--malformed-share", "0.1"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    # Then every request was answered as its tag says, and the summary adds up
    assert code == 0
    assert summary["sent"] == len(stub.requests) == 240
    assert summary["unexpected_responses"] == 0
    assert set(summary["by_intent"]) == {"accepted", "duplicate", "rejected-401", "rejected-400"}
    assert set(summary["by_flavor"]) == {flavor.value for flavor in Flavor}
    assert sum(summary["responses_by_status"].values()) == 240
    assert summary["latency_ms"]["p50"] is not None
    assert summary["seed"] == 9
    assert Counter(r.status for r in stub.requests) == Counter(
        {int(k): v for k, v in summary["responses_by_status"].items()}
    )


def test_library_stream_knows_exactly_which_deliveries_and_duplicates_were_kept():
    # Given a stream driven in-process with duplicates and rejects
    installation = Installation.create(
        seed=21, sensors=4, gateways=2, start=datetime.now(UTC).replace(microsecond=0)
    )
    stub = StubReceiver(SECRETS)
    with running(stub) as base_url:
        factory = DeliveryFactory(SECRETS, base_url=base_url, rng=seeded_rng(21, "f"))
        shares = FaultShares(duplicate=0.2, bad_signature=0.1, malformed=0.05)
        stream = Stream(installation, factory, list(Flavor), shares, seeded_rng(21, "s"))
        report = Sender(concurrency=4).run(stream, count=150, rate=500)
    # Then the receiver's first-time 202s are exactly the deliveries the report expects kept
    kept = {
        event_id_for(FLAVOR_BY_ROUTE[r.path], json.loads(r.body))
        for r in stub.requests
        if r.status == 202
    }
    assert report.expected_event_ids() == kept
    duplicates = [r for r in report.results if r.delivery.fault is Fault.DUPLICATE]
    assert duplicates
    first_bodies = {r.delivery.body for r in report.results if r.delivery.intent is Intent.ACCEPTED}
    assert all(d.delivery.body in first_bodies for d in duplicates)
    assert not report.unexpected()
    samples = report.expected_samples()
    assert len(samples) >= len(kept)


def test_a_stream_sent_from_a_process_of_its_own_is_reported_as_in_process():
    # Given the same stream twice, each to a receiver of its own
    def stream(base_url: str) -> Stream:
        installation = Installation.create(
            seed=22, sensors=3, gateways=1, start=datetime(2026, 11, 30, 8, tzinfo=UTC)
        )
        factory = DeliveryFactory(SECRETS, base_url=base_url, rng=seeded_rng(22, "f"))
        shares = FaultShares(duplicate=0.2, bad_signature=0.1, malformed=0.1)
        return Stream(installation, factory, list(Flavor), shares, seeded_rng(22, "s"))

    in_process, own_process = StubReceiver(SECRETS), StubReceiver(SECRETS)
    # When one is sent by this process's threads and the other from a spawned process
    with running(in_process) as base_url:
        expected = Sender().run(stream(base_url), count=40, rate=400)
    with running(own_process) as base_url:
        report = run_in_own_process(stream(base_url), count=40, rate=400)
    # Then the receiver got the same requests, and the report pairs each of this process's
    # deliveries with the answer it got, as the in-process report does
    assert len(own_process.requests) == 40
    assert sorted(r.body for r in own_process.requests) == sorted(
        r.body for r in in_process.requests
    )
    assert [(r.seq, r.delivery.body, r.status) for r in report.results] == [
        (r.seq, r.delivery.body, r.status) for r in expected.results
    ]
    assert all(r.latency_s is not None and r.sent_at is not None for r in report.results)
    assert report.expected_event_ids() == expected.expected_event_ids()
    assert not report.unexpected()
    assert report.elapsed_s > 0


def test_efento_stops_sending_to_a_point_after_five_no_responses():
    # Given a receiver that never answers Efento within the client timeout
    installation = Installation.create(
        seed=1, sensors=1, gateways=1, start=datetime.now(UTC).replace(microsecond=0)
    )
    stub = StubReceiver(
        SECRETS, silent_paths=frozenset({ROUTES[Flavor.EFENTO_MEASUREMENTS]}), silence_s=0.5
    )
    webhooks = EfentoWebhooks(lambda: datetime.now(UTC))
    with running(stub) as base_url:
        factory = DeliveryFactory(SECRETS, base_url=base_url)
        stream = Stream(installation, factory, [Flavor.EFENTO_MEASUREMENTS])
        sender = Sender(timeout_s=0.1, concurrency=1, efento_webhooks=webhooks)
        # When eight batches fall due
        report = sender.run(stream, count=8)
    # Then five went unanswered and the rest were never sent (Efento does not resend)
    assert [r.outcome for r in report.results] == ["no response"] * 5 + [
        "not sent (webhook disabled)"
    ] * 3
    point_id = installation.measurement_points[0].point_id
    assert report.efento_webhooks == {point_id: WebhookStatus.TEMPORARILY_DISABLED}


def test_rate_is_held():
    stub = StubReceiver(SECRETS)
    installation = Installation.create(seed=2, sensors=3, gateways=1, start=datetime.now(UTC))
    with running(stub) as base_url:
        stream = Stream(
            installation,
            DeliveryFactory(SECRETS, base_url=base_url),
            [Flavor.EVERACTIVE_DS_SENSOR_READING],
        )
        report = Sender(concurrency=4).run(stream, count=100, rate=250)
    # request i leaves at i / rate: 99 / 250 s at the earliest
    assert 0.39 <= report.elapsed_s < 0.8
    assert report.summary()["sent"] == 100
