"""The operations dashboard's widgets as PNG charts, from the local mode's embedded CloudWatch.

In AWS, CloudWatch turns the functions' EMF log lines into metrics. Here the functions' logs
are in the embedded CloudWatch Logs, so `publish_emf` does that step (put_metric_data into the
embedded CloudWatch), and `render` reads each widget's metrics back with get_metric_data and
draws them with matplotlib. The widgets are infra/dashboard_spec.py, the same the CDK
dashboard is built from. AWS-published metrics (Lambda, SQS) do not exist locally; their
lines are named in the chart as such.

    make demo                                   # renders into .local/dashboard/ at its end
    .venv/bin/python -m local.dashboard         # against a running `make local`
"""

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from infra.dashboard_spec import WIDGETS, Metric, Search, Widget

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_DIR / ".local" / "dashboard"
_PUT_BATCH = 500  # put_metric_data takes up to 1,000 values per call


@dataclass
class Series:
    label: str
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def emf_documents(logs: Any) -> Iterator[dict[str, Any]]:
    """Every EMF document in the functions' log groups."""
    for page in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix="/aws/lambda/"
    ):
        for group in page["logGroups"]:
            for events in logs.get_paginator("filter_log_events").paginate(
                logGroupName=group["logGroupName"]
            ):
                for event in events["events"]:
                    for line in event["message"].splitlines():
                        if '"_aws"' not in line:
                            continue
                        try:
                            document = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        if isinstance(document, dict) and "_aws" in document:
                            yield document


def publish_emf(logs: Any, cloudwatch: Any, after_ms: int = 0) -> tuple[int, int]:
    """What CloudWatch does with EMF: each document's metrics as metric data, for documents
    stamped after `after_ms` (so a second run does not count them again).
    Returns (values published, the newest document's timestamp)."""
    data: dict[str, list[dict[str, Any]]] = {}
    newest = after_ms
    for document in emf_documents(logs):
        meta = document["_aws"]
        if meta["Timestamp"] <= after_ms:
            continue
        newest = max(newest, meta["Timestamp"])
        at = datetime.fromtimestamp(meta["Timestamp"] / 1000, UTC)
        for directive in meta["CloudWatchMetrics"]:
            namespace = directive["Namespace"]
            for dimension_set in directive["Dimensions"]:
                dimensions = [{"Name": k, "Value": str(document[k])} for k in dimension_set]
                for definition in directive["Metrics"]:
                    values = document[definition["Name"]]
                    for value in values if isinstance(values, list) else [values]:
                        data.setdefault(namespace, []).append(
                            {
                                "MetricName": definition["Name"],
                                "Dimensions": dimensions,
                                "Timestamp": at,
                                "Value": float(value),
                                "Unit": definition.get("Unit", "None"),
                            }
                        )
    published = 0
    for namespace, points in data.items():
        for start in range(0, len(points), _PUT_BATCH):
            chunk = points[start : start + _PUT_BATCH]
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=chunk)
            published += len(chunk)
    return published, newest


def _stat(
    namespace: str, name: str, dimensions: list[dict[str, str]], statistic: str, period_s: int
) -> dict[str, Any]:
    return {
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
        "Period": period_s,
        "Stat": statistic,
    }


def _metric_data(
    cloudwatch: Any, stat: dict[str, Any], window: tuple[datetime, datetime]
) -> tuple[list[datetime], list[float]]:
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": stat}],
        StartTime=window[0],
        EndTime=window[1],
    )
    result = response["MetricDataResults"][0]
    pairs = sorted(zip(result["Timestamps"], result["Values"], strict=True))
    return [t for t, _ in pairs], [v for _, v in pairs]


def widget_series(
    cloudwatch: Any, widget: Widget, window: tuple[datetime, datetime]
) -> tuple[list[Series], list[Series], list[str]]:
    """(left, right, missing): the widget's lines from the embedded CloudWatch, and the labels
    of AWS-published metrics that do not exist locally."""
    left: list[Series] = []
    right: list[Series] = []
    missing: list[str] = []
    for metrics, side in ((widget.metrics, left), (widget.right, right)):
        for metric in metrics:
            if not metric.emitted_by_sensorhook:
                missing.append(metric.label or metric.name)
                continue
            side.append(_one(cloudwatch, metric, widget.period_s, window))
    for search in widget.searches:
        left.extend(_search(cloudwatch, search, widget.period_s, window))
    return left, right, missing


