"""The synthesized stack does what docs/architecture.md says, and nothing more is allowed."""

import json
from typing import Any

from aws_cdk.assertions import Match

from infra import constants
from infra.config import StageConfig
from infra.constants import FUNCTION_RUNTIME_ENVIRONMENT, Output
from infra.nag import MIN_REASON_LENGTH
from sensorhook.core.flavors import ROUTES
from sensorhook.core.receiver_settings import ReceiverSettings
from sensorhook.core.settings import (
    LakeCompactorSettings,
    LakeWriterSettings,
    ProcessorSettings,
)
from sensorhook.dal.sensor_state_store import DUE_INDEX
from tests.infra.cfn import (
    Synth,
    function_id,
    logical_ids,
    one_logical_id,
    render,
    role_grants,
)

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    *FUNCTION_RUNTIME_ENVIRONMENT,
}
STAGE = "dev"


def _config(synth: Synth) -> StageConfig:
    return synth.stack.config


def _name(name: str) -> str:
    return constants.resource_name(STAGE, name)


def _properties(synth: Synth, logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = synth.resources[logical_id]["Properties"]
    return properties


def _receiver(synth: Synth) -> str:
    return function_id(synth.resources, constants.RECEIVER_HANDLER)


def _processor(synth: Synth) -> str:
    return function_id(synth.resources, constants.PROCESSOR_HANDLER)


def _lake_writer(synth: Synth) -> str:
    return function_id(synth.resources, constants.LAKE_WRITER_HANDLER)


def _queue(synth: Synth, name: str) -> str:
    return one_logical_id(synth.resources, "AWS::SQS::Queue", QueueName=_name(name))


def _table(synth: Synth, name: str) -> str:
    return one_logical_id(synth.resources, "AWS::DynamoDB::Table", TableName=_name(name))


def _bucket(synth: Synth) -> str:
    return one_logical_id(
        synth.resources,
        "AWS::S3::Bucket",
        VersioningConfiguration={"Status": "Enabled"},
    )


def _role_of(synth: Synth, function_logical_id: str) -> str:
    role = _properties(synth, function_logical_id)["Role"]
    assert role["Fn::GetAtt"][1] == "Arn"
    return str(role["Fn::GetAtt"][0])


def _log_group_of(synth: Synth, function_logical_id: str) -> str:
    return render(_properties(synth, function_logical_id)["LoggingConfig"]["LogGroup"])


def _secrets(synth: Synth) -> list[str]:
    return logical_ids(synth.resources, "AWS::SecretsManager::Secret")


def _webhook_secrets(synth: Synth) -> list[str]:
    """The receiver's secrets (the others hold the provider API's client credentials and the
    forwarding endpoints' signing secrets)."""
    return [
        logical_id
        for logical_id in _secrets(synth)
        if not _properties(synth, logical_id)["Name"].endswith("-api-credentials")
        and "/forwarding/" not in _properties(synth, logical_id)["Name"]
    ]


# --- HTTP API -------------------------------------------------------------------------------


def test_every_flavor_route_and_the_default_route_go_to_the_receiver(dev: Synth) -> None:
    # Given the routes table the receiver code serves
    expected = {f"POST {path}" for path in ROUTES.values()} | {"$default"}

    # When the HTTP API is synthesized
    routes = [r["Properties"] for r in dev.resources.values() if r["Type"].endswith("::Route")]

    # Then each route exists exactly once, all through one integration
    assert sorted(route["RouteKey"] for route in routes) == sorted(expected)
    integration_id = one_logical_id(dev.resources, "AWS::ApiGatewayV2::Integration")
    assert {render(route["Target"]) for route in routes} == {f"integrations/{integration_id}"}
    # ...which invokes the receiver with payload format 2.0
    integration = _properties(dev, integration_id)
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert render(integration["IntegrationUri"]) == f"{_receiver(dev)}.Arn"


def test_default_stage_throttles_and_writes_access_logs(dev: Synth) -> None:
    config = _config(dev)
    stage = _properties(dev, one_logical_id(dev.resources, "AWS::ApiGatewayV2::Stage"))

    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": config.api_throttle_burst_limit,
        "ThrottlingRateLimit": config.api_throttle_rate_limit,
    }
    destination = render(stage["AccessLogSettings"]["DestinationArn"]).removesuffix(".Arn")
    assert dev.resources[destination]["Type"] == "AWS::Logs::LogGroup"
    assert "$context.requestId" in stage["AccessLogSettings"]["Format"]


