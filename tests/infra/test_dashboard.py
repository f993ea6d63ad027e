"""The dashboard's widgets against the metrics the code emits (EMF): a metric renamed or
re-dimensioned in the code fails here instead of drawing an empty graph."""

import ast
import json

from infra.dashboard_spec import WIDGETS, dashboard_metrics
from tests.code_scan import assignments, python_files, strings
from tests.infra.cfn import Synth, logical_ids

_METRIC_CALLS = {"add_metric", "single_metric", "record_metric"}


def _call_facts(
    node: ast.Call, module: str, assigned: dict[str, list[ast.expr]]
) -> tuple[set[str], set[str]]:
    """(metric names, dimension keys) one call contributes."""
    called = getattr(node.func, "id", getattr(node.func, "attr", ""))
    if called == "add_dimension":
        named = [k.value for k in node.keywords if k.arg == "name"]
        return set(), {value for e in named for value in strings(e, module, assigned)}
    if called not in _METRIC_CALLS:
        return set(), set()
    given = [k.value for k in node.keywords if k.arg == "name"] + node.args[:1]
    names = {value for e in given for value in strings(e, module, assigned)}
    dimensions = {"flavor"} if called == "record_metric" else set()
    for keyword in node.keywords:
        if keyword.arg == "default_dimensions" and isinstance(keyword.value, ast.Dict):
            dimensions |= {k.value for k in keyword.value.keys if isinstance(k, ast.Constant)}
    return names, dimensions


def emitted_metrics() -> dict[str, set[str]]:
    """EMF metric name -> the dimension keys it may carry (Powertools adds `service`).

    Found per function in functions/: the names given to add_metric / single_metric /
    record_metric, and the dimensions added in the same function (add_dimension,
    default_dimensions, and record_metric's flavor)."""
    emitted: dict[str, set[str]] = {}
    for _, tree, module in python_files("functions"):
        assigned = assignments(tree)
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            names, dimensions = set(), {"service"}
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    call_names, call_dimensions = _call_facts(node, module, assigned)
                    names |= call_names
                    dimensions |= call_dimensions
            for name in names:
                emitted.setdefault(name, set()).update(dimensions)
    return emitted


def test_the_scan_finds_what_the_code_emits() -> None:
    emitted = emitted_metrics()
    assert {"WebhookAccepted", "ReadingsStoredByProvider", "GatewaysOnline"} <= set(emitted)
    assert "SubscriptionsReEnabled" in emitted  # through ACTION_METRICS
    assert emitted["WebhookRejected"] >= {"service", "flavor", "reason"}


def test_every_sensorhook_metric_on_the_dashboard_is_emitted_with_its_dimensions() -> None:
    emitted = emitted_metrics()
    drawn = dashboard_metrics()
    for metric in drawn.emf:
        assert metric.name in emitted, f"{metric.name} is drawn but no code emits it"
        keys = {key for key, _ in metric.dimensions}
        assert keys <= emitted[metric.name], f"{metric.name}: {keys} not all emitted"
        assert "service" in keys  # Powertools' default dimension is part of the metric
    for search in drawn.searches:
        assert search.name in emitted, f"{search.name} is searched but no code emits it"
        assert set(search.dimension_keys) <= emitted[search.name]


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
    assert body.count('\\"type\\":\\"metric\\"') == sum(1 for w in WIDGETS if w.note is None)
