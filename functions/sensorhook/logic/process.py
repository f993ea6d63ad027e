"""From authentic deliveries to stored readings, state, gateways and events, at most once each.

One SQS batch goes through two steps:

1. `archive_batch`: every delivery of the batch is archived raw (claim-checked bodies fetched
   from the inbox) before anything is processed, so nothing is acknowledged unarchived.
2. `DeliveryProcessor.process`, per delivery: normalize and store inside a Powertools
   idempotent function keyed on the envelope's event_id, so a delivery seen twice (a provider
   re-send, an SQS redelivery, a duplicate in the same batch) is stored and published once.
   A flavor that publishes nothing (Data Services gateway status) keeps no idempotency
   record: every write it makes is conditional (its history item is written once, its
   gateway's status only moves forward), so storing it again stores nothing twice.
   A body that fails validation, or holds something no store can take, is quarantined before
   anything is written and counts as processed; any other error propagates so SQS retries
   the delivery and finally dead-letters it.

A large delivery (an Efento batch can stand for 100,000 readings) is stored in chunks of
`chunk_readings`, each chunk's readings, state, gateways and events in turn, and its progress
recorded after each chunk. When too little time is left for the next chunk, the delivery fails
(DeliveryUnfinished) before Lambda would kill it: SQS retries it after its visibility timeout,
and the retry resumes after the last chunk recorded.

Device clocks are kept as sent, but never trusted beyond receipt: state and liveness are
ordered by `min(device time, received_at + future_tolerance)`, and a reading dated later than
that is flagged `future_dated` and counted (FutureDatedReports).
"""

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

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
from sensorhook.core.normalized import NormalizedDelivery
from sensorhook.core.reading import Reading
from sensorhook.dal.archive import (
    Archive,
    InboxBodyMissing,
    InboxBodyUnreadable,
    quarantine_key,
    raw_key,
)
from sensorhook.dal.delivery_progress import DeliveryProgress
from sensorhook.dal.events import EventPublisher
from sensorhook.dal.gateway_history import GatewayHistoryStore
from sensorhook.dal.gateways_store import GatewaysStore
from sensorhook.dal.readings_store import ReadingsStore
from sensorhook.dal.sensor_state_store import SensorState, SensorStateStore
from sensorhook.logic.domain_events import delivery_events
from sensorhook.observability import logger, metrics
from sensorhook.providers.registry import (
    CHANNEL_ORDER,
    TIME_ORDER,
    DeliveryChunks,
    InvalidPayload,
)

if TYPE_CHECKING:
    from sensorhook.logic.efento_gaps import GapDetected


class DeliverySummary(BaseModel):
    """What processing one delivery did; also the idempotency record's stored result.

    Counts are those of the attempt that finished the delivery (a resumed delivery's earlier
    chunks were counted by the attempts that stored them)."""

    readings: int = 0
    state_updates: int = 0
    gateway_statuses: int = 0  # stored into the history now (a copy already there: 0)
    steam_trap_changes: int = 0
    events: int = 0
    future_dated: int = 0
    chunks: int = 1
    resumed_at_chunk: int = 0
    quarantined: bool = False


@dataclass(frozen=True)
class ProcessorStores:
    readings: ReadingsStore
    sensor_state: SensorStateStore
    gateways: GatewaysStore
    archive: Archive
    events: EventPublisher
    progress: DeliveryProgress
    # gateway status history (reaches the lake from the readings table's stream, like readings)
    gateway_history: GatewayHistoryStore


@dataclass(frozen=True)
class ProcessingLimits:
    reading_ttl_days: int
    future_tolerance: timedelta
    chunk_readings: int
    chunk_time_guard_ms: int


@dataclass(frozen=True)
class ArchivedBatch:
    """The batch after archiving: envelopes with their bodies inline, by SQS message id."""

    envelopes: dict[str, IngestEnvelope]
    missing_bodies: dict[str, str]  # message id -> inbox key that is not there
    unreadable_bodies: dict[str, str]  # message id -> why the inbox did not serve it


