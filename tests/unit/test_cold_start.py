"""What each handler module leaves out of its cold start stays out (docs/cost.md, "Cold start").

Each case imports one handler in a fresh interpreter, with the environment Lambda gives the
function (bench.cold_start.import_environment), and lists what the import loaded: a later
top-level import that pulls a deferred library back in fails here, not silently in `make bench`.
It also counts the garbage collections the import ran: a handler's imports run with the
collector paused and leave what they created frozen (handlers/cold_start.py).
"""

import gc
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from bench import cold_start
from bench.cold_start import IMPORT_TARGETS_MS, import_environment
from bench.workload import ROOT
from infra import constants
from sensorhook.handlers.cold_start import long_lived_imports
from tests.fixtures.loader import fixture_text, sample_text

# Loaded by no handler's import: a Tracer (aws_xray_sdk) costs ~140 ms with tracing off.
NEVER = {"aws_xray_sdk"}
# pyarrow (and numpy under it) only where every invocation writes Parquet.
ARROW = {"pyarrow", "numpy", "sensorhook.dal.lake_parquet"}
# What the processor needs and the receiver never does: normalizing, storing, idempotency,
# SQS batches (Powertools' batch package imports asyncio), the canonical reading models.
PROCESSING = {
    "sensorhook.providers.registry",
    "sensorhook.logic.process",
    "sensorhook.core.reading",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.batch",
    "asyncio",
}
# boto3 imports s3transfer, its thread pools and multiprocessing (~30 ms): the clients are
# botocore's (dal/aws_clients.py), items are written and read by dal/wire_format.py and webhook
# secrets cached without Powertools parameters. Only the processor still imports it, with
# Powertools idempotency's DynamoDB layer.
BOTO3 = {"boto3", "s3transfer"}
# Powertools' data_classes package imports some forty event classes (~15 ms) for the one a
# handler would read: the receiver and the lake writer read their event's dict themselves.
DATA_CLASSES = {"aws_lambda_powertools.utilities.data_classes"}
# Each flavor's adapter (its models and normalizer) and Efento's gap detection: imported by
# the first delivery that takes them (providers/registry.py, logic/process.py efento_gaps), as
# one delivery takes one flavor's.
FLAVOR_ADAPTERS = {
    "sensorhook.providers.efento",
    "sensorhook.providers.everactive_ds",
    "sensorhook.providers.everactive_v2020",
    "sensorhook.logic.efento_gaps",
}
# The recovery machine's logic (backfill, the readings, state and gateway stores under it):
# the subscriptions function needs it for the machine's re-enable step only, not its scheduled
# reconciles.
RECOVERY_LOGIC = {"sensorhook.logic.recovery", "sensorhook.logic.backfill"}
# The other functions' settings models (core/settings.py): about 10 ms of class creation the
# receiver never uses; its own are core/receiver_settings.py.
OTHER_SETTINGS = {"sensorhook.core.settings"}
DEFERRED = {
    "receiver": NEVER | ARROW | PROCESSING | BOTO3 | DATA_CLASSES | OTHER_SETTINGS,
    "processor": NEVER | ARROW | FLAVOR_ADAPTERS,
    "lake_writer": NEVER
    | BOTO3
    | DATA_CLASSES
    | {"aws_lambda_powertools.utilities.batch", "asyncio"},
    "lake_compactor": NEVER | BOTO3,
    "subscriptions": NEVER | ARROW | BOTO3 | RECOVERY_LOGIC,
    "gateway_health": NEVER | ARROW | BOTO3,
    "recovery": NEVER | ARROW | BOTO3,
    "forwarder": NEVER | ARROW | BOTO3,
    "endpoint_policy": NEVER | ARROW | BOTO3,
}
# Models built when first validated (defer_build): a function validates its own settings and
# one delivery one flavor's models, so none of these may be built by an import.
# Every handler's imports run with the garbage collector paused and what they created frozen
# (handlers/cold_start.py): the collector's ~100 passes over them were 30-45 ms of a cold import.
LONG_LIVED_IMPORTS = set(DEFERRED)
# Without the pause, a handler's import runs about a hundred collections; with it, the full
# collection before the pause and at most one either side of it.
MOST_COLLECTIONS_PAUSED = 3

DEFERRED_MODEL_MODULES = (
    "sensorhook.core.settings",
    "sensorhook.core.receiver_settings",
    "sensorhook.providers.efento.models",
    "sensorhook.providers.everactive_ds.models",
    "sensorhook.providers.everactive_v2020.models",
)

_PROBE = """
import gc, importlib, json, sys
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
importlib.import_module(sys.argv[1])
gc.callbacks.clear()
from pydantic import BaseModel
from pydantic.plugin import _loader

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

built = sorted(
    f"{m.__module__}.{m.__qualname__}"
    for m in set(subclasses(BaseModel))
    if m.__module__ in sys.argv[2].split(",") and m.__pydantic_complete__
)
print(json.dumps({
    "modules": sorted(sys.modules),
    "built": built,
    "plugins_scanned": _loader._plugins is not None,
    "collections": collections,
    "collector_enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
}))
"""


