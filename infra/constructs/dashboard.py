"""The operations dashboard (CloudWatch), rendered from infra/dashboard_spec.py."""

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constants import resource_name
from infra.dashboard_spec import WIDGETS, Metric, Widget


class Dashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        functions: dict[str, lambda_.IFunction],
        queues: dict[str, sqs.IQueue],
    ) -> None:
        super().__init__(scope, construct_id)
        self._functions, self._queues = functions, queues
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=resource_name(stage, "operations"),
            default_interval=Duration.hours(3),
        )
        row: list[cloudwatch.IWidget] = []
        for widget in WIDGETS:
            row.append(self._widget(widget))
            if len(row) == 2:
                self.dashboard.add_widgets(*row)
                row = []
        if row:
            self.dashboard.add_widgets(*row)

    def _widget(self, widget: Widget) -> cloudwatch.IWidget:
        period = Duration.seconds(widget.period_s)
        left: list[cloudwatch.IMetric] = [self._metric(m, period) for m in widget.metrics]
        left += [
            cloudwatch.MathExpression(
                expression=search.expression(widget.period_s), using_metrics={}, period=period
            )
            for search in widget.searches
        ]
        return cloudwatch.GraphWidget(
            title=widget.title,
            left=left,
            right=[self._metric(m, period) for m in widget.right],
            width=12,
            height=6,
        )

    def _metric(self, metric: Metric, period: Duration) -> cloudwatch.IMetric:
        if metric.resource is None:
            return cloudwatch.Metric(
                namespace=metric.namespace,
                metric_name=metric.name,
                dimensions_map=dict(metric.dimensions),
                statistic=metric.statistic,
                period=period,
                label=metric.label,
            )
        kind, name = metric.resource.split(":", 1)
        if kind == "function":
            return self._functions[name].metric(
                metric.name, statistic=metric.statistic, period=period, label=metric.label
            )
        return self._queues[name].metric(
            metric.name, statistic=metric.statistic, period=period, label=metric.label
        )