# --- functions ------------------------------------------------------------------------------


def test_function_environments_are_exactly_their_settings_models(dev: Synth) -> None:
    # This is the check that keeps infra and the functions' settings from drifting apart.
    for handler, model in (
        (constants.RECEIVER_HANDLER, ReceiverSettings),
        (constants.PROCESSOR_HANDLER, ProcessorSettings),
        (constants.LAKE_WRITER_HANDLER, LakeWriterSettings),
        (constants.LAKE_COMPACTOR_HANDLER, LakeCompactorSettings),
    ):
        function = _properties(dev, function_id(dev.resources, handler))
        variables = function["Environment"]["Variables"]

        assert set(variables) == {name.upper() for name in model.model_fields} | POWERTOOLS_ENV


def test_function_environments_carry_the_stage_configuration(dev: Synth) -> None:
    config = _config(dev)
    receiver = _properties(dev, _receiver(dev))["Environment"]["Variables"]
    processor = _properties(dev, _processor(dev))["Environment"]["Variables"]

    assert receiver["MAX_BODY_BYTES"] == str(config.max_body_bytes)
    assert receiver["INLINE_BODY_MAX_BYTES"] == str(config.inline_body_max_bytes)
    assert receiver["SIGNATURE_MAX_SKEW_SECONDS"] == str(config.signature_max_skew_seconds)
    assert receiver["INGEST_QUEUE_URL"] == {"Ref": _queue(dev, "ingest")}
    assert processor["READING_TTL_DAYS"] == str(config.reading_ttl_days)
    assert processor["READINGS_TABLE"] == {"Ref": _table(dev, "readings")}
    assert processor["IDEMPOTENCY_TABLE"] == {"Ref": _table(dev, "idempotency")}
    assert processor["READINGS_WRITERS"] == str(config.readings_writers) == "16"


def test_functions_run_python_312_on_arm64_traced_with_the_powertools_layer(dev: Synth) -> None:
    for function_logical_id in (_receiver(dev), _processor(dev), _lake_writer(dev)):
        function = _properties(dev, function_logical_id)
        layers = [render(layer) for layer in function["Layers"]]

        assert function["Runtime"] == "python3.12"
        assert function["Architectures"] == ["arm64"]
        assert function["TracingConfig"] == {"Mode": "Active"}
        assert (
            "arn:aws:lambda:AWS::Region:017000801446:layer:"
            f"AWSLambdaPowertoolsPythonV3-python312-arm64:{_config(dev).powertools_layer_version}"
        ) in layers


def test_only_the_parquet_writers_load_the_sdk_for_pandas_layer(dev: Synth) -> None:
    # the lake writer (readings and gateway status history) writes Parquet; the processor
    # (since the history reaches the lake from the stream) and the receiver, on the
    # provider's deadline, never pay pyarrow's import
    def pandas_layers(function_logical_id: str) -> list[str]:
        layers = _properties(dev, function_logical_id)["Layers"]
        return [render(layer) for layer in layers if "AWSSDKPandas" in render(layer)]

    layer = _config(dev).aws_sdk_pandas_layer_arn.replace("{region}", "AWS::Region")
    assert pandas_layers(_lake_writer(dev)) == [layer]
    assert pandas_layers(_processor(dev)) == []
    assert pandas_layers(_receiver(dev)) == []