def archive_batch(envelopes: Mapping[str, IngestEnvelope], archive: Archive) -> ArchivedBatch:
    """Archive the batch raw: one gzip JSON-lines object per flavor, named by message ids.

    A delivery whose claim-checked body cannot be read (gone, or the inbox refused or failed)
    cannot be archived or processed; it is left out and reported, so that only it is retried
    (and dead-lettered if it never comes back), not the whole batch. A failed archive write
    raises: the caller must then fail the whole batch. The archive is per delivery attempt: a
    delivery SQS retries in another batch is archived again there.
    """
    resolved: dict[str, IngestEnvelope] = {}
    missing: dict[str, str] = {}
    unreadable: dict[str, str] = {}
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
        except InboxBodyUnreadable as error:
            unreadable[message_id] = str(error)
            continue
        resolved[message_id] = envelope.model_copy(update={"body": body})

    by_flavor: dict[Flavor, dict[str, IngestEnvelope]] = {}
    for message_id, envelope in resolved.items():
        by_flavor.setdefault(envelope.flavor, {})[message_id] = envelope
    for flavor, group in by_flavor.items():
        # the earliest receipt names the hour, so a retried identical batch lands on one key
        first_received = min(envelope.received_at for envelope in group.values())
        archive.put_raw(raw_key(flavor, first_received, group.keys()), list(group.values()))
    return ArchivedBatch(envelopes=resolved, missing_bodies=missing, unreadable_bodies=unreadable)


class DeliveryUnfinished(RuntimeError):
    """Too little time was left for the delivery's next chunk; the chunks before it are
    stored and recorded. Raised inside the idempotent function, so Powertools deletes the
    in-progress record and SQS's retry is processed (resuming), not refused as a duplicate."""

    def __init__(self, event_id: str, chunks_done: int, chunks: int) -> None:
        super().__init__(f"{event_id}: {chunks_done} of {chunks} chunks stored")
        self.chunks_done = chunks_done


