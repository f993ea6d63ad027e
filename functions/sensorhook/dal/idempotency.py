"""The Powertools idempotency persistence layer on sensorhook's idempotency table."""

from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from sensorhook.dal.aws_clients import dynamodb_client


def persistence_layer(table_name: str, client: Any = None) -> DynamoDBPersistenceLayer:
    """A new layer for ONE idempotent function.

    A layer remembers the function it guards; sharing one between two decorated functions
    silently disables idempotency of the second, so every call returns a fresh instance.
    """
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client or dynamodb_client())
