"""Invocations running at once in threads of one process each flush only their own metrics."""

import threading

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from local.runtime.metrics_isolation import metrics_are_per_invocation


def _invocations(metrics: Metrics, threads: int = 8, rounds: int = 200) -> list[str]:
    """Each thread adds its own metric and dimension and flushes, many times over."""
    problems: list[str] = []
    start = threading.Barrier(threads)

    def invoke(n: int) -> None:
        start.wait()
        for _ in range(rounds):
            metrics.add_dimension(name="caller", value=str(n))
            for k in range(20):
                metrics.add_metric(name=f"m{n}_{k}", unit=MetricUnit.Count, value=1)
            try:  # what flush_metrics does, without its print (stdout is the process's)
                blob = metrics.provider.serialize_metric_set()
                metrics.provider.clear_metrics()
            except RuntimeError as error:  # a set changed size while another thread read it
                problems.append(f"{type(error).__name__}: {error}")
                continue
            names = {m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
            if blob.get("caller") != str(n) or names != {f"m{n}_{k}" for k in range(20)}:
                problems.append(f"thread {n} flushed {blob.get('caller')} {sorted(names)[:2]}")

    workers = [threading.Thread(target=invoke, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return problems


def test_each_thread_flushes_exactly_the_metrics_it_added() -> None:
    undo = metrics_are_per_invocation()
    try:
        metrics = Metrics(namespace="test", service="svc")
        assert _invocations(metrics) == []
    finally:
        undo()
