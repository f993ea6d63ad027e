"""Run Lambda functions in this process instead of in moto's Docker containers.

moto's ``LambdaFunction._invoke_lambda`` starts a Docker container; we replace it with a runner
that imports the handler from the function's own code, so ``lambda.invoke``, Step Functions
tasks and every event source we emulate all reach the same code path.

Each function sees its own environment variables while it runs. ``os.environ`` is process-wide,
so instead of swapping it under a global lock (which deadlocks as soon as one function invokes
another through the moto server, because that call is served on another thread), the runner
installs a thread-local overlay: the invoking thread reads the function's variables, every other
thread reads the process environment. Invocations run concurrently like in AWS.
"""

import base64
import hashlib
import importlib
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaFunction

log = logging.getLogger(__name__)


class ThreadLocalEnviron(MutableMapping[str, str]):
    """``os.environ`` with a per-thread overlay of variables (the running function's)."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base
        self._local = threading.local()

    def _overlay(self) -> dict[str, str] | None:
        return getattr(self._local, "overlay", None)

    def __getitem__(self, key: str) -> str:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            return overlay[key]
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self._overlay()
        if overlay is not None:
            overlay[key] = value
        else:
            self.base[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            del overlay[key]
        else:
            self.base.__delitem__(key)

    def __iter__(self) -> Iterator[str]:
        overlay = self._overlay() or {}
        yield from overlay
        yield from (key for key in self.base if key not in overlay)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)

    @contextmanager
    def applied(self, variables: Mapping[str, str]) -> Iterator[None]:
        """Make ``variables`` visible to this thread only, for the duration of the block."""
        previous = self._overlay()
        self._local.overlay = {**(previous or {}), **variables}
        try:
            yield
        finally:
            self._local.overlay = previous


def _raised_at(error: BaseException) -> str:
    """Where `error` was raised: the innermost frame, as `<package path>:<line> in <name>`, so a
    rare failure can be told apart from the one-line warning alone."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    parts = Path(frame.filename).parts
    where = "/".join(
        parts[parts.index("site-packages") + 1 :] if "site-packages" in parts else parts[-3:]
    )
    return f"{where}:{frame.lineno} in {frame.name}"


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: float
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass(frozen=True)
class Invocation:
    """What the Lambda service reports for one call: the JSON result, whether it failed, logs."""

    payload: str
    errored: bool
    logs: str

    def result(self) -> Any:
        return json.loads(self.payload) if self.payload else None


class ThreadLocalStdout(io.TextIOBase):
    """``sys.stdout`` that, on a thread running a function, writes into that invocation's log.

    Lambda functions log by printing (Powertools Logger, EMF metrics); in AWS that output goes to
    the function's CloudWatch log stream, so here it goes to the invocation's log, which moto
    stores in CloudWatch Logs, instead of the terminal of whoever runs the local stack.
    """

    def __init__(self, terminal: Any) -> None:
        self.terminal = terminal
        self._local = threading.local()

    @contextmanager
    def captured(self) -> Iterator[io.StringIO]:
        buffer = io.StringIO()
        self._local.buffer = buffer
        try:
            yield buffer
        finally:
            self._local.buffer = None

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return (buffer or self.terminal).write(text)

    def flush(self) -> None:
        if getattr(self._local, "buffer", None) is None:
            self.terminal.flush()


@dataclass
class InvocationStats:
    """How often a function ran and for how long: where a local run's time went."""

    count: int = 0
    seconds: float = 0.0
    errors: int = 0