@cache
def _import_in_a_fresh_interpreter(module: str) -> dict:
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", _PROBE, module, ",".join(DEFERRED_MODEL_MODULES)],
        env=import_environment(),
        cwd=ROOT / "functions",
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict = json.loads(done.stdout)
    return result


def _loaded(modules: list[str], names: set[str]) -> set[str]:
    """The names in `names` that were imported, themselves or any of their submodules."""
    return {name for name in names for m in modules if m == name or m.startswith(f"{name}.")}


def test_every_lambda_handler_is_guarded_and_benched() -> None:
    handlers = {
        value.removeprefix("sensorhook.handlers.").removesuffix(".handler")
        for name, value in vars(constants).items()
        if name.endswith("_HANDLER")
    }
    assert handlers == set(DEFERRED) == set(IMPORT_TARGETS_MS)


@pytest.mark.parametrize("handler", sorted(DEFERRED))
def test_a_handler_import_loads_none_of_what_it_defers(handler: str) -> None:
    # Given the handler module imported as Lambda's init imports it
    loaded = _import_in_a_fresh_interpreter(f"sensorhook.handlers.{handler}")

    # Then nothing it defers was imported, no deferred model was built, and pydantic did not
    # scan the installed distributions for plugins
    assert _loaded(loaded["modules"], DEFERRED[handler]) == set()
    assert loaded["built"] == []
    assert loaded["plugins_scanned"] is False


@pytest.mark.parametrize("handler", sorted(LONG_LIVED_IMPORTS))
def test_a_handler_import_runs_no_collection_and_leaves_its_objects_frozen(handler: str) -> None:
    # Given the handler module imported as Lambda's init imports it
    loaded = _import_in_a_fresh_interpreter(f"sensorhook.handlers.{handler}")

    # Then the collector did not run through the imports, what they created is frozen (no later
    # collection scans it), and the collector is on again for the requests
    assert len(loaded["collections"]) <= MOST_COLLECTIONS_PAUSED, loaded["collections"]
    assert loaded["frozen"] > 0
    assert loaded["collector_enabled"] is True


def test_the_probe_sees_what_an_import_loads() -> None:
    # The guard above would pass vacuously if the probe could not see a loaded module: the
    # lake compactor does load pyarrow, and the processor the Powertools batch package (with
    # data_classes) and boto3 (Powertools idempotency).
    compactor = _import_in_a_fresh_interpreter("sensorhook.handlers.lake_compactor")
    processor = _import_in_a_fresh_interpreter("sensorhook.handlers.processor")

    assert _loaded(compactor["modules"], {"pyarrow", "numpy"}) == {"pyarrow", "numpy"}
    assert _loaded(processor["modules"], BOTO3 | DATA_CLASSES) == BOTO3 | DATA_CLASSES
    assert "aws_lambda_powertools.utilities.batch" in processor["modules"]


def test_the_probe_sees_the_collections_of_an_import_that_does_not_pause_them() -> None:
    # The collections guard would pass vacuously if the probe missed a collection: importing
    # botocore's clients outside a handler runs dozens, and freezes nothing
    clients = _import_in_a_fresh_interpreter("sensorhook.dal.aws_clients")

    assert len(clients["collections"]) > 10 * MOST_COLLECTIONS_PAUSED
    assert clients["frozen"] == 0
    assert clients["collector_enabled"] is True


