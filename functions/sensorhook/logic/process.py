"""From authentic deliveries to stored readings, state, gateways and events, at most once each.

One SQS batch goes through two steps:

1. `archive_batch`: every delivery of the batch is archived raw (claim-checked bodies fetched
   from the inbox) before anything is processed, so nothing is acknowledged unarchived.
2. `DeliveryProcessor.process`, per delivery: normalize and store inside a Powertools
   idempotent function keyed on the envelope's event_id, so a delivery seen twice (a provider
   re-send, an SQS redelivery, a duplicate in the same batch) is stored and published once.
   A body that fails validation is quarantined and counts as processed; any other error
   propagates so SQS retries the delivery and finally dead-letters it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from pydantic import BaseModel

from sensorhook.core.envelope import IngestEnvelope
from sensorhook.core.flavors import Flavor
from sensorhook.core.reading import Reading
from sensorhook.dal.archive import Archive, InboxBodyMissing, quarantine_key, raw_key
from sensorhook.dal.events import EventPublisher
from sensorhook.dal.gateways_store import GatewaysStore
from sensorhook.dal.lake_store import LakeStore
from sensorhook.dal.readings_store import ReadingsStore
from sensorhook.dal.sensor_state_store import SensorStateStore
from sensorhook.logic.domain_events import delivery_events
from sensorhook.logic.lake import write_gateway_statuses
from sensorhook.observability import logger, metrics
from sensorhook.providers.registry import InvalidPayload, normalize


class DeliverySummary(BaseModel):
    """What processing one delivery did; also the idempotency record's stored result."""

    readings: int = 0
    state_updates: int = 0
    gateway_statuses: int = 0
    steam_trap_changes: int = 0
    events: int = 0
    quarantined: bool = False


@dataclass(frozen=True)
class ProcessorStores:
    readings: ReadingsStore
    sensor_state: SensorStateStore
    gateways: GatewaysStore
    archive: Archive
    events: EventPublisher
    lake: LakeStore  # gateway status history (readings reach the lake from their stream)


@dataclass(frozen=True)
class ArchivedBatch:
    """The batch after archiving: envelopes with their bodies inline, by SQS message id."""

    envelopes: dict[str, IngestEnvelope]
    missing_bodies: dict[str, str]  # message id -> inbox key that could not be read


def archive_batch(envelopes: Mapping[str, IngestEnvelope], archive: Archive) -> ArchivedBatch:
    """Archive the batch raw: one gzip JSON-lines object per flavor, named by message ids.

    A delivery whose claim-checked body is gone cannot be archived or processed; it is left
    out and reported, so that only it is retried (and dead-lettered), not the whole batch.
    Any other failure raises: the caller must then fail the whole batch. The archive is
    per delivery attempt: a delivery SQS retries in another batch is archived again there.
    """
    resolved: dict[str, IngestEnvelope] = {}
    missing: dict[str, str] = {}
    for message_id, envelope in envelopes.items():
        inbox_key = envelope.body_s3_key
        if envelope.body is not None or inbox_key is None:
            resolved[message_id] = envelope
            continue
        try:
            body = archive.get_inbox_body(inbox_key)
        except InboxBodyMissing:
            missing[message_id] = inbox_key
            continue
        resolved[message_id] = envelope.model_copy(update={"body": body})

    by_flavor: dict[Flavor, dict[str, IngestEnvelope]] = {}
    for message_id, envelope in resolved.items():
        by_flavor.setdefault(envelope.flavor, {})[message_id] = envelope
    for flavor, group in by_flavor.items():
        # the earliest receipt names the hour, so a retried identical batch lands on one key
        first_received = min(envelope.received_at for envelope in group.values())
        archive.put_raw(raw_key(flavor, first_received, group.keys()), list(group.values()))
    return ArchivedBatch(envelopes=resolved, missing_bodies=missing)


