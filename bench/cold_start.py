"""Cold start: what importing each function's handler module costs, in a fresh interpreter with
the environment Lambda gives the function, beside the target (issue #12, docs/cost.md).

`python -m bench.cold_start` prints the table alone; `make bench` prints it with the rest.
`python -m bench.cold_start DIR`: the table of the functions folder DIR (e.g. another
checkout's) with this bench; `--before DIR`: this checkout's table with DIR's figures beside
it, measured in the same rounds; `--compare DIR [MODULE [PAIRS]]`: one handler from DIR and
from here, alternated. What a handler defers (pyarrow, the other flavors' models, Powertools
utilities a request may not take), and that its imports run with the garbage collector paused
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
from collections.abc import Iterator, Mapping, Sequence
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
# Not a module: a fixed piece of import-like work (code unmarshalled and run, 400 classes
# created, 20 times), timed like an import in the same rounds. This machine shares its cores
# with other work, and its pace moves by a third or more within a minute; the figure beside
# the imports says which pace a table was measured at. A plain loop was the first reference:
# it read 131 ms, its quiet pace, in a table whose receiver read 328 ms (211 when quiet),
# 2026-11-30 14:09 UTC: what slows imports here is not always what slows a loop.
REFERENCE = "(reference work)"
_REFERENCE_SNIPPET = (
    "import marshal, time; "
    "source = ''.join(f'class C{i}:\\n    a = {i}\\n    def f(self, x):\\n"
    "        return {{\\'a\\': x, \\'b\\': [x, {i}]}}\\n' for i in range(400)); "
    "code = marshal.dumps(compile(source, 'reference', 'exec')); "
    "w, c = time.perf_counter(), time.process_time(); "
    "[exec(marshal.loads(code), {}) for _ in range(20)]; "
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
    # median of each run scaled to the quietest round's pace (`cold_imports`); None when the
    # reference was not measured
    paced_ms: float | None = None


@contextlib.contextmanager
def as_deployed(functions: Path) -> Iterator[Path]:
    """A temporary copy of the functions folder `functions` as the stack's asset holds it."""
    ignored = shutil.ignore_patterns(*(pattern.removeprefix("**/") for pattern in ASSET_EXCLUDES))
    with tempfile.TemporaryDirectory(prefix="sensorhook-asset-") as directory:
        copy = Path(directory) / "functions"
        shutil.copytree(functions, copy, ignore=ignored)
        yield copy


def _sample(module: str, functions: Path) -> tuple[float, float]:
    """One fresh interpreter's import of `module` from `functions` (or the `REFERENCE` work):
    (wall ms, CPU ms)."""
    snippet = _REFERENCE_SNIPPET if module == REFERENCE else _SNIPPET.format(module=module)
    output = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", snippet],
        env=import_environment(),
        cwd=functions,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall, cpu = (float(value) for value in output.split())
    return wall, cpu


