"""What a kernel keeps in memory per metered cell, once the cell's run is committed.

    python benchmarks/memory.py            # 2,000 cells per variant; writes its section of docs/performance.md
    python benchmarks/memory.py --cells 300   # smoke run: prints the report, writes nothing

Each variant runs in a fresh child process with a real IPython shell, this machine's meters and
an SQLite registry in a throwaway directory: after 200 warm-up cells, Python's allocations
(tracemalloc, after a full garbage collection) and the process's resident memory are read, then
again after the remaining cells; the growth divided by the cells between is the memory each cell
left behind. Every cell has different code (``x = <i>``), as a notebook's cells do, so none is a
repeat of another. Variants: plain cells and ``%%carbon --quiet`` cells, small and with a 100 kB
source; IPython itself keeps every cell's source, so each metered variant is compared with its
plain counterpart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import write_section  # benchmarks/ is on sys.path: this file runs as a script

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- memory per cell begins -->", "<!-- memory per cell ends -->"
WARMUP = 200
BIG = "\n# " + "a" * 100_000
VARIANTS = {
    "plain": "x = {i}",
    "carbon": "%%carbon --quiet\nx = {i}",
    "plain-100kB": "x = {i}" + BIG,
    "carbon-100kB": "%%carbon --quiet\nx = {i}" + BIG,
}
LABELS = {
    "plain": "plain cell `x = i`",
    "carbon": "`%%carbon --quiet` cell `x = i`",
    "plain-100kB": "plain cell with a 100 kB source",
    "carbon-100kB": "`%%carbon --quiet` cell with a 100 kB source",
}
CONTROL = {"carbon": "plain", "carbon-100kB": "plain-100kB"}
"""Each metered variant's plain counterpart: IPython itself keeps every cell's source (for tracebacks)."""
TARGET_BYTES = 1024  # per metered cell, beyond IPython's own: bounded, whatever the source's size


def child(variant: str, cells: int, workdir: str) -> dict:
    import gc
    import tracemalloc

    import psutil
    from IPython.core.interactiveshell import InteractiveShell

    os.environ["NOTEBOOK_CARBON_REGISTRY"] = str(Path(workdir) / "registry.sqlite")
    os.environ["NOTEBOOK_CARBON_REGION"] = "FR"
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext notebook_carbon")
    template = VARIANTS[variant]
    process = psutil.Process()
    tracemalloc.start()

    def reading() -> tuple[int, int]:
        gc.collect()
        return tracemalloc.get_traced_memory()[0], process.memory_info().rss

    for i in range(WARMUP):
        shell.run_cell(template.format(i=i))
    traced0, rss0 = reading()
    started = time.perf_counter()
    for i in range(WARMUP, cells):
        shell.run_cell(template.format(i=i))
    seconds = time.perf_counter() - started
    traced1, rss1 = reading()
    counted = cells - WARMUP
    return {
        "traced_per_cell": (traced1 - traced0) / counted,
        "rss_per_cell": (rss1 - rss0) / counted,
        "ms_per_cell": seconds * 1e3 / counted,
    }


def measure(cells: int, repeats: int) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name in VARIANTS:
            with tempfile.TemporaryDirectory() as tmp:
                env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEBOOK_CARBON_")}
                env.update(IPYTHONDIR=str(Path(tmp) / "ipython"), XDG_CONFIG_HOME=str(Path(tmp) / "config"))
                done = subprocess.run(
                    [sys.executable, __file__, "--child", name, "--cells", str(cells), "--workdir", tmp],
                    capture_output=True, text=True, env=env, check=True,
                )
                found[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"{name}: {found[name][-1]}", file=sys.stderr)
    return found


def report(found: dict[str, list[dict]], cells: int, repeats: int, command: str) -> str:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in found[name])

    rows = []
    for name in VARIANTS:
        traced, rss = median(name, "traced_per_cell"), median(name, "rss_per_cell")
        added = f"{(traced - median(CONTROL[name], 'traced_per_cell')) / 1024:.2f}" if name in CONTROL else "-"
        rows.append(f"| {LABELS[name]} | {traced / 1024:.2f} | {added} | {rss / 1024:.1f} | {median(name, 'ms_per_cell'):.2f} |")
    worst = max(median(n, "traced_per_cell") - median(c, "traced_per_cell") for n, c in CONTROL.items())
    met = worst <= TARGET_BYTES
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        memory = ""
    return "\n".join([
        "## Memory per metered cell",
        "",
        f"- Command: `{command}`",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}; Python {platform.python_version()}",
        "",
        f"{cells:,} cells per variant, each variant in a fresh process, {repeats} times (medians shown). "
        f"Growth measured between cell {WARMUP} and cell {cells:,}, after a full garbage collection: "
        "Python's allocations (tracemalloc) and the resident set (RSS, which the allocator rounds "
        "to pages). KiB per cell.",
        "",
        "| variant | KiB per cell (tracemalloc) | added by the magic (vs the same plain cell) | KiB per cell (RSS) | ms per cell (tracing on) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Target: what a metered cell leaves in memory once its run is committed stays bounded, "
        f"at most {TARGET_BYTES / 1024:.0f} KiB per cell beyond IPython's own, whatever the cell's "
        f"size. Measured {worst / 1024:.2f} KiB: {'**met**' if met else '**missed**'}. Before this "
        "was fixed the kernel kept every finished run: 10.6 KiB per small metered cell and about "
        "250 KiB per cell with a 100 kB source.",
    ])  # fmt: skip


def write(text: str) -> None:
    write_section(DOC, BEGIN, END, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.cells, args.workdir)))
        return
    found = measure(args.cells, args.repeats)
    command = "python benchmarks/memory.py" + ("" if args.cells == 2000 else f" --cells {args.cells}")
    text = report(found, args.cells, args.repeats, command)
    print(text)
    if args.cells == 2000:
        write(text)
        print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
