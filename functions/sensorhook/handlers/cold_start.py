"""A handler module's imports, run as what they are: objects that live as long as the execution
environment (docs/cost.md, "Cold start"; tests/unit/test_cold_start.py holds every handler to it).

Importing a handler creates 70,000-90,000 objects the cyclic garbage collector tracks. Left on,
the collector runs every 700 allocations and scans them again and again as they age through its
generations: some 100 collections, 15-45 ms of a handler's cold import on this machine (the
processor's most), that free almost nothing (about 800 objects of import-time cycles). Here the
collector is paused while the imports run, and what they created is then frozen (`gc.freeze`:
moved where no later collection scans it), so no request pays to scan it again either.

Only pending garbage from before the imports could be frozen with it (in a long-lived process
that imports a handler late: tests, the local runtime), so a full collection runs first; in a
fresh interpreter it scans the runtime's few thousand objects, a few milliseconds. What the
imports leave as cyclic garbage stays frozen, once per handler module, until the interpreter
exits: then everything frozen goes back to the collector, so shutdown finalizes it as it would
have (extension modules that report leaked instances at exit, duckdb's in the local runtime, see
none). Stdlib only: whatever this module imported would be imported before the pause.
"""

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

atexit.register(gc.unfreeze)


@contextmanager
def long_lived_imports() -> Iterator[None]:
    """Run the block's imports with the collector paused, then freeze what they created."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
