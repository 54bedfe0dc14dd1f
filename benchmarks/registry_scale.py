"""The registry at scale: a project of 100,000 runs, its sweep summary, its totals, and the
redundancy lookup made before every metered cell.

    python benchmarks/registry_scale.py              # full run; rewrites docs/performance-registry.md
    python benchmarks/registry_scale.py --quick      # smoke run: 10,000 runs, few repetitions, no file
    python benchmarks/registry_scale.py --runs 20000 # another size: prints the report, writes no file

A seeded generator fills a fresh SQLite registry in a temporary directory with runs shaped like a
long-lived project (sweeps of uneven size, named and automatic, varying params, failed, interrupted,
crashed and redundant runs, per-component rows, a few power samples), written through the
registry's own engine and encoding. Then each query is timed as the package calls it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import io
import json
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import textwrap
import time
from contextlib import closing
from importlib.metadata import version
from pathlib import Path

from sqlalchemy import event, insert

from notebook_carbon import analysis, cli, record
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry import schema, values
from notebook_carbon.registry.lookup import _QUERY as LOOKUP_QUERY
from notebook_carbon.registry.lookup import SqliteLookup
from notebook_carbon.statements import impact_statement
from report import machine, ms, p90, table, verdict  # benchmarks/ is on sys.path: this file runs as a script

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance-registry.md"
INDEX = ROOT / "docs" / "performance.md"
LINK = "The registry at scale (100,000 runs): see [performance-registry.md](performance-registry.md)."
PROJECT, NEIGHBOUR = "vision", "nlp"
TARGET_QUERY_S, TARGET_LOOKUP_S, TARGET_STATEMENT_S = 0.200, 0.001, 1.0  # the statement: issue 12's (was 2 s)
FULL = {"runs": 100_000, "reps": 25, "cold_reps": 10, "statement_reps": 7, "lookups": 2000}
QUICK = {"runs": 10_000, "reps": 5, "cold_reps": 3, "statement_reps": 3, "lookups": 200}
T0 = 1_735_689_600.0  # 2025-01-01 UTC: fixed, so two runs of the generator write the same registry
CELL = """import torch
from torch.utils.data import DataLoader

model = build_{arch}(width=256, dropout=dropout)
optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=4)
torch.manual_seed(seed)
for epoch in range(epochs):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x.to(device)), y.to(device))
        loss.backward()
        optimizer.step()
    scores = evaluate(model, valid_set)  # revision {rev}
    history.append({{"epoch": epoch, "loss": loss.item(), **scores}})