def cold_imports(
    modules: Sequence[str], trees: Mapping[str, Path], runs: int = RUNS
) -> dict[tuple[str, str], ColdImport]:
    """Median over `runs` fresh interpreters of importing each module (a dotted name) from
    each functions folder of `trees` (by name), by (module, tree name).

    The imports go round robin, one of each per round, not one module's runs in a row: this
    machine's speed moves by a third from one minute to the next (other work shares its
    cores), and in a row a slow minute fell on whichever modules were measured in it (the
    receiver read 211 and 375 ms in two runs four minutes apart, 2026-11-30 13:37-13:41 UTC).
    Round robin, a slow minute falls on every module alike."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {
        (module, tree): [] for module in modules for tree in trees
    }
    for _ in range(runs):
        for module in modules:
            for name, tree in trees.items():
                samples[module, name].append(_sample(module, tree))
    paces = _paces(samples, trees) if REFERENCE in modules else None
    return {
        key: ColdImport(
            key[0],
            cpu_ms=statistics.median(cpu for _, cpu in runs_of),
            wall_ms=statistics.median(wall for wall, _ in runs_of),
            cpu_min_ms=min(cpu for _, cpu in runs_of),
            paced_ms=None if paces is None else _paced_median(runs_of, paces),
        )
        for key, runs_of in samples.items()
    }


def _paces(
    samples: Mapping[tuple[str, str], Sequence[tuple[float, float]]], trees: Mapping[str, Path]
) -> list[float]:
    """Per round, how much faster the machine was in the quietest round: the reference work's
    CPU time in the quietest round over its time in this one (1.0 for the quietest). An
    import scaled by its round's pace is what it would have taken at that quietest pace: the
    reference rises and falls with the imports of its round (15 rounds at 14:25 UTC: the
    four slowest references, 100-113 ms against 70-80, were the receiver's four slowest
    imports)."""
    rounds = zip(*(samples[REFERENCE, tree] for tree in trees), strict=True)
    per_round = [statistics.mean(cpu for _, cpu in samples_of) for samples_of in rounds]
    quietest = min(per_round)
    return [quietest / reference for reference in per_round]


def _paced_median(runs: Sequence[tuple[float, float]], paces: Sequence[float]) -> float:
    """The median of the runs' CPU times, each scaled by its round's pace (`_paces`)."""
    return statistics.median(cpu * pace for (_, cpu), pace in zip(runs, paces, strict=True))


def print_cold_imports(
    runs: int = RUNS, functions: Path = ROOT / "functions", before: Path | None = None
) -> None:
    """The table; with `before` (another functions folder, e.g. an older checkout's), its
    compiled import in a column of its own, measured in the same rounds."""
    folders = {"compiled": (functions, True), "deployed": (functions, False)}
    if before is not None:
        folders["before"] = (before, True)
    with contextlib.ExitStack() as copies:
        _print_cold_imports(runs, functions, _copies(copies, folders), before)


def _copies(
    copies: contextlib.ExitStack, folders: Mapping[str, tuple[Path, bool]]
) -> dict[str, Path]:
    """By name, a copy of each functions folder as the asset holds it (`as_deployed`), its
    bytecode compiled when asked; the copies live as long as `copies`."""
    trees = {}
    for name, (folder, compiled) in folders.items():
        trees[name] = copies.enter_context(as_deployed(folder))
        if compiled:
            compileall.compile_dir(trees[name], quiet=1)
    return trees


def _print_cold_imports(
    runs: int, functions: Path, trees: Mapping[str, Path], before: Path | None
) -> None:
    variables = " ".join(f"{k}={v}" for k, v in FUNCTION_RUNTIME_ENVIRONMENT.items())
    print(
        f"\ncold import of each function's handler module, median of {runs} fresh interpreters"
        f"\nwith the functions' environment ({variables}),"
        f"\nfrom copies of {functions} as the asset holds it: the target holds the median CPU"
        "\nms with sensorhook's bytecode compiled beforehand; 'no bytecode' is the same import"
        "\ncompiling sensorhook's modules, as in Lambda (the asset has none, its code directory"
        "\nis read-only). The imports go round robin, one of each per round, so a slow spell of"
        "\nthe machine falls on every row alike. CPU time moves less than wall time when other"
        "\nwork shares the machine; the minimum is the least disturbed run. The reference work"
        "\nis a fixed import-like computation timed in the same rounds: the machine's pace;"
        "\n'paced' is the median of each import scaled by its round's pace to the quietest"
        "\nround's (the target is held to the plain median)"
        + (f"\n'before': {before}, compiled, measured in the same rounds" if before else "")
    )
    print(
        f"  {'module':32} {'CPU ms':>9} {'min CPU':>9} {'paced':>9} {'wall ms':>9} "
        f"{'target':>7} {'CPU/target':>10} {'no bytecode':>11}"
        + (f" {'before':>9}" if before else "")
    )
    handlers = [f"sensorhook.handlers.{name}" for name in IMPORT_TARGETS_MS]
    measured = cold_imports([REFERENCE, "sensorhook", *handlers], trees, runs)
    for row, module in ((REFERENCE, REFERENCE), ("(python + sensorhook package)", "sensorhook")):
        held = measured[module, "compiled"]
        print(
            f"  {row:32} {held.cpu_ms:9.1f} {held.cpu_min_ms:9.1f} {held.paced_ms or 0:9.1f} "
            f"{held.wall_ms:9.1f}"
        )
    for (name, target), module in zip(IMPORT_TARGETS_MS.items(), handlers, strict=True):
        held, uncompiled = measured[module, "compiled"], measured[module, "deployed"]
        earlier = f" {measured[module, 'before'].cpu_ms:9.1f}" if before else ""
        paced = held.paced_ms or 0.0
        verdict = (
            ""
            if held.cpu_ms <= target
            else "  over target" + (" (under at the quietest pace)" if paced <= target else "")
        )
        print(
            f"  {name:32} {held.cpu_ms:9.1f} {held.cpu_min_ms:9.1f} {paced:9.1f} "
            f"{held.wall_ms:9.1f} {target:7d} "
            f"{held.cpu_ms / target:10.2f} {uncompiled.cpu_ms:11.1f}{earlier}{verdict}"
        )


def compare(other: Path, module: str, pairs: int) -> None:
    """One handler's import from `other` (a functions folder, e.g. main's) and from this
    checkout's, each compiled and not, the four alternated `pairs` times: a change of a few
    milliseconds shows in the medians where two whole tables, minutes apart on a shared
    machine, would bury it."""
    ours = ROOT / "functions"
    folders = {
        f"{other}, compiled": (other, True),
        f"{ours}, compiled": (ours, True),
        f"{other}, no bytecode": (other, False),
        f"{ours}, no bytecode": (ours, False),
    }
    with contextlib.ExitStack() as copies:
        trees = _copies(copies, folders)
        measured = cold_imports([REFERENCE, module], trees, pairs)
    print(
        f"\n{module}: CPU ms of its cold import, the four alternated {pairs} times (paced: each"
        "\nimport scaled by its round's reference work to the quietest round's pace)"
    )
    for name in trees:
        result = measured[module, name]
        print(
            f"  {name:60} median {result.cpu_ms:7.1f}  min {result.cpu_min_ms:7.1f}  "
            f"paced {result.paced_ms or 0:7.1f}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        # python -m bench.cold_start --compare OTHER/functions [MODULE [PAIRS]]
        compare(
            Path(sys.argv[2]),
            sys.argv[3] if len(sys.argv) > 3 else "sensorhook.handlers.processor",
            int(sys.argv[4]) if len(sys.argv) > 4 else 15,
        )
    elif sys.argv[1:2] == ["--before"]:
        # python -m bench.cold_start --before OLDER/functions
        print_cold_imports(before=Path(sys.argv[2]))
    else:
        print_cold_imports(functions=Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "functions")
