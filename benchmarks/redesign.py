"""Issue 12's eight figures (the upper half redesigned), before and after, on one machine in one run.

    python benchmarks/redesign.py --baseline <worktree of 7cb8e61>          # full run (about 12 min);
                                                                            # writes its section of docs/performance.md
    python benchmarks/redesign.py --quick --baseline <worktree of 7cb8e61>  # smoke run: 10,000 runs, few
                                                                            # repetitions; prints, writes nothing
    python benchmarks/redesign.py                                           # today's code only; prints

``--new <worktree of HEAD>`` measures that checkout as today's code instead of this one: others'
edits to this checkout cannot then change the code half-way through a run.

``--baseline`` is a checkout of the code before the redesign (a git worktree of commit 7cb8e61, whose
registry is schema v4). Every measurement runs in a child process of this script whose
``PYTHONPATH`` is either that checkout or this one, in the same virtual environment, so both
codes are timed on the same machine, in the same run, alternating wherever a figure takes more
than one process. The measurements are the other benchmarks' own functions, imported, not copied:

1. the refresh after a metered cell, on the kernel's thread: ``dashboard.after_cells`` (one more run
   recorded, then ``Dashboard.refresh()``: before the redesign it also draws the charts; since,
   it draws them on a thread of its own, as ``Dashboard._after_cell`` calls it);
2. the first dashboard in a fresh kernel: ``dashboard.cold_trial`` (a fresh process: import,
   ``Dashboard(...)`` until it returns, and until its charts are drawn);
3. ``notebook-carbon statement`` end to end: the command in a fresh process, and ``cli.main`` in a
   warm one (as ``registry_scale.py`` times the statement);
4. and 5. the server's summary just after a run (p95) and its first summary after it starts:
   ``server_summary.measure``, on a copy of the registry as generated, per server start;
6. ``%carbon sweeps`` with nothing cached: before, ``list_sweeps(registry, project)`` after its
   cache is cleared (``registry_scale.clear_cache`` of the baseline); since, ``Registry.sweeps``,
   which keeps no cache;
7. the redundancy lookup before a cell: ``SqliteLookup.find_redundant``, a hit and a miss;
8. the per-cell overhead, the run committed: ``run.per_cell`` (a real IPython shell, against a
   plain cell and codecarbon), in a fresh registry as ``run.py`` measures it.

The registries are generated once per code by ``registry_scale.fill`` (each code's own: the
baseline's writes schema v4 through the old code, today's its own), from the same seed, and checked to
hold the same runs; a copy of the old one is upgraded by today's code, to time the migration.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

from report import machine, table, verdict, write_section  # benchmarks/ is on sys.path: a script

# The rest of ours (and every module of the package) is imported in the child processes only, so
# that each imports the code its PYTHONPATH names.

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- redesign begins -->", "<!-- redesign ends -->"
BASELINE_COMMIT = "7cb8e61"
SIDES = ("old", "new")
FULL = {"runs": 100_000, "cell_chunks": 4, "cell_rounds": 250, "cell_warmup": 20, "warm_rounds": 2,
        "lookups": 1000, "sweeps": 5, "statements": 4, "refreshes": 5, "parts": 10, "cold": 5,
        "processes": 5, "servers": 3, "server_reps": 30}  # fmt: skip
QUICK = {"runs": 10_000, "cell_chunks": 1, "cell_rounds": 30, "cell_warmup": 5, "warm_rounds": 1,
         "lookups": 100, "sweeps": 2, "statements": 2, "refreshes": 2, "parts": 3, "cold": 1,
         "processes": 1, "servers": 1, "server_reps": 10}  # fmt: skip
NO_WORSE = 0.05
""""No worse" for the per-cell overhead: today's added time at most this much above the old one's,
the resolution of two alternating measurements on a shared machine (the chunks show it)."""

# Issue 12's table: the figure at the commit before the redesign, measured by the issue's author
# (100,000 runs, SQLite, the 2-core VM), and the target; seconds.
ISSUE = {
    "refresh": ("2.7 s", 0.100),
    "first": ("5.2 s", 1.5),
    "statement": ("1.8-2.0 s", 1.0),
    "server_after": ("55 ms", 0.050),
    "server_first": ("2.3 s", 0.200),
    "sweeps": ("585-891 ms", 0.200),
    "lookup": ("0.014 ms", 0.001),
    "cell": ("+2.19 ms (codecarbon's tracker 3.1x that)", None),
}


# -- the children: each runs one code's measurements ---------------------------------------------


def baseline_scale(baseline: str):
    """The baseline's own ``registry_scale`` module (its generator, ``clear_cache``, ``list_sweeps``),
    under a name of its own beside today's."""
    name = "baseline_registry_scale"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(baseline) / "benchmarks" / "registry_scale.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def child_fill(args: dict) -> dict:
    scale = baseline_scale(args["baseline"]) if args["side"] == "old" else importlib.import_module("registry_scale")
    t0 = time.perf_counter()
    data = scale.fill(args["registry"], args["runs"])
    seconds = time.perf_counter() - t0
    hit = data["hit"]
    keys = ("code_fingerprint", "inputs_fingerprint", "params_fingerprint", "redundant_of")
    schema = importlib.import_module("notebook_carbon.registry.schema")
    return {"seconds": seconds, "runs": data["runs"], "neighbour_runs": data["neighbour_runs"],
            "redundant": data["redundant"], "hit": {k: hit[k] for k in keys},
            "schema": schema.SCHEMA_VERSION}  # fmt: skip


