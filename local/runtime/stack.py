"""The CDK app deployed into an embedded AWS (moto's server, in this process).

``EmbeddedStack`` synthesizes the app (cached), starts ``ThreadedMotoServer`` on a free loopback
port, points boto3 in this process at it, deploys the template through moto's CloudFormation
and supplies what moto lacks, all derived from the same template: in-process Lambda, AWS-like
SQS and DynamoDB stream pollers, the HTTP API front, EventBridge -> Lambda and schedules.
"""

import functools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import requests
from moto.awslambda.models import lambda_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer

from local.runtime.assembly import (
    BOOTSTRAP_QUALIFIER,
    BOOTSTRAP_VERSION_PARAMETER,
    SYNTH_INPUTS,
    StackArtifact,
    synthesize,
)
from local.runtime.expiry import Expirer, ExpiryRules
from local.runtime.front_priority import LONGEST_HOLD_S, FrontPriority
from local.runtime.http_front import HttpFront, http_apis
from local.runtime.in_process_calls import InProcessCalls, calls_stay_in_process
from local.runtime.lambda_runner import InProcessLambdas, Invocation, code_sha256
from local.runtime.localize import localize
from local.runtime.metrics_isolation import metrics_are_per_invocation
from local.runtime.moto_fixes import (
    actions_are_looked_up_once,
    backend_lookup_is_cached,
    backends_are_found_without_a_lock,
    dynamodb_items_are_dumped_as_json,
    event_bus_ref_is_its_name,
    input_paths_are_parsed_once,
    item_sizes_are_counted_once_per_write,
    models_are_not_tracked,
    requests_leave_no_garbage_cycles,
    sqs_reads_attributes_once,
    sqs_reads_the_clock_once,
    sqs_sends_are_dumped_as_json,
    sqs_sends_count_no_backlog,
    stream_records_are_numbered_atomically,
    update_expressions_are_checked_at_the_root,
    update_expressions_are_parsed_once,
    update_expressions_check_node_types_once,
    update_expressions_copy_cheaply,
)
from local.runtime.pollers import (
    DynamoDbStreamPoller,
    Poller,
    SourceWakeups,
    SqsPoller,
    detach_moto_delivery,
)
from local.runtime.retention import Janitor, RetentionBounds
from local.runtime.schedules import AsyncInvoker, Scheduler, forward_bus_events_to_lambda
from local.runtime.step_functions import (
    adopt_state_machines,
    compress_time,
    enable_execution,
    running_executions,
)

log = logging.getLogger(__name__)

# moto accepts any credentials; these are what the runtime and its users' tools send.
DEMO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_BOOTSTRAP_VERSION = "21"
_ACTIVE_LOCK = threading.Lock()  # moto's backends are process-global: one stack at a time


class DrainTimeout(TimeoutError):
    """Work was still pending when ``drain`` gave up; the message says what."""


@dataclass(frozen=True)
class DrainScope:
    """The part of the stack a drain waits for: these functions (by name), the pollers that
    feed them and these state machines (by ARN), or, `inverted`, everything else. Two scopes
    that split the stack let two flows drain at once, neither waiting for the other's work
    (the demo's forwarding phase runs beside the others). Asynchronous invocations pending
    count in every scope."""

    functions: frozenset[str]
    state_machines: frozenset[str]
    inverted: bool = False

    def covers_function(self, name: str) -> bool:
        return (name in self.functions) != self.inverted

    def covers_machine(self, arn: str) -> bool:
        return (arn in self.state_machines) != self.inverted

    def rest(self) -> "DrainScope":
        return DrainScope(self.functions, self.state_machines, not self.inverted)


EVERYTHING = DrainScope(frozenset(), frozenset(), inverted=True)


# Every function, poller and HTTP thread shares one GIL. At Python's 5 ms switch interval, a
# request thread woken by its socket waited up to 5 ms for a poller's batch each time it needed
# the GIL (a dozen times per request): the receiver's latency, and so the rate a client with a
# few connections gets answered at, was set by the processor's batches, not by its own work.
SWITCH_INTERVAL_S = 0.001
# Functions' intervals that run on the state machines' compressed clock, as the waits that
# depend on them do: the processor's gateway contact (the recovery machine polls it)
COMPRESSED_INTERVALS = frozenset({"GATEWAY_CONTACT_EVERY_SECONDS"})
# Functions' settings the embedded stack runs otherwise than AWS: every function shares this
# process and one GIL, where the processor's concurrent readings writes only contend
# (docs/local-mode.md, "Throughput")
LOCAL_VARIABLES = {"READINGS_WRITERS": "1"}