def test_receiver_answers_well_inside_efentos_ten_second_deadline(dev: Synth) -> None:
    assert _properties(dev, _receiver(dev))["Timeout"] < 10


def test_every_function_logs_to_its_own_group_with_retention(dev: Synth) -> None:
    groups = {_log_group_of(dev, f) for f in (_receiver(dev), _processor(dev), _lake_writer(dev))}

    assert len(groups) == 3
    for group in groups:
        assert dev.resources[group]["Properties"]["RetentionInDays"] > 0


def test_the_functions_code_is_the_functions_folder_staged_for_the_local_mode(dev: Synth) -> None:
    # The local runtime reads the written template and the staged asset folder.
    assert (dev.outdir / f"{constants.stack_name(STAGE)}.template.json").is_file()
    keys = {_properties(dev, f)["Code"]["S3Key"] for f in (_receiver(dev), _lake_writer(dev))}
    assert len(keys) == 1
    asset = dev.outdir / f"asset.{keys.pop().removesuffix('.zip')}"
    assert (asset / "sensorhook" / "core" / "flavors.py").is_file()
    assert not list(asset.rglob("__pycache__"))


# --- queues and event sources ---------------------------------------------------------------


def test_ingest_queue_redrives_to_an_encrypted_dlq_kept_fourteen_days(dev: Synth) -> None:
    config = _config(dev)
    queue = _properties(dev, _queue(dev, "ingest"))
    dlq_id = _queue(dev, "ingest-dlq")
    dlq = _properties(dev, dlq_id)

    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": config.dlq_max_receive_count,
    }
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # The DLQ may be redriven into the ingest queue (and serves no other queue).
    assert dlq["RedriveAllowPolicy"]["redrivePermission"] == "byQueue"
    [source] = dlq["RedriveAllowPolicy"]["sourceQueueArns"]
    assert render(source).endswith(f":{_name('ingest')}")


def test_ingest_visibility_timeout_is_at_least_six_processor_timeouts(dev: Synth) -> None:
    queue = _properties(dev, _queue(dev, "ingest"))
    processor = _properties(dev, _processor(dev))

    assert queue["VisibilityTimeout"] >= 6 * processor["Timeout"]


def test_every_queue_refuses_plain_http(dev: Synth) -> None:
    queues = logical_ids(dev.resources, "AWS::SQS::Queue")
    policies = [
        r["Properties"] for r in dev.resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"
    ]
    protected = {
        render(queue)
        for policy in policies
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for queue in policy["Queues"]
    }

    assert protected == set(queues)


def test_processor_consumes_the_ingest_queue_reporting_partial_failures(dev: Synth) -> None:
    config = _config(dev)
    dev.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [_queue(dev, "ingest"), "Arn"]},
            "FunctionName": {"Ref": _processor(dev)},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": config.processor_batch_size,
            "MaximumBatchingWindowInSeconds": config.processor_batching_window_seconds,
        },
    )


def test_a_backlog_cannot_starve_the_receiver(dev: Synth) -> None:
    # Given the stage's concurrency configuration
    config = _config(dev)
    # Then the processor's event source scales to its maximum concurrency and no further, and
    # the receiver holds a reservation of its own that nothing else can take
    [mapping] = [
        properties
        for properties in (
            _properties(dev, logical_id)
            for logical_id in logical_ids(dev.resources, "AWS::Lambda::EventSourceMapping")
        )
        if properties["FunctionName"] == {"Ref": _processor(dev)}
    ]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": config.processor_max_concurrency}
    receiver = _properties(dev, _receiver(dev))
    assert receiver["ReservedConcurrentExecutions"] == config.receiver_reserved_concurrency
    assert "ReservedConcurrentExecutions" not in _properties(dev, _processor(dev))


