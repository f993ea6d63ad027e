"""The Standard Webhooks receiver example in docs/forwarding.md works as printed: it accepts what
the forwarder sends, dedupes a retry, and refuses a tampered byte."""

import re
from datetime import UTC, datetime
from pathlib import Path

from sensorhook.core.forwarding import EndpointSecret, ForwardingEndpoint
from sensorhook.logic.forwarding import delivery_body, request_headers

DOC = Path(__file__).resolve().parents[3] / "docs" / "forwarding.md"
EXAMPLE = re.compile(
    r"<!-- verified by tests/unit/forwarding/test_forwarding_doc.py -->\n```python\n(.*?)```",
    re.DOTALL,
)


def test_the_documented_receiver_verifies_dedupes_and_refuses_tampering():
    # Given the example exactly as documented
    namespace: dict[str, object] = {}
    exec(EXAMPLE.search(DOC.read_text()).group(1), namespace)  # type: ignore[union-attr]  # noqa: S102
    receive = namespace["receive"]
    secret = str(namespace["SECRET"])
    endpoint = ForwardingEndpoint(
        name="partner", url="https://partner.example.com/in", detail_types=("readings.*",)
    )
    event = {
        "id": "e-1",
        "detail-type": "readings.received",
        "time": "2026-11-29T20:00:00Z",
        "source": "sensorhook",
        "detail": {"count": 1},
    }
    body = delivery_body(event)
    # When the forwarder's delivery (then its retry, then a tampered copy) reaches it
    first = request_headers(endpoint, "e-1", body, EndpointSecret(secret=secret), datetime.now(UTC))
    retry = request_headers(endpoint, "e-1", body, EndpointSecret(secret=secret), datetime.now(UTC))
    tampered = body.replace(b'"count":1', b'"count":2')
    # Then it accepts, accepts the retry as already seen, and refuses the tampered body
    assert receive(body, first) == 200  # type: ignore[operator]
    assert namespace["seen"] == {"e-1"}
    assert receive(body, retry) == 200  # type: ignore[operator]
    assert receive(tampered, first) == 401  # type: ignore[operator]
