"""Cold start: what importing each function's handler module costs, in a fresh interpreter with
the environment Lambda gives the function, beside the target (issue #12, docs/cost.md).

`python -m bench.cold_start` prints the table alone; `make bench` prints it with the rest.
What a handler defers (pyarrow, the other flavors' models, Powertools utilities a request may
not take) is guarded by tests/unit/test_cold_start.py.
"""

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass

from bench.workload import BENCH_ENV, ROOT
from infra.constants import FUNCTION_RUNTIME_ENVIRONMENT

# Every Lambda handler module (infra.constants.*_HANDLER; a test keeps them together) and the
# most its cold import may take, ms.
IMPORT_TARGETS_MS = {
    "receiver": 250,
    "processor": 350,
    "lake_writer": 400,
    "lake_compactor": 400,
    "subscriptions": 400,
    "gateway_health": 400,
    "recovery": 400,
    "forwarder": 400,
    "endpoint_policy": 400,
}
RUNS = 7

# The child times its own import: CPU time (process_time) is what the target is held to, as it
# moves least when other work shares the machine; wall time is printed beside it.
_SNIPPET = (
    "import time; w, c = time.perf_counter(), time.process_time(); "
    "import {module}; "
    "print((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000)"
)


def import_environment() -> dict[str, str]:
    """What a function's interpreter sees: the bench's settings and the variables infra gives
    every function (infra/constructs/function.py), with no bytecode written by the runs."""
    return {
        **os.environ,
        **BENCH_ENV,
        **FUNCTION_RUNTIME_ENVIRONMENT,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@dataclass(frozen=True)
class ColdImport:
    module: str
    cpu_ms: float  # median
    wall_ms: float  # median
    cpu_min_ms: float  # the run least disturbed by other work on the machine


def cold_import(module: str, runs: int = RUNS) -> ColdImport:
    """Median over `runs` fresh interpreters of importing `module` (a dotted name)."""
    walls, cpus = [], []
    for _ in range(runs):
        output = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
            [sys.executable, "-c", _SNIPPET.format(module=module)],
            env=import_environment(),
            cwd=ROOT / "functions",
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wall, cpu = (float(value) for value in output.split())
        walls.append(wall)
        cpus.append(cpu)
    return ColdImport(module, statistics.median(cpus), statistics.median(walls), min(cpus))


def print_cold_imports(runs: int = RUNS) -> None:
    variables = " ".join(f"{k}={v}" for k, v in FUNCTION_RUNTIME_ENVIRONMENT.items())
    print(
        f"\ncold import of each function's handler module, median of {runs} fresh interpreters"
        f"\nwith the functions' environment ({variables}); the target holds the median CPU ms"
        "\n(CPU time moves less than wall time when other work shares the machine; the minimum"
        "\nis the least disturbed run)"
    )
    print(
        f"  {'module':32} {'CPU ms':>9} {'min CPU':>9} {'wall ms':>9} {'target':>7} "
        f"{'CPU/target':>10}"
    )
    baseline = cold_import("sensorhook", runs)
    print(
        f"  {'(python + sensorhook package)':32} {baseline.cpu_ms:9.1f} "
        f"{baseline.cpu_min_ms:9.1f} {baseline.wall_ms:9.1f}"
    )
    for name, target in IMPORT_TARGETS_MS.items():
        measured = cold_import(f"sensorhook.handlers.{name}", runs)
        verdict = "" if measured.cpu_ms <= target else "  over target"
        print(
            f"  {name:32} {measured.cpu_ms:9.1f} {measured.cpu_min_ms:9.1f} "
            f"{measured.wall_ms:9.1f} {target:7d} "
            f"{measured.cpu_ms / target:10.2f}{verdict}"
        )


if __name__ == "__main__":
    print_cold_imports()