def test_lake_writer_takes_only_inserts_from_the_readings_stream(dev: Synth) -> None:
    config = _config(dev)
    [mapping_id] = logical_ids(
        dev.resources,
        "AWS::Lambda::EventSourceMapping",
        FunctionName={"Ref": _lake_writer(dev)},
    )
    mapping = _properties(dev, mapping_id)

    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [_table(dev, "readings"), "StreamArn"]}
    [pattern] = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    # an item's INSERT and a MODIFY adding readings to it (docs/readings.md); never REMOVE
    assert pattern == {"eventName": ["INSERT", "MODIFY"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.get("BisectBatchOnFunctionError", False) is False
    assert mapping["MaximumRetryAttempts"] == config.lake_writer_retry_attempts
    assert mapping["BatchSize"] == config.lake_writer_batch_size
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [_queue(dev, "lake-writer-failures"), "Arn"]
    }


# --- tables ---------------------------------------------------------------------------------


def _key_schema(table: dict[str, Any]) -> dict[str, str]:
    return {key["KeyType"]: key["AttributeName"] for key in table["KeySchema"]}


def test_tables_have_the_documented_keys_ttl_and_stream(dev: Synth) -> None:
    expected = {
        "readings": ({"HASH": "series", "RANGE": "point"}, "expires_at", "NEW_AND_OLD_IMAGES"),
        "sensor-state": ({"HASH": "series", "RANGE": "metric_channel"}, None, None),
        "gateways": ({"HASH": "gateway"}, None, None),
        "idempotency": ({"HASH": "id"}, "expiration", None),
        "subscriptions": ({"HASH": "name"}, None, None),
        "endpoints": ({"HASH": "endpoint", "RANGE": "entry"}, None, None),
        "recovery-incidents": ({"HASH": "incident", "RANGE": "part"}, None, None),
    }
    assert len(logical_ids(dev.resources, "AWS::DynamoDB::Table")) == len(expected)
    for name, (keys, ttl_attribute, stream_view) in expected.items():
        table = _properties(dev, _table(dev, name))

        assert _key_schema(table) == keys, name
        ttl = table.get("TimeToLiveSpecification")
        assert ttl == ({"AttributeName": ttl_attribute, "Enabled": True} if ttl_attribute else None)
        stream = table.get("StreamSpecification")
        assert stream == ({"StreamViewType": stream_view} if stream_view else None)


def test_sensor_state_has_the_keys_only_due_index_gateway_health_queries(dev: Synth) -> None:
    table = _properties(dev, _table(dev, "sensor-state"))

    [index] = table["GlobalSecondaryIndexes"]

    assert index["IndexName"] == DUE_INDEX
    assert _key_schema(index) == {"HASH": "due_shard", "RANGE": "due_at"}
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert types["due_shard"] == types["due_at"] == "S"
    # no other table has an index (each one is a write cost on every write of its items)
    others = [
        logical_id
        for logical_id in logical_ids(dev.resources, "AWS::DynamoDB::Table")
        if "GlobalSecondaryIndexes" in _properties(dev, logical_id)
    ]
    assert others == [_table(dev, "sensor-state")]


def test_tables_are_on_demand_recoverable_and_encrypted(dev: Synth) -> None:
    tables = logical_ids(dev.resources, "AWS::DynamoDB::Table")
    # readings, sensor_state, gateways, idempotency, subscriptions, endpoints, recovery
    # incidents: an empty loop proves nothing
    assert len(tables) == 7
    for logical_id in tables:
        table = _properties(dev, logical_id)

        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["SSESpecification"] == {"SSEEnabled": True}


def test_dev_tables_and_bucket_go_with_the_stack(dev: Synth) -> None:
    for logical_id in [*logical_ids(dev.resources, "AWS::DynamoDB::Table"), _bucket(dev)]:
        assert dev.resources[logical_id]["DeletionPolicy"] == "Delete"
    for logical_id in logical_ids(dev.resources, "AWS::DynamoDB::Table"):
        assert _properties(dev, logical_id)["DeletionProtectionEnabled"] is False


def test_prod_tables_and_bucket_are_retained_and_protected(prod: Synth) -> None:
    for logical_id in [*logical_ids(prod.resources, "AWS::DynamoDB::Table"), _bucket(prod)]:
        assert prod.resources[logical_id]["DeletionPolicy"] == "Retain"
    for logical_id in logical_ids(prod.resources, "AWS::DynamoDB::Table"):
        assert _properties(prod, logical_id)["DeletionProtectionEnabled"] is True


# --- bucket ---------------------------------------------------------------------------------


def test_bucket_is_private_encrypted_versioned_and_access_logged(dev: Synth) -> None:
    bucket_id = _bucket(dev)
    bucket = _properties(dev, bucket_id)

    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [encryption] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    log_bucket = render(bucket["LoggingConfiguration"]["DestinationBucketName"])
    assert dev.resources[log_bucket]["Type"] == "AWS::S3::Bucket"
    assert log_bucket != bucket_id


def test_both_buckets_deny_requests_without_tls(dev: Synth) -> None:
    buckets = logical_ids(dev.resources, "AWS::S3::Bucket")
    assert len(buckets) == 2  # data and access logs: an empty loop would prove nothing
    for bucket_id in buckets:
        dev.template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": bucket_id},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_bucket_lifecycle_follows_the_stage_configuration(dev: Synth) -> None:
    config = _config(dev)
    rules = {
        rule["Id"]: rule
        for rule in _properties(dev, _bucket(dev))["LifecycleConfiguration"]["Rules"]
    }

    raw = rules["raw-archive"]
    assert raw["Prefix"] == "raw/"
    assert raw["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": config.raw_archive_transition_ia_days}
    ]
    assert raw["ExpirationInDays"] == config.raw_archive_expiration_days
    inbox = rules["inbox-expire"]
    assert inbox["Prefix"] == "inbox/"
    # A claim-checked body must outlive the DLQ's retention, or a redrive finds no body.
    assert inbox["ExpirationInDays"] > constants.DLQ_RETENTION_DAYS
    assert rules["noncurrent-versions-expire"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": config.noncurrent_version_expiration_days
    }
    # Nothing expires readings/ or quarantine/: Parquet and unreplayed deliveries are kept.
    assert {rule.get("Prefix") for rule in rules.values()} == {"raw/", "inbox/", None}


