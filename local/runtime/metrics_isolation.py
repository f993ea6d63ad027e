"""Each invocation's Powertools metrics are its own, as in a Lambda sandbox.

Powertools keeps the metrics, dimensions and metadata of every ``Metrics`` object of a process
in shared dictionaries (class attributes, so that instances in different modules add to one
set). In Lambda a process serves one invocation at a time; here invocations of every function
run at once in threads of one process, so one invocation's flush iterated over a dictionary
another was adding to (``RuntimeError: dictionary changed size during iteration``, a failed
batch) and one request's ``flavor`` dimension landed in another's metrics.

The runtime makes those sets per thread: an invocation runs in one thread from start to flush,
so it sees exactly the metrics it added, as it would in its own sandbox.
"""

import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

PER_THREAD = ("metric_set", "dimension_set", "metadata_set", "dimension_sets")


class _PerThread:
    """An instance attribute with one value per thread (a new thread starts from `fresh`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, provider: Any, owner: type | None = None) -> Any:
        if provider is None:
            return self
        values = _values(provider)
        if not hasattr(values, self.name):
            setattr(values, self.name, _fresh(provider, self.name))
        return getattr(values, self.name)

    def __set__(self, provider: Any, value: Any) -> None:
        setattr(_values(provider), self.name, value)


def _values(provider: Any) -> threading.local:
    values = provider.__dict__.get("_per_thread")
    if values is None:  # a holder built only the first time (each look would build one)
        # dict.setdefault is atomic: two threads' first looks get the same holder
        values = provider.__dict__.setdefault("_per_thread", threading.local())
    return values


def _fresh(provider: Any, name: str) -> Any:
    if name == "dimension_sets":
        return []
    if name == "dimension_set":
        defaults = provider.__dict__.get("default_dimensions") or {}
        return {key: str(value) for key, value in defaults.items()}
    return {}


def metrics_are_per_invocation() -> Callable[[], None]:
    """Install the per-thread sets on Powertools' EMF provider; returns the undo. Providers
    created before keep the values they had in the thread that created them."""
    saved = {name: AmazonCloudWatchEMFProvider.__dict__.get(name) for name in PER_THREAD}
    for name in PER_THREAD:
        setattr(AmazonCloudWatchEMFProvider, name, _PerThread(name))

    def undo() -> None:
        for name, value in saved.items():
            if value is None:
                delattr(AmazonCloudWatchEMFProvider, name)
            else:
                setattr(AmazonCloudWatchEMFProvider, name, value)

    return undo
