"""EventBridge -> Lambda, which moto does not do: rule targets on buses, and schedules.

- ``forward_bus_events_to_lambda`` teaches moto's rules to deliver to Lambda targets: moto raises
  ``NotImplementedError`` for them on ``PutEvents``. Matching and input transformation stay
  moto's; the Lambda target is invoked asynchronously, as EventBridge does.
- ``Scheduler`` fires the deployed rules that have a ``ScheduleExpression`` and Lambda targets,
  on a compressed clock (``speedup`` x faster than real time), and on demand (``fire``).
"""

import copy
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from functools import wraps
from typing import Any, cast

from moto.events.models import EventTemplateParser, Rule

from local.runtime.front_priority import FrontPriority
from local.runtime.lambda_runner import Invocation

log = logging.getLogger(__name__)

InvokeFunction = Callable[[str, dict[str, Any]], Invocation]


class AsyncInvoker:
    """Event-type invocations (EventBridge, schedules) on a small pool, counted for ``drain``."""

    def __init__(self, invoke: InvokeFunction, workers: int = 4) -> None:
        self._invoke = invoke
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="async-invoke")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, function_arn: str, event: dict[str, Any]) -> "Future[Invocation]":
        with self._lock:
            self._pending += 1
        future = self._pool.submit(self._invoke, function_arn, event)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: "Future[Invocation]") -> None:
        with self._lock:
            self._pending -= 1
        error = future.exception()
        if error is not None:
            log.error("asynchronous invocation crashed", exc_info=error)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What EventBridge passes to a target: its constant Input, transformed input, or the event."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        value: Any = event
        for part in target["InputPath"].lstrip("$.").split("."):
            value = value[part] if part else value
        return value
    transformer = target.get("InputTransformer")
    if transformer:
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=cast(Any, event),
        )
    return event


def _is_lambda(arn: str) -> bool:
    return arn.split(":")[2:3] == ["lambda"]


def forward_bus_events_to_lambda(invoker: AsyncInvoker) -> Callable[[], None]:
    """Patch moto's rules so Lambda targets receive matching events; returns the undo."""
    original = Rule.send_to_targets

    @wraps(original)
    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        lambda_targets = [target for target in self.targets if _is_lambda(target["Arn"])]
        if lambda_targets and self.event_pattern.matches_event(original_event):
            for target in lambda_targets:
                event = _target_input(target, original_event) if transform_input else original_event
                invoker.submit(target["Arn"], copy.deepcopy(event))
        others = [target for target in self.targets if not _is_lambda(target["Arn"])]
        if others:
            rest = copy.copy(self)
            rest.targets = others
            original(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]

    def restore() -> None:
        Rule.send_to_targets = original  # type: ignore[method-assign]

    return restore


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_period_seconds(expression: str) -> float:
    """The real-time period of a schedule expression.

    ``rate(...)`` is exact. For ``cron(...)`` the period is the smallest field that varies
    (minutes, hours, days, weekdays, months): enough to run "every 15 minutes" or "daily"
    jobs at a compressed pace, not to reproduce exact wall-clock firing times.
    """
    rate = _RATE.match(expression.strip())
    if rate:
        return int(rate.group(1)) * _UNIT_SECONDS[rate.group(2).rstrip("s")]
    if not expression.startswith("cron(") or not expression.endswith(")"):
        raise ValueError(f"unsupported schedule expression: {expression}")
    minutes, hours, day_of_month, month, day_of_week, *_ = expression[5:-1].split()
    for field, unit in ((minutes, 60), (hours, 3600)):
        if "/" in field:
            return int(field.split("/")[1]) * unit
        if field in ("*", "?") or "," in field or "-" in field:
            return unit
    wildcard = ("*", "?")
    if day_of_month in wildcard and day_of_week in wildcard:
        period_days = 1
    elif day_of_week not in wildcard:
        period_days = 7
    else:
        period_days = 30 if month in wildcard else 365
    return period_days * 86400


class Scheduler(threading.Thread):
    """Fires scheduled rules with Lambda targets every ``period / speedup`` seconds."""

    def __init__(
        self,
        events: Any,
        invoker: AsyncInvoker,
        account_id: str,
        region: str,
        speedup: float,
        *,
        priority: FrontPriority | None = None,
    ) -> None:
        super().__init__(name="scheduler", daemon=True)
        # a schedule due while the HTTP front is busy fires when it is not (front_priority.py)
        self._priority = priority
        self._events = events
        self._invoker = invoker
        self._account_id = account_id
        self._region = region
        self._speedup = speedup
        self._stopping = threading.Event()
        self.rules = self._scheduled_rules()

    def _scheduled_rules(self) -> dict[str, dict[str, Any]]:
        rules: dict[str, dict[str, Any]] = {}
        for bus in self._events.list_event_buses()["EventBuses"]:
            for rule in self._events.list_rules(EventBusName=bus["Name"])["Rules"]:
                if not rule.get("ScheduleExpression") or rule.get("State") != "ENABLED":
                    continue
                targets = self._events.list_targets_by_rule(
                    Rule=rule["Name"], EventBusName=bus["Name"]
                )["Targets"]
                if any(_is_lambda(target["Arn"]) for target in targets):
                    rules[rule["Name"]] = {**rule, "Targets": targets}
        return rules

    def fire(self, rule_name: str) -> list["Future[Invocation]"]:
        """Deliver one "Scheduled Event" of the rule to its Lambda targets now."""
        rule = self.rules[rule_name]
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self._account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [rule["Arn"]],
            "detail": {},
        }
        return [
            self._invoker.submit(target["Arn"], _target_input(target, event))
            for target in rule["Targets"]
            if _is_lambda(target["Arn"])
        ]

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        if self._speedup <= 0:
            return
        start = time.monotonic()
        due = {
            name: start + schedule_period_seconds(rule["ScheduleExpression"]) / self._speedup
            for name, rule in self.rules.items()
        }
        while due and not self._stopping.is_set():
            name = min(due, key=due.__getitem__)
            if self._stopping.wait(max(0.0, due[name] - time.monotonic())):
                return
            if self._priority is not None:
                self._priority.wait_turn(self._stopping)
            self.fire(name)
            period = schedule_period_seconds(self.rules[name]["ScheduleExpression"])
            due[name] += period / self._speedup
            # a firing held past the next one's time is not followed by a catch-up firing
            due[name] = max(due[name], time.monotonic() + period / self._speedup / 2)
