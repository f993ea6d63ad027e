"""Fault injection for the AWS calls sensorhook's functions make, through botocore's event hooks.

A `FaultInjector` registers a `before-send` handler on a botocore session (by default on every
session created after it is installed, the functions' own among them): every HTTP request a
client of that session is about to send to DynamoDB, S3, SQS, EventBridge or Secrets Manager
fails with probability `share`, the way AWS fails under load:

| kind | what the client sees | botocore's standard retry mode |
|---|---|---|
| `throttle` | 400 `ThrottlingException` (S3: 503 `SlowDown`) | retried, with throttling backoff |
| `server_error` | 500 `InternalFailure` (S3: `InternalError`) | retried |
| `timeout` | `ReadTimeoutError`, the request never reached the service | retried |
| `connection_reset` | `ConnectionClosedError` | retried |
| `lost_response` (opt-in) | the service acted, its answer is lost | retried: applied again |

No product code changes: the handler sits where botocore would send the request. A session
takes the built-in handlers when it is created and a client copies its session's, so install
before the functions create their session (the local stack re-imports the functions' code when
it starts; integration tests clear `sensorhook.dal.aws_clients`' cache, session included).
Only calls made inside a Lambda invocation are faulted (`AWS_LAMBDA_FUNCTION_NAME` is set: the
local runtime sets it for the invoking thread only), so the runtime's own pollers and a test's
read-back are never hit.

`python -m local.faults` (`make faults`) runs the drill in `local.faults.drill`.
"""

import json
import os
import random
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.handlers import BUILTIN_HANDLERS, REGISTER_FIRST

# botocore's hyphenated service ids, as in `before-send.<service id>.<operation>`
SERVICES = ("dynamodb", "s3", "sqs", "eventbridge", "secrets-manager")
KINDS = ("throttle", "server_error", "timeout", "connection_reset")
LOST_RESPONSE = "lost_response"
_NOWHERE = "https://fault-injected.invalid/"
_LOST = "sensorhook_fault_lost_answer"
_MAX_LOST_ATTEMPTS = 5  # a call whose answers keep getting lost gets its fifth one
_REMEMBERED_CALLS = 10_000  # calls in flight whose fault is remembered across their attempts