print(history[-1])
"""
ERRORS = ("RuntimeError: CUDA out of memory", "ValueError: NaN loss", "KeyError: 'label'", "AssertionError")


def hex32(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def digest(value) -> str:
    return hashlib.blake2b(json.dumps(value, sort_keys=True).encode(), digest_size=16).hexdigest()


# -- the generator -------------------------------------------------------------------------------


def plan_sweeps(rng: random.Random, n_runs: int, n_sweeps: int) -> list[dict]:
    """Sweeps of lognormal size (a few big searches, many small ones), each active for a while."""
    weights = [rng.lognormvariate(0, 1.0) for _ in range(n_sweeps)]
    scale = n_runs / sum(weights)
    sweeps = []
    for i, weight in enumerate(weights):
        explicit = rng.random() < 0.4  # `--sweep NAME`; the rest are grouped by code fingerprint
        gpu = rng.random() < 0.6
        start = T0 + rng.uniform(0, 330) * 86400
        sweeps.append({
            "name": f"{rng.choice(('lr', 'bs', 'arch', 'ablation'))}-search-{i}" if explicit else None,
            # a named sweep keeps its name while its cell is edited; an automatic one is one code
            "codes": [hex32(rng) for _ in range(rng.randint(1, 4) if explicit else 1)],
            "inputs": [hex32(rng) for _ in range(rng.randint(1, 3))],  # dataset versions
            "arch": rng.choice(("resnet", "vit", "unet", "mlp")),
            "extra": rng.random() < 0.3,  # params gain `epochs` part-way through
            "size": max(1, round(weight * scale)),
            "start": start,
            "span": rng.uniform(0.2, 30) * 86400,
            "duration": rng.lognormvariate(5.0, 1.2),  # s per run (median ~2.5 min)
            "power": rng.uniform(250, 700) * rng.choice((1, 1, 2, 4)) if gpu else rng.uniform(30, 90),
            "gpu": gpu,
            "region": rng.choice((("FR", 56.0), ("DE", 381.0), ("US-CAL", 210.0))),
        })
    return sweeps


def generate(rng: random.Random, project: str, n_runs: int, n_sweeps: int, first_id: int) -> tuple:
    """``n_runs`` run rows of ``project`` (ids from ``first_id``, in start order), their
    component rows and a few runs' power samples."""
    sweeps = plan_sweeps(rng, n_runs, n_sweeps)
    drafts = []
    for s in sweeps:
        for _ in range(s["size"]):
            drafts.append((s["start"] + rng.random() * s["span"], s))
    while len(drafts) < n_runs:  # rounding: top up with runs in no sweep (bare `track()` blocks)
        drafts.append((T0 + rng.uniform(0, 360) * 86400, None))
    drafts = sorted(drafts[:n_runs], key=lambda d: d[0])
    crashed = set(rng.sample(range(n_runs), max(3, n_runs // 2000)))
    first_ok: dict[tuple, int] = {}  # (code, inputs, params) -> id of the first ok run, as the magic sees it
    ok_by_code: dict[str, list[dict]] = {}
    ok_by_sweep: dict[str, list[dict]] = {}
    runs, components, samples = [], [], []
    for i, (started, s) in enumerate(drafts):
        run_id, uid = first_id + i, hex32(rng)
        if s is None:
            s = {"name": None, "codes": [None], "inputs": [None], "arch": "mlp", "extra": False, "span": 1,
                 "start": started, "duration": 30.0, "power": 40.0, "gpu": False, "region": ("FR", 56.0)}
        progress = (started - s["start"]) / s["span"]
        code = s["codes"][min(int(progress * len(s["codes"])), len(s["codes"]) - 1)]
        params = {
            "lr": float(f"{10 ** rng.uniform(-5, -1):.3g}"),  # random search: log-uniform, 3 digits
            "batch_size": rng.choice((16, 32, 64, 128, 256)),
            "seed": rng.randrange(5),
            "dropout": rng.choice((0.0, 0.1, 0.2, 0.3)),
        }
        if s["extra"] and progress > 0.5:
            params["epochs"] = rng.choice((10, 20, 50))
        # 2 %: inputs that cannot be fingerprinted, so the run is never called redundant
        inputs = None if rng.random() < 0.02 else rng.choice(s["inputs"])
        earlier = ok_by_code.get(code) if code else None
        if earlier and inputs and rng.random() < 0.05:  # the same cell re-run with nothing changed
            twin = rng.choice(earlier)
            params, inputs = dict(twin["params"]), twin["inputs_fingerprint"]
        roll = rng.random()
        status = "failed" if roll < 0.06 else "interrupted" if roll < 0.08 else "ok"
        status = "crashed" if i in crashed else status
        if i == n_runs - 1:
            status = "running"  # the cell executing now
        duration = s["duration"] * rng.uniform(0.7, 1.3) * (rng.uniform(0.01, 0.8) if status != "ok" else 1.0)
        energy = duration * s["power"] * rng.uniform(0.9, 1.1)
        key = (code, inputs, digest(params))
        redundant_of = first_ok.get(key) if code and inputs else None
        pue, (region, intensity) = 1.2, s["region"]
        if s["gpu"]:
            parts = {"cpu": energy * 0.15, "ram": energy * 0.05, "gpu": energy * 0.8}
        else:
            parts = {"cpu": energy * 0.8, "ram": energy * 0.2}
        cpu_method = "rapl" if s["gpu"] else "estimate-tdp"
        methods = {"cpu": cpu_method, "ram": "estimate-ram", "gpu": "nvml-counter"}
        row = {
            "id": run_id, "uid": uid, "project": project, "notebook": f"{s['arch']}.ipynb",
            "name": None if rng.random() < 0.8 else f"{s['arch']}-{run_id}", "sweep": s["name"],
            "tags": ["baseline"] if rng.random() < 0.05 else [], "params": params,
            "cell_source": CELL.format(arch=s["arch"], rev=code[:8]) if code else None,
            "code_fingerprint": code, "inputs_fingerprint": inputs if code else None,
            "params_fingerprint": digest(params) if code else None,
            "status": status, "error": rng.choice(ERRORS) if status == "failed" else None,
            "started_at": started, "ended_at": None if status == "running" else started + duration,
            "duration_s": duration, "energy_j": energy, "emissions_g": energy / 3.6e6 * pue * intensity,
            "water_l": energy / 3.6e6 * pue * 1.8, "embodied_g": None, "pue": pue,
            "intensity_g_per_kwh": intensity, "intensity_region": region, "intensity_source": "bundled",
            "host": rng.choice(("gpu-node-1", "gpu-node-2", "laptop")), "pid": rng.randrange(1000, 60000),
            "cpu_model": "AMD EPYC 7763", "gpu_model": "NVIDIA A100-SXM4-80GB" if s["gpu"] else None,
            "gpu_count": 1 if s["gpu"] else 0, "attribution": "process", "notes": [],
            "redundant_of": redundant_of, "updated_at": started + duration, "is_final": False,
            "checkpoint_interval_s": 30.0,
            **{f"{c}_energy_j": parts.get(c) for c in ("gpu", "cpu", "ram")},
            **{f"{c}_method": methods[c] if c in parts else "none" for c in ("gpu", "cpu", "ram")},
        }
        if status == "ok" and code and inputs:
            first_ok.setdefault(key, run_id)
            ok_by_code.setdefault(code, []).append(row)
        runs.append(values.encode_run(row, values.RUN_COLUMNS, "generating"))
        if status == "ok" and code:
            ok_by_sweep.setdefault(s["name"] or code, []).append(runs[-1])
        for c, energy_j in parts.items():
            components.append({"run_uid": uid, "component": c, "device": f"{c}:0", "method": methods[c],
                               "energy_j": energy_j, "reason": None, "degraded": None})
        if rng.random() < 0.005:  # only a few runs keep their power trace
            samples += [{"run_uid": uid, "t_s": t * 2.0, "component": c, "device": f"{c}:0",
                         "power_w": s["power"] * rng.uniform(0.8, 1.2)} for t in range(30) for c in parts]
    # about a third of the sweeps have a run marked final (`%carbon final`)
    for mine in ok_by_sweep.values():
        if rng.random() < 0.33:
            rng.choice(mine)["is_final"] = True
    return runs, components, samples


def fill(location: str, n_runs: int) -> dict:
    """Write the project and a smaller neighbour project in large transactions; return counts."""
    rng = random.Random(20250101)
    sweeps = max(1, min(200, n_runs // 50))
    ours = generate(rng, PROJECT, n_runs, sweeps, first_id=1)
    # Another project in the same file, so every query really has to filter by project.
    theirs = generate(rng, NEIGHBOUR, max(1, n_runs // 10), max(1, sweeps // 10), first_id=n_runs + 1)
    for run in ours[0] + theirs[0]:  # what the registry derives when a run is written
        key = record.sweep_key(run.get("sweep"), run.get("code_fingerprint"))
        run["sweep_label"] = record.sweep_label(key, run.get("notebook"), run.get("execution_count"),
                                                run.get("code_fingerprint"))
        values.derive(run)
    with Registry.open(location) as reg:
        for table_, key in ((schema.runs, 0), (schema.components, 1), (schema.samples, 2)):
            rows = ours[key] + theirs[key]
            with reg.write("filling the benchmark registry") as conn:
                for start in range(0, len(rows), 20_000):
                    conn.execute(insert(table_), rows[start : start + 20_000])
    runs = ours[0]
    return {
        "runs": n_runs,
        "neighbour_runs": len(theirs[0]),
        "components": len(ours[1]) + len(theirs[1]),
        "samples": len(ours[2]) + len(theirs[2]),
        "statuses": {s: sum(r["status"] == s for r in runs) for s in schema.STATUSES},
        "redundant": sum(r["redundant_of"] is not None for r in runs),
        "unknown_inputs": sum(bool(r["code_fingerprint"]) and r["inputs_fingerprint"] is None for r in runs),
        "no_sweep": sum(r["code_fingerprint"] is None for r in runs),
        "marked_final": sum(bool(r["is_final"]) for r in runs),
        "hit": next(r for r in reversed(runs) if r["redundant_of"] is not None),
    }


# -- the measurements ----------------------------------------------------------------------------


def timed(call, reps: int, warmup: int = 3, before=None) -> list[float]:
    """Wall-clock seconds of ``reps`` calls, after ``warmup`` uncounted ones (caches, compiled SQL);
    ``before``, if given, is called untimed before each timed call."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(reps):
        if before is not None:
            before()
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def quiet(call, *args):
    """``call(*args)`` with its standard output thrown away (the CLI prints its summary)."""
    with contextlib.redirect_stdout(io.StringIO()):
        if call(*args) != 0:
            raise RuntimeError(f"{call.__name__}{args} failed")


def add_run(reg: Registry, where: dict) -> None:
    """One more finished run in the sweep ``where`` describes, as a metered cell records it."""
    now = time.time()
    reg.record_run(
        {"uid": new_uid(), "project": PROJECT, "started_at": now, "params": {"lr": random.random()}, **where},
        {"status": "ok", "energy_j": 1000.0, "emissions_g": 0.1, "ended_at": now + 1.0},
    )


def measure(location: str, data: dict, cfg: dict) -> dict:
    hit = data["hit"]
    keys = {k: hit[k] for k in ("code_fingerprint", "inputs_fingerprint", "params_fingerprint")}
    hit_keys = {"project": PROJECT, **keys}
    miss_keys = {**hit_keys, "params_fingerprint": "0" * 32}  # the same cell with new params
    lookup = SqliteLookup(Path(location))
    t0 = time.perf_counter()
    found = lookup.find_redundant(**hit_keys)  # the first call opens the connection
    first_lookup = time.perf_counter() - t0
    with Registry.open(location) as reg:
        reference = reg.find_redundant(**hit_keys)
        totals = reg.totals(PROJECT)
        sweeps = reg.sweeps(PROJECT)
        # The figures count only if the queries did the whole job.
        if found is None or found["id"] != hit["redundant_of"] or found != reference:
            raise RuntimeError(f"lookup found {found}, expected run {hit['redundant_of']} ({reference})")
        if lookup.find_redundant(**miss_keys) is not None:
            raise RuntimeError("a never-seen params fingerprint was found")
        if (totals.runs, totals.redundant_runs) != (data["runs"], data["redundant"]):
            raise RuntimeError(f"totals: {totals.runs} runs, {totals.redundant_runs} redundant")
        if sum(s.runs for s in sweeps) != data["runs"] - data["no_sweep"]:
            raise RuntimeError("sweeps lost runs")
        results = {
            "totals": timed(lambda: reg.totals(PROJECT), cfg["reps"]),
            "list_sweeps": timed(lambda: reg.sweeps(PROJECT), cfg["reps"]),
            "lookup_hit": timed(lambda: lookup.find_redundant(**hit_keys), cfg["lookups"], warmup=20),
            "lookup_miss": timed(lambda: lookup.find_redundant(**miss_keys), cfg["lookups"], warmup=20),
            # a reference, and slow at this size (see the report): as many calls as the queries
            "sqlalchemy_hit": timed(lambda: reg.find_redundant(**hit_keys), cfg["reps"]),
            "sqlalchemy_miss": timed(lambda: reg.find_redundant(**miss_keys), cfg["reps"]),
        }
        statements = {
            "Registry.totals": traced(reg, lambda: reg.totals(PROJECT)),
            "Registry.sweeps": traced(reg, lambda: reg.sweeps(PROJECT)),
            "Registry.find_redundant": traced(reg, lambda: reg.find_redundant(**hit_keys)),
        }
        # after one more metered cell of the largest sweep (recorded untimed before each call):
        # the triggers have kept the totals, nothing is recomputed
        largest = max(sweeps, key=lambda s: s.runs)
        where = {"sweep": largest.key} if largest.explicit else {"code_fingerprint": largest.key[5:]}
        results["list_sweeps_one"] = timed(
            lambda: reg.sweeps(PROJECT), cfg["reps"], before=lambda: add_run(reg, where)
        )
        results["totals_one"] = timed(lambda: reg.totals(PROJECT), cfg["reps"], before=lambda: add_run(reg, where))
        results["record_run"] = timed(lambda: add_run(reg, where), cfg["reps"])
        if sum(s.runs for s in reg.sweeps(PROJECT)) != data["runs"] - data["no_sweep"] + 3 * cfg["reps"] + 3:
            raise RuntimeError("sweeps lost runs")
        results["largest_sweep"] = largest.runs
    # The paper-ready end of the pipeline, end to end from the file: a fresh process would pay the
    # imports once more (pandas, jinja2), which the first, uncounted call pays here.
    results["statement_md"] = timed(
        lambda: impact_statement(location, project=PROJECT, format="md"), cfg["statement_reps"], warmup=1
    )
    results["statement_latex"] = timed(
        lambda: impact_statement(location, project=PROJECT, format="latex"), cfg["statement_reps"], warmup=1
    )
    results["summary"] = timed(lambda: quiet(cli.main, ["summary", "--registry", location, "--project", PROJECT]),
                               cfg["statement_reps"], warmup=1)
    # the frame of every run with what a statement of a frame needs (the dashboard's charts read one):
    # a statement of a registry, and the summary, no longer read it (for reference)
    from notebook_carbon.statements import COLUMNS

    results["analysis_runs"] = timed(
        lambda: analysis.runs(location, project=PROJECT, columns=COLUMNS), cfg["statement_reps"], warmup=1
    )
    lookup.close()
    with closing(sqlite3.connect(f"file:{location}?mode=ro", uri=True)) as db:
        explained = db.execute("EXPLAIN QUERY PLAN " + LOOKUP_QUERY, tuple(hit_keys.values()))
        lookup_plan = [detail for *_, detail in explained]
    if not any("USING INDEX ix_runs_redundancy" in line for line in lookup_plan):
        raise RuntimeError(f"the redundancy lookup does not use ix_runs_redundancy: {lookup_plan}")
    return {**results, "first_lookup": first_lookup, "sweeps": sweeps, "repeats": found["repeats"],
            "plans": {"SqliteLookup.find_redundant": lookup_plan, **plans(location, statements)},
            "sent": {"SqliteLookup.find_redundant": 1, **{name: len(sqls) for name, sqls in statements.items()}}}


def traced(reg: Registry, call) -> list[str]:
    """The SELECT statements ``call`` sends to SQLite, values inlined, for EXPLAIN QUERY PLAN.
    Traced in the driver, since ``list_sweeps`` reads through the DBAPI cursor, not SQLAlchemy."""
    seen: list[str] = []

    def on_checkout(dbapi_connection, *_):
        dbapi_connection.set_trace_callback(seen.append)

    def on_checkin(dbapi_connection, *_):
        dbapi_connection.set_trace_callback(None)

    event.listen(reg._engine, "checkout", on_checkout)
    event.listen(reg._engine, "checkin", on_checkin)
    try:
        call()
    finally:
        event.remove(reg._engine, "checkout", on_checkout)
        event.remove(reg._engine, "checkin", on_checkin)
    return [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]


def plans(location: str, statements: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each function's query plans, one statement after another (a blank line between them); a plan
    repeated by consecutive statements (one query per sweep, say) is shown once, with their count."""
    with closing(sqlite3.connect(f"file:{location}?mode=ro", uri=True)) as db:
        found = {}
        for name, sqls in statements.items():
            runs: list[list] = []  # [plan, how many statements in a row]
            for sql in sqls:
                plan = "\n".join(detail for *_, detail in db.execute("EXPLAIN QUERY PLAN " + sql))
                if runs and runs[-1][0] == plan:
                    runs[-1][1] += 1
                else:
                    runs.append([plan, 1])
            blocks = [plan if count == 1 else f"{plan}\n(the same plan for {count} statements in a row)"
                      for plan, count in runs]  # fmt: skip
            found[name] = "\n\n".join(blocks).splitlines()
        return found


# -- the report ----------------------------------------------------------------------------------

# Before schema v5 (measured at the commit before it, same data set, 100,000 runs, the 2-core VM
# of the issue): `%carbon sweeps` with nothing cached took 585-891 ms; computing every listing
# from all the runs, without narrow rows, 1,986 ms. `redesign.py` re-measures the first against
# that commit, beside today's code.
BEFORE_LIST_SWEEPS = "585-891 ms with nothing cached"


def report(data: dict, res: dict, command: str, fill_s: float, size_mb: float) -> str:
    def line(label: str, key: str, target: float | None, digits: int = 1) -> str:
        med, values = statistics.median(res[key]), res[key]
        judged = f"<= {ms(target, 0)} ms | {verdict(med <= target)}" if target else "- | reference"
        return f"| {label} | {ms(med, digits)} | {ms(p90(values), digits)} | {len(values)} | {judged} |"

    def para(text: str) -> str:
        return textwrap.fill(" ".join(text.split()), 100, break_on_hyphens=False)

    n, sweeps = data["runs"], res["sweeps"]
    sizes = sorted(s.runs for s in sweeps)
    named = sum(s.explicit for s in sweeps)
    statuses = ", ".join(f"{count:,} {status}" for status, count in data["statuses"].items() if count)
    shape = table("| what | how many |", [
        f"| runs in the measured project | {n:,} ({statuses}) |",
        f"| sweeps | {len(sweeps)} ({named} named with `--sweep`, {len(sweeps) - named} automatic); "
        f"{sizes[0]:,} to {sizes[-1]:,} runs, median {statistics.median(sizes):,.0f} |",
        f"| redundant runs (`redundant_of` set) | {data['redundant']:,} ({data['redundant'] / n:.1%}) |",
        f"| runs with unknown inputs / in no sweep / marked final | {data['unknown_inputs']:,} / "
        f"{data['no_sweep']:,} / {data['marked_final']:,} |",
        f"| per-component rows / power samples | {data['components']:,} / {data['samples']:,} |",
        f"| runs of another project in the same file | {data['neighbour_runs']:,} |",
        f"| file size / time to generate and write it | {size_mb:.0f} MB / {fill_s:.1f} s |",
    ])
    figures = table("| operation | median | p90 | calls | target | verdict |", [
        line("`Registry.totals(project)`", "totals", TARGET_QUERY_S),
        line(f"`Registry.totals(project)`, one run added to the largest sweep ({res['largest_sweep']:,} runs) "
             "before each call", "totals_one", TARGET_QUERY_S),
        line("`Registry.sweeps(project)` (`%carbon sweeps`), with varying params", "list_sweeps", TARGET_QUERY_S),
        line("`Registry.sweeps(project)`, one run added to the largest sweep before each call",
             "list_sweeps_one", TARGET_QUERY_S),
        line("`Registry.record_run` of a finished run (the triggers keep the totals)", "record_run", None, 2),
        line("`impact_statement(format=\"md\")`, from the file to the text", "statement_md", TARGET_STATEMENT_S, 0),
        line("`impact_statement(format=\"latex\")`, from the file to the text", "statement_latex", TARGET_STATEMENT_S, 0),
        line("`notebook-carbon summary` (in process)", "summary", TARGET_STATEMENT_S, 0),
        line(f"`analysis.runs(registry, project, columns=statements.COLUMNS)`, the frame of {n:,} runs "
             "(neither the statement nor the summary reads it any more)", "analysis_runs", None, 0),
        line("`SqliteLookup.find_redundant`, hit (before every cell)", "lookup_hit", TARGET_LOOKUP_S, 3),
        line("`SqliteLookup.find_redundant`, miss (before every cell)", "lookup_miss", TARGET_LOOKUP_S, 3),
        line("`Registry.find_redundant` (SQLAlchemy), hit", "sqlalchemy_hit", None, 2),
        line("`Registry.find_redundant` (SQLAlchemy), miss", "sqlalchemy_miss", None, 2),
    ])
    warm, one = (statistics.median(res[k]) for k in ("list_sweeps", "list_sweeps_one"))
    sweeps_text = f"""Since schema v5 the database keeps the totals of every (project, notebook, sweep)
        and each sweep's label and selected run, by triggers on `runs`, exact (integers of
        micro-units of energy and time, nano-units of mass and water), whoever writes. `Registry.totals` adds up a few hundred such rows and reads
        the selected runs' figures; `Registry.sweeps` does the same per sweep, then reads the
        varying params from `sweep_params` (kept by triggers too): one grouped count, then the
        first values of each varying parameter of each sweep, one query each, so that it sends
        {res["sent"]["Registry.sweeps"]:,} statements in all here ({ms(warm, 0)} ms; after one
        more run, {ms(one, 0)} ms: nothing is recomputed). Recording a
        run costs the triggers' few indexed updates ({ms(statistics.median(res["record_run"]), 2)} ms
        a run in all). Before v5, with its caches: {BEFORE_LIST_SWEEPS} (the same measured beside
        today's code: [performance.md](performance.md#issue-12-the-upper-half-before-and-after-its-redesign))."""
    if max(warm, one) > TARGET_QUERY_S:
        sweeps_text += """ It misses the target here."""
    statement_text = f"""The statement and the summary are timed end to end from the registry file, after
        one uncounted call that pays the imports (jinja2 for the template; huggingface_hub's are
        not needed for these formats): the totals the database keeps and a few grouped reads
        (`Registry.figures`), every figure with its range, the per-sweep table of all
        {len(sweeps)} sweeps, the cleanest grids, and the template. The statement also reads what
        its disclosure needs beyond the sums (`statements.disclosure.read_disclosure`: the runs
        never checked for repeats, the short GPU windows, the WUEs, and the runs' distinct notes
        with the embodied emissions recorded under each): two passes over the scope's runs, and a
        third for the distinct WUEs where they differ, as they do here (0.41 s of it at 100,000
        runs, measured alone); the summary prints totals only and skips them. Neither reads the project's runs into
        a frame any more; that frame, for reference, takes
        {ms(statistics.median(res["analysis_runs"]), 0)} ms to read."""
    lookup_text = f"""The redundancy lookup runs on the notebook's thread before every metered cell,
        on a read-only connection of its own; its first call in a kernel also opens that connection
        ({ms(res["first_lookup"], 2)} ms here, once). The hit is a run repeated {res["repeats"]}
        times so far (the lookup counts them). `Registry.find_redundant` is the same lookup through
        SQLAlchemy, used by the magic only for a PostgreSQL registry; it is here for reference."""
    if "ix_runs_redundancy" not in res["plans"]["Registry.find_redundant"][0]:
        lookup_text += """ Its first query (the earliest identical run, `ORDER BY started_at, id
            LIMIT 1`) does not search `ix_runs_redundancy`: with no statistics (the registry never
            runs `ANALYZE`), SQLite prefers the index that yields the order, `(project,
            started_at)`, and walks the project's runs in start order until one matches, so its
            cost grows with the project."""
    def sent(name: str) -> str:
        count = res["sent"][name]
        return f"{count} statement{'s' if count > 1 else ''}"

    plan_text = "\n\n".join(
        f"`{name}` ({sent(name)}):\n\n```\n" + "\n".join(lines) + "\n```" for name, lines in res["plans"].items()
    )
    versions = ", ".join(f"{p} {version(p)}" for p in ("notebook-carbon", "sqlalchemy"))
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"""# Performance: the registry at scale

What reading a big registry costs, measured by `benchmarks/registry_scale.py` (see
`benchmarks/README.md`). The per-cell and cold-start figures are in [performance.md](performance.md).

- Command: `{command}`
- Date: {now:%Y-%m-%d %H:%M} UTC
- Machine: {machine()}
- Software: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {versions}

## The registry

A seeded generator writes one SQLite registry in a temporary directory, shaped like a project used
for a year: sweeps of uneven size (lognormal), some named, most grouped by code fingerprint, with
cells edited part-way through named sweeps; random-search params (`lr`, `batch_size`, `seed`,
`dropout`, `epochs` added part-way), so nearly every run has a learning rate of its own; 32-hex
fingerprints shared within a sweep; a cell source of {len(CELL)} characters per run; energy and
emissions from each sweep's power and run time. Rows go in through the registry's own engine and
encoding, in large transactions.

{shape}

## Figures

Milliseconds of wall clock, each call timed on its own after 3 (queries) or 20 (`SqliteLookup`)
uncounted calls; the database file is in the OS cache, as it is for a registry in use. The machine
is shared and noisy: read the medians, with the 90th percentile (p90) beside them.

{figures}

{para(sweeps_text)}

{para(statement_text)}

{para(lookup_text)}

## Query plans

`EXPLAIN QUERY PLAN` for the statements each function sent (traced in the driver; a blank line
between statements). The redundancy lookup must be one search of `ix_runs_redundancy`: the
benchmark fails if it is not.

{plan_text}
"""


def link_from_index() -> None:
    """One line at the end of performance.md pointing here, unless it links here already. ``run.py``
    rewrites that file whole, so these figures live in a file of their own that it never touches."""
    if not INDEX.exists():
        return
    text = INDEX.read_text()
    if DOC.name not in text:
        INDEX.write_text(text.rstrip("\n") + "\n\n" + LINK + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs in the project (default 100,000; --quick 10,000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer runs and calls, write no doc")
    parser.add_argument("--out", type=Path, help=f"write the report here (default {DOC.relative_to(ROOT)})")
    args = parser.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    cfg["runs"] = args.runs or cfg["runs"]
    command = " ".join(["python benchmarks/registry_scale.py", *sys.argv[1:]])
    tmp = Path(tempfile.mkdtemp(prefix="nc-registry-bench-"))
    try:
        location = str(tmp / "registry.sqlite")
        print(f"writing a registry of {cfg['runs']:,} runs ...", file=sys.stderr)
        t0 = time.perf_counter()
        data = fill(location, cfg["runs"])
        fill_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in tmp.iterdir()) / 1e6
        print("measuring ...", file=sys.stderr)
        res = measure(location, data, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(data, res, command, fill_s, size_mb)
    # Only a full run at the documented size replaces the figures in the docs.
    out = args.out or (DOC if not args.quick and cfg["runs"] == FULL["runs"] else None)
    if out is None:
        print(text)
        return
    out.write_text(text)
    if out == DOC:
        link_from_index()
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
