"""Render docs/performance.md from the figures ``run.py`` measured. Pure text apart from reading
the machine's description (``/proc/cpuinfo``, ``/proc/meminfo``)."""

from __future__ import annotations

import datetime
import math
import os
import platform
import re
import statistics
from importlib.metadata import version
from pathlib import Path

HEAVY = ("sqlalchemy", "pandas", "altair", "ipywidgets", "codecarbon")
TARGET_ADDED_S = 0.002
TARGET_COLD_S = 0.300


def p90(values) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]  # nearest rank


def ms(seconds: float, digits: int = 2) -> str:
    return f"{seconds * 1e3:.{digits}f}"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    kind = "VM" if " hypervisor" in cpuinfo else "machine"
    mem = ""
    if Path("/proc/meminfo").exists():
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    return f"a {os.cpu_count()}-core {kind} ({model}{mem}), {platform.system()} {platform.release()}"


KEPT = re.compile(r"<!-- (?P<name>[a-z ]+) begins -->.*?<!-- (?P=name) ends -->", re.DOTALL)
"""A section another benchmark writes into performance.md (``server_summary.py``)."""


def with_kept_sections(text: str, old: str) -> str:
    """``text`` followed by the sections other benchmarks wrote into ``old``, the file it replaces."""
    kept = [match.group(0) for match in KEPT.finditer(old)]
    return "\n\n".join([text.rstrip("\n"), *kept]) + "\n"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def table(header: str, rows: list[str]) -> str:
    columns = header.count("|") - 1
    return "\n".join([header, "|" + "---|" * columns, *rows])


def spread(values: list[float], plain: list[float], parts: int = 5) -> tuple[float, float]:
    """Lowest and highest added median over ``parts`` consecutive slices of the run: how much the
    headline figure moves with the machine's mood, which a single median hides."""
    size = len(values) // parts
    added = [
        statistics.median(values[i * size : (i + 1) * size])
        - statistics.median(plain[i * size : (i + 1) * size])
        for i in range(parts)
    ]
    return min(added), max(added)