def child_migrate(args: dict) -> dict:
    """Today's code opens a copy of the old registry: the upgrade to its schema, timed."""
    from registry_scale import PROJECT, timed

    from notebook_carbon.registry import Registry

    t0 = time.perf_counter()
    reg = Registry.open(args["registry"])
    seconds = time.perf_counter() - t0
    try:
        totals = reg.totals(PROJECT)
        return {
            "seconds": seconds,
            "version": reg.schema_version(),
            "totals": {"runs": totals.runs, "energy_j": totals.energy_j},
            "sweeps": timed(lambda: reg.sweeps(PROJECT), args["reps"], warmup=1),
            "project_totals": timed(lambda: reg.totals(PROJECT), args["reps"], warmup=1),
        }
    finally:
        reg.close()


def child_warm(args: dict) -> dict:
    """In one process: the lookup, the sweeps with nothing cached, the statement in process, and
    the dashboard's refresh after metered cells."""
    import dashboard
    from registry_scale import PROJECT, quiet, timed

    from notebook_carbon import cli
    from notebook_carbon.registry import Registry
    from notebook_carbon.registry.lookup import SqliteLookup

    location, hit, old = args["registry"], args["hit"], args["side"] == "old"
    found: dict = {}
    hit_keys = {"project": PROJECT, **{k: hit[k] for k in ("code_fingerprint", "inputs_fingerprint",
                                                            "params_fingerprint")}}  # fmt: skip
    miss_keys = {**hit_keys, "params_fingerprint": "0" * 32}  # the same cell with new params
    lookup = SqliteLookup(Path(location))
    earlier = lookup.find_redundant(**hit_keys)
    if earlier is None or earlier["id"] != hit["redundant_of"] or lookup.find_redundant(**miss_keys) is not None:
        raise RuntimeError(f"the lookup found {earlier}, expected run {hit['redundant_of']}")
    found["lookup_hit"] = timed(lambda: lookup.find_redundant(**hit_keys), args["lookups"], warmup=20)
    found["lookup_miss"] = timed(lambda: lookup.find_redundant(**miss_keys), args["lookups"], warmup=20)
    lookup.close()

    with Registry.open(location) as reg:
        if old:  # before the redesign: the sweep summaries cached in the database, cleared before each call
            scale = baseline_scale(args["baseline"])
            totals = scale.project_totals(reg, PROJECT)
            listing, clear = (lambda: scale.list_sweeps(reg, PROJECT)), (lambda: scale.clear_cache(reg))
        else:  # the totals the database keeps: nothing cached to clear
            totals = reg.totals(PROJECT)
            listing, clear = (lambda: reg.sweeps(PROJECT)), None
        found["totals"] = {"runs": totals.runs, "energy_j": totals.energy_j}
        found["sweeps"] = timed(listing, args["sweeps"], warmup=1, before=clear)
        if clear is not None:
            clear()
        found["sweeps_listed"] = len(listing())

    command = ["statement", "--registry", location, "--project", PROJECT]
    found["statement"] = timed(lambda: quiet(cli.main, command), args["statements"], warmup=1)
    found.update(dashboard.after_cells(location, args["refreshes"]))  # "kernel", "drawn"
    if not old:
        found["parts"] = dashboard.kernel_parts(location, args["parts"])
    return found