# --- events, alarms, outputs ----------------------------------------------------------------


def test_event_bus_is_named_for_the_stage_and_archived(dev: Synth) -> None:
    bus_id = one_logical_id(dev.resources, "AWS::Events::EventBus", Name="sensorhook-dev")
    dev.template.has_resource_properties(
        "AWS::Events::Archive",
        {
            "SourceArn": {"Fn::GetAtt": [bus_id, "Arn"]},
            "EventPattern": {"source": [constants.EVENT_SOURCE]},
            "RetentionDays": _config(dev).event_archive_retention_days,
        },
    )


def _alarm_on(synth: Synth, metric: str, dimension: dict[str, Any]) -> dict[str, Any]:
    [alarm] = [
        r["Properties"]
        for r in synth.resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("MetricName") == metric
        and r["Properties"].get("Dimensions") == [dimension]
    ]
    return alarm


def test_an_alarm_fires_on_any_message_in_the_dlq(dev: Synth) -> None:
    dlq_id = _queue(dev, "ingest-dlq")
    alarm = _alarm_on(
        dev,
        "ApproximateNumberOfMessagesVisible",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}},
    )

    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    topic = one_logical_id(dev.resources, "AWS::SNS::Topic", TopicName="sensorhook-dev-alarms")
    assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_an_alarm_fires_when_the_ingest_backlog_ages(dev: Synth) -> None:
    alarm = _alarm_on(
        dev,
        "ApproximateAgeOfOldestMessage",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [_queue(dev, "ingest"), "QueueName"]}},
    )

    assert alarm["Threshold"] == _config(dev).ingest_queue_max_age_seconds