def _one(
    cloudwatch: Any, metric: Metric, period_s: int, window: tuple[datetime, datetime]
) -> Series:
    dimensions = [{"Name": k, "Value": v} for k, v in metric.dimensions]
    stat = _stat(metric.namespace, metric.name, dimensions, metric.statistic, period_s)
    times, values = _metric_data(cloudwatch, stat, window)
    return Series(metric.label or metric.name, times, values)


def _search(
    cloudwatch: Any, search: Search, period_s: int, window: tuple[datetime, datetime]
) -> list[Series]:
    """SEARCH locally: every metric of that name with exactly those dimension keys."""
    found = []
    listed = cloudwatch.list_metrics(Namespace=search.namespace, MetricName=search.name)
    seen: set[tuple[tuple[str, str], ...]] = set()
    for metric in listed["Metrics"]:
        keys = sorted(d["Name"] for d in metric["Dimensions"])
        identity = tuple(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"]))
        # one line per metric (the embedded CloudWatch lists a metric once per data point)
        if keys != sorted(search.dimension_keys) or identity in seen:
            continue
        seen.add(identity)
        stat = _stat(
            search.namespace, search.name, metric["Dimensions"], search.statistic, period_s
        )
        times, values = _metric_data(cloudwatch, stat, window)
        shown = " ".join(d["Value"] for d in metric["Dimensions"] if d["Name"] != "service")
        found.append(Series(f"{search.name} {shown}", times, values))
    return sorted(found, key=lambda s: s.label)


def _draw(axes: Axes, widget: Widget, cloudwatch: Any, window: tuple[datetime, datetime]) -> None:
    axes.set_title(widget.title, fontsize=10, loc="left")
    left, right, missing = widget_series(cloudwatch, widget, window)
    for series in left:
        axes.plot(
            mdates.date2num(series.times),
            series.values,
            marker="o",
            markersize=3,
            label=series.label,
        )
    if right:
        twin = axes.twinx()
        for series in right:
            twin.plot(
                mdates.date2num(series.times), series.values, linestyle="--", label=series.label
            )
        twin.legend(fontsize=7, loc="upper right")
    if left:
        axes.legend(fontsize=7, loc="upper left")
    if missing:
        axes.text(
            0.99,
            0.02,
            "AWS-published, not in the local mode: " + ", ".join(missing),
            transform=axes.transAxes,
            fontsize=7,
            ha="right",
            color="grey",
        )
    axes.set_xlim(mdates.date2num(window[0]), mdates.date2num(window[1]))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)


def render(cloudwatch: Any, out: Path, window: tuple[datetime, datetime]) -> list[Path]:
    """One PNG per widget, and `dashboard.png` with all of them, as the console lays them out."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, widget in enumerate(WIDGETS, 1):
        figure, axes = plt.subplots(figsize=(8, 3.6))
        _draw(axes, widget, cloudwatch, window)
        figure.tight_layout()
        path = out / f"{number:02d}-{_slug(widget.title)}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    rows = (len(WIDGETS) + 1) // 2
    figure, grid = plt.subplots(rows, 2, figsize=(16, 3.6 * rows))
    for axes, widget in zip(grid.flat, WIDGETS, strict=False):
        _draw(axes, widget, cloudwatch, window)
    for axes in list(grid.flat)[len(WIDGETS) :]:
        axes.axis("off")
    figure.tight_layout()
    overview = out / "dashboard.png"
    figure.savefig(overview, dpi=90)
    plt.close(figure)
    return [overview, *written]


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:48]


def render_stack(logs: Any, cloudwatch: Any, out: Path = DEFAULT_OUT) -> list[Path]:
    """Publish the EMF logged since the last run, then render the last half hour."""
    marker = out / ".published-until"
    after_ms = int(marker.read_text()) if marker.exists() else 0
    _, newest = publish_emf(logs, cloudwatch, after_ms)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(newest))
    now = datetime.now(UTC)
    return render(cloudwatch, out, (now - timedelta(minutes=30), now + timedelta(minutes=1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.dashboard", description=__doc__)
    parser.add_argument("--endpoints", type=Path, default=PROJECT_DIR / ".local" / "endpoints.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.endpoints.exists():
        parser.error(f"{args.endpoints} not found: start `make local` first")
    details = json.loads(args.endpoints.read_text())

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=details["aws_endpoint"],
            region_name=details["region"],
            aws_access_key_id=details["credentials"]["aws_access_key_id"],
            aws_secret_access_key=details["credentials"]["aws_secret_access_key"],
        )

    for path in render_stack(client("logs"), client("cloudwatch"), args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