class DeliveryProcessor:
    """Stores and publishes each delivery once, however often it arrives."""

    def __init__(
        self,
        stores: ProcessorStores,
        *,
        limits: ProcessingLimits,
        persistence_layer: BasePersistenceLayer,
        idempotency_ttl_seconds: int,
    ) -> None:
        self.stores = stores
        self.limits = limits
        self._stored_now = False
        self._remaining_ms: Callable[[], int] = lambda: limits.chunk_time_guard_ms
        self._readings_by_provider: Counter[str] = Counter()
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath="event_id", expires_after_seconds=idempotency_ttl_seconds
        )
        self._store_once = idempotent_function(
            data_keyword_argument="envelope",
            persistence_store=persistence_layer,
            config=self.idempotency_config,
            output_serializer=PydanticSerializer(model=DeliverySummary),
        )(self._normalize_and_store)

    def process(
        self, envelope: IngestEnvelope, remaining_ms: Callable[[], int] | None = None
    ) -> DeliverySummary:
        """Process one delivery whose body is inline (see `archive_batch`).

        `remaining_ms` is the invocation's time left (the Lambda context's); without it every
        chunk is allowed to start. An invalid body escapes the idempotent function on purpose:
        Powertools then keeps no record of it, so a replay of the same event_id after a fix
        is processed, not skipped. Re-sends of the invalid body overwrite the same quarantine
        object.
        """
        self._stored_now = False
        self._remaining_ms = remaining_ms or (lambda: self.limits.chunk_time_guard_ms)
        try:
            summary: DeliverySummary
            if envelope.flavor is Flavor.EVERACTIVE_DS_GATEWAY_STATUS:
                # deduplicated by its own conditional writes (module docstring): a copy stores
                # nothing, and is told from the first by its history write
                summary = self._normalize_and_store(envelope)
                self._stored_now = summary.gateway_statuses > 0
            else:
                summary = self._store_once(envelope=envelope)
        except InvalidPayload as error:
            self.stores.archive.put_quarantine(quarantine_key(envelope), envelope, str(error))
            metrics.add_metric(name="QuarantinedPayloads", unit=MetricUnit.Count, value=1)
            logger.warning(
                "delivery quarantined",
                extra={"event_id": envelope.event_id, "flavor": envelope.flavor.value},
            )
            return DeliverySummary(quarantined=True)
        except DeliveryUnfinished as unfinished:
            metrics.add_metric(name="DeliveriesUnfinished", unit=MetricUnit.Count, value=1)
            logger.warning(
                "too little time left for the next chunk; SQS retries the delivery",
                extra={"event_id": envelope.event_id, "chunks_done": unfinished.chunks_done},
            )
            raise
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
        chunks = DeliveryChunks(
            envelope.flavor,
            envelope.body,
            event_id=envelope.event_id,
            received_at=envelope.received_at,
            chunk_size=self.limits.chunk_readings,
        )
        done, order = 0, None
        if chunks.count > 1:
            # a delivery part-stored before chunks were cut in time resumes in channel order
            done, order = self.stores.progress.chunks_done(
                envelope.event_id, unrecorded_order=CHANNEL_ORDER
            )
        order = order or TIME_ORDER
        if done == 0 and chunks.count > 1:
            # every chunk is checked before the first write: a chunk no store can take
            # quarantines the delivery instead of failing it halfway through
            for _ in chunks.chunks(order=order):
                pass
        summary = DeliverySummary(chunks=chunks.count, resumed_at_chunk=done)
        for index, chunk in enumerate(chunks.chunks(done, order=order), start=done):
            # only a delivery of several chunks can outlast an invocation; one chunk takes well
            # under a second, and a killed one is retried whole like any failed record
            if chunks.count > 1 and self._remaining_ms() < self.limits.chunk_time_guard_ms:
                raise DeliveryUnfinished(envelope.event_id, index, chunks.count)
            self._store_chunk(envelope, chunk, index, summary)
            if chunks.count > 1:
                self.stores.progress.record(envelope.event_id, index + 1, order)
        if chunks.count > 1:
            self.stores.progress.clear(envelope.event_id)
        metrics.add_metric(name="ReadingsStored", unit=MetricUnit.Count, value=summary.readings)
        # per provider for the dashboard, published per batch (`publish_readings_by_provider`)
        self._readings_by_provider[envelope.flavor.provider] += summary.readings
        return summary

    def publish_readings_by_provider(self) -> None:
        """One `ReadingsStoredByProvider` line per provider whose deliveries this batch stored,
        the sum of their readings, instead of one line per delivery: its own EMF line each (a
        provider dimension the batch's other metrics do not have), about 300 bytes of logs.
        The dashboard reads its Sum, which the summing keeps."""
        for provider, readings in sorted(self._readings_by_provider.items()):
            with single_metric(
                name="ReadingsStoredByProvider",
                unit=MetricUnit.Count,
                value=readings,
                namespace=metrics.namespace,
                default_dimensions={"provider": provider},
            ):
                pass  # written when the block exits
        self._readings_by_provider.clear()

    def _store_chunk(
        self,
        envelope: IngestEnvelope,
        chunk: NormalizedDelivery,
        index: int,
        summary: DeliverySummary,
    ) -> None:
        """Readings, then state, gateways, events: each idempotent, so a chunk interrupted
        part-way is simply stored again (readings overwrite their own items, state and
        gateways only move forward, events keep their dedupe ids)."""
        tolerance = self.limits.future_tolerance
        readings = flag_future_dated(chunk.readings, tolerance)
        statuses_ahead = sum(
            status.reported_at > envelope.received_at + tolerance
            for status in chunk.gateway_statuses
        )
        readings_ahead = sum(reading.future_dated for reading in readings)
        if readings_ahead or statuses_ahead:
            metrics.add_metric(
                name="FutureDatedReports",
                unit=MetricUnit.Count,
                value=readings_ahead + statuses_ahead,
            )
            logger.warning(
                "device time ahead of receipt; ordered by receipt",
                extra={
                    "event_id": envelope.event_id,
                    "readings": readings_ahead,
                    "gateway_statuses": statuses_ahead,
                },
            )
        # each sensor's state, read once: the merge's first guess, and (before the state moves
        # on) the newest stored measurement of each channel, which the chunk's first one must
        # follow by one period (a resumed chunk follows the one before)
        per_sensor: dict[tuple[str, str], list[tuple[Reading, datetime]]] = {}
        for reading in newest_per_state(readings, tolerance):
            per_sensor.setdefault((reading.provider, reading.sensor_id), []).append(
                (reading, state_at(reading, tolerance))
            )
        # how far back each sensor's readings reach: a sensor sending batches is expected again
        # a batch later (dal/sensor_state_store.py, SilenceSchedule)
        oldest: dict[tuple[str, str], datetime] = {}
        for reading in readings:
            key, at = (reading.provider, reading.sensor_id), state_at(reading, tolerance)
            oldest[key] = min(oldest.get(key, at), at)
        states = {key: self.stores.sensor_state.read(*key) for key in per_sensor}
        gaps = []
        if envelope.flavor is Flavor.EFENTO_MEASUREMENTS:
            gaps = efento_gaps(readings, states)
        summary.readings += self.stores.readings.put_readings(
            readings, ttl_days=self.limits.reading_ttl_days
        )
        summary.state_updates += sum(
            self.stores.sensor_state.update(entries, read=states[key], oldest=oldest[key])
            for key, entries in per_sensor.items()
        )
        for status in chunk.gateway_statuses:
            # the history first: a delivery that fails after it is retried by SQS, and the
            # retry still moves the gateway's status (a write that only moves forward)
            summary.gateway_statuses += self.stores.gateway_history.put(
                status,
                event_id=envelope.event_id,
                received_at=envelope.received_at,
                ttl_days=self.limits.reading_ttl_days,
            )
            status_at = min(status.reported_at, envelope.received_at + tolerance)
            self.stores.gateways.update_status(status, status_at)
        for (provider, gateway_id), at in last_reading_per_gateway(readings).items():
            self.stores.gateways.advance_last_reading_at(provider, gateway_id, at)
        events = delivery_events(
            envelope.event_id, chunk.model_copy(update={"readings": readings}), chunk=index
        )
        if gaps:
            from sensorhook.logic.efento_gaps import gap_events  # noqa: PLC0415 - see efento_gaps

            events += gap_events(gaps, event_id=envelope.event_id, chunk=index, first=len(events))
        published = self.stores.events.publish(events)
        summary.steam_trap_changes += len(chunk.steam_trap_changes)
        summary.events += published
        summary.future_dated += readings_ahead + statuses_ahead