class InProcessLambdas:
    """Imports and calls handlers; counts invocations so ``drain`` can tell when work settled."""

    def __init__(self, code_cache_dir: Path) -> None:
        self._code_cache_dir = code_cache_dir
        self._code_dirs: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._import_lock = threading.RLock()
        self._in_flight = 0
        self._started = 0
        # per function name, for a drain scoped to part of the stack (`DrainScope`)
        self.in_flight_by: Counter[str] = Counter()
        self.started_by: Counter[str] = Counter()
        self.stats: dict[str, InvocationStats] = {}
        self._environ: ThreadLocalEnviron | None = None
        self._stdout: ThreadLocalStdout | None = None
        self._original_invoke: Callable[..., tuple[str, bool, str]] | None = None
        # the host process's modules of the functions' packages, dropped while the stack runs
        # (`register_code_dir`) and put back by `uninstall`
        self._host_modules: dict[str, ModuleType] = {}
        self._packages: set[str] = set()

    def register_code_dir(self, code_sha256: str, directory: Path) -> None:
        """Run code whose zip has this digest from ``directory`` (the unzipped CDK asset).

        The packages it holds are dropped from ``sys.modules``, so this deployment's functions
        start like new execution environments: a module-level cache (settings, clients) left by
        an earlier stack or test in this process would point at resources that no longer exist.
        `uninstall` puts the host's modules back.
        """
        self._code_dirs[code_sha256] = directory
        packages = {entry.stem for entry in directory.iterdir() if not entry.name.startswith(".")}
        self._packages |= packages
        for name in [m for m in sys.modules if m.partition(".")[0] in packages]:
            self._host_modules.setdefault(name, sys.modules.pop(name))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def started(self) -> int:
        """Invocations started so far; a change tells ``drain`` that new work may exist."""
        return self._started

    def install(self) -> None:
        runner = self

        def invoke_in_process(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            if isinstance(event, str):
                event = json.loads(event) if event else {}
            outcome = runner.invoke(function, {} if event is None else event)
            return outcome.payload, outcome.errored, outcome.logs

        self._environ = ThreadLocalEnviron(os.environ)
        # Replacing the mapping object (not its contents) is the point: reads go through it.
        os.environ = self._environ  # type: ignore[assignment]  # noqa: B003
        self._stdout = ThreadLocalStdout(sys.stdout)
        sys.stdout = self._stdout
        self._original_invoke = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = invoke_in_process  # type: ignore[assignment,method-assign]

    def uninstall(self) -> None:
        """Undo `install`, and leave the host process's modules as `register_code_dir` found
        them: a module the functions imported first (a lazily imported provider adapter) would
        otherwise be imported again by the host from the functions' copies, and its classes
        would not be the ones the host's other modules hold (a `Reading` unequal to an equal
        `Reading`)."""
        for name in [m for m in sys.modules if m.partition(".")[0] in self._packages]:
            del sys.modules[name]
        sys.modules.update(self._host_modules)
        self._host_modules.clear()
        self._packages.clear()
        if self._original_invoke is not None:
            LambdaFunction._invoke_lambda = self._original_invoke  # type: ignore[method-assign]
            self._original_invoke = None
        if self._environ is not None:
            os.environ = self._environ.base  # type: ignore[assignment]  # noqa: B003
            self._environ = None
        if self._stdout is not None:
            if sys.stdout is self._stdout:
                sys.stdout = self._stdout.terminal
            self._stdout = None

    def invoke(self, function: LambdaFunction, event: Any) -> Invocation:
        """Call the function's handler with ``event`` as the Lambda service would."""
        if self._environ is None:
            raise RuntimeError("InProcessLambdas.install() must run before invoking")
        name = str(function.function_name)
        with self._lock:
            self._in_flight += 1
            self._started += 1
            self.in_flight_by[name] += 1
            self.started_by[name] += 1
        try:
            return self._run(function, event, self._environ)
        finally:
            with self._lock:
                self._in_flight -= 1
                self.in_flight_by[name] -= 1

    def _run(self, function: LambdaFunction, event: Any, environ: ThreadLocalEnviron) -> Invocation:
        context = LambdaContext(
            function_name=function.function_name,
            function_version="$LATEST",
            invoked_function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size),
            aws_request_id=str(uuid.uuid4()),
            log_group_name=function.logs_group_name,
            log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            timeout_seconds=float(function.timeout),
        )
        lines = [f"START RequestId: {context.aws_request_id} Version: $LATEST"]
        started = time.monotonic()
        errored = False
        with (
            environ.applied(self._function_environment(function, context)),
            self._captured_output() as output,
        ):
            try:
                handler = self._load_handler(function)
                payload = json.dumps(handler(event, context))
            except Exception as error:
                errored = True
                payload = json.dumps(
                    {
                        "errorMessage": str(error),
                        "errorType": type(error).__name__,
                        "requestId": context.aws_request_id,
                        "stackTrace": traceback.format_tb(error.__traceback__),
                    }
                )
                lines.append(traceback.format_exc())
                log.warning(  # the whole traceback is in the invocation's log
                    "function invocation failed: %s: %s: %s (at %s)",
                    function.function_name,
                    type(error).__name__,
                    error,
                    _raised_at(error),
                    extra={"function": function.function_name, "error": type(error).__name__},
                )
        lines[1:1] = output.getvalue().splitlines()
        elapsed = time.monotonic() - started
        with self._lock:
            stats = self.stats.setdefault(function.function_name, InvocationStats())
            stats.count += 1
            stats.seconds += elapsed
            stats.errors += errored
        if elapsed > context.timeout_seconds:
            # AWS would have killed it; a thread cannot be killed, so say it loudly instead.
            lines.append(
                f"WARNING: ran {elapsed:.2f} s, over its {context.timeout_seconds} s timeout"
            )
            log.warning(
                "function ran over its timeout",
                extra={"function": function.function_name, "seconds": round(elapsed, 2)},
            )
        lines.append(f"END RequestId: {context.aws_request_id}")
        lines.append(
            f"REPORT RequestId: {context.aws_request_id}\tDuration: {elapsed * 1000:.2f} ms"
        )
        logs = "\n".join(lines)
        function.logs_backend.ensure_log_group(function.logs_group_name)
        function.save_logs(logs)
        return Invocation(payload=payload, errored=errored, logs=logs)

    @contextmanager
    def _captured_output(self) -> Iterator[io.StringIO]:
        if self._stdout is None:
            yield io.StringIO()
            return
        with self._stdout.captured() as buffer:
            yield buffer

    @staticmethod
    def _function_environment(function: LambdaFunction, context: LambdaContext) -> dict[str, str]:
        """The runtime's reserved variables plus the function's own (resolved by moto)."""
        variables = {
            "_HANDLER": str(function.handler),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
            "AWS_REGION": function.region,
            "AWS_DEFAULT_REGION": function.region,
        }
        variables.update({key: str(value) for key, value in function.environment_vars.items()})
        return variables

    def _load_handler(self, function: LambdaFunction) -> Callable[[Any, Any], Any]:
        code_dir = self._code_dir(function)
        if str(code_dir) not in sys.path:
            sys.path.append(str(code_dir))
        module_name, _, attribute = str(function.handler).rpartition(".")
        # Two functions' first invocations on two threads would import the same packages at
        # once, and CPython aborts one of them with a _DeadlockError when their import graphs
        # cross: cold starts import one at a time.
        with self._import_lock:
            module = importlib.import_module(module_name)
        handler: Callable[[Any, Any], Any] = getattr(module, attribute)
        return handler

    def _code_dir(self, function: LambdaFunction) -> Path:
        registered = self._code_dirs.get(function.code_sha_256)
        if registered is not None:
            return registered
        # Functions created through the API (not from a CDK asset): unzip their code once.
        digest = hashlib.sha256(function.code_bytes).hexdigest()
        target = self._code_cache_dir / digest
        if not target.exists():
            partial = target.with_suffix(".partial")
            with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
                archive.extractall(partial)
            partial.rename(target)
        self._code_dirs[function.code_sha_256] = target
        return target


def code_sha256(zipped: bytes) -> str:
    """The digest moto (and Lambda) report as ``CodeSha256`` for a zip."""
    return base64.b64encode(hashlib.sha256(zipped).digest()).decode()