def child_server(args: dict) -> dict:
    import dashboard
    import server_summary

    if args["side"] == "old":  # before the redesign the registry had no Registry.sweeps: read it in SQL
        server_summary.largest_sweep = lambda reg: dashboard.busiest_sweep(reg.where)
    return server_summary.measure(args["registry"], args["reps"], Path(args["workdir"]))


def child_per_cell(args: dict) -> dict:
    """``run.per_cell``, and the CPU time of the registry's writes (on the writer's thread: the
    cell waits for them, its summary line comes once its run is committed)."""
    import run

    from notebook_carbon.registry import store

    writes: list[float] = []

    def counted(method):
        def write(self, *given, **options):
            started = time.thread_time()
            try:
                return method(self, *given, **options)
            finally:
                writes.append(time.thread_time() - started)

        return write

    for name in ("start_run", "finish_run", "record_run"):
        setattr(store.Registry, name, counted(getattr(store.Registry, name)))
    found = run.per_cell(args["rounds"], args["warmup"], Path(args["workdir"]))
    found["write_cpu"] = sum(writes) / (args["rounds"] + args["warmup"])  # per metered cell
    return found


CHILDREN = {"fill": child_fill, "migrate": child_migrate, "warm": child_warm, "server": child_server,
            "per_cell": child_per_cell}  # fmt: skip


# -- the parent: runs the children, alternating the codes ----------------------------------------