def efento_gaps(
    readings: Sequence[Reading], states: Mapping[tuple[str, str], SensorState]
) -> list["GapDetected"]:
    """The gaps an Efento chunk reveals against its sensors' stored state. Gap detection
    (logic/efento_gaps.py, its models) is imported by the first Efento delivery, not with the
    processor: no other flavor takes it (docs/cost.md, "Cold start")."""
    from sensorhook.logic.efento_gaps import detect_gaps  # noqa: PLC0415 - on Efento's path

    return detect_gaps(
        readings,
        lambda sensor_id, metric, channel: states[("efento", sensor_id)].measured_at(
            metric, channel
        ),
    )


def state_at(reading: Reading, tolerance: timedelta) -> datetime:
    """The time a reading is ordered and judged by: its own, but never later than its receipt
    plus the tolerance (a sensor clock running ahead would otherwise hold the state forever)."""
    return min(reading.measured_at, reading.received_at + tolerance)


def flag_future_dated(readings: Sequence[Reading], tolerance: timedelta) -> list[Reading]:
    """The readings, those measured after receipt plus `tolerance` flagged `future_dated`."""
    return [
        reading.model_copy(update={"future_dated": True})
        if reading.measured_at > reading.received_at + tolerance
        else reading
        for reading in readings
    ]


def newest_per_state(readings: Sequence[Reading], tolerance: timedelta) -> list[Reading]:
    """The newest reading of each (series, metric, channel), by `state_at`: the only ones that
    can become sensor state."""
    newest: dict[tuple[str, str, str], Reading] = {}
    for reading in readings:
        key = (reading.series_key, reading.metric, reading.channel)
        current = newest.get(key)
        if current is None or (state_at(current, tolerance), current.measured_at) < (
            state_at(reading, tolerance),
            reading.measured_at,
        ):
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
