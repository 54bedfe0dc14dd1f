"""The notebook dashboard of a big project: the first one in a fresh kernel, the refresh after a
metered cell, and where the time goes.

    python benchmarks/dashboard.py                # 10,000 runs; rewrites the figures in docs/dashboard.md
    python benchmarks/dashboard.py --quick        # fewer repetitions: prints the report, writes no file
    python benchmarks/dashboard.py --runs 100000  # another size (issue 12's): prints the report, writes no file

The registry is the one ``registry_scale.py`` generates (seeded: sweeps of uneven size, named and
automatic, random-search params, failed, crashed and redundant runs, and a neighbour project in the
same file), written to a temporary directory; the settings are the defaults (your config file
and environment are not read). The dashboard is built as ``%carbon dashboard``
builds it (``wait=False``: the charts on a thread of their own), for the project and one of its
notebooks, with its default limits (20 sweeps and 20 redundant runs listed, 300 steps of the
cumulative line, 12 sweep bars).

The dashboard reads the totals the database keeps on the kernel's thread and draws its two charts
on a thread of its own, so each figure comes twice: until the call returns to the kernel (what the
user waits for), and until the charts are shown. After a metered cell the dashboard does what
``Dashboard._after_cell`` does, ``refresh()`` (``wait=False``) on the kernel's thread, after one
more run was recorded in the project's busiest sweep by this kernel; a dashboard that follows the
cells finishes its charts before the next cell starts (``pre_run_cell``), so the time until they
are shown is also the soonest a cell run straight after can start. A fresh process per cold trial
measures the first dashboard of a kernel, imports and the chart renderer's start included.

The functions that time a dashboard (``cold_trial``, ``after_cells``) take either dashboard: the
one before issue 12 (7cb8e61), whose ``refresh`` reads every run and draws the charts before it
returns, or today's. ``redesign.py`` runs them on both.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from importlib.metadata import version
from pathlib import Path

# benchmarks/ is on sys.path: this file runs as a script. Imported where used, so that a cold
# trial's process imports nothing of ours before it starts its clock.

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "dashboard.md"
BEGIN, END = "<!-- benchmark begins -->", "<!-- benchmark ends -->"
NOTEBOOK = "vit.ipynb"  # one of the generated project's notebooks
TARGET_KERNEL_S = 0.100
"""A refresh after a metered cell, on the kernel's thread (issue 12, at 100,000 runs)."""
TARGET_FIRST_S = 1.5
"""The first dashboard of a fresh kernel, until ``Dashboard(...)`` returns (issue 12, at 100,000 runs)."""
TARGET_DRAWN_S = 0.500
"""A dashboard with its charts drawn, built or refreshed (the target of the first dashboard, at 10,000 runs)."""
FULL = {"runs": 10_000, "reps": 25, "cold": 5}
QUICK = {"runs": 10_000, "reps": 5, "cold": 2}


def child(location: str, project: str) -> None:
    """One cold trial, in a fresh process: import the widgets, build the first dashboard, wait for
    its charts; print the seconds of each step as one JSON line."""
    t0 = time.perf_counter()
    from notebook_carbon.settings import Settings
    from notebook_carbon.widgets import Dashboard

    t1 = time.perf_counter()
    board = Dashboard(location, project, notebook=NOTEBOOK, settings=Settings(), **as_the_command(Dashboard))
    t2 = time.perf_counter()
    drawn = board.charts_drawn(120) if hasattr(board, "charts_drawn") else True  # before issue 12: drawn
    t3 = time.perf_counter()
    board.close()
    if not drawn:
        raise SystemExit("the first dashboard's charts were not drawn within 120 s")
    print(json.dumps({"import": t1 - t0, "first": t2 - t1, "total": t2 - t0, "drawn": t3 - t0}))


