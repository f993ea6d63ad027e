"""docs/events.md shows, for every detail-type, the detail the processor really publishes.

The examples are generated from the real samples through the real normalization and event
building, never written by hand. When event shapes change on purpose, regenerate them with
`SENSORHOOK_UPDATE_DOCS=1 pytest tests/unit/test_events_doc.py` and review the diff.
"""

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from sensorhook.core.dedupe import event_id_for
from sensorhook.core.flavors import Flavor
from sensorhook.logic.domain_events import (
    READINGS_RECEIVED,
    STEAM_TRAP_STATE_CHANGED,
    delivery_events,
)
from sensorhook.providers.registry import normalize
from tests.fixtures.loader import fixture_text, sample_text

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
