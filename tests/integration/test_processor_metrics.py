"""The processor's per-provider readings metric: one EMF line per provider and batch, the sum
of what the batch's deliveries stored (the dashboard reads its Sum), not one per delivery."""

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from sensorhook.core.flavors import Flavor
from sensorhook.handlers import processor
from tests.fixtures.loader import fixture_text, sample_text
from tests.integration.conftest import Aws
from tests.integration.test_processor import (
    GATEWAY_V3,
    RECEIVED_AT,
    envelope,
    mhm_measured_at,
    run,
)


@pytest.fixture(autouse=True)
def fresh_processor(aws: Aws) -> Iterator[None]:
    processor.delivery_processor.cache_clear()
    yield
    processor.delivery_processor.cache_clear()


def _by_provider(output: str) -> list[tuple[str, list[float]]]:
    lines = [json.loads(line) for line in output.splitlines() if "ReadingsStoredByProvider" in line]
    return [(line["provider"], line["ReadingsStoredByProvider"]) for line in lines]


def test_a_batch_prints_one_line_per_provider_with_the_sum(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch of three machine-health readings (16 readings each), a gateway status,
    # an Efento batch, and a copy of the first reading (stored nothing)
    readings = [
        mhm_measured_at(RECEIVED_AT - timedelta(minutes=n), received_at=RECEIVED_AT)
        for n in range(3)
    ]
    efento = envelope(Flavor.EFENTO_MEASUREMENTS, fixture_text("efento/multi-channel-batch.json"))
    status = envelope(Flavor.EVERACTIVE_DS_GATEWAY_STATUS, sample_text(GATEWAY_V3))
    capsys.readouterr()

    # When the processor handles it
    response = run(
        *((f"m-{n}", reading) for n, reading in enumerate(readings)),
        ("g-1", status),
        ("e-1", efento),
        ("m-copy", readings[0]),
    )

    # Then one line per provider, each the sum of what its deliveries stored
    assert response == {"batchItemFailures": []}
    assert _by_provider(capsys.readouterr().out) == [("efento", [14.0]), ("everactive", [48.0])]

    # And the next batch starts from zero
    run(("m-again", readings[1]))
    assert _by_provider(capsys.readouterr().out) == []