_NORMALIZE = """
import json, sys
from datetime import UTC, datetime
from sensorhook.core.flavors import Flavor
from sensorhook.providers.registry import DeliveryChunks

flavor = Flavor(sys.argv[1])
chunks = DeliveryChunks(
    flavor, sys.stdin.read(), event_id="e", received_at=datetime.now(UTC), chunk_size=1000
)
readings = sum(len(chunk.readings) for chunk in chunks.chunks())
if flavor is Flavor.EFENTO_MEASUREMENTS:
    from sensorhook.logic.process import efento_gaps
    efento_gaps([], {})
print(json.dumps({"readings": readings, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    ("flavor", "body", "adapter"),
    [
        (
            "everactive-ds-sensor-reading",
            sample_text("everactive-ds/sensor-reading-mhm.json"),
            {"sensorhook.providers.everactive_ds"},
        ),
        (
            "efento-measurements",
            fixture_text("efento/multi-channel-batch.json"),
            {"sensorhook.providers.efento", "sensorhook.logic.efento_gaps"},
        ),
        (
            "everactive-v2020-07",
            fixture_text("everactive-v2020/steam-trap-state-change.json"),
            {"sensorhook.providers.everactive_v2020"},
        ),
    ],
)
def test_a_delivery_imports_its_own_flavors_adapter_and_no_other(
    flavor: str, body: str, adapter: set[str]
) -> None:
    # Given one delivery of a flavor normalized in a fresh interpreter, as a cold processor's
    # first delivery is
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", _NORMALIZE, flavor],
        input=body,
        env=import_environment(),
        cwd=ROOT / "functions",
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(done.stdout)
    # Then it was normalized with its flavor's adapter, which is now loaded, and no other is
    assert loaded["readings"] > 0
    assert _loaded(loaded["modules"], FLAVOR_ADAPTERS) == adapter


_AT_EXIT = """
import atexit, gc, importlib, sys
atexit.register(lambda: print(gc.get_freeze_count()))  # registered first: runs last
importlib.import_module(sys.argv[1])
print(gc.get_freeze_count())
"""


def test_what_an_import_froze_goes_back_to_the_collector_when_the_interpreter_exits() -> None:
    # Given a handler imported in a fresh interpreter that then exits
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", _AT_EXIT, "sensorhook.handlers.receiver"],
        env=import_environment(),
        cwd=ROOT / "functions",
        capture_output=True,
        text=True,
        check=True,
    )
    after_import, at_exit = (int(line) for line in done.stdout.split())

    # Then its objects were frozen while it ran, and unfrozen before shutdown finalized them
    # (as it did before the freeze: extension types that count leaks at exit find none)
    assert after_import > 0
    assert at_exit == 0


def test_the_pause_leaves_a_collector_its_caller_had_paused_paused() -> None:
    # Given a caller that runs with the collector off
    gc.disable()
    try:
        # When a handler's imports run inside it
        with long_lived_imports():
            pass
        # Then the collector is still off: only the caller turns it back on
        assert gc.isenabled() is False
    finally:
        gc.enable()


def test_an_import_that_fails_freezes_nothing_and_leaves_the_collector_on() -> None:
    frozen = gc.get_freeze_count()

    with pytest.raises(ModuleNotFoundError), long_lived_imports():
        import sensorhook.no_such_module  # noqa: F401

    # (frozen objects are still freed when their last reference goes: the count may fall)
    assert gc.isenabled() is True
    assert gc.get_freeze_count() <= frozen


def test_the_bench_measures_round_robin_so_a_slow_spell_falls_on_every_row_alike(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a machine that is slow for a third of the bench, in its middle
    trees = {"compiled": tmp_path / "a", "before": tmp_path / "b"}
    order: list[tuple[str, Path]] = []

    def sample(module: str, functions: Path) -> tuple[float, float]:
        order.append((module, functions))
        slow = 5 <= len(order) <= 8  # of the twelve imports
        return (200.0, 200.0) if slow else (100.0, 100.0)

    monkeypatch.setattr(cold_start, "_sample", sample)

    # When two modules are measured three times from two trees
    measured = cold_start.cold_imports(["m1", "m2"], trees, runs=3)

    # Then one import of each module and tree per round, in the same order every round
    assert order == [(m, t) for m in ("m1", "m2") for t in trees.values()] * 3
    # and the slow spell fell on one import of each: every median is the fast figure (one
    # module's runs in a row would have given two of them the slow one)
    assert {key: result.cpu_ms for key, result in measured.items()} == {
        (m, t): 100.0 for m in ("m1", "m2") for t in trees
    }
    assert {result.wall_ms for result in measured.values()} == {100.0}


def test_the_reference_work_is_timed_like_an_import_in_any_folder(tmp_path: Path) -> None:
    # an empty folder: the reference imports nothing of sensorhook, so every tree times the same
    wall, cpu = cold_start._sample(cold_start.REFERENCE, tmp_path)

    assert cpu > 10 and wall >= cpu * 0.5


def test_paced_figures_take_out_the_slow_rounds_the_reference_work_shows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a machine twice as slow in two of three rounds, for the reference and the import
    rounds: list[str] = []

    def sample(module: str, functions: Path) -> tuple[float, float]:
        if module == cold_start.REFERENCE:
            rounds.append(module)
        slow = 2.0 if len(rounds) >= 2 else 1.0
        cpu = (70.0 if module == cold_start.REFERENCE else 300.0) * slow
        return cpu, cpu

    monkeypatch.setattr(cold_start, "_sample", sample)

    # When the bench measures the import with the reference in the same rounds
    measured = cold_start.cold_imports([cold_start.REFERENCE, "m"], {"t": tmp_path}, runs=3)

    # Then the plain median is the slow figure, and the paced one what the quiet round took
    assert measured["m", "t"].cpu_ms == 600.0
    assert measured["m", "t"].paced_ms == pytest.approx(300.0)
    assert measured[cold_start.REFERENCE, "t"].paced_ms == pytest.approx(70.0)
    # and without the reference nothing is paced
    assert cold_start.cold_imports(["m"], {"t": tmp_path}, runs=1)["m", "t"].paced_ms is None
