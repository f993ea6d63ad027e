"""The one way sensorhook defines a Lambda function: same asset, runtime, layers and logging.

Each function gets its own role that starts empty (no managed policy); the capability constructs
add exactly the statements that function needs, so a role reads as that function's contract.
"""

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from pydantic import BaseModel

from infra import FUNCTIONS_DIR
from infra.config import StageConfig
from infra.constants import (
    ASSET_EXCLUDES,
    FUNCTION_RUNTIME_ENVIRONMENT,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    resource_name,
)
from infra.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
_POWERTOOLS_LAYER_ACCOUNT = "017000801446"
_POWERTOOLS_LAYER_PYTHON = "python312"  # must match RUNTIME


def settings_environment(
    settings_model: type[BaseModel], values: Mapping[str, str | int]
) -> dict[str, str]:
    """Environment variables for a function whose code reads `settings_model`.

    The variable names are the model's field names upper-cased, and every field must be given:
    a field added to or removed from the model fails the synth here instead of the function's
    cold start in AWS.
    """
    expected = set(settings_model.model_fields)
    given = set(values)
    if given != expected:
        missing = ", ".join(sorted(expected - given)) or "none"
        unknown = ", ".join(sorted(given - expected)) or "none"
        raise ValueError(
            f"{settings_model.__name__} environment out of step with its model "
            f"(missing: {missing}; not in the model: {unknown})"
        )
    return {name.upper(): str(value) for name, value in values.items()}


def powertools_layer_arn(scope: Construct, version: int) -> str:
    region = Stack.of(scope).region
    return (
        f"arn:aws:lambda:{region}:{_POWERTOOLS_LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{_POWERTOOLS_LAYER_PYTHON}-arm64:{version}"
    )


def region_layer_arn(scope: Construct, arn_template: str) -> str:
    """A configured layer ARN with `{region}` filled by the deployment region."""
    return arn_template.replace("{region}", Stack.of(scope).region)


class SensorhookFunction(Construct):
    """A Python Lambda function from the shared `functions/` asset, with its own role and
    log group. `function` and `role` are what other constructs wire and grant against."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        name: str,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        timeout: Duration,
        memory_mb: int,
        config: StageConfig,
        extra_layer_arns: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        function_name = resource_name(stage, name)

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=logs.RetentionDays[config.log_retention],
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: only what this function does",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )

        layers = [
            lambda_.LayerVersion.from_layer_version_arn(
                self, "PowertoolsLayer", powertools_layer_arn(self, config.powertools_layer_version)
            ),
            *(
                lambda_.LayerVersion.from_layer_version_arn(self, f"Layer{index}", arn)
                for index, arn in enumerate(extra_layer_arns)
            ),
        ]
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=list(ASSET_EXCLUDES)),
            layers=layers,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": config.log_level,
                **FUNCTION_RUNTIME_ENVIRONMENT,
            },
            timeout=timeout,
            memory_size=memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
        )

        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level "
            "permissions; Lambda active tracing needs them on *.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 on purpose: the Powertools and AWS SDK for pandas layers are pinned for "
            "python312-arm64; move runtime and layers together.",
        )