def test_outputs_have_the_fixed_logical_ids_the_tools_read(dev: Synth) -> None:
    assert set(dev.outputs) == {output.value for output in Output}
    assert dev.outputs[Output.INGEST_QUEUE_URL]["Value"] == {"Ref": _queue(dev, "ingest")}
    assert dev.outputs[Output.READINGS_TABLE]["Value"] == {"Ref": _table(dev, "readings")}
    assert dev.outputs[Output.BUCKET_NAME]["Value"] == {"Ref": _bucket(dev)}


# --- secrets --------------------------------------------------------------------------------


def test_secrets_are_generated_placeholders_in_the_documented_shape(dev: Synth) -> None:
    shapes = {}
    for logical_id in _secrets(dev):
        secret = _properties(dev, logical_id)
        assert "SecretString" not in secret
        generator = secret["GenerateSecretString"]
        shapes[secret["Name"]] = set(json.loads(generator["SecretStringTemplate"]))

    assert shapes == {
        "sensorhook/dev/everactive-v2020-signing-keys": {"keys", "previous_keys"},
        "sensorhook/dev/everactive-ds-webhook-headers": {"headers", "previous_headers"},
        "sensorhook/dev/efento-webhook-headers": {"headers", "previous_headers"},
        "sensorhook/dev/everactive-ds-api-credentials": {"client_id", "client_secret"},
        "sensorhook/dev/everactive-v2020-api-credentials": {"client_id", "client_secret"},
        # forwarding signing secrets: `{"secret": <generated>}` (docs/forwarding.md)
        "sensorhook/dev/forwarding/local-receiver": set(),
        "sensorhook/dev/forwarding/local-everactive": set(),
    }


def test_no_secret_value_is_written_into_the_template(dev: Synth) -> None:
    text = (dev.outdir / f"{constants.stack_name(STAGE)}.template.json").read_text()

    assert '"SecretString"' not in text
    for logical_id in _secrets(dev):
        template = _properties(dev, logical_id)["GenerateSecretString"]["SecretStringTemplate"]
        assert all(not values for values in json.loads(template).values())


# --- least privilege ------------------------------------------------------------------------


def _arn(logical_id: str) -> str:
    return f"{logical_id}.Arn"


def _objects(synth: Synth, prefix: str) -> str:
    return f"{_bucket(synth)}.Arn/{prefix}*"


def _baseline(synth: Synth, function_logical_id: str) -> set[tuple[str, str]]:
    """What every function may do: write its own logs, send traces."""
    log_group = _arn(_log_group_of(synth, function_logical_id))
    return {
        ("logs:CreateLogStream", log_group),
        ("logs:PutLogEvents", log_group),
        ("xray:PutTraceSegments", "*"),
        ("xray:PutTelemetryRecords", "*"),
    }


def test_each_function_has_its_own_role_without_managed_policies(dev: Synth) -> None:
    roles = [_role_of(dev, f) for f in (_receiver(dev), _processor(dev), _lake_writer(dev))]

    assert len(set(roles)) == 3
    for role in roles:
        assert "ManagedPolicyArns" not in _properties(dev, role)


def test_receiver_may_only_enqueue_read_webhook_secrets_and_claim_check(dev: Synth) -> None:
    receiver = _receiver(dev)

    grants = role_grants(dev.resources, _role_of(dev, receiver))

    assert grants == _baseline(dev, receiver) | {
        ("sqs:SendMessage", _arn(_queue(dev, "ingest"))),
        ("s3:PutObject", _objects(dev, "inbox/")),
        *(("secretsmanager:GetSecretValue", secret) for secret in _webhook_secrets(dev)),
    }


