"""Cold start: what importing each function's handler module costs, in a fresh interpreter with
the environment Lambda gives the function, beside the target (issue #12, docs/cost.md).

`python -m bench.cold_start` prints the table alone (`python -m bench.cold_start DIR`: of the
functions folder DIR, e.g. another checkout's, with this bench; `--compare DIR [MODULE
[PAIRS]]`: one handler from DIR and from here, alternated); `make bench` prints it with the
rest. What a handler defers (pyarrow, the other flavors' models, Powertools utilities a
request may not take), and that its imports run with the garbage collector paused
(handlers/cold_start.py), are guarded by tests/unit/test_cold_start.py.

The handlers are imported from copies of the functions folder made as the stack's asset is
(infra.constants.ASSET_EXCLUDES: no `__pycache__`), with no bytecode written by the runs:
one compiled beforehand (the figure held to the target), one not, as in Lambda, whose asset
has no bytecode and whose code directory is read-only, so every sensorhook module is compiled
by every cold start. Imported from the working tree instead, the figure would depend on whether
some earlier run left bytecode there (about 100 ms for the processor).
"""

import compileall
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.workload import BENCH_ENV, ROOT
from infra.constants import ASSET_EXCLUDES, FUNCTION_RUNTIME_ENVIRONMENT

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


@contextlib.contextmanager
def as_deployed(functions: Path) -> Iterator[Path]:
    """A temporary copy of the functions folder `functions` as the stack's asset holds it."""
    ignored = shutil.ignore_patterns(*(pattern.removeprefix("**/") for pattern in ASSET_EXCLUDES))
    with tempfile.TemporaryDirectory(prefix="sensorhook-asset-") as directory:
        copy = Path(directory) / "functions"
        shutil.copytree(functions, copy, ignore=ignored)
        yield copy


def cold_import(module: str, runs: int = RUNS, functions: Path | None = None) -> ColdImport:
    """Median over `runs` fresh interpreters of importing `module` (a dotted name) from the
    functions folder `functions` (default: a copy of this checkout's, `as_deployed`)."""
    if functions is None:
        with as_deployed(ROOT / "functions") as copy:
            return cold_import(module, runs, copy)
    walls, cpus = [], []
    for _ in range(runs):
        output = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
            [sys.executable, "-c", _SNIPPET.format(module=module)],
            env=import_environment(),
            cwd=functions,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wall, cpu = (float(value) for value in output.split())
        walls.append(wall)
        cpus.append(cpu)
    return ColdImport(module, statistics.median(cpus), statistics.median(walls), min(cpus))


def print_cold_imports(runs: int = RUNS, functions: Path = ROOT / "functions") -> None:
    with as_deployed(functions) as deployed, as_deployed(functions) as compiled:
        compileall.compile_dir(compiled, quiet=1)
        _print_cold_imports(runs, functions, compiled=compiled, deployed=deployed)


def _print_cold_imports(runs: int, functions: Path, *, compiled: Path, deployed: Path) -> None:
    variables = " ".join(f"{k}={v}" for k, v in FUNCTION_RUNTIME_ENVIRONMENT.items())
    print(
        f"\ncold import of each function's handler module, median of {runs} fresh interpreters"
        f"\nwith the functions' environment ({variables}),"
        f"\nfrom copies of {functions} as the asset holds it: the target holds the median CPU"
        "\nms with sensorhook's bytecode compiled beforehand; 'no bytecode' is the same import"
        "\ncompiling sensorhook's modules, as in Lambda (the asset has none, its code directory"
        "\nis read-only). CPU time moves less than wall time when other work shares the"
        "\nmachine; the minimum is the least disturbed run"
    )
    print(
        f"  {'module':32} {'CPU ms':>9} {'min CPU':>9} {'wall ms':>9} {'target':>7} "
        f"{'CPU/target':>10} {'no bytecode':>11}"
    )
    baseline = cold_import("sensorhook", runs, compiled)
    print(
        f"  {'(python + sensorhook package)':32} {baseline.cpu_ms:9.1f} "
        f"{baseline.cpu_min_ms:9.1f} {baseline.wall_ms:9.1f}"
    )
    for name, target in IMPORT_TARGETS_MS.items():
        measured = cold_import(f"sensorhook.handlers.{name}", runs, compiled)
        uncompiled = cold_import(f"sensorhook.handlers.{name}", runs, deployed)
        verdict = "" if measured.cpu_ms <= target else "  over target"
        print(
            f"  {name:32} {measured.cpu_ms:9.1f} {measured.cpu_min_ms:9.1f} "
            f"{measured.wall_ms:9.1f} {target:7d} "
            f"{measured.cpu_ms / target:10.2f} {uncompiled.cpu_ms:11.1f}{verdict}"
        )


def compare(other: Path, module: str, pairs: int) -> None:
    """One handler's import from `other` (a functions folder, e.g. main's) and from this
    checkout's, each compiled and not, the four alternated `pairs` times: a change of a few
    milliseconds shows in the medians where two whole tables, minutes apart on a shared
    machine, would bury it."""
    ours = ROOT / "functions"
    with (
        as_deployed(other) as other_compiled,
        as_deployed(ours) as ours_compiled,
        as_deployed(other) as other_deployed,
        as_deployed(ours) as ours_deployed,
    ):
        compileall.compile_dir(other_compiled, quiet=1)
        compileall.compile_dir(ours_compiled, quiet=1)
        trees = {
            f"{other}, compiled": other_compiled,
            f"{ours}, compiled": ours_compiled,
            f"{other}, no bytecode": other_deployed,
            f"{ours}, no bytecode": ours_deployed,
        }
        cpus: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(pairs):
            for name, tree in trees.items():
                cpus[name].append(cold_import(module, 1, tree).cpu_ms)
    print(f"\n{module}: CPU ms of its cold import, the four alternated {pairs} times")
    for name, values in cpus.items():
        print(f"  {name:60} median {statistics.median(values):7.1f}  min {min(values):7.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        # python -m bench.cold_start --compare OTHER/functions [MODULE [PAIRS]]
        compare(
            Path(sys.argv[2]),
            sys.argv[3] if len(sys.argv) > 3 else "sensorhook.handlers.processor",
            int(sys.argv[4]) if len(sys.argv) > 4 else 15,
        )
    else:
        print_cold_imports(functions=Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "functions")
