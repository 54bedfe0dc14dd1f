"""The notebook dashboard of a 10,000-run project: building it, refreshing it, and where the time goes.

    python benchmarks/dashboard.py                # 10,000 runs; rewrites the figures in docs/dashboard.md
    python benchmarks/dashboard.py --quick        # fewer repetitions: prints the report, writes no file
    python benchmarks/dashboard.py --runs 50000   # another size: prints the report, writes no file

The registry is the one ``registry_scale.py`` generates (seeded: sweeps of uneven size, named and
automatic, random-search params, failed, crashed and redundant runs, and a neighbour project in the
same file), written to a temporary directory; the settings are the defaults (your config file
and environment are not read). The dashboard is built as ``%carbon dashboard``
builds it, for the project and one of its notebooks, with its default limits (20 sweeps and 20
redundant runs listed, 300 steps of the cumulative line, 12 sweep bars). A fresh process per cold
trial measures the first dashboard of a kernel, imports and the chart renderer's start included.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

# benchmarks/ is on sys.path: this file runs as a script. Imported where used, so that a cold
# trial's process imports nothing of ours before it starts its clock.

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "dashboard.md"
BEGIN, END = "<!-- benchmark begins -->", "<!-- benchmark ends -->"
NOTEBOOK = "vit.ipynb"  # one of the generated project's notebooks
TARGET_S = 0.500
FULL = {"runs": 10_000, "reps": 25, "cold": 5}
QUICK = {"runs": 10_000, "reps": 5, "cold": 2}


def child(location: str, project: str) -> None:
    """One cold trial, in a fresh process: import the widgets, then build the first dashboard."""
    t0 = time.perf_counter()
    from notebook_carbon.settings import Settings
    from notebook_carbon.widgets import Dashboard

    t1 = time.perf_counter()
    Dashboard(location, project, notebook=NOTEBOOK, settings=Settings()).close()
    t2 = time.perf_counter()
    print(json.dumps({"import": t1 - t0, "first": t2 - t1, "total": t2 - t0}))


def cold(location: str, trials: int) -> list[dict]:
    from registry_scale import PROJECT

    results = []
    for _ in range(trials):
        done = subprocess.run(
            [sys.executable, __file__, "--child", location, PROJECT],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def warm(location: str, reps: int) -> dict[str, list[float]]:
    """Seconds per build, per refresh, and per phase of a refresh, each timed on its own."""
    from altair.utils.schemapi import debug_mode
    from registry_scale import PROJECT, timed

    from notebook_carbon import analysis, charts
    from notebook_carbon.settings import Settings
    from notebook_carbon.widgets import Dashboard, figures, markup

    def build() -> Dashboard:
        return Dashboard(location, PROJECT, notebook=NOTEBOOK, settings=Settings())

    board = build()
    df = analysis.runs(location, project=PROJECT, columns=figures.READ_COLUMNS)
    snap = board.snapshot

    def read():
        return analysis.runs(location, project=PROJECT, columns=figures.READ_COLUMNS)

    def compute():
        return figures.snapshot(df, project=PROJECT, notebook=NOTEBOOK, kernel=board.kernel,
                                settings=board.settings, registry=location, **board.limits)  # fmt: skip

    def cumulative():
        with debug_mode(False):  # as the dashboard builds it
            chart = charts.cumulative_emissions(df, max_points=board.max_points)
        return charts.to_svg(chart)

    def per_sweep():
        with debug_mode(False):
            chart = charts.sweep_energy(df, top=board.top_bars)
        return charts.to_svg(chart)

    def lay_out():
        return (markup.header(snap), markup.totals(snap), markup.sweeps(snap.sweeps, snap.sweeps_total),
                markup.redundant(snap))  # fmt: skip

    results = {
        "build": timed(lambda: build().close(), reps),
        "refresh": timed(board.refresh, reps),
        "read": timed(read, reps),
        "figures": timed(compute, reps),
        "cumulative": timed(cumulative, reps),
        "sweeps": timed(per_sweep, reps),
        "markup": timed(lay_out, reps),
    }
    results["sizes"] = {"markup": sum(len(part) for part in lay_out()), "cumulative": len(cumulative()),
                        "sweeps": len(per_sweep())}  # fmt: skip
    results["shown"] = {"sweeps": len(snap.sweeps), "sweeps_total": snap.sweeps_total,
                        "redundant_total": snap.redundant_total,
                        "notebook_runs": snap.scope("notebook").facts["totals"]["runs"]}  # fmt: skip
    board.close()
    return results


def report(data: dict, res: dict, colds: list[dict], command: str, reps: int, load: tuple) -> str:
    from report import machine, ms, p90, table, verdict

    def row(label: str, key: str, target: float | None = None) -> str:
        values = res[key]
        med = statistics.median(values)
        judged = f"<= {ms(target, 0)} ms | {verdict(med <= target)}" if target else "- | -"
        return f"| {label} | {ms(med, 0)} | {ms(p90(values), 0)} | {judged} |"

    def cold_row(label: str, key: str) -> str:
        values = [c[key] for c in colds]
        return f"| {label} | {ms(statistics.median(values), 0)} | {ms(max(values), 0)} |"

    shown, sizes = res["shown"], res["sizes"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    packages = ("notebook-carbon", "pandas", "altair", "vl-convert-python", "ipywidgets")
    software = ", ".join(f"{name} {version(name)}" for name in packages)
    warm_table = table("| what | median ms | p90 ms | target | verdict |", [
        row("**`Dashboard(registry, project)`: read, compute, draw, lay out**", "build", TARGET_S),
        row("`Dashboard.refresh()` (what a metered cell triggers)", "refresh", TARGET_S),
        row("of which: reading the project's runs (`analysis.runs`)", "read"),
        row("of which: totals of three scopes, sweeps, redundant runs (`figures.snapshot`)", "figures"),
        row("of which: cumulative emissions, 300 steps, built and drawn as SVG", "cumulative"),
        row("of which: energy per sweep, 12 bars, built and drawn as SVG", "sweeps"),
        row("of which: the HTML of totals and tables (`markup`)", "markup"),
    ])  # fmt: skip
    cold_table = table("| first dashboard of a fresh process | median ms | slowest ms |", [
        cold_row("`import notebook_carbon.widgets` (ipywidgets, pandas, SQLAlchemy, the package)", "import"),
        cold_row("first `Dashboard(...)` (altair, the chart renderer's start, first reads)", "first"),
        cold_row("total", "total"),
    ])  # fmt: skip
    return "\n".join(
        [
            f"- Command: `{command}`",
            f"- Date: {now}",
            f"- Machine: {machine()}",
            f"- Software: Python {platform.python_version()}, {software}",
            f"- Load: 1-minute load average {load[0]:.1f} when measuring began, {load[1]:.1f} when it ended "
            "(other processes share the machine: compare figures taken at a similar load)",
            (
                f"- Project: {data['runs']:,} runs ({shown['sweeps_total']} sweeps, "
                f"{shown['redundant_total']:,} redundant runs; {shown['notebook_runs']:,} in the notebook "
                f"shown), beside {data['neighbour_runs']:,} runs of another project in the same SQLite file"
            ),
            (
                f"- Warm: {reps} timed calls of each after 3 untimed ones, in one process. Each phase is "
                "timed on its own, so the phases add up to about the refresh, not exactly."
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
