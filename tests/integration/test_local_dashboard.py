"""`local.dashboard`: EMF lines in CloudWatch Logs -> embedded CloudWatch metrics -> PNG charts
of the dashboard's widgets."""

import io
import json
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from infra.dashboard_spec import WIDGETS
from local.dashboard import publish_emf, render, widget_series
from tests.integration.conftest import REGION, Aws

GROUP = "/aws/lambda/sensorhook-test-processor"


def _emf_line(value: float) -> str:
    """The EMF line the processor prints for readings stored by provider, via Powertools."""
    output = io.StringIO()
    with (
        redirect_stdout(output),
        single_metric(
            name="ReadingsStoredByProvider",
            unit=MetricUnit.Count,
            value=value,
            namespace="sensorhook",
            default_dimensions={"provider": "efento", "service": "sensorhook"},
        ),
    ):
        pass
    return output.getvalue().strip()


def test_emf_logged_by_a_function_is_drawn_in_its_widget(aws: Aws, tmp_path: Path) -> None:
    import boto3

    logs = boto3.client("logs", region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    now = datetime.now(UTC)
    lines = [_emf_line(3), _emf_line(4), json.dumps({"level": "INFO", "message": "not EMF"})]
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="s",
        logEvents=[{"timestamp": int(now.timestamp() * 1000), "message": m} for m in lines],
    )

    published, newest = publish_emf(logs, cloudwatch)
    again, _ = publish_emf(logs, cloudwatch, after_ms=newest)

    assert published == 2 and again == 0
    window = (now - timedelta(minutes=5), now + timedelta(minutes=1))
    by_provider = next(w for w in WIDGETS if "by provider" in w.title)
    left, _, _ = widget_series(cloudwatch, by_provider, window)
    efento = next(s for s in left if s.label == "efento")
    assert sum(efento.values) == 7
    # a SEARCH widget draws one line per metric, however many data points it has
    cloudwatch.put_metric_data(
        Namespace="sensorhook",
        MetricData=[
            {
                "MetricName": "WebhookAccepted",
                "Dimensions": [
                    {"Name": "flavor", "Value": "efento-measurements"},
                    {"Name": "service", "Value": "sensorhook"},
                ],
                "Timestamp": now,
                "Value": 1.0,
            }
        ]
        * 3,
    )
    receiver = next(w for w in WIDGETS if w.searches)
    lines, _, _ = widget_series(cloudwatch, receiver, window)
    assert [s.label for s in lines] == ["WebhookAccepted efento-measurements"]
    assert sum(lines[0].values) == 3
    paths = render(cloudwatch, tmp_path, window)
    assert paths[0].name == "dashboard.png"
    assert len(paths) == len(WIDGETS) + 1
    assert all(p.stat().st_size > 5_000 for p in paths)
