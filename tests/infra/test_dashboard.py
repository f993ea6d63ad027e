"""The dashboard's widgets against the metrics the code emits (EMF): a metric renamed or
re-dimensioned in the code fails here instead of drawing an empty graph."""

import ast
import json
from dataclasses import dataclass, field

from infra.dashboard_spec import WIDGETS, dashboard_metrics
from tests.code_scan import assignments, python_files, strings
from tests.infra.cfn import Synth, logical_ids

_METRIC_CALLS = {"add_metric", "single_metric", "record_metric"}


@dataclass
class Emitted:
    """A metric's dimension keys: those every emission carries, and those some may carry."""

    required: set[str] = field(default_factory=set)
    possible: set[str] = field(default_factory=set)


def _call_facts(
    node: ast.Call, module: str, assigned: dict[str, list[ast.expr]]
) -> tuple[str, set[str], set[str]]:
    """(kind of call, metric names, dimension keys) one call contributes."""
    called = getattr(node.func, "id", getattr(node.func, "attr", ""))
    if called == "add_dimension":
        named = [k.value for k in node.keywords if k.arg == "name"]
        return called, set(), {value for e in named for value in strings(e, module, assigned)}
    if called not in _METRIC_CALLS:
        return called, set(), set()
    given = [k.value for k in node.keywords if k.arg == "name"] + node.args[:1]
    names = {value for e in given for value in strings(e, module, assigned)}
    # Powertools adds `service` to every metric (POWERTOOLS_SERVICE_NAME, set on every function)
    dimensions = {"service"}
    if called == "record_metric":  # sensorhook's helper: single_metric with the flavor
        dimensions.add("flavor")
    for keyword in node.keywords:
        if keyword.arg == "default_dimensions" and isinstance(keyword.value, ast.Dict):
            dimensions |= {k.value for k in keyword.value.keys if isinstance(k, ast.Constant)}
    return called, names, dimensions


def emitted_metrics() -> dict[str, Emitted]:
    """EMF metric name -> its dimension keys, found per function in functions/: the names given
    to add_metric / single_metric / record_metric, their own dimensions (required), and for
    add_metric those added anywhere in the same function (possible)."""
    emitted: dict[str, Emitted] = {}
    for _, tree, module in python_files("functions"):
        assigned = assignments(tree)
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            calls = [
                _call_facts(node, module, assigned)
                for node in ast.walk(function)
                if isinstance(node, ast.Call)
            ]
            added = {d for kind, _, dims in calls if kind == "add_dimension" for d in dims}
            for kind, names, dims in calls:
                for name in names:
                    facts = emitted.setdefault(name, Emitted())
                    facts.required |= dims
                    facts.possible |= dims | (added if kind == "add_metric" else set())
    return emitted


def test_the_scan_finds_what_the_code_emits() -> None:
    emitted = emitted_metrics()
    assert {"WebhookAccepted", "ReadingsStoredByProvider", "GatewaysOnline"} <= set(emitted)
    assert "SubscriptionsReEnabled" in emitted  # through ACTION_METRICS
    assert emitted["WebhookRejected"].possible == {"service", "flavor", "reason"}
    assert emitted["ReadingsStoredByProvider"].required == {"provider", "service"}


def test_every_sensorhook_metric_on_the_dashboard_is_emitted_with_its_dimensions() -> None:
    emitted = emitted_metrics()
    drawn = dashboard_metrics()
    for metric in drawn.emf:
        assert metric.name in emitted, f"{metric.name} is drawn but no code emits it"
        keys = {key for key, _ in metric.dimensions}
        facts = emitted[metric.name]
        # a CloudWatch metric is its exact dimension set: every one the code always adds,
        # none it never adds
        assert facts.required <= keys <= facts.possible, f"{metric.name}: {keys} vs {facts}"
    for search in drawn.searches:
        assert search.name in emitted, f"{search.name} is searched but no code emits it"
        facts = emitted[search.name]
        assert facts.required <= set(search.dimension_keys) <= facts.possible


def test_the_dashboard_covers_the_issues_list() -> None:
    titles = " | ".join(widget.title.lower() for widget in WIDGETS)
    for subject in (
        "by provider",
        "reason",
        "quarantine",
        "dlq",
        "gateways online and offline",
        "subscriptions",
        "forwarding",
        "lake",
    ):
        assert subject in titles


def test_the_synthesized_dashboard_draws_every_metric_of_the_spec(dev: Synth) -> None:
    (logical_id,) = logical_ids(dev.resources, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dev.resources[logical_id]["Properties"]["DashboardBody"])
    drawn = dashboard_metrics()
    for metric in (*drawn.emf, *drawn.aws):
        assert f'\\"{metric.name}\\"' in body, metric.name
    for search in drawn.searches:
        assert search.name in body
    assert body.count('\\"type\\":\\"metric\\"') == len(WIDGETS)