class DeliveryProcessor:
    """Stores and publishes each delivery once, however often it arrives."""

    def __init__(
        self,
        stores: ProcessorStores,
        *,
        reading_ttl_days: int,
        persistence_layer: BasePersistenceLayer,
        idempotency_ttl_seconds: int,
    ) -> None:
        self.stores = stores
        self._stored_now = False
        self._reading_ttl_days = reading_ttl_days
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath="event_id", expires_after_seconds=idempotency_ttl_seconds
        )
        self._store_once = idempotent_function(
            data_keyword_argument="envelope",
            persistence_store=persistence_layer,
            config=self.idempotency_config,
            output_serializer=PydanticSerializer(model=DeliverySummary),
        )(self._normalize_and_store)

    def process(self, envelope: IngestEnvelope) -> DeliverySummary:
        """Process one delivery whose body is inline (see `archive_batch`).

        An invalid body escapes the idempotent function on purpose: Powertools then keeps no
        record of it, so a replay of the same event_id after a fix is processed, not skipped.
        Re-sends of the invalid body overwrite the same quarantine object.
        """
        self._stored_now = False
        try:
            summary: DeliverySummary = self._store_once(envelope=envelope)
        except InvalidPayload as error:
            self.stores.archive.put_quarantine(quarantine_key(envelope), envelope, str(error))
            metrics.add_metric(name="QuarantinedPayloads", unit=MetricUnit.Count, value=1)
            logger.warning(
                "delivery quarantined",
                extra={"event_id": envelope.event_id, "flavor": envelope.flavor.value},
            )
            return DeliverySummary(quarantined=True)
        metrics.add_metric(
            name="DeliveriesStored" if self._stored_now else "DuplicateDeliveriesSkipped",
            unit=MetricUnit.Count,
            value=1,
        )
        return summary

    def _normalize_and_store(self, envelope: IngestEnvelope) -> DeliverySummary:
        # Powertools returns the stored result without calling this for a duplicate: the flag
        # is how `process` tells the two apart (a Lambda runs one record at a time).
        self._stored_now = True
        if envelope.body is None:
            raise ValueError(f"envelope {envelope.event_id} reached processing without a body")
        delivery = normalize(
            envelope.flavor,
            envelope.body,
            event_id=envelope.event_id,
            received_at=envelope.received_at,
        )
        readings = delivery.readings
        stored = self.stores.readings.put_readings(readings, ttl_days=self._reading_ttl_days)
        state_updates = sum(
            self.stores.sensor_state.update_latest(reading)
            for reading in newest_per_state(readings)
        )
        for status in delivery.gateway_statuses:
            self.stores.gateways.update_status(status)
        write_gateway_statuses(
            delivery.gateway_statuses,
            event_id=envelope.event_id,
            received_at=envelope.received_at,
            store=self.stores.lake,
        )
        for (provider, gateway_id), at in last_reading_per_gateway(readings).items():
            self.stores.gateways.advance_last_reading_at(provider, gateway_id, at)
        published = self.stores.events.publish(delivery_events(envelope.event_id, delivery))
        metrics.add_metric(name="ReadingsStored", unit=MetricUnit.Count, value=stored)
        # per provider for the dashboard; a delivery is one flavor, so one provider
        with single_metric(
            name="ReadingsStoredByProvider",
            unit=MetricUnit.Count,
            value=stored,
            namespace=metrics.namespace,
            default_dimensions={"provider": envelope.flavor.provider},
        ):
            pass  # written when the block exits
        return DeliverySummary(
            readings=stored,
            state_updates=state_updates,
            gateway_statuses=len(delivery.gateway_statuses),
            steam_trap_changes=len(delivery.steam_trap_changes),
            events=published,
        )


def newest_per_state(readings: Sequence[Reading]) -> list[Reading]:
    """The newest reading of each (series, metric, channel): the only ones that can become
    sensor state, so a delivery costs one conditional write per state item, not per reading."""
    newest: dict[tuple[str, str, str], Reading] = {}
    for reading in readings:
        key = (reading.series_key, reading.metric, reading.channel)
        current = newest.get(key)
        if current is None or current.measured_at < reading.measured_at:
            newest[key] = reading
    return list(newest.values())


def last_reading_per_gateway(readings: Sequence[Reading]) -> dict[tuple[str, str], datetime]:
    """When each gateway last relayed a reading we know of: the newest of its readings'
    `min(measured_at, received_at)`.

    Neither clock alone will do. `measured_at` is the sensor's: a future-dated reading would
    keep a gateway online for as long as its clock is ahead. `received_at` is when the provider's
    cloud got round to delivering: a backlog it delivers late, gathered before the gateway went
    quiet, would bring an offline gateway back. The earlier of the two is a moment the gateway
    was certainly in contact; its own status messages (`reported_at`) speak for the present.
    """
    latest: dict[tuple[str, str], datetime] = {}
    for reading in readings:
        if reading.gateway_id is None:
            continue
        key = (reading.provider, reading.gateway_id)
        contact = min(reading.measured_at, reading.received_at)
        if key not in latest or latest[key] < contact:
            latest[key] = contact
    return latest