class Codes:
    """Where each code lives and the environment of a child process that runs it."""

    def __init__(self, baseline: Path | None, tmp: Path, new: Path = ROOT) -> None:
        self.roots = {"new": new, **({"old": baseline} if baseline else {})}
        self.sides = [side for side in SIDES if side in self.roots]
        self.tmp, self.count = tmp, 0

    def env(self, side: str) -> tuple[dict[str, str], Path]:
        """An environment that reads no config file of the user's, imports ``side``'s code, and a
        directory of its own for the child."""
        from run import isolated_env

        self.count += 1
        workdir = self.tmp / f"child-{self.count}-{side}"
        env = isolated_env(workdir)
        env["PYTHONPATH"] = str(self.roots[side])
        env.pop("PYTHONSTARTUP", None)
        return env, workdir

    def order(self, i: int) -> list[str]:
        """The codes in turn, which one first alternating with ``i``."""
        return self.sides[i % len(self.sides):] + self.sides[: i % len(self.sides)]

    def child(self, side: str, task: str, **args) -> dict:
        env, workdir = self.env(side)
        args = {"side": side, "baseline": str(self.roots.get("old", "")), "workdir": str(workdir), **args}
        done = subprocess.run([sys.executable, __file__, "--child", task, json.dumps(args)],
                              env=env, cwd=workdir, capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"{task} ({side} code) failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def copy_registry(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def statement_process(codes: Codes, side: str, registry: Path) -> float:
    """``notebook-carbon statement`` in a fresh process, wall clock from start to exit."""
    from registry_scale import PROJECT

    env, workdir = codes.env(side)
    script = Path(sys.executable).with_name("notebook-carbon")
    command = [str(script), "statement", "--registry", str(registry), "--project", PROJECT]
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode or "Energy" not in done.stdout:
        raise RuntimeError(f"notebook-carbon statement ({side} code) failed:\n{done.stderr[-3000:]}")
    return seconds


def measure(codes: Codes, cfg: dict) -> dict:
    import dashboard

    tmp, res = codes.tmp, {"fill": {}, "warm": {s: [] for s in codes.sides}}
    registries, pristine = {}, {}
    for side in codes.sides:
        say(f"generating {cfg['runs']:,} runs with the {side} code ...")
        registries[side] = tmp / f"{side}.sqlite"
        res["fill"][side] = codes.child(side, "fill", registry=str(registries[side]), runs=cfg["runs"])
        pristine[side] = copy_registry(registries[side], tmp / f"{side}-as-generated.sqlite")
    hits = {json.dumps(res["fill"][side]["hit"], sort_keys=True) for side in codes.sides}
    if len(hits) != 1:
        raise RuntimeError(f"the two generators made different registries: {hits}")
    if "old" in codes.sides:
        say("upgrading a copy of the old registry with today's code ...")
        upgraded = copy_registry(pristine["old"], tmp / "upgraded.sqlite")
        res["migrate"] = codes.child("new", "migrate", registry=str(upgraded), reps=cfg["parts"])
        upgraded.unlink()

    say(f"per-cell overhead: {cfg['cell_chunks']} x {cfg['cell_rounds']} rounds per code ...")
    res["cell"] = {side: [] for side in codes.sides}
    for i in range(cfg["cell_chunks"]):
        for side in codes.order(i):
            res["cell"][side].append(codes.child(side, "per_cell", rounds=cfg["cell_rounds"],
                                                 warmup=cfg["cell_warmup"]))  # fmt: skip

    for i in range(cfg["warm_rounds"]):
        for side in codes.order(i):
            say(f"warm process {i + 1}/{cfg['warm_rounds']}, {side} code: lookup, sweeps, statement, dashboard ...")
            keys = ("lookups", "sweeps", "statements", "refreshes", "parts")
            res["warm"][side].append(codes.child(side, "warm", registry=str(registries[side]),
                                                 hit=res["fill"][side]["hit"], **{k: cfg[k] for k in keys}))  # fmt: skip
    totals = {side: res["warm"][side][0]["totals"] for side in codes.sides}
    if "migrate" in res:
        totals["upgraded"] = res["migrate"]["totals"]
    runs = {t["runs"] for t in totals.values()}
    energy = [t["energy_j"] for t in totals.values()]
    if len(runs) != 1 or max(energy) - min(energy) > 1e-6 * max(energy):
        raise RuntimeError(f"the registries do not hold the same runs: {totals}")

    say(f"first dashboard in a fresh process: {cfg['cold']} trials per code, after one uncounted ...")
    res["cold"] = {side: [] for side in codes.sides}
    for i in range(cfg["cold"] + 1):
        for side in codes.order(i):
            env, _ = codes.env(side)
            trial = dashboard.cold_trial(str(registries[side]), env)
            if i:  # the first trial of each warms the OS file cache
                res["cold"][side].append(trial)

    say(f"notebook-carbon statement in a fresh process: {cfg['processes']} per code, after one uncounted ...")
    res["process"] = {side: [] for side in codes.sides}
    for i in range(cfg["processes"] + 1):
        for side in codes.order(i):
            seconds = statement_process(codes, side, registries[side])
            if i:
                res["process"][side].append(seconds)

    say(f"server: {cfg['servers']} starts per code, on a copy of the registry as generated ...")
    res["server"] = {side: [] for side in codes.sides}
    for i in range(cfg["servers"]):
        for side in codes.order(i):
            trial = copy_registry(pristine[side], tmp / f"server-{side}.sqlite")
            res["server"][side].append(codes.child(side, "server", registry=str(trial), reps=cfg["server_reps"]))
            for leftover in tmp.glob(f"server-{side}.sqlite*"):
                leftover.unlink()
    return res


# -- the report ----------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94] if len(values) > 1 else values[0]


def paired(cell: dict, key: str) -> float:
    """Median over rounds of the variant's time minus the plain cell's of the same round."""
    return statistics.median(v - p for v, p in zip(cell[key], cell["plain"]))


def figures(res: dict, sides: list[str]) -> dict[str, dict[str, float]]:
    """Each figure per code, in seconds (a dict per figure: side -> value)."""
    out: dict[str, dict[str, float]] = {}

    def warm(key: str, pick=statistics.median) -> dict[str, float]:
        return {s: pick([t for w in res["warm"][s] for t in w[key]]) for s in sides}

    out["refresh"] = warm("kernel")
    out["refresh_drawn"] = warm("drawn")
    out["first"] = {s: statistics.median(c["total"] for c in res["cold"][s]) for s in sides}
    out["first_drawn"] = {s: statistics.median(c["drawn"] for c in res["cold"][s]) for s in sides}
    out["statement"] = {s: statistics.median(res["process"][s]) for s in sides}
    out["statement_warm"] = warm("statement")
    after = {s: [t for trial in res["server"][s] for times in trial["after"].values() for t in times] for s in sides}
    out["server_after"] = {s: p95(after[s]) for s in sides}
    out["server_after_median"] = {s: statistics.median(after[s]) for s in sides}
    out["server_first"] = {s: statistics.median(t["first"][0] for t in res["server"][s]) for s in sides}
    out["server_first_max"] = {s: max(t["first"][0] for t in res["server"][s]) for s in sides}
    out["sweeps"] = warm("sweeps")
    out["lookup"] = warm("lookup_hit")
    out["lookup_miss"] = warm("lookup_miss")
    pooled = {s: {k: [v for chunk in res["cell"][s] for v in chunk[k]] for k in
                  ("plain", "carbon_cell", "carbon_durable", "codecarbon")} for s in sides}  # fmt: skip
    out["cell"] = {s: paired(pooled[s], "carbon_cell") for s in sides}
    out["cell_durable"] = {s: paired(pooled[s], "carbon_durable") for s in sides}
    out["codecarbon"] = {s: paired(pooled[s], "codecarbon") for s in sides}
    out["cell_chunks"] = {s: [paired(chunk, "carbon_cell") for chunk in res["cell"][s]] for s in sides}
    out["write_cpu"] = {s: statistics.median(chunk["write_cpu"] for chunk in res["cell"][s]) for s in sides}
    return out


def fmt(seconds: float) -> str:
    """Milliseconds below 10 s, with the digits a reader needs."""
    value = seconds * 1e3
    if value < 0.1:
        return f"{value:.3f} ms"
    if value < 10:
        return f"{value:.2f} ms"
    if value < 10_000:
        return f"{value:,.0f} ms"
    return f"{seconds:.1f} s"


def report(res: dict, cfg: dict, command: str, codes: Codes, load: tuple[float, float]) -> str:
    sides = codes.sides
    fig = figures(res, sides)
    both = "old" in sides

    def cells(key: str) -> tuple[str, str, str]:
        old = fmt(fig[key]["old"]) if both else "-"
        ratio = f"{fig[key]['new'] / fig[key]['old']:.2f}" if both and fig[key]["old"] else "-"
        return old, fmt(fig[key]["new"]), ratio

    misses: list[str] = []

    def row(label: str, key: str, issue: str | None = None, name: str | None = None, quote: bool = True) -> str:
        """A figure's row, judged against issue 12's target for ``issue`` (None: for reference);
        ``name``: what a miss is called below the table (default: the label); ``quote``: show the
        issue's figure (once per figure)."""
        today, target = ISSUE[issue] if issue else ("", None)
        today = today if quote else ""
        old, new, ratio = cells(key)
        if target is None:
            return f"| {label} | {today or '-'} | {old} | {new} | {ratio} | - | - |"
        ok = fig[key]["new"] <= target
        if not ok:
            misses.append(f"{name or label.replace('**', '')}: {fmt(fig[key]['new'])}, target <= {fmt(target)} "
                          f"({fmt(fig[key]['new'] - target)} over, {fig[key]['new'] / target:.2f}x the target)")  # fmt: skip
        return f"| {label} | {today or '-'} | {old} | {new} | {ratio} | <= {fmt(target)} | {verdict(ok)} |"

    cell_row = "| **per-cell overhead, committed** (added, paired median) | " + ISSUE["cell"][0] + " | "
    if both:
        old_cell, new_cell = fig["cell"]["old"], fig["cell"]["new"]
        ok = new_cell <= old_cell * (1 + NO_WORSE)
        if not ok:
            misses.append(f"per-cell overhead: +{fmt(new_cell)} against +{fmt(old_cell)} before "
                          f"({(new_cell / old_cell - 1) * 100:.0f} % more)")  # fmt: skip
        cell_row += (f"+{fmt(old_cell)}; codecarbon {fig['codecarbon']['old'] / old_cell:.1f}x | +{fmt(new_cell)}; "
                     f"codecarbon {fig['codecarbon']['new'] / new_cell:.1f}x | {new_cell / old_cell:.2f} | "
                     f"no worse (<= old + {NO_WORSE:.0%}) | {verdict(ok)} |")  # fmt: skip
    else:
        cell_row += f"- | +{fmt(fig['cell']['new'])} | - | no worse | - |"
    rows = [
        row("**`Dashboard.refresh()` after a metered cell, on the kernel's thread**", "refresh", "refresh"),
        row("&nbsp;&nbsp;the same refresh, until its charts are shown", "refresh_drawn"),
        row("**first dashboard in a fresh kernel** (import, `Dashboard(...)` returns)", "first", "first"),
        row("&nbsp;&nbsp;the same, until its charts are shown", "first_drawn"),
        row("**`notebook-carbon statement` end to end**, from the file to the text (`cli.main` in a "
            "process that has run it once, as the issue's figure was taken)", "statement_warm", "statement"),
        row("&nbsp;&nbsp;the same command in a fresh process (Python's start and the imports included)",
            "statement", "statement", name="`notebook-carbon statement` in a fresh process", quote=False),
        row("**server summary just after a run, p95**", "server_after", "server_after"),
        row("&nbsp;&nbsp;the same, median", "server_after_median"),
        row("**server's first summary after it starts** (median of the starts)", "server_first", "server_first"),
        row("&nbsp;&nbsp;the same, slowest start", "server_first_max"),
        row("**`%carbon sweeps` with nothing cached**", "sweeps", "sweeps"),
        row("**redundancy lookup before a cell** (`SqliteLookup`, a hit)", "lookup", "lookup"),
        row("&nbsp;&nbsp;the same, a miss", "lookup_miss", "lookup", name="redundancy lookup, a miss", quote=False),
        cell_row,
        row("&nbsp;&nbsp;the cell and `writer.flush()` (added, paired median)", "cell_durable"),
        row("&nbsp;&nbsp;CPU time of the cell's registry write, on the writer's thread (the cell waits for it)",
            "write_cpu"),
    ]
    header = "| figure (100,000 runs, SQLite) | issue's \"today\" | old, this run | new, this run | new/old | target | verdict |"
    if cfg["runs"] != 100_000:
        header = header.replace("100,000", f"{cfg['runs']:,}")
    figures_table = table(header, rows)
    return assemble(res, cfg, command, codes, load, fig, figures_table, misses)


def wrapped(text: str) -> str:
    """Paragraphs and list items filled to 100 columns, as the rest of the docs; tables and headings
    as they are."""
    lines = []
    for line in text.split("\n"):
        if not line or line.startswith(("|", "#")) or len(line) <= 100:
            lines.append(line)
        elif line.startswith("- "):
            lines.append(textwrap.fill(line, 100, subsequent_indent="  ", break_on_hyphens=False,
                                       break_long_words=False))  # fmt: skip
        else:
            lines.append(textwrap.fill(line, 100, break_on_hyphens=False, break_long_words=False))
    return "\n".join(lines)


def commit_of(path: Path) -> str:
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def assemble(res, cfg, command, codes, load, fig, figures_table, misses) -> str:
    sides = codes.sides
    both = "old" in sides
    fill = res["fill"]
    now = datetime.datetime.fromisoformat(res["measured_at"])
    software = ", ".join(f"{p} {version(p)}" for p in ("sqlalchemy", "pandas", "ipython", "jupyter_server", "codecarbon"))
    warm_new = res["warm"]["new"]
    parts = {k: statistics.median(t for w in warm_new for t in w["parts"][k])
             for k in ("open", "fresh", "snapshot", "listing")}  # fmt: skip
    def per_process(key: str) -> str:
        return "; ".join(f"{side}: " + ", ".join(fmt(statistics.median(w[key])) for w in res["warm"][side])
                         for side in sides)  # fmt: skip

    def each_process() -> str:
        return "; ".join(f"{side}: " + ", ".join(fmt(t) for t in res["process"][side]) for side in sides)

    chunks = "; ".join(f"{side}: " + ", ".join(f"+{fmt(v)}" for v in fig["cell_chunks"][side]) for side in sides)
    n_after = sum(len(times) for trial in res["server"]["new"] for times in trial["after"].values())
    lines = [
        "## Issue 12: the upper half before and after its redesign",
        "",
        f"- Command: `{command}`",
        f"- Date: {now:%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Software: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {software}",
        (f"- Load: 1-minute load average {load[0]:.1f} when measuring began, {load[1]:.1f} when it ended "
        "(the machine is shared: other processes ran beside this one)"),
        (f"- Code: old = commit {commit_of(codes.roots['old']) if both else BASELINE_COMMIT}, before the redesign "
        f"(registry schema v4); new = commit {commit_of(codes.roots['new'])} (schema v{res['fill']['new']['schema']})"),
        "",
        ("Issue 12's eight figures, for the code before the redesign (\"old\") and today's (\"new\"), both "
        "measured by `benchmarks/redesign.py` in the same run on the same machine: each measurement "
        "is a child process whose `PYTHONPATH` names one code or the other, in the same environment, "
        "the two codes alternating. The issue's \"today\" column is the figure its author measured at "
        "the old commit on the same kind of VM, quoted for reference; compare old and new within this "
        "table, not with it. A figure close to its target can land on either side of it from one run "
        "to the next on this shared machine: the per-process values below show the spread within "
        "this run."),
        "",
        (f"The registry: {fill['new']['runs']:,} runs of project `vision` ({fill['new']['redundant']:,} "
        f"redundant) and {fill['new']['neighbour_runs']:,} of a neighbour project, from "
        "`registry_scale.py`'s seeded generator, written once per code by its own `fill` (the old one "
        f"writes schema v4 through the old code, today's v{res['fill']['new']['schema']}); both hold the same runs (the benchmark "
        "checks the project's run count and energy)."),
        "",
        figures_table,
        "",
    ]
    if both:
        mig = res["migrate"]
        lines += [
            (f"Upgrading the old {fill['old']['runs']:,}-run registry to schema v{mig['version']} (today's code opening a "
            f"copy of it, once): {mig['seconds']:.1f} s. Read afterwards, the upgraded registry lists its "
            f"sweeps in {fmt(statistics.median(mig['sweeps']))} and totals the project in "
            f"{fmt(statistics.median(mig['project_totals']))}, as a registry written by today's code does. "
            f"Generating the registries took {fill['old']['seconds']:.0f} s (old) and {fill['new']['seconds']:.0f} s "
            "(new: the triggers keep the totals as the rows go in)."),
            "",
        ]
    lines += [
        "How each figure is taken (medians unless the figure says otherwise):",
        "",
        (f"- The refresh after a metered cell: one more finished run recorded in the busiest sweep of "
        "the notebook shown, by the process of the dashboard, then `Dashboard.refresh()` on the "
        "kernel's thread, as `Dashboard._after_cell` calls it (today: `wait=False`, the charts drawn "
        "on their own thread, waited for before the next cell; old: the charts drawn before it "
        f"returns). {cfg['warm_rounds'] * cfg['refreshes']} refreshes per code after uncounted ones, "
        f"in {cfg['warm_rounds']} processes per code (medians per process: {per_process('kernel')}). "
        "The second row matters too: a dashboard that "
        "follows the cells finishes its charts before the next cell starts (`pre_run_cell`), so a "
        "cell run straight after a metered one starts that long after the refresh began."),
        (f"- The first dashboard: {cfg['cold']} fresh processes per code (after one uncounted each): "
        "`import notebook_carbon.widgets`, then `Dashboard(registry, project, notebook=...)` as "
        "`%carbon dashboard` makes it (today: `wait=False`) until it "
        "returns; the second row until its charts are drawn (the same for the old code, which drew "
        "them before returning)."),
        (f"- The statement: `notebook-carbon statement --registry ... --project vision` (Markdown) in "
        f"{cfg['processes']} fresh processes per code ({each_process()}), wall clock to exit, "
        "Python's start and the "
        f"imports included; the second row is the same command through `cli.main` in a process that "
        f"has run it once ({cfg['warm_rounds'] * cfg['statements']} calls per code)."),
        (f"- The server: `server_summary.measure` (a real `jupyter server` with the extension, over "
        f"HTTP), started {cfg['servers']} times per code, each on a fresh copy of the registry as "
        f"generated; the p95 pools the {n_after} summaries each code served just after a run was "
        "recorded."),
        (f"- `%carbon sweeps`: old, `list_sweeps(registry, project)` after its cache table is emptied; "
        f"new, `Registry.sweeps(project)` (with the varying params, as `%carbon sweeps` lists them; "
        f"there is no cache). {cfg['warm_rounds'] * cfg['sweeps']} calls per code."),
        (f"- The lookup: `SqliteLookup.find_redundant`, {cfg['warm_rounds'] * cfg['lookups']:,} calls per "
        "code for a hit and as many for a miss."),
        (f"- The per-cell overhead: `run.py`'s `per_cell` (a real IPython shell, the machine's meters, "
        f"a fresh registry), {cfg['cell_chunks']} processes of {cfg['cell_rounds']} rounds per code, "
        f"alternating; the figure is the median over rounds of a `%%carbon --quiet` cell's time minus "
        f"the plain cell's of the same round, the run committed before the cell returns. Per process: "
        f"{chunks}. \"No worse\" allows {NO_WORSE:.0%} for the noise between processes."),
        "",
    ]
    lines += [
        (f"Where today's refresh spends its time on the kernel's thread (each part timed on its own, "
         f"in the warm processes): the dashboard reads through a registry it opened once, at its first "
         f"refresh ({fmt(parts['open'])} to open one), and keeps open until it is closed: the figures "
         f"(`figures.snapshot`) take {fmt(parts['snapshot'])} on it, against {fmt(parts['fresh'])} on a "
         "registry just opened, whose SQLAlchemy engine has yet to compile its statements and whose "
         "SQLite connection has no page cached. Of those, listing the sweeps once, with the varying "
         f"parameters of the 20 shown (`Registry.sweeps(project, params=20)`), takes "
         f"{fmt(parts['listing'])} (see [performance-registry.md](performance-registry.md#query-plans)); "
         "the rest is the kept totals of three scopes and the redundant runs. Then the HTML, and "
         "starting the chart thread."),
        "",
    ]
    if misses:
        lines += ["**Missed.** " + "; ".join(misses) + "."]
        if any(m.startswith("`notebook-carbon statement`") for m in misses):
            lines += [
                "",
                (f"The statement in a fresh process: the statement itself takes "
                f"{fmt(fig['statement_warm']['new'])} in a process that has made one already; the "
                f"rest of the {fmt(fig['statement']['new'])} is Python's start and what the first "
                "statement of a process pays once: importing SQLAlchemy and jinja2 (not pandas), and "
                "compiling the SQL statements and the template."),
            ]
        if any(m.startswith("per-cell overhead") for m in misses) and both:
            lines += [
                "",
                (f"The per-cell overhead: a metered cell's summary line comes once its run is committed, "
                f"so the cell waits for the registry's write, and that write costs more than it did: "
                f"{fmt(fig['write_cpu']['old'])} of CPU per metered cell on the writer's thread before, "
                f"{fmt(fig['write_cpu']['new'])} now. Inserting a run now also fires the triggers that "
                "keep the totals (`run_totals`, the sweep's label and selected run in `sweeps`, its "
                "parameter values in `sweep_params`), which also makes the commit write more pages, "
                "and computes the run's derived columns (sweep key and label, energy range) first."),
            ]
    else:
        lines += ["Every target is met in this run."]
    return wrapped("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help=f"a checkout of commit {BASELINE_COMMIT} (the old code)")
    parser.add_argument("--new", type=Path, default=ROOT,
                        help="a checkout of the code to measure as today's (default: this one); e.g. a "
                        "worktree of HEAD, which others' edits cannot change during the run")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke run: 10,000 runs, few repetitions; write no doc")
    parser.add_argument("--save", type=Path, help="also write what was measured to this JSON file")
    parser.add_argument("--render", type=Path,
                        help="no measuring: the section from a file --save wrote (written as the run would)")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "ARGS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, given = args.child
        print(json.dumps(CHILDREN[task](json.loads(given))))
        return
    if args.render:
        saved = json.loads(args.render.read_text())
        codes = Codes(None, Path(tempfile.gettempdir()))
        codes.roots = {side: Path(root) for side, root in saved["roots"].items()}
        codes.sides = [side for side in SIDES if side in codes.roots]
        text = report(saved["res"], saved["cfg"], saved["command"], codes, tuple(saved["load"]))
        print(text)
        if "--quick" not in saved["command"] and "old" in codes.roots:  # as the run itself would
            write_section(DOC, BEGIN, END, text)
            say(f"wrote its section of {DOC}")
        return
    baseline = args.baseline.resolve() if args.baseline else None
    if baseline and not (baseline / "notebook_carbon" / "registry").is_dir():
        raise SystemExit(f"{baseline} is not a checkout of notebook-carbon")
    cfg = QUICK if args.quick else FULL
    command = "python benchmarks/redesign.py" + (" --quick" if args.quick else "")
    command += f" --baseline <worktree of {BASELINE_COMMIT}>" if baseline else ""
    if args.new.resolve() != ROOT:
        command += f" --new <worktree of {commit_of(args.new)}>"
    tmp = Path(tempfile.mkdtemp(prefix="nc-redesign-bench-"))
    started = time.perf_counter()
    try:
        codes = Codes(baseline, tmp, args.new.resolve())
        began = os.getloadavg()[0]
        res = measure(codes, cfg)
        load = (began, os.getloadavg()[0])
        res["measured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"measured in {(time.perf_counter() - started) / 60:.1f} min")
    if args.save:
        roots = {side: str(root) for side, root in codes.roots.items()}
        args.save.write_text(json.dumps({"res": res, "cfg": cfg, "command": command, "roots": roots, "load": load}))
    text = report(res, cfg, command, codes, load)
    print(text)
    if not args.quick and baseline:  # only a full comparison replaces the section
        write_section(DOC, BEGIN, END, text)
        say(f"wrote its section of {DOC}")


if __name__ == "__main__":
    main()
