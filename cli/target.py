"""Which sensorhook the CLI talks to: the local stack of `make local`, or a deployed stack.

- `--local`, or neither `--stack` nor `--stage` while `.local/endpoints.json` exists: the local
  stack, at the embedded AWS endpoint and with the credentials that file names.
- otherwise a deployed stack: CloudFormation outputs of `--stack NAME`, by default
  `sensorhook-<stage>` for `--stage` (default: cdk.json's `stage`), with the usual AWS
  credential chain (`--profile`, `--region` or the AWS_* variables).

Everything else the CLI needs (queue URLs, tables, bucket, function names, secret ARNs) comes
from the stack's outputs (infra.constants.Output), the same in both modes.
"""

import json
import socket
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cli.errors import CliError
from infra.constants import Output, stack_name

PROJECT_DIR = Path(__file__).resolve().parents[1]
ENDPOINTS_FILE = PROJECT_DIR / ".local" / "endpoints.json"
CDK_JSON = PROJECT_DIR / "cdk.json"
LOCAL_NAME = "local"

# Standard retries back off on throttling before the CLI gives up and says so.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
# The three receiver secrets, by their section names in the emulator's Secrets model.
WEBHOOK_SECRET_OUTPUTS = {
    "v2020_signing": Output.V2020_SIGNING_SECRET_ARN,
    "ds_header": Output.DS_HEADER_SECRET_ARN,
    "efento_header": Output.EFENTO_HEADER_SECRET_ARN,
}


@dataclass(frozen=True)
class Selection:
    """The global options that say which stack to use."""

    stack: str | None = None
    stage: str | None = None
    local: bool = False
    endpoints: Path = ENDPOINTS_FILE
    profile: str | None = None
    region: str | None = None


@dataclass
class Target:
    name: str  # the stack name, or "local"
    local: bool
    region: str
    outputs: dict[str, str]
    session: Any  # boto3.Session
    endpoint_url: str | None = None
    status: str = ""  # CloudFormation stack status (deployed)
    local_details: dict[str, Any] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, config=_CLIENT_CONFIG
            )
        return self._clients[service]

    def has(self, output: str) -> bool:
        return bool(self.outputs.get(output))

    def output(self, output: str) -> str:
        value = self.outputs.get(output)
        if not value:
            raise CliError(
                f"stack {self.name} has no output {output}: it was deployed from an older "
                "version of sensorhook (deploy again)"
            )
        return value

    @property
    def api_url(self) -> str:
        return self.output(Output.API_URL).rstrip("/")

    @cached_property
    def webhook_secrets(self) -> dict[str, Any]:
        """The receiver's webhook secrets by section (v2020_signing, ds_header, efento_header),
        each in its Secrets Manager JSON shape: what a test delivery authenticates with."""
        if self.local:
            # {"V2020_SIGNING_SECRET_ARN": {"arn": ..., "value": {...}}, ...}
            secrets: dict[str, Any] = self.local_details.get("webhook_secrets", {})
            by_section = {
                name.lower().removesuffix("_secret_arn"): item["value"]
                for name, item in secrets.items()
            }
            return {
                section: by_section[section]
                for section in WEBHOOK_SECRET_OUTPUTS
                if section in by_section
            }
        client = self.client("secretsmanager")
        values: dict[str, Any] = {}
        for section, output in WEBHOOK_SECRET_OUTPUTS.items():
            try:
                response = client.get_secret_value(SecretId=self.output(output))
            except ClientError as error:
                if error.response["Error"]["Code"] == "ResourceNotFoundException":
                    continue  # never set: that flavor's delivery would be refused anyway
                raise
            values[section] = json.loads(response["SecretString"])
        return values


def stages() -> tuple[str, dict[str, Any]]:
    """cdk.json's default stage and its declared stages."""
    from infra.config import CONTEXT_KEY, STAGE_CONTEXT_KEY

    context = json.loads(CDK_JSON.read_text()).get("context", {})
    declared = context.get(CONTEXT_KEY, {}).get("stages", {})
    return context.get(STAGE_CONTEXT_KEY, "dev"), declared


def resolve(selection: Selection) -> Target:
    if selection.local or (
        selection.stack is None and selection.stage is None and selection.endpoints.exists()
    ):
        return _local(selection.endpoints)
    return _deployed(selection)


def _local(endpoints: Path) -> Target:
    if not endpoints.exists():
        raise CliError(
            f"no local stack: {endpoints} is missing (start one with `make local`, or pass "
            "--stack NAME for a deployed stack)"
        )
    details = json.loads(endpoints.read_text())
    endpoint = details["aws_endpoint"]
    if not _answers(endpoint):
        raise CliError(
            f"the local stack is not running at {endpoint} (start it with `make local`, or "
            "pass --stack NAME for a deployed stack)"
        )
    credentials = details.get("credentials", {})
    session = boto3.Session(
        aws_access_key_id=credentials.get("aws_access_key_id", "testing"),
        aws_secret_access_key=credentials.get("aws_secret_access_key", "testing"),
        region_name=details.get("region", "us-east-1"),
    )
    return Target(
        name=LOCAL_NAME,
        local=True,
        region=details.get("region", "us-east-1"),
        outputs={**details.get("outputs", {}), Output.API_URL: details["api_url"]},
        session=session,
        endpoint_url=endpoint,
        status="running",
        local_details=details,
    )


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 2):
            return True
    except OSError:
        return False


def _deployed(selection: Selection) -> Target:
    default_stage, declared = stages()
    stage = selection.stage or default_stage
    if selection.stack is None and stage not in declared:
        known = ", ".join(sorted(declared)) or "none"
        raise CliError(f"stage {stage!r} is not in cdk.json (its stages: {known})")
    name = selection.stack or stack_name(stage)
    session = boto3.Session(profile_name=selection.profile, region_name=selection.region)
    if session.region_name is None:
        raise CliError("no AWS region: set AWS_REGION or pass --region")
    try:
        response = session.client("cloudformation", config=_CLIENT_CONFIG).describe_stacks(
            StackName=name
        )
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            deploy = f"deploy it (`make deploy STAGE={stage}`), or " if not selection.stack else ""
            raise CliError(
                f"no stack {name} in {session.region_name}: "
                f"{deploy}pick another with --stack/--stage/--region"
            ) from error
        raise
    stack = response["Stacks"][0]
    if stack["StackStatus"] in ("DELETE_COMPLETE", "ROLLBACK_COMPLETE", "CREATE_FAILED"):
        raise CliError(f"stack {name} is {stack['StackStatus']}: nothing to operate on")
    return Target(
        name=name,
        local=False,
        region=session.region_name,
        outputs={item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])},
        session=session,
        status=stack["StackStatus"],
    )
