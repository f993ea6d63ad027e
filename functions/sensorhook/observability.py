"""Logger and Metrics, created once and configured by POWERTOOLS_* environment variables.

No Tracer: creating one imports aws_xray_sdk (~140 ms of cold start) even with tracing off;
API Gateway and Lambda's own X-Ray integration (active tracing in infra) give the spans we need.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics(namespace="sensorhook")
