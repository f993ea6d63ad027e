"""A tiny CDK app with one of each resource kind sensorhook wires, for the local runtime's tests.

HTTP API -> function, SQS (+DLQ) -> function with partial batch failures, DynamoDB stream
(INSERT filter) -> function, a secret, a bucket, a custom bus with a rule, a schedule, and a
public layer ARN that moto cannot resolve; a state machine with a retried Lambda task, a long
Wait, a DynamoDB service task and a Catch.
"""

import os

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

POWERTOOLS_LAYER_ARN = (
    "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:18"
)


class ProbeStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        bucket = s3.Bucket(self, "Bucket", encryption=s3.BucketEncryption.S3_MANAGED)
        secret = secretsmanager.Secret(self, "WebhookSecret")
        bus = events.EventBus(self, "Bus")
        dlq = sqs.Queue(self, "Dlq")
        queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=cdk.Duration.seconds(2),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=2),
        )
        table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=dynamodb.StreamViewType.NEW_IMAGE,
        )
        code = lambda_.Code.from_asset(os.path.join(os.path.dirname(__file__), "functions"))
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", POWERTOOLS_LAYER_ARN
        )
        env = {
            "BUCKET_NAME": bucket.bucket_name,
            "QUEUE_URL": queue.queue_url,
            "TABLE_NAME": table.table_name,
            "SECRET_ARN": secret.secret_arn,
            "BUS_NAME": bus.event_bus_name,
        }

        def function(name: str, handler: str, timeout: int = 10) -> lambda_.Function:
            return lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_11,
                handler=f"probe.handlers.{handler}",
                code=code,
                layers=[layer],
                environment={**env, "PROBE_FUNCTION": name},
                timeout=cdk.Duration.seconds(timeout),
            )

        api_fn = function("ApiFunction", "api")
        consumer = function("QueueConsumer", "consume", timeout=2)
        stream_fn = function("StreamConsumer", "stream")
        scheduled = function("Scheduled", "scheduled")
        on_event = function("OnEvent", "on_event")
        flaky = function("Flaky", "flaky")

        api = apigw.HttpApi(
            self,
            "Api",
            default_integration=integrations.HttpLambdaIntegration("CatchAll", api_fn),
        )
        api.add_routes(
            path="/hooks/{name}",
            methods=[apigw.HttpMethod.POST],
            integration=integrations.HttpLambdaIntegration("Hooks", api_fn),
        )
        consumer.add_event_source(
            sources.SqsEventSource(queue, batch_size=5, report_batch_item_failures=True)
        )
        stream_fn.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=10,
                filters=[
                    lambda_.FilterCriteria.filter(
                        {"eventName": lambda_.FilterRule.is_equal("INSERT")}
                    )
                ],
            )
        )
        events.Rule(
            self,
            "Every5Minutes",
            schedule=events.Schedule.rate(cdk.Duration.minutes(5)),
            targets=[targets.LambdaFunction(scheduled)],
        )
        events.Rule(
            self,
            "OnProbeEvent",
            event_bus=bus,
            event_pattern=events.EventPattern(source=["probe"], detail_type=["poked"]),
            targets=[targets.LambdaFunction(on_event)],
        )
        machine = self._state_machine(flaky, table)
        for grantee in (api_fn, consumer, stream_fn, scheduled, on_event, flaky):
            bucket.grant_read_write(grantee)
            queue.grant_send_messages(grantee)
            table.grant_read_write_data(grantee)
            secret.grant_read(grantee)
            bus.grant_put_events_to(grantee)
        cdk.CfnOutput(self, "ApiUrl", value=api.api_endpoint)
        cdk.CfnOutput(self, "BucketName", value=bucket.bucket_name)
        cdk.CfnOutput(self, "QueueUrl", value=queue.queue_url)
        cdk.CfnOutput(self, "DlqUrl", value=dlq.queue_url)
        cdk.CfnOutput(self, "TableName", value=table.table_name)
        cdk.CfnOutput(self, "SecretArn", value=secret.secret_arn)
        cdk.CfnOutput(self, "BusName", value=bus.event_bus_name)
        cdk.CfnOutput(self, "StateMachineArn", value=machine.state_machine_arn)

    def _state_machine(self, flaky: lambda_.Function, table: dynamodb.Table) -> sfn.StateMachine:
        """Flaky (retried 3 times, 10 s then 20 s apart) -> wait 10 minutes -> record done;
        a Flaky that keeps failing is caught and ends in GaveUp."""
        call = tasks.LambdaInvoke(
            self,
            "CallFlaky",
            lambda_function=flaky,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path="$.flaky",
        )
        call.add_retry(
            errors=["ProbeFlaky"],
            interval=cdk.Duration.seconds(10),
            max_attempts=2,
            backoff_rate=2,
        )
        call.add_catch(sfn.Fail(self, "GaveUp", error="GaveUp"), errors=["States.ALL"])
        record = tasks.DynamoPutItem(
            self,
            "RecordDone",
            table=table,
            item={
                "pk": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.format("done#{}", sfn.JsonPath.string_at("$.id"))
                )
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        definition = call.next(
            sfn.Wait(self, "TenMinutes", time=sfn.WaitTime.duration(cdk.Duration.minutes(10)))
        ).next(record)
        return sfn.StateMachine(
            self, "Machine", definition_body=sfn.DefinitionBody.from_chainable(definition)
        )


app = cdk.App(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
ProbeStack(app, "probe-dev")
app.synth()
