"""Provider emulator: plays Everactive and Efento webhooks against any URL.

Usable from a shell (`python -m local.emulator stream|test`, see docs/emulator.md) or in-process:

    installation = Installation.create(seed=1, sensors=6, gateways=2, start=now)
    factory = DeliveryFactory(secrets=Secrets(), base_url="http://127.0.0.1:8080")
    stream = Stream(installation, factory, list(Flavor), FaultShares(duplicate=0.05))
    report = Sender().run(stream, count=200, rate=100)
    report.expected_event_ids(), report.expected_samples(), report.unexpected()
"""

from local.emulator.deliveries import Delivery, DeliveryFactory, Fault, Intent, Secrets
from local.emulator.efento import compress
from local.emulator.efento_webhook import (
    EfentoWebhooks,
    PointWebhook,
    WebhookPolicy,
    WebhookStatus,
)
from local.emulator.installation import Installation, Payload
from local.emulator.samples import Sample
from local.emulator.sender import Sender, SendReport, SendResult, run_in_own_process
from local.emulator.signing import DigestMode, signed_headers
from local.emulator.stream import FaultShares, Stream, backdated_start

__all__ = [
    "Delivery",
    "DeliveryFactory",
    "DigestMode",
    "EfentoWebhooks",
    "Fault",
    "FaultShares",
    "Installation",
    "Intent",
    "Payload",
    "PointWebhook",
    "Sample",
    "Secrets",
    "SendReport",
    "SendResult",
    "Sender",
    "Stream",
    "WebhookPolicy",
    "WebhookStatus",
    "backdated_start",
    "compress",
    "run_in_own_process",
    "signed_headers",
]
