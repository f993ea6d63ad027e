"""The parts both forwarding functions build from their settings, once per environment."""

import json

from sensorhook.core.forwarding import EndpointSecret, ForwardingPolicy, parse_endpoints
from sensorhook.core.settings import ForwardingSettings
from sensorhook.dal.aws_clients import secretsmanager_client
from sensorhook.dal.backlog import Backlog
from sensorhook.dal.endpoint_http import EndpointHttp
from sensorhook.dal.endpoints_store import EndpointsStore
from sensorhook.dal.webhook_secrets import WebhookSecrets
from sensorhook.logic.forwarding import Forwarding, Starter


def build_forwarding(settings: ForwardingSettings, machine: Starter | None) -> Forwarding:
    secret_arns: dict[str, str] = json.loads(settings.endpoint_secret_arns)
    secrets = WebhookSecrets(settings.secret_cache_seconds, client=secretsmanager_client())

    def secret(endpoint: str) -> EndpointSecret:
        return secrets.read(secret_arns[endpoint], EndpointSecret)

    return Forwarding(
        endpoints=parse_endpoints(settings.forwarding_endpoints),
        policy=ForwardingPolicy.model_validate_json(settings.forwarding_policy),
        store=EndpointsStore(settings.endpoints_table),
        backlog=Backlog(settings.bucket_name),
        http=EndpointHttp(),
        secret=secret,
        machine=machine,
    )