def _switch_threads_sooner() -> Callable[[], None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return lambda: sys.setswitchinterval(previous)


class EmbeddedStack:
    """Start with ``with EmbeddedStack(project_dir) as stack:`` or ``start()`` / ``stop()``."""

    def __init__(
        self,
        project_dir: Path | str = ".",
        *,
        stack_name: str | None = None,
        cache_dir: Path | None = None,
        synth_inputs: tuple[str, ...] = SYNTH_INPUTS,
        region: str = "us-east-1",
        aws_port: int = 0,
        api_port: int = 0,
        api_base_path: str = "",
        schedule_speedup: float = 60.0,
        step_functions_speedup: float | None = None,
        poll_interval: float = 0.1,
        idle_poll_interval: float = 1.0,
        batching_window_cap: float | None = None,
        environment_overrides: Mapping[str, str] | None = None,
        on_deployed: Callable[["EmbeddedStack"], None] | None = None,
        retention: RetentionBounds | None = None,
        retention_day_s: float | None = None,
        front_priority_hold_s: float = LONGEST_HOLD_S,
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        self.cache_dir = cache_dir or self.project_dir / ".local"
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self._stack_name = stack_name
        self._synth_inputs = synth_inputs
        self._aws_port = aws_port
        self._api_port = api_port
        # serve the HTTP API as a custom domain's API mapping with this base path would
        self._api_base_path = api_base_path
        self._schedule_speedup = schedule_speedup
        # Wait states and Retry intervals run on the schedules' compressed clock unless told
        self._step_functions_speedup = step_functions_speedup or schedule_speedup
        self._poll_interval = poll_interval
        # an empty source wakes its poller when a record arrives; this is the fallback
        self._idle_poll_interval = idle_poll_interval
        self._wakeups = SourceWakeups()
        self._batching_window_cap = batching_window_cap
        # e.g. the provider API URLs pointed at the emulator: applied to every function that
        # already has the variable, so the wiring stays the template's
        self._environment_overrides = dict(environment_overrides or {})
        # what a user does between `cdk deploy` and the first request (e.g. put secret values);
        # it runs before anything is invoked, the after-deploy triggers included
        self._on_deployed = on_deployed
        self._undo: list[Any] = []
        # what moto would otherwise keep for ever (logs, archived events, stream records)
        self.janitor = Janitor(self.account_id, region, retention or RetentionBounds())
        # the stack's own expiry (TTL, lifecycle, queue retention) with a day lasting this many
        # seconds; None applies none, as no period the stack sets ends within a session
        self._retention_day_s = retention_day_s
        self._saved_environ: dict[str, str | None] = {}
        self.lambdas = InProcessLambdas(self.cache_dir / "lambda-code")
        self.invoker = AsyncInvoker(self.invoke_arn)
        self.pollers: list[Poller] = []
        self._poller_functions: dict[Poller, str] = {}  # the function each poller invokes
        self._poller_mappings: dict[Poller, str] = {}  # the event source mapping's id
        self._flush_scopes: dict[str, DrainScope] = {}  # mapping id -> the draining scope
        self.fronts: list[HttpFront] = []
        # pollers hold their batches while a front answers, at most this long each
        self.front_priority = FrontPriority(longest_hold_s=front_priority_hold_s)
        self.scheduler: Scheduler | None = None
        self.artifact: StackArtifact | None = None
        self.aws_endpoint = ""
        self.outputs: dict[str, str] = {}
        self.physical_ids: dict[str, str] = {}
        self.function_arns: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}  # logical id -> ARN, executable
        self.timings: dict[str, float] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self.in_process_calls: InProcessCalls | None = None  # this process's calls to moto

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> "EmbeddedStack":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> "EmbeddedStack":
        if not _ACTIVE_LOCK.acquire(blocking=False):
            raise RuntimeError("an EmbeddedStack is already running in this process")
        self._undo.append(_ACTIVE_LOCK.release)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        began = time.monotonic()
        assembly = synthesize(self.project_dir, self.cache_dir, self._synth_inputs)
        self.artifact = StackArtifact.load(assembly, self._stack_name)
        self.timings["synth"] = time.monotonic() - began

        began = time.monotonic()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per call
        for fix in (
            backend_lookup_is_cached,
            backends_are_found_without_a_lock,
            models_are_not_tracked,
            requests_leave_no_garbage_cycles,
            sqs_reads_attributes_once,
            sqs_reads_the_clock_once,
            sqs_sends_count_no_backlog,
            input_paths_are_parsed_once,
            stream_records_are_numbered_atomically,
            dynamodb_items_are_dumped_as_json,
            sqs_sends_are_dumped_as_json,
            update_expressions_copy_cheaply,
            update_expressions_check_node_types_once,
            update_expressions_are_checked_at_the_root,
            update_expressions_are_parsed_once,
            item_sizes_are_counted_once_per_write,
            actions_are_looked_up_once,
            metrics_are_per_invocation,
            _switch_threads_sooner,
        ):
            self._undo.append(fix())
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._aws_port, verbose=False)
        server.start()
        self._undo.append(server.stop)
        host, port = server.get_host_and_port()
        self.aws_endpoint = f"http://{host}:{port}"
        self.in_process_calls, undo_in_process = calls_stay_in_process(port)
        self._undo.append(undo_in_process)
        requests.post(f"{self.aws_endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self._set_environ(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_PROFILE": None,
                "AWS_SESSION_TOKEN": None,
                # where moto's Step Functions interpreter sends its tasks' service calls
                "MOTO_PORT": str(port),
                **DEMO_CREDENTIALS,
            }
        )
        self._undo.append(enable_execution(self.aws_endpoint))
        self._undo.append(compress_time(self._step_functions_speedup))
        self.lambdas.install()
        self._undo.append(self.lambdas.uninstall)
        self._undo.append(detach_moto_delivery())
        self._undo.append(self._wakeups.install())
        self._undo.append(event_bus_ref_is_its_name())
        self._undo.append(forward_bus_events_to_lambda(self.invoker))
        self._undo.append(self.invoker.shutdown)
        specs = http_apis(self.artifact.template)
        self.fronts = [
            HttpFront(
                spec,
                self.invoke_arn,
                self.function_arns,
                self.account_id,
                port=self._api_port if index == 0 else 0,
                base_path=self._api_base_path,
                priority=self.front_priority,
            )
            for index, spec in enumerate(specs)
        ]
        self._deploy()
        self.state_machine_arns = adopt_state_machines(
            self.artifact.template,
            self.physical_ids,
            self.client("stepfunctions"),
            self.account_id,
            self.region,
        )
        self.timings["deploy"] = time.monotonic() - began
        if self._on_deployed is not None:
            self._on_deployed(self)

        for front in self.fronts:
            front.start()
            self._undo.append(front.stop)
        self._start_pollers()
        if self._retention_day_s:
            self.janitor.expirer = Expirer(
                self.account_id,
                self.region,
                ExpiryRules.from_template(self.artifact.template, self.physical_ids),
                self._retention_day_s,
            )
        self.janitor.start()
        self._undo.append(self.janitor.stop)
        self.scheduler = Scheduler(
            self.client("events"),
            self.invoker,
            self.account_id,
            self.region,
            self._schedule_speedup,
            priority=self.front_priority,
        )
        self.scheduler.start()
        self._undo.append(self._stop_scheduler)
        self._run_deploy_triggers(self.artifact.template)

    def _run_deploy_triggers(self, template: Mapping[str, Any]) -> None:
        """CDK `triggers.Trigger` resources: invoke their function once the stack is deployed.

        moto cannot run the trigger's Node.js custom resource, so the runtime does what it does:
        an asynchronous invocation of the function version named by `HandlerArn`.
        """
        resources = template["Resources"]
        for resource in resources.values():
            if resource["Type"] != "Custom::Trigger":
                continue
            target = resource["Properties"]["HandlerArn"]["Ref"]
            function = resources[target]["Properties"]["FunctionName"]["Ref"]
            arn = self.function_arns[function]
            log.info("running after-deploy trigger", extra={"function": function})
            self.invoker.submit(arn, {})

    def stop(self) -> None:
        """Stop everything started, in reverse order; safe to call twice."""
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:
                log.exception("stopping part of the embedded stack failed")
        self._restore_environ()

    # -- deploy --------------------------------------------------------------------------------

    def _deploy(self) -> None:
        artifact = self._artifact()
        s3 = self.client("s3")
        for asset in artifact.assets:
            bucket = self._placeholders(asset.bucket_name)
            if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=bucket)
            content = asset.content()
            s3.put_object(Bucket=bucket, Key=asset.object_key, Body=content)
            if asset.packaging == "zip":
                self.lambdas.register_code_dir(code_sha256(content), asset.source)
        self.client("ssm").put_parameter(
            Name=BOOTSTRAP_VERSION_PARAMETER,
            Value=_BOOTSTRAP_VERSION,
            Type="String",
            Overwrite=True,
        )
        fronts = {front.spec.logical_id: front for front in self.fronts}
        created = self._create_secrets()
        resources = artifact.template["Resources"]

        def substitute(logical_id: str, attribute: str | None) -> str:
            front = fronts.get(logical_id)
            if front is not None:
                if attribute == "ApiEndpoint":
                    return front.endpoint
                if attribute in (None, "ApiId"):
                    return front.api_id
            if logical_id in created:
                return created[logical_id]
            # Not emulated (alarms, bucket policies, Glue, ...): an ARN-shaped stand-in, since
            # moto validates that IAM policy resources are ARNs.
            service, kind = resources[logical_id]["Type"].split("::")[1:3]
            suffix = f"/{attribute}" if attribute else ""
            return (
                f"arn:aws:{service.lower()}:{self.region}:{self.account_id}:"
                f"{kind.lower()}/{logical_id}{suffix}"
            )

        localized = localize(artifact.template, substitute)
        if localized.dropped_layers:
            log.info(
                "dropped Lambda layers moto cannot resolve; the local venv provides them",
                extra={"functions": sorted(localized.dropped_layers)},
            )
        self._override_environment(localized.body)
        cloudformation = self.client("cloudformation")
        cloudformation.create_stack(
            StackName=artifact.name,
            TemplateBody=json.dumps(localized.body),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        deadline = time.monotonic() + 60
        while True:
            stack = cloudformation.describe_stacks(StackName=artifact.name)["Stacks"][0]
            if stack["StackStatus"] == "CREATE_COMPLETE":
                break
            if not stack["StackStatus"].endswith("IN_PROGRESS") or time.monotonic() > deadline:
                raise RuntimeError(
                    f"stack {artifact.name}: {stack['StackStatus']} "
                    f"{stack.get('StackStatusReason', '')}"
                )
            time.sleep(0.05)
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        resources = cloudformation.describe_stack_resources(StackName=artifact.name)
        self.physical_ids = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in resources["StackResources"]
            if r.get("PhysicalResourceId")  # moto gives Lambda permissions none
        }
        self.function_arns.update(
            {
                logical_id: (
                    f"arn:aws:lambda:{self.region}:{self.account_id}:function:"
                    f"{self.physical_ids[logical_id]}"
                )
                for logical_id, resource in artifact.template["Resources"].items()
                if resource["Type"] == "AWS::Lambda::Function"
            }
        )

    def _override_environment(self, template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            for name in COMPRESSED_INTERVALS & set(variables):
                seconds = int(variables[name]) / self._step_functions_speedup
                variables[name] = str(int(seconds))
            for name, value in {**LOCAL_VARIABLES, **self._environment_overrides}.items():
                if name in variables:
                    variables[name] = value

    def _create_secrets(self) -> dict[str, str]:
        """Create the template's secrets through the API: moto's CloudFormation has no model.

        Returns logical id -> ARN (what both ``Ref`` and ``Fn::GetAtt Id`` give for a secret).
        """
        artifact = self._artifact()
        secretsmanager = self.client("secretsmanager")
        created = {}
        for logical_id, resource in artifact.template["Resources"].items():
            if resource["Type"] != "AWS::SecretsManager::Secret":
                continue
            properties = resource.get("Properties", {})
            name = properties.get("Name")
            if not isinstance(name, str):
                name = f"{artifact.name}-{logical_id}"
            value = properties.get("SecretString")
            if not isinstance(value, str):
                value = self._generated_secret(properties.get("GenerateSecretString", {}))
            description = properties.get("Description")
            arn = secretsmanager.create_secret(
                Name=name,
                SecretString=value,
                **({"Description": description} if isinstance(description, str) else {}),
            )["ARN"]
            created[logical_id] = arn
        return created

    def _generated_secret(self, spec: dict[str, Any]) -> str:
        password = self.client("secretsmanager").get_random_password(
            PasswordLength=int(spec.get("PasswordLength", 32)),
            ExcludeCharacters=str(spec.get("ExcludeCharacters", "")),
            ExcludePunctuation=bool(spec.get("ExcludePunctuation", False)),
        )["RandomPassword"]
        if "SecretStringTemplate" in spec and "GenerateStringKey" in spec:
            document = json.loads(spec["SecretStringTemplate"])
            document[spec["GenerateStringKey"]] = password
            return json.dumps(document)
        return str(password)

    def _artifact(self) -> StackArtifact:
        if self.artifact is None:
            raise RuntimeError("the stack is not synthesized yet")
        return self.artifact

    def _placeholders(self, text: str) -> str:
        return (
            text.replace("${AWS::AccountId}", self.account_id)
            .replace("${AWS::Region}", self.region)
            .replace("${Qualifier}", BOOTSTRAP_QUALIFIER)
        )

    def _start_pollers(self) -> None:
        artifact = self._artifact()
        mapping_ids = {
            self.physical_ids[logical_id]
            for logical_id, resource in artifact.template["Resources"].items()
            if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        }
        lambda_client = self.client("lambda")
        for mapping_id in sorted(mapping_ids):
            mapping = lambda_client.get_event_source_mapping(UUID=mapping_id)
            source = mapping["EventSourceArn"]
            activity = functools.partial(self._activity_for, mapping_id)
            poller: Poller
            if source.startswith("arn:aws:sqs:"):
                poller = SqsPoller(
                    mapping,
                    sqs=self.client("sqs"),
                    invoke=self.invoke_arn,
                    poll_interval=self._poll_interval,
                    region=self.region,
                    window_cap=self._batching_window_cap,
                    wakeups=self._wakeups,
                    idle_interval=self._idle_poll_interval,
                    activity=activity,
                    priority=self.front_priority,
                )
            elif ":dynamodb:" in source and "/stream/" in source:
                poller = DynamoDbStreamPoller(
                    mapping,
                    streams=self.client("dynamodbstreams"),
                    sqs=self.client("sqs"),
                    invoke=self.invoke_arn,
                    poll_interval=self._poll_interval,
                    region=self.region,
                    account_id=self.account_id,
                    window_cap=self._batching_window_cap,
                    wakeups=self._wakeups,
                    idle_interval=self._idle_poll_interval,
                    activity=activity,
                    priority=self.front_priority,
                )
            else:
                log.warning("event source not emulated", extra={"source": source})
                continue
            poller.start()
            self.pollers.append(poller)
            self._poller_functions[poller] = mapping["FunctionArn"].rsplit(":", 1)[-1]
            self._poller_mappings[poller] = mapping_id
        self._undo.append(self._stop_pollers)

    def _activity_for(self, mapping_id: str) -> int | None:
        """Invocations started so far, or None while one runs (a poller's flushed window),
        within the scope of the drain that flushes the mapping's poller: another part's
        invocations (a scoped drain's `rest`) do not hold its batching window open."""
        scope = self._flush_scopes.get(mapping_id, EVERYTHING)
        if self._in_flight_in(scope) or self.invoker.pending:
            return None
        return self._started_in(scope)

    def _in_flight_in(self, scope: DrainScope) -> int:
        return sum(
            n for name, n in self.lambdas.in_flight_by.copy().items() if scope.covers_function(name)
        )

    def _stop_pollers(self) -> None:
        for poller in self.pollers:
            poller.stop()
        for poller in self.pollers:
            poller.join(timeout=10)
        self.pollers = []

    def _stop_scheduler(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler.join(timeout=5)

    # -- environment ---------------------------------------------------------------------------

    def _set_environ(self, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            self._saved_environ.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _restore_environ(self) -> None:
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ = {}

    # -- use -----------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The URL of the (first) HTTP API, like the ``ApiEndpoint`` of a deployed one."""
        return self.fronts[0].url

    def client(self, service: str) -> Any:
        """A boto3 client for the embedded AWS (explicit, so it ignores the ambient env).

        One per service, shared: clients are thread-safe, and creating one costs milliseconds
        of CPU, which the demo's and tests' polling loops paid twenty times a second.
        """
        key = (service, self.aws_endpoint)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = boto3.client(
                    service,
                    endpoint_url=self.aws_endpoint,
                    region_name=self.region,
                    aws_access_key_id=DEMO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=DEMO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                )
            return self._clients[key]

    def invoke_arn(self, function_arn: str, event: dict[str, Any]) -> Invocation:
        """Invoke a deployed function in-process, as the Lambda service would."""
        backend = lambda_backends[self.account_id][self.region]
        return self.lambdas.invoke(backend.get_function(function_arn), event)

    def invoke(self, function_logical_id: str, event: dict[str, Any]) -> Invocation:
        return self.invoke_arn(self.function_arns[function_logical_id], event)

    def fire_schedule(self, rule_logical_id: str) -> list[Invocation]:
        """Fire a scheduled rule now and wait for its targets to finish."""
        if self.scheduler is None:
            raise RuntimeError("the stack is not running")
        name = self.physical_ids[rule_logical_id].split("|")[-1]
        return [future.result() for future in self.scheduler.fire(name)]

    def drain(self, timeout: float = 30.0, scope: DrainScope = EVERYTHING) -> None:
        """Wait until every queue and stream is empty and no invocation is running (within
        `scope`: see `DrainScope`).

        Settled means: nothing in flight, then a full poll of every source that started after
        that moment found nothing, and no invocation started meanwhile (one could have
        produced new records for a source polled just before it). Batching windows are cut
        short while draining.
        """
        pollers = [p for p in self.pollers if scope.covers_function(self._poller_functions[p])]
        for poller in pollers:
            self._flush_scopes[self._poller_mappings[poller]] = scope
            poller.flush()
        try:
            self._wait_settled(timeout, scope, pollers)
        finally:
            for poller in pollers:
                poller.flush(False)
                self._flush_scopes.pop(self._poller_mappings[poller], None)

    def _started_in(self, scope: DrainScope) -> int:
        return sum(
            n for name, n in self.lambdas.started_by.copy().items() if scope.covers_function(name)
        )

    def _wait_settled(self, timeout: float, scope: DrainScope, pollers: list[Poller]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mark, started = time.monotonic(), self._started_in(scope)
            if self._busy(scope) == []:
                for poller in pollers:
                    poller.wake()  # a full poll of every source from now, not after its idle wait
                while time.monotonic() < deadline:
                    if all(poller.quiet_since > mark for poller in pollers):
                        if self._started_in(scope) == started and self._busy(scope) == []:
                            return
                        break
                    time.sleep(0.02)
            else:
                time.sleep(0.02)
        busy = self._busy(scope) or [p.name for p in pollers if p.quiet_since == 0.0]
        raise DrainTimeout(f"still busy after {timeout} s: {busy or 'new work kept arriving'}")

    def _busy(self, scope: DrainScope = EVERYTHING) -> list[str]:
        busy = []
        in_flight = self._in_flight_in(scope)
        if in_flight:
            busy.append(f"{in_flight} invocation(s) running")
        if self.invoker.pending:
            busy.append(f"{self.invoker.pending} asynchronous invocation(s) pending")
        executions = running_executions(self.account_id, self.region, scope.covers_machine)
        if executions:
            busy.append(f"{executions} state machine execution(s) running")
        return busy