def report(cell: dict, cold: dict, command: str, cfg: dict) -> str:
    """The whole of docs/performance.md. ``cell`` and ``cold`` are what ``run.py`` measured (seconds)."""
    base = statistics.median(cell["plain"])
    labels = {
        "plain": "plain cell `x = i`",
        "carbon_cell": "`%%carbon --quiet` cell, as the user sees it",
        "carbon_durable": "`%%carbon --quiet` cell + `writer.flush()` (run committed to SQLite)",
        "codecarbon": "codecarbon: fresh tracker, `start()`; cell; `stop()`",
        "codecarbon_task": "codecarbon: `start_task()`; cell; `stop_task()` on a running tracker",
    }
    rows, added, ranges = [], {}, {}
    for key, label in labels.items():
        values = cell[key]
        med = statistics.median(values)
        added[key] = med - base
        paired = statistics.median(v - p for v, p in zip(values, cell["plain"]))
        low, high = spread(values, cell["plain"])
        ranges[key] = f"{ms(low)} to {ms(high)}"
        extra = "- | - | - | 1.0x"
        if key != "plain":
            extra = f"{ms(added[key])} | {ms(paired)} | {ranges[key]} | {med / base:.1f}x"
        rows.append(f"| {label} | {ms(med)} | {ms(p90(values))} | {extra} |")
    cell_table = table("| variant | median | p90 | added | paired | added, per fifth | vs plain |", rows)

    peer = added["codecarbon"]
    target, below = f"<= {ms(TARGET_ADDED_S, 0)} ms", f"below codecarbon's {ms(peer)} ms"
    figures = {"carbon_cell": "cell as the user sees it", "carbon_durable": "cell + registry write"}
    verdicts = [
        f"| {name} | {ms(added[key])} ms (fifths: {ranges[key]}) | {target} "
        f"| {verdict(added[key] <= TARGET_ADDED_S)} |"
        for key, name in figures.items()
    ] + [
        f"| {name} | {ms(added[key])} ms; codecarbon {peer / added[key]:.1f}x as much | {below} "
        f"| {verdict(added[key] < peer)} |"
        for key, name in figures.items()
    ]
    verdict_table = table("| figure | added median | target | verdict |", verdicts)

    ours, theirs = cold["ours"], cold["codecarbon"]
    n = len(ours)

    def cold_row(label: str, results: list[dict], key: str) -> str:
        values = [r[key] for r in results]
        return f"| {label} | {ms(statistics.median(values), 0)} | {ms(p90(values), 0)} |"

    ours_table = table(
        "| ours: `%load_ext notebook_carbon` + first `%%carbon --quiet` cell | median | p90 |",
        [
            cold_row("`%load_ext notebook_carbon`", ours, "load_ext"),
            cold_row(
                "first metered cell (probes the meters, resolves the grid intensity)", ours, "first_cell"
            ),
            cold_row("**total, as the user sees it**", ours, "total"),
            cold_row("until the first run is committed to SQLite", ours, "durable"),
        ],
    )
    theirs_table = table(
        "| codecarbon: first measurement of a cell | median | p90 |",
        [
            cold_row("`import codecarbon`", theirs, "import"),
            cold_row("`OfflineEmissionsTracker(...)`", theirs, "construct"),
            cold_row("`start()` (probes the hardware)", theirs, "start"),
            cold_row("cell + `stop()`", theirs, "cell_stop"),
            cold_row("**total**", theirs, "total"),
        ],
    )
    cold_total = statistics.median(r["total"] for r in ours)
    slower = statistics.median(r["total"] for r in theirs) / cold_total
    heavy_rows = []
    for name in HEAVY:
        count = sum(name in r["loaded"] for r in ours)
        threads = sorted({r["import_threads"][name] for r in ours if name in r["import_threads"]})
        heavy_rows.append(f"| {name} | {count}/{n} | {', '.join(threads) or 'not imported'} |")
    heavy_table = table(
        "| package | imported by the end of the first cell | imported on thread |", heavy_rows
    )
    on_main = any(r["import_threads"].get("sqlalchemy") == "MainThread" for r in ours)
    critical = "IS imported on the main thread" if on_main else "is never imported on the main thread"
    modules = statistics.median(r["modules_added"] for r in ours)
    packages = ("notebook-carbon", "ipython", "codecarbon", "sqlalchemy")
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    now = datetime.datetime.now(datetime.timezone.utc)

    return f"""# Performance

What metering costs a notebook, measured by `benchmarks/run.py` (see `benchmarks/README.md`).

- Command: `{command}`
- Date: {now:%Y-%m-%d %H:%M} UTC
- Machine: {machine()}; meters detected: {cell["meters"]}
- Software: Python {platform.python_version()}, {versions}

Times are milliseconds of wall clock. The machine is shared and noisy, so figures are medians with
their 90th percentile (p90). "Added" is a variant's median minus the plain cell's median; "paired"
is the median of the per-round differences (variant minus the plain cell of the same round), which
drift affects less; "added, per fifth" is the lowest and highest added median over five
consecutive slices of the run, to show how much the figure moves.

## Per-cell overhead

{cfg["rounds"]} rounds in one process with a real IPython `InteractiveShell`, after {cfg["warmup"]} warm-up
rounds that are not counted. Each round runs every variant once, in a rotating order. The registry
is an SQLite file in a temporary directory; the meters are this machine's real ones.

{cell_table}

Target: a metered cell adds at most {ms(TARGET_ADDED_S, 0)} ms (median) including the registry write,
and less than codecarbon.

{verdict_table}

The registry is written on a background thread, but the summary line (and the prompt) comes only
once the cell's run is committed, so that a run the user saw is in the registry whatever happens to
the kernel next: the first figure includes the write (about 1 ms: SQLAlchemy's insert and commit,
and two thread hand-offs), the second adds a flush of anything else queued. Before runs were made
durable at the summary line, the first figure was 1.05 ms on the same VM (2026-11-22, when the
plain cell took 0.83 ms and codecarbon 6.82 ms: the VM is slower today). The code before issue 12's
redesign, measured beside today's in one run, is compared [below](#issue-12-the-upper-half-before-and-after-its-redesign).

How codecarbon is measured. A stopped `OfflineEmissionsTracker` cannot be started again: in
codecarbon 3.3.2 `stop()` drops its schedulers, so a second `start()` fails inside an exception
that codecarbon swallows, and the next `stop()` returns the first run's emissions again. So one
tracker is built per cell, outside the timed region, and `start()`, the cell and `stop()` are
timed. That is the fair counterpart of a `%%carbon` cell: one cell, one run, one record written
(a CSV row, which codecarbon writes synchronously in `stop()`). Hardware detection is not in it:
codecarbon caches that per process after the first tracker. For reference, the last row is
codecarbon's cheapest way to meter a segment, a task on one tracker kept running (its 1 s monitor
thread runs during every variant); a task is only kept in memory until the tracker stops, so it
does less than the other two.

## Cold start

{n} fresh processes per tool, alternating, after one discarded trial each (to warm the OS file
cache). Each child creates an `InteractiveShell` (not timed), then times the steps below. Each of
our trials starts with no registry file, so its first write also creates the schema.

{ours_table}

{theirs_table}

Target: load + first metered cell <= {ms(TARGET_COLD_S, 0)} ms. Measured {ms(cold_total, 0)} ms:
{verdict(cold_total <= TARGET_COLD_S)}. Codecarbon's first measurement takes {slower:.0f}x as long.

Heavy packages in the child processes of ours ({n} trials; "imported by the end of the first
cell" counts the trials where the package was in `sys.modules` when the cell returned):

{heavy_table}

SQLAlchemy {critical}, so the main thread's critical path {"includes" if on_main else "excludes"} its
import. The registry thread imports it and opens the database alongside the cell: a count above 0
means that thread got there before the cell ended; the "committed" row above is when its work
(import, schema creation, two commits) is done. The timed region added a median of {modules:.0f}
modules to `sys.modules`.

The registry at scale (100,000 runs, incl. the impact statement and summary): see
[performance-registry.md](performance-registry.md). The notebook widgets (the dashboard of a 10,000-run
project; the CPU of the live meter during an idle cell): see [dashboard.md](dashboard.md#performance) and
[live-meter.md](live-meter.md). The server extension's summary endpoint: below, and [server.md](server.md).
"""


def write_section(doc, begin: str, end: str, text: str) -> None:
    """Put ``text`` between ``begin`` and ``end`` in ``doc`` (appended if absent); ``run.py`` keeps
    such sections when it rewrites the rest of the file."""
    old = doc.read_text()
    section = f"{begin}\n{text}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    doc.write_text(pattern.sub(lambda _: section, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + section + "\n")