def cold_trial(location: str, env: dict[str, str] | None = None) -> dict:
    """One cold trial in a fresh process (``env``: its environment, e.g. which code it imports)."""
    from registry_scale import PROJECT

    done = subprocess.run(
        [sys.executable, __file__, "--child", location, PROJECT],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode:
        raise RuntimeError(f"cold dashboard trial failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cold(location: str, trials: int) -> list[dict]:
    return [cold_trial(location) for _ in range(trials)]


def busiest_sweep(location: str) -> tuple[str, int]:
    """The named sweep of the project with the most runs, where a researcher is busy, and its size
    (plain SQL on the file, so that it reads every schema alike and fills no cache of the registry's)."""
    from registry_scale import PROJECT

    query = ("SELECT sweep, count(*) FROM runs WHERE project = ? AND sweep IS NOT NULL AND sweep != '' "
             "GROUP BY sweep ORDER BY count(*) DESC, sweep LIMIT 1")  # fmt: skip
    with closing(sqlite3.connect(f"file:{location}?mode=ro", uri=True)) as db:
        name, size = db.execute(query, (PROJECT,)).fetchone()
    return name, size


def as_the_command(dashboard_class) -> dict:
    """What ``%carbon dashboard`` passes besides the registry: since issue 12, ``wait=False`` (its
    charts drawn on their own thread; a ``Dashboard`` made in code draws them before returning
    unless told so). The dashboard before it had no such argument: it always drew them first."""
    return {"wait": False} if "wait" in inspect.signature(dashboard_class).parameters else {}


def build(location: str):
    """The dashboard of the project, for one of its notebooks, as ``%carbon dashboard`` makes it."""
    from registry_scale import PROJECT

    from notebook_carbon.settings import Settings
    from notebook_carbon.widgets import Dashboard

    return Dashboard(location, PROJECT, notebook=NOTEBOOK, settings=Settings(), **as_the_command(Dashboard))


def drawn(board) -> None:
    """Wait until ``board``'s charts are shown (before issue 12 they are when a call returns)."""
    if hasattr(board, "charts_drawn") and not board.charts_drawn(120):
        raise RuntimeError("the dashboard's charts were not drawn within 120 s")


def after_cells(location: str, reps: int, warmup: int = 2) -> dict[str, list[float]]:
    """The refresh that follows a metered cell, ``reps`` times after ``warmup`` uncounted ones: one
    more finished run recorded (untimed) in the busiest sweep of the notebook shown, by this
    process as a kernel records it, then what ``Dashboard._after_cell`` does on the kernel's thread
    (``refresh()``), timed until it returns ("kernel") and until the charts are shown ("drawn")."""
    from registry_scale import add_run

    from notebook_carbon.registry import Registry

    board = build(location)
    drawn(board)
    where = {"sweep": busiest_sweep(location)[0], "notebook": NOTEBOOK, "pid": board.kernel.pid,
             "host": board.kernel.host}  # fmt: skip
    found: dict[str, list[float]] = {"kernel": [], "drawn": []}
    runs_before = board.snapshot.scope("project").facts["totals"]["runs"]
    with Registry.open(location) as reg:
        for i in range(warmup + reps):
            add_run(reg, where)
            t0 = time.perf_counter()
            board.refresh()  # since issue 12 it returns before the charts are drawn
            t1 = time.perf_counter()
            drawn(board)
            t2 = time.perf_counter()
            if i >= warmup:
                found["kernel"].append(t1 - t0)
                found["drawn"].append(t2 - t0)
    shown = board.snapshot.scope("project").facts["totals"]["runs"]
    board.close()
    if shown != runs_before + warmup + reps:  # the refreshes counted only if they saw each new run
        raise RuntimeError(f"the dashboard shows {shown} runs, expected {runs_before + warmup + reps}")
    return found


def kernel_parts(location: str, reps: int) -> dict[str, list[float]]:
    """Where a refresh's time on the kernel's thread goes (today's dashboard only), each timed on
    its own: opening the registry; ``figures.snapshot`` on a registry opened for it ("fresh", as
    the first refresh does) and on the one kept open (as every later refresh does); and of the
    latter its one sweep listing, with the varying parameters of the sweeps shown (``params=20``)."""
    from registry_scale import PROJECT, timed

    from notebook_carbon.registry import Registry
    from notebook_carbon.widgets import figures

    board = build(location)
    drawn(board)

    def snapshot(reg):
        return figures.snapshot(reg, project=PROJECT, notebook=NOTEBOOK, kernel=board.kernel,
                                settings=board.settings, **board.limits)  # fmt: skip

    def fresh():
        with Registry.open(location, read_only=True) as reg:
            return snapshot(reg)

    with Registry.open(location, read_only=True) as reg:
        found = {
            "open": timed(lambda: Registry.open(location, read_only=True).close(), reps),
            "fresh": timed(fresh, reps),
            "snapshot": timed(lambda: snapshot(reg), reps),
            "listing": timed(lambda: reg.sweeps(PROJECT, params=board.limits["top_sweeps"]), reps),
            "page": timed(lambda: reg.page(PROJECT, limit=10), reps),
        }  # fmt: skip
    board.close()
    return found


def warm(location: str, reps: int) -> dict:
    """Seconds per build, per refresh after a metered cell, and per phase of a refresh, each timed
    on its own (today's dashboard only)."""
    from altair.utils.schemapi import debug_mode
    from registry_scale import PROJECT, timed

    from notebook_carbon import analysis, charts
    from notebook_carbon.widgets import figures, markup

    builds: dict[str, list[float]] = {"build": [], "build_drawn": []}
    for i in range(3 + reps):
        t0 = time.perf_counter()
        board = build(location)
        t1 = time.perf_counter()
        drawn(board)
        t2 = time.perf_counter()
        board.close()
        if i >= 3:
            builds["build"].append(t1 - t0)
            builds["build_drawn"].append(t2 - t0)
    results = {**builds, **after_cells(location, reps, warmup=3), **kernel_parts(location, reps)}

    board = build(location)
    drawn(board)
    snap = board.snapshot
    df = analysis.runs(location, project=PROJECT, columns=figures.CHART_COLUMNS)

    def lay_out():
        return (markup.header(snap), markup.totals(snap), markup.sweeps(snap.sweeps, snap.sweeps_total),
                markup.redundant(snap))  # fmt: skip

    def read():  # the chart thread from here on
        return analysis.runs(location, project=PROJECT, columns=figures.CHART_COLUMNS)

    def cumulative():
        with debug_mode(False):  # as the dashboard draws it (widgets.drawing)
            return charts.to_svg(charts.cumulative_emissions(df, max_points=board.max_points), validate=False)

    def per_sweep():
        with debug_mode(False):
            return charts.to_svg(charts.sweep_energy(df, top=board.top_bars), validate=False)

    results.update({
        "markup": timed(lay_out, reps),
        "read": timed(read, reps),
        "cumulative": timed(cumulative, reps),
        "sweeps": timed(per_sweep, reps),
    })  # fmt: skip
    results["sizes"] = {"markup": sum(len(part) for part in lay_out()), "cumulative": len(cumulative()),
                        "sweeps": len(per_sweep())}  # fmt: skip
    results.update(tradeoffs(location, reps, board))
    results["shown"] = {"sweeps": len(snap.sweeps), "sweeps_total": snap.sweeps_total,
                        "redundant_total": snap.redundant_total,
                        "notebook_runs": snap.scope("notebook").facts["totals"]["runs"]}  # fmt: skip
    board.close()
    return results


def tradeoffs(location: str, reps: int, board) -> dict:
    """Results against energy (issue 17), on the chart thread: the project as generated, whose runs
    logged no metric; then, once every ok run of its three costliest sweeps has logged an accuracy
    (seeded), reading their trade-offs, drawing their charts, and the whole dashboard until its
    charts are shown. Last, as it writes to the registry."""
    import random

    from altair.utils.schemapi import debug_mode
    from registry_scale import PROJECT, timed

    from notebook_carbon import charts
    from notebook_carbon.analysis.tradeoffs import sweep_tradeoffs
    from notebook_carbon.registry import Registry
    from notebook_carbon.registry.metrics import log_metrics

    limit = board.top_tradeoffs

    def read(reg):
        return sweep_tradeoffs(reg, PROJECT, points=True, limit=limit)

    with Registry.open(location, read_only=True) as reg:
        found = {"tradeoffs_none": timed(lambda: read(reg), reps)}
    rng = random.Random(17)
    logged = 0
    with Registry.open(location) as reg:
        for sweep in reg.sweeps(PROJECT, params=False)[:limit]:
            names, rows = reg.columns(["id"], project=PROJECT, sweep=sweep.key, statuses=("ok",))
            for run in (row[names.index("id")] for row in rows):
                log_metrics(reg, run, {"val_acc": 0.7 + 0.25 * rng.random(), "loss": rng.random()})
                logged += 1
    with Registry.open(location, read_only=True) as reg:
        weighed = read(reg)
        found["tradeoffs_read"] = timed(lambda: read(reg), reps)

    def draw():
        with debug_mode(False):
            return [charts.to_svg(charts.accuracy_energy(t), validate=False) for t in weighed]

    found["tradeoffs_draw"] = timed(draw, reps)
    builds = []
    for i in range(3 + reps):
        t0 = time.perf_counter()
        shown = build(location)
        drawn(shown)
        if i >= 3:
            builds.append(time.perf_counter() - t0)
        shown.close()
    found["build_drawn_metrics"] = builds
    # a refresh after a metered cell elsewhere: the results' charts are kept, not drawn again
    shown = build(location)
    drawn(shown)
    refreshes = []
    for i in range(3 + reps):
        t0 = time.perf_counter()
        shown.refresh()
        drawn(shown)
        if i >= 3:
            refreshes.append(time.perf_counter() - t0)
    shown.close()
    found["refresh_drawn_metrics"] = refreshes
    found["weighed"] = {"sweeps": len(weighed), "runs": sum(t["runs"] for t in weighed), "logged": logged}
    return found


def report(data: dict, res: dict, colds: list[dict], command: str, reps: int, load: tuple) -> str:
    from report import machine, ms, p90, table, verdict

    def row(label: str, key: str, target: float | None = None) -> str:
        values = res[key]
        med = statistics.median(values)
        judged = f"<= {ms(target, 0)} ms | {verdict(med <= target)}" if target else "- | -"
        return f"| {label} | {ms(med, 0)} | {ms(p90(values), 0)} | {judged} |"

    def cold_row(label: str, key: str, target: float | None = None) -> str:
        values = [c[key] for c in colds]
        med = statistics.median(values)
        judged = f"<= {ms(target, 0)} ms | {verdict(med <= target)}" if target else "- | -"
        return f"| {label} | {ms(med, 0)} | {ms(max(values), 0)} | {judged} |"

    shown, sizes, weighed = res["shown"], res["sizes"], res["weighed"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    packages = ("notebook-carbon", "pandas", "altair", "vl-convert-python", "ipywidgets")
    software = ", ".join(f"{name} {version(name)}" for name in packages)
    warm_table = table("| what | median ms | p90 ms | target | verdict |", [
        row("**refresh after a metered cell, on the kernel's thread** (`refresh()`, as `_after_cell` "
            "calls it)", "kernel", TARGET_KERNEL_S),
        row("refresh after a metered cell, until its charts are shown (the next cell starts no sooner)",
            "drawn", TARGET_DRAWN_S),
        row("`Dashboard(registry, project)`, until it returns", "build", TARGET_KERNEL_S),
        row("`Dashboard(registry, project)`, until its charts are shown", "build_drawn", TARGET_DRAWN_S),
        row("kernel's thread: opening the registry (read-only), as each refresh does", "open"),
        row("kernel's thread: the kept totals of three scopes, sweeps, redundant runs (`figures.snapshot`), "
            "the registry opening included", "fresh"),
        row("`figures.snapshot` on a registry kept open, for comparison", "snapshot"),
        row("of that: the one sweep listing, with the varying parameters of those listed "
            "(`Registry.sweeps(project, params=20)`)", "listing"),
        row("of that: the page of latest runs and how many there are (`Registry.page(project, limit=10)`)", "page"),
        row("kernel's thread: the HTML of totals and tables (`markup`)", "markup"),
        row("chart thread: reading the project's runs (`analysis.runs`, `figures.CHART_COLUMNS`)", "read"),
        row("chart thread: cumulative emissions, 300 steps, built and drawn as SVG", "cumulative"),
        row("chart thread: energy per sweep, 12 bars, built and drawn as SVG", "sweeps"),
        row("chart thread: results against energy, no run having logged a metric (one read finds no "
            "sweep with metrics)", "tradeoffs_none"),
        row(f"chart thread: results against energy, {weighed['sweeps']} sweeps whose {weighed['runs']:,} ok runs "
            "logged a metric: reading them (`sweep_tradeoffs`)", "tradeoffs_read"),
        row(f"chart thread: their {weighed['sweeps']} charts of metric against energy, built and drawn as SVG",
            "tradeoffs_draw"),
        row("`Dashboard(registry, project)` with those metrics, until its charts are shown (the results' "
            "charts drawn)", "build_drawn_metrics", TARGET_DRAWN_S),
        row("a refresh of it, until its charts are shown (the results' charts unchanged: kept, not drawn "
            "again)", "refresh_drawn_metrics", TARGET_DRAWN_S),
    ])  # fmt: skip
    cold_table = table("| first dashboard of a fresh process | median ms | slowest ms | target | verdict |", [
        cold_row("`import notebook_carbon.widgets` (ipywidgets, pandas, SQLAlchemy, the package)", "import"),
        cold_row("first `Dashboard(...)`, until it returns (the first reads)", "first"),
        cold_row("**import and first `Dashboard(...)`, until it returns**", "total", TARGET_FIRST_S),
        cold_row("import and first `Dashboard(...)`, until its charts are shown (altair, the chart "
                 "renderer's start)", "drawn"),
    ])  # fmt: skip
    return "\n".join(
        [
            f"- Command: `{command}`",
            f"- Date: {now}",
            f"- Machine: {machine()}",
            f"- Software: Python {platform.python_version()}, {software}",
            (f"- Load: 1-minute load average {load[0]:.1f} when measuring began, {load[1]:.1f} when it ended "
            "(other processes share the machine: compare figures taken at a similar load)"),
            (
                f"- Project: {data['runs']:,} runs ({shown['sweeps_total']} sweeps, "
                f"{shown['redundant_total']:,} redundant runs; {shown['notebook_runs']:,} in the notebook "
                f"shown), beside {data['neighbour_runs']:,} runs of another project in the same SQLite file"
            ),
            (
                f"- Warm: {reps} timed calls of each after 3 untimed ones, in one process; before each "
                "refresh, one more run recorded in the busiest sweep of the notebook shown, and each "
                "call waits for the previous one's charts. Each phase is timed on its own, so the phases "
                "add up to about the refresh, not exactly. Targets: issue 12's (at 100,000 runs) for "
                "the kernel's thread and the first dashboard; 500 ms for a dashboard with its charts."
            ),
            "",
            warm_table,
            "",
            cold_table,
            "",
            (
                f"What the front end receives per refresh: {sizes['markup'] / 1e3:.0f} kB of HTML for the "
                f"totals and tables ({shown['sweeps']} of {shown['sweeps_total']} sweeps listed, the latest "
                f"20 of {shown['redundant_total']:,} redundant runs), and {sizes['cumulative'] / 1e3:.0f} kB "
                f"and {sizes['sweeps'] / 1e3:.0f} kB of SVG for the two charts."
            ),
        ]
    )


def write(text: str) -> None:
    doc = DOC.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(doc):
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} section to replace")
    DOC.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", doc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs in the project (default 10,000)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; write no doc")
    parser.add_argument("--child", nargs=2, metavar=("REGISTRY", "PROJECT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from registry_scale import fill

    cfg = dict(QUICK if args.quick else FULL)
    cfg["runs"] = args.runs or cfg["runs"]
    command = " ".join(["python benchmarks/dashboard.py", *sys.argv[1:]])
    tmp = Path(tempfile.mkdtemp(prefix="nc-dashboard-bench-"))
    try:
        location = str(tmp / "registry.sqlite")
        print(f"writing a registry of {cfg['runs']:,} runs ...", file=sys.stderr)
        data = fill(location, cfg["runs"])
        print("measuring ...", file=sys.stderr)
        began = os.getloadavg()[0]
        colds = cold(location, cfg["cold"])
        res = warm(location, cfg["reps"])
        load = (began, os.getloadavg()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(data, res, colds, command, cfg["reps"], load)
    if args.quick or cfg["runs"] != FULL["runs"]:
        print(text)
        return
    write(text)
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