class _Body:
    """The raw body of an AWSResponse (botocore reads it through `stream()`)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._content


def _error_response(url: str, service: str, status: int, code: str) -> AWSResponse:
    message = f"injected fault: {code}"
    if service == "s3":
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message><RequestId>fault</RequestId></Error>"
        ).encode()
        headers = {"content-type": "application/xml"}
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "fault"}
    return AWSResponse(url, status, headers, _Body(body))


def _throttle(url: str, service: str) -> AWSResponse:
    if service == "s3":
        return _error_response(url, service, 503, "SlowDown")
    return _error_response(url, service, 400, "ThrottlingException")


def _server_error(url: str, service: str) -> AWSResponse:
    return _error_response(
        url, service, 500, "InternalError" if service == "s3" else "InternalFailure"
    )


def inside_lambda() -> bool:
    """True on a thread running a function (the local runtime's environment overlay)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


@dataclass
class FaultInjector:
    """Fails `share` of the requests to `services` with one of `kinds`, reproducibly by `seed`."""

    share: float = 0.1
    services: tuple[str, ...] = SERVICES
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    applies: Callable[[], bool] = inside_lambda
    # False: each attempt fails on its own (botocore's retries usually get through). True: a call
    # chosen to fail fails every attempt, as in an outage (the call fails after its retries).
    every_attempt: bool = False
    requests: Counter[str] = field(default_factory=Counter)  # by service, faulted or not
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (service, kind)
    operations: Counter[str] = field(default_factory=Counter)  # "<service>.<operation>" faulted

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - {*KINDS, LOST_RESPONSE}
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be among {(*KINDS, LOST_RESPONSE)}: {sorted(unknown)}")
        if not 0 <= self.share <= 1:
            raise ValueError("share must be between 0 and 1")
        self._rng = random.Random(self.seed)  # noqa: S311 - reproducible faults, not secrets
        self._lock = threading.Lock()
        self._calls: OrderedDict[str, str | None] = OrderedDict()  # invocation id -> its fault

    def install(self, session: boto3.Session | None = None) -> Callable[[], None]:
        """Register on `session`, or when none is given on every botocore session created from
        now on (botocore's built-in handlers, as moto does): the functions' clients come from
        `sensorhook.dal.aws_clients.session()`, created at their first client, after the local
        stack re-imported their code or a test cleared their clients. Returns the function that
        unregisters; clients and sessions created before it keep their hooks."""
        if session is None:
            builtins = [
                ("before-send", self._before_send, REGISTER_FIRST),
                ("needs-retry", self._lose_answer, REGISTER_FIRST),
            ]
            BUILTIN_HANDLERS.extend(builtins)

            def uninstall_builtins() -> None:
                for handler in builtins:
                    BUILTIN_HANDLERS.remove(handler)

            return uninstall_builtins
        events = session.events
        unique_id = f"sensorhook-faults-{id(self)}"
        # first: ahead of moto's own before-send handler when a moto mock is active in-process
        events.register_first("before-send", self._before_send, unique_id=unique_id)
        events.register_first("needs-retry", self._lose_answer, unique_id=f"{unique_id}-lost")

        def uninstall() -> None:
            events.unregister("before-send", unique_id=unique_id)
            events.unregister("needs-retry", unique_id=f"{unique_id}-lost")

        return uninstall

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    def _before_send(
        self, request: AWSPreparedRequest, event_name: str = "", **_: Any
    ) -> AWSResponse | None:
        service = event_name.split(".")[1] if event_name.count(".") >= 2 else ""
        if service not in self.services or not self.applies():
            return None
        with self._lock:
            self.requests[service] += 1
            kind = self._choose(request)
            if kind is None:
                return None
            self.injected[(service, kind)] += 1
            self.operations[event_name.split(".", 1)[1]] += 1
        if kind in ("throttle", "server_error"):
            response = (_throttle if kind == "throttle" else _server_error)(request.url, service)
            # botocore still calls the handlers after this one and takes the first answer: an
            # in-process moto mock's handler would apply the request it answers. This attempt's
            # request (each attempt prepares its own) now leads nowhere any handler serves.
            request.url = _NOWHERE
            return response
        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "connection_reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        # lost_response: the request goes through and the service acts; `_lose_answer` then
        # throws the answer away and has botocore try again, as after a read timeout
        request.context[_LOST] = True
        return None

    def _lose_answer(self, request_dict: dict[str, Any], attempts: int = 1, **_: Any) -> int | None:
        """A needs-retry handler: 0 (retry now) for an attempt whose answer was lost."""
        lost = request_dict.get("context", {}).pop(_LOST, False)
        return 0 if lost and attempts < _MAX_LOST_ATTEMPTS else None

    def _choose(self, request: AWSPreparedRequest) -> str | None:
        """The fault for this request, or None (called under the lock)."""
        call = str(request.headers.get("amz-sdk-invocation-id", ""))
        if self.every_attempt and call in self._calls:
            return self._calls[call]
        kind = self._rng.choice(self.kinds) if self._rng.random() < self.share else None
        if self.every_attempt and call:
            self._calls[call] = kind
            while len(self._calls) > _REMEMBERED_CALLS:
                self._calls.popitem(last=False)
        return kind

    def figures(self) -> dict[str, Any]:
        by_kind: Counter[str] = Counter()
        by_service: Counter[str] = Counter()
        for (service, kind), count in self.injected.items():
            by_kind[kind] += count
            by_service[service] += count
        return {
            "aws_requests": sum(self.requests.values()),
            "faults_injected": self.total_injected,
            "by_kind": dict(by_kind),
            "by_service": dict(by_service),
        }
