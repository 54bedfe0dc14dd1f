"""The kernel's memory does not grow with the number of runs it has recorded.

It used to keep every finished run (10.6 KiB per small metered cell, about 250 KiB per cell with a
100 kB source). What is kept now is bounded: a few caches of fixed size, and a run only until its
write has succeeded. The figures per cell are measured by ``benchmarks/memory.py``; this test
asserts the property, with a margin no leak of a run per cell could fit in.
"""

from __future__ import annotations

import gc
import tracemalloc

from IPython.core.interactiveshell import InteractiveShell

from notebook_carbon import session as session_mod
from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter

BIG = "\n# " + "a" * 20_000  # a cell of 20 kB: a kept run would keep its source


def ours(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes held by objects allocated in notebook-carbon's own code."""
    kept = snapshot.filter_traces([tracemalloc.Filter(True, "*/notebook_carbon/*")])
    return sum(stat.size for stat in kept.statistics("filename"))


def test_memory_does_not_grow_with_committed_runs(tmp_path) -> None:
    session = Session(
        Settings(registry=str(tmp_path / "registry.sqlite"), region="FR"),
        detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 5.0),), notes=()),
    )
    shell = InteractiveShell.instance()
    ext = load_ipython_extension(shell, session=session)
    try:
        cell = 0

        def run(count: int) -> None:
            nonlocal cell
            for _ in range(count):
                cell += 1
                shell.run_cell(f"%%carbon --quiet\nx = {cell}" + BIG)  # new code in every cell

        tracemalloc.start()  # from the start: a cache entry replaced later is counted as freed
        try:
            run(600)  # fills every bounded cache (fingerprints: 512 entries)
            gc.collect()
            before = ours(tracemalloc.take_snapshot())
            run(300)
            gc.collect()
            after = ours(tracemalloc.take_snapshot())
        finally:
            tracemalloc.stop()
        # 300 committed runs; one kept run (its 20 kB source, its row) would be 6 MB in all
        assert after - before < 32 * 1024, f"{(after - before) / 300:.0f} bytes per cell"
        assert len(session._recent) == 0  # committed runs are found in the registry, not in memory
        assert ext._open == [] and ext._live == {} and session_mod._open_runs == []
    finally:
        unload_ipython_extension(shell)