def test_processor_may_only_store_archive_and_publish(dev: Synth) -> None:
    processor = _processor(dev)
    stores = [_arn(_table(dev, name)) for name in ("readings", "sensor-state", "gateways")]
    idempotency = _arn(_table(dev, "idempotency"))
    ingest = _arn(_queue(dev, "ingest"))
    bus = _arn(one_logical_id(dev.resources, "AWS::Events::EventBus"))

    grants = role_grants(dev.resources, _role_of(dev, processor))

    assert grants == _baseline(dev, processor) | {
        *(
            (action, table)
            for table in stores
            for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem")
        ),
        *(
            (action, idempotency)
            for action in (
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            )
        ),
        ("s3:PutObject", _objects(dev, "raw/")),
        ("s3:PutObject", _objects(dev, "quarantine/")),
        ("s3:GetObject", _objects(dev, "inbox/")),
        ("s3:ListBucket", f"{_bucket(dev)}.Arn"),  # only under inbox/: see the test below
        ("events:PutEvents", bus),
        *(
            (action, ingest)
            for action in (
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            )
        ),
    }


def test_lake_writer_may_only_read_the_stream_and_write_parquet(dev: Synth) -> None:
    lake_writer = _lake_writer(dev)
    stream = f"{_table(dev, 'readings')}.StreamArn"
    failures = _arn(_queue(dev, "lake-writer-failures"))

    grants = role_grants(dev.resources, _role_of(dev, lake_writer))

    assert grants == _baseline(dev, lake_writer) | {
        ("dynamodb:ListStreams", "*"),
        ("dynamodb:DescribeStream", stream),
        ("dynamodb:GetRecords", stream),
        ("dynamodb:GetShardIterator", stream),
        ("s3:PutObject", _objects(dev, "readings/")),
        ("s3:PutObject", _objects(dev, "gateway_status/")),  # gateway status history (Athena)
        ("sqs:SendMessage", failures),
        ("sqs:GetQueueAttributes", failures),
        ("sqs:GetQueueUrl", failures),
    }


def test_the_processor_may_list_only_the_inbox_to_tell_a_missing_body_from_a_denied_one(
    dev: Synth,
) -> None:
    # Given the processor role's policy statements
    role = _role_of(dev, _processor(dev))
    statements = [
        statement
        for resource in dev.resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]

    # When the ones allowing s3:ListBucket are read
    listing = [
        statement
        for statement in statements
        if "s3:ListBucket"
        in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    ]

    # Then there is one, on the bucket, limited to keys under inbox/ (without it, S3 answers a
    # GET of a missing key with 403, the same as access denied)
    [statement] = listing
    assert statement["Action"] == "s3:ListBucket"
    assert render(statement["Resource"]) == f"{_bucket(dev)}.Arn"
    assert statement["Condition"] == {"StringLike": {"s3:prefix": ["inbox/*"]}}


def test_the_receiver_cannot_touch_tables_and_the_processor_cannot_enqueue(dev: Synth) -> None:
    receiver_actions = {a for a, _ in role_grants(dev.resources, _role_of(dev, _receiver(dev)))}
    processor_actions = {a for a, _ in role_grants(dev.resources, _role_of(dev, _processor(dev)))}

    assert not {a for a in receiver_actions if a.startswith("dynamodb:")}
    assert "sqs:SendMessage" not in processor_actions


# --- cdk-nag --------------------------------------------------------------------------------


def test_cdk_nag_finds_nothing_unacknowledged(dev: Synth) -> None:
    report = dev.checks.validate_scope(dev.stack)

    assert [
        (violation.rule_name, [r.construct_path for r in violation.violating_resources])
        for violation in report.violations
    ] == []


def test_every_acknowledged_finding_says_why(dev: Synth) -> None:
    acknowledged: dict[str, str] = {}
    for construct in dev.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                for rule, reason in entry.data.items():
                    acknowledged[f"{construct.node.path}: {rule}"] = reason

    assert acknowledged, "expected the documented acknowledgements (X-Ray, runtime, API auth)"
    for where, reason in acknowledged.items():
        assert len(reason) >= MIN_REASON_LENGTH, where
