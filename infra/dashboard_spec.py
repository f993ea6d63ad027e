"""The operations dashboard as plain data: which metrics each widget draws. The CDK construct
(infra/constructs/dashboard.py) renders it for CloudWatch, and `python -m local.dashboard`
renders the same widgets as PNG charts from the embedded CloudWatch of the local mode.

sensorhook's own metrics are EMF from Powertools (namespace `sensorhook`; Powertools adds
`service=sensorhook` to every one, from POWERTOOLS_SERVICE_NAME which every function sets);
tests/infra/test_dashboard.py checks each name and dimension set here against what the code
emits, so a renamed metric fails a test instead of drawing an empty graph. AWS-published
metrics (Lambda, SQS) name their resource by a role (`function:Processor`, `queue:DeadLetter`)
that the construct resolves to the real resource.
"""

from dataclasses import dataclass, field
from typing import Final

from infra.constants import METRICS_NAMESPACE, SERVICE_NAME
from sensorhook.core.flavors import Flavor

PROVIDERS: Final = tuple(sorted({flavor.provider for flavor in Flavor}))
FLAVORS: Final = tuple(flavor.value for flavor in Flavor)


@dataclass(frozen=True)
class Metric:
    name: str
    statistic: str = "Sum"
    dimensions: tuple[tuple[str, str], ...] = (("service", SERVICE_NAME),)
    namespace: str = METRICS_NAMESPACE
    label: str | None = None
    resource: str | None = None  # AWS metrics: "function:<Name>" or "queue:<Name>"

    @property
    def emitted_by_sensorhook(self) -> bool:
        return self.namespace == METRICS_NAMESPACE


@dataclass(frozen=True)
class Search:
    """Every metric `name` with exactly these dimension keys, one line per value combination
    (for dimensions with open-ended values, such as the receiver's rejection reason)."""

    name: str
    dimension_keys: tuple[str, ...]
    statistic: str = "Sum"
    namespace: str = METRICS_NAMESPACE

    def expression(self, period_s: int) -> str:
        keys = ",".join((self.namespace, *self.dimension_keys))
        return f"SEARCH('{{{keys}}} MetricName=\"{self.name}\"', '{self.statistic}', {period_s})"


@dataclass(frozen=True)
class Widget:
    title: str
    metrics: tuple[Metric, ...] = ()
    searches: tuple[Search, ...] = ()
    right: tuple[Metric, ...] = ()  # drawn against the right axis
    period_s: int = 60


def _emf(name: str, statistic: str = "Sum", label: str | None = None, **dims: str) -> Metric:
    dimensions = tuple(sorted({"service": SERVICE_NAME, **dims}.items()))
    return Metric(name, statistic, dimensions, label=label or name)


def _lambda(function: str, name: str, statistic: str = "Sum") -> Metric:
    return Metric(
        name,
        statistic,
        (),
        namespace="AWS/Lambda",
        label=f"{function} {name}",
        resource=f"function:{function}",
    )


def _sqs(queue: str, name: str, label: str) -> Metric:
    return Metric(name, "Maximum", (), namespace="AWS/SQS", label=label, resource=f"queue:{queue}")


WIDGETS: Final[tuple[Widget, ...]] = (
    Widget(
        "Readings stored per minute, by provider",
        metrics=tuple(
            _emf("ReadingsStoredByProvider", label=provider, provider=provider)
            for provider in PROVIDERS
        ),
    ),
    Widget(
        "Receiver: accepted by flavor, rejected by flavor and reason",
        searches=(
            Search("WebhookAccepted", ("flavor", "service")),
            Search("WebhookRejected", ("flavor", "reason", "service")),
        ),
    ),
    Widget(
        "Processor: deliveries, duplicates, quarantine and errors",
        metrics=(
            _emf("DeliveriesStored"),
            _emf("DuplicateDeliveriesSkipped"),
            _emf("QuarantinedPayloads"),
        ),
        right=(_lambda("Processor", "Errors"),),
    ),
    Widget(
        "Queues: DLQ depth and oldest message age",
        metrics=(
            _sqs("DeadLetter", "ApproximateNumberOfMessagesVisible", "ingest DLQ depth"),
            _sqs("LakeWriterFailures", "ApproximateNumberOfMessagesVisible", "lake DLQ depth"),
        ),
        right=(
            _sqs("Ingest", "ApproximateAgeOfOldestMessage", "ingest oldest (s)"),
            _sqs("DeadLetter", "ApproximateAgeOfOldestMessage", "DLQ oldest (s)"),
        ),
    ),
    Widget(
        "Gateways online and offline, sensors silent",
        metrics=(
            _emf("GatewaysOnline", "Maximum"),
            _emf("GatewaysOffline", "Maximum"),
            _emf("SensorsSilent", "Maximum"),
        ),
        period_s=300,
    ),
    Widget(
        "Subscriptions: reconcile actions, silent, errors",
        metrics=(
            _emf("SubscriptionsCreated"),
            _emf("SubscriptionsUpdated"),
            _emf("SubscriptionsReEnabled"),
            _emf("SubscriptionsDeleted"),
            _emf("SubscriptionsSilent", "Maximum"),
            _emf("ReconcileErrors"),
        ),
        period_s=900,
    ),
    Widget(
        "Forwarding: attempts, events kept for endpoints not enabled, status changes",
        metrics=(
            _emf("ForwardingAttempts"),
            _emf("ForwardingKept"),
            _emf("EndpointTransitions"),
        ),
    ),
    Widget(
        "Lake: rows written and writer lag",
        metrics=(_emf("LakeRowsWritten"),),
        right=(_lambda("LakeWriter", "IteratorAge", "Maximum"),),
    ),
)


@dataclass
class DashboardMetrics:
    """Every metric a spec draws, split by who emits it (for tests and the local renderer)."""

    emf: list[Metric] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)
    aws: list[Metric] = field(default_factory=list)


def dashboard_metrics(widgets: tuple[Widget, ...] = WIDGETS) -> DashboardMetrics:
    found = DashboardMetrics()
    for widget in widgets:
        for metric in (*widget.metrics, *widget.right):
            (found.emf if metric.emitted_by_sensorhook else found.aws).append(metric)
        found.searches.extend(widget.searches)
    return found
