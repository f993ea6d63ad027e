"""docs/events.md shows, for every detail-type, the detail the processor really publishes.

The examples are generated from the real samples through the real normalization and event
building, never written by hand. When event shapes change on purpose, regenerate them with
`SENSORHOOK_UPDATE_DOCS=1 pytest tests/unit/test_events_doc.py` and review the diff.
"""

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import Flavor
from sensorhook.core.forwarding import EndpointStatus
from sensorhook.dal.endpoints_store import Transition
from sensorhook.dal.events import OutboundEvent
from sensorhook.dal.health_store import GatewayHealth
from sensorhook.logic.domain_events import (
    ENDPOINT_STATUS_CHANGED,
    READINGS_RECEIVED,
    STEAM_TRAP_STATE_CHANGED,
    delivery_events,
)
from sensorhook.logic.health import (
    GatewayHealthChanged,
    SensorSilenceChanged,
    gateway_event,
    sensor_event,
)
from sensorhook.providers.registry import normalize
from tests.fixtures.loader import fixture_text, sample_json, sample_text

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
RECEIVED_AT = datetime(2022, 6, 28, 20, 20, 3, tzinfo=UTC)
# the body each detail-type's example is generated from
EXAMPLE_SOURCES = {
    READINGS_RECEIVED: (
        Flavor.EVERACTIVE_DS_SENSOR_READING,
        sample_text("everactive-ds/sensor-reading-mhm.json"),
    ),
    # no public steam trap webhook exists: the seed's documented example body is the source
    STEAM_TRAP_STATE_CHANGED: (
        Flavor.EVERACTIVE_V2020_STEAM_TRAP,
        fixture_text("everactive-v2020/steam-trap-state-change.json"),
    ),
}


def health_events() -> list[OutboundEvent]:
    """The health run's events for the samples' gateway (its status, then the reading it
    relayed) and sensor (its reading), judged by the default thresholds, through the builders
    the run publishes with."""
    status = sample_json("everactive-ds/gateway-status-v3.json")
    reading = sample_json("everactive-ds/sensor-reading-mhm.json")
    last_status = datetime.fromisoformat(status["timestamp"])
    last_reading = datetime.fromtimestamp(reading["timestamp"], UTC)
    gateway = {"provider": "everactive", "gateway_id": status["serial"], "offline_after_s": 900}
    sensor = {
        "provider": "everactive",
        "sensor_id": reading["macAddress"],
        "expected_period_s": 60,
        "silent_after_s": 180,
    }
    return [
        gateway_event(
            GatewayHealthChanged(
                **gateway,
                health=GatewayHealth.OFFLINE,
                last_contact_at=last_status,
                detected_at=last_status + timedelta(minutes=15, seconds=23),
            )
        ),
        # a relayed reading counts as contact when sensorhook received it
        gateway_event(
            GatewayHealthChanged(
                **gateway,
                health=GatewayHealth.ONLINE,
                last_contact_at=RECEIVED_AT,
                detected_at=RECEIVED_AT + timedelta(minutes=2, seconds=57),
            )
        ),
        sensor_event(
            SensorSilenceChanged(
                **sensor,
                silent=True,
                last_measured_at=last_reading,
                detected_at=last_reading + timedelta(minutes=3, seconds=9),
            )
        ),
        sensor_event(
            SensorSilenceChanged(
                **sensor,
                silent=False,
                last_measured_at=last_reading + timedelta(minutes=20),
                detected_at=last_reading + timedelta(minutes=23, seconds=9),
            )
        ),
    ]


EXAMPLE_BLOCK = re.compile(
    r"(<!-- example: (?P<detail_type>[^>]+?) -->\n```json\n)(?P<detail>.*?)(\n?```)", re.DOTALL
)


def generated_examples() -> dict[str, str]:
    examples = {}
    for detail_type, (flavor, body) in EXAMPLE_SOURCES.items():
        event_id = event_id_for(flavor, json.loads(body))
        delivery = normalize(flavor, body, event_id=event_id, received_at=RECEIVED_AT)
        [event] = [e for e in delivery_events(event_id, delivery) if e.detail_type == detail_type]
        examples[detail_type] = json.dumps(json.loads(event.detail), indent=2, ensure_ascii=False)
    for event in health_events():
        examples[event.detail_type] = json.dumps(
            json.loads(event.detail), indent=2, ensure_ascii=False
        )
    # the fifth no-response in a row, as the endpoint policy records and publishes it
    change = Transition(
        endpoint="partner-historian",
        at=RECEIVED_AT,
        from_status=EndpointStatus.NO_RESPONSE,
        to_status=EndpointStatus.TEMPORARILY_DISABLED,
        reason="5 deliveries in a row without a response",
        last_response_code=None,
    )
    examples[ENDPOINT_STATUS_CHANGED] = json.dumps(change.as_event_detail(), indent=2)
    return examples


def test_every_detail_type_has_an_example_generated_from_the_samples() -> None:
    # Given the examples the code generates from the samples
    examples = generated_examples()
    text = EVENTS_DOC.read_text(encoding="utf-8")
    if os.environ.get("SENSORHOOK_UPDATE_DOCS"):
        text = EXAMPLE_BLOCK.sub(
            lambda m: m.group(1) + examples[m.group("detail_type")] + "\n```", text
        )
        EVENTS_DOC.write_text(text, encoding="utf-8")

    # When the documented examples are read
    documented = {m.group("detail_type"): m.group("detail") for m in EXAMPLE_BLOCK.finditer(text)}

    # Then each detail-type is documented with exactly what is published
    assert documented == examples
