"""What notebook-carbon costs a notebook, measured against codecarbon doing the same job.

    python benchmarks/run.py            # full run (1-2 minutes); rewrites docs/performance.md
    python benchmarks/run.py --quick    # smoke run: few iterations; prints the report, writes nothing

1. Per-cell overhead, in one process with a real IPython shell: a plain ``pass`` cell, a
   ``%%carbon --quiet`` cell (as the user sees it, and until its run is committed to SQLite), and
   the same cell wrapped in codecarbon. The variants are interleaved round by round, in a rotating
   order, so drift on a noisy machine hits all of them alike.
2. Cold start, in fresh processes: ``%load_ext notebook_carbon`` plus the first metered cell,
   against ``import codecarbon`` plus a tracker's first start/stop. Each trial is a child process
   (``--child ours|codecarbon``) that prints its timings as one JSON line.

Everything runs against throwaway directories (registry, IPython profile, config, CSV output).
"""

from __future__ import annotations

import argparse
import atexit
import json
import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from report import HEAVY, report, with_kept_sections  # benchmarks/ is on sys.path: this file runs as a script

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
# A cell that reads a value the benchmark changes every round, as a real cell reads its inputs:
# with ``pass`` every metered cell after the first would repeat the first and be reported as
# redundant. So every variant runs the same ``x = i``, and the magic's fingerprinting and
# redundancy lookup (an index search that finds nothing) are inside the measured time.
PLAIN_CELL = "x = i"
CARBON_CELL = "%%carbon --quiet\n" + PLAIN_CELL
FULL = {"rounds": 1000, "warmup": 20, "trials": 25}
QUICK = {"rounds": 30, "warmup": 5, "trials": 3}


def isolated_env(workdir: Path) -> dict[str, str]:
    """Environment that keeps the user's registry, config and IPython history out of the benchmark."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.toml"
    config.write_text("")  # an explicit empty config: the user's own file must not change the figures
    return {
        **os.environ,
        "IPYTHONDIR": str(workdir / "ipython"),
        "NOTEBOOK_CARBON_CONFIG": str(config),
        "NOTEBOOK_CARBON_REGISTRY": str(workdir / "registry.sqlite"),
        "NOTEBOOK_CARBON_REGION": "FR",
    }


def codecarbon_tracker(output_dir: Path):
    from codecarbon import OfflineEmissionsTracker

    return OfflineEmissionsTracker(
        country_iso_code="FRA",
        output_dir=str(output_dir),
        save_to_file=True,
        log_level="error",
        allow_multiple_runs=True,
    )


# -- 1. per-cell overhead ------------------------------------------------------------------------


def per_cell(rounds: int, warmup: int, workdir: Path) -> dict:
    os.environ.update(isolated_env(workdir))
    from IPython.core.interactiveshell import InteractiveShell

    from notebook_carbon.magic import extension_for

    shell = InteractiveShell.instance()

    inputs = itertools.count()

    def run(source: str) -> None:
        shell.user_ns["i"] = next(inputs)
        if not shell.run_cell(source, store_history=True).success:
            raise RuntimeError(f"benchmark cell failed: {source!r}")

    run("%load_ext notebook_carbon")
    ext = extension_for(shell)
    writer = ext.session.writer()
    cc_dir = workdir / "codecarbon"
    cc_dir.mkdir()
    # codecarbon's intended way to meter many segments: tasks on one running tracker. Its 1 s
    # monitor thread then runs for the whole benchmark, under every variant alike.
    task_tracker = codecarbon_tracker(workdir)
    task_tracker.start()

    def plain():
        t0 = time.perf_counter()
        run(PLAIN_CELL)
        return time.perf_counter() - t0

    def carbon():
        t0 = time.perf_counter()
        run(CARBON_CELL)
        t1 = time.perf_counter()
        writer.flush()  # start_run and finish_run both committed: the run is durable
        return t1 - t0, time.perf_counter() - t0

    def codecarbon():
        # Built outside the timed region: a stopped tracker cannot be started again.
        tracker = codecarbon_tracker(cc_dir)
        t0 = time.perf_counter()
        tracker.start()
        run(PLAIN_CELL)
        tracker.stop()
        return time.perf_counter() - t0

    def codecarbon_task():
        t0 = time.perf_counter()
        task_tracker.start_task()
        run(PLAIN_CELL)
        task_tracker.stop_task()
        return time.perf_counter() - t0

    variants = {
        "plain": plain,
        "carbon": carbon,
        "codecarbon": codecarbon,
        "codecarbon_task": codecarbon_task,
    }
    samples: dict[str, list] = {name: [] for name in variants}
    names = list(variants)
    for i in range(warmup + rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        results = {name: variants[name]() for name in order}
        if i >= warmup:  # the first cells pay for imports and meter probing: that is the cold start's figure
            for name in names:
                samples[name].append(results[name])
    task_tracker.stop()

    # The figures only count if every metered cell really became a finished run, and every
    # codecarbon cell a CSV row.
    writer.flush()
    finished = "select count(*) from runs where status = 'ok' and ended_at is not null"
    with sqlite3.connect(ext.session.settings.registry_location()) as db:
        (ok,) = db.execute(finished).fetchone()
    rows = (cc_dir / "emissions.csv").read_text().count("\n") - 1
    if ok != warmup + rounds or rows != warmup + rounds:
        raise RuntimeError(f"expected {warmup + rounds} runs and CSV rows, found {ok} and {rows}")
    meters = ", ".join(f"{m.component} {m.method}" for m in ext.session.detection().meters)
    return {
        "plain": samples["plain"],
        "carbon_cell": [a for a, _ in samples["carbon"]],
        "carbon_durable": [b for _, b in samples["carbon"]],
        "codecarbon": samples["codecarbon"],
        "codecarbon_task": samples["codecarbon_task"],
        "meters": meters,
    }


# -- 2. cold start (child side) ------------------------------------------------------------------


class ImportWatch:
    """Notes which thread imports each watched package. An audit hook, because the ``import`` event
    fires only for real imports: a meta-path finder would also see ``importlib.util.find_spec``
    look-ups, which notebook-carbon makes to locate codecarbon's data files without importing it."""

    def __init__(self, names) -> None:
        self.names, self.threads = set(names), {}

    def __call__(self, event: str, args: tuple) -> None:
        if event == "import" and args[0] in self.names:
            self.threads.setdefault(args[0], threading.current_thread().name)


def child(kind: str) -> dict:
    watch = ImportWatch(HEAVY)
    sys.addaudithook(watch)  # stays for this short-lived child; its cost is within the noise
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()  # a kernel exists before the user types anything: not timed
    shell.user_ns["i"] = 0
    modules_before = len(sys.modules)
    t0 = time.perf_counter()
    if kind == "codecarbon":
        import codecarbon  # noqa: F401

        t1 = time.perf_counter()
        tracker = codecarbon_tracker(Path.cwd())  # the trial's own directory
        t2 = time.perf_counter()
        tracker.start()
        t3 = time.perf_counter()
        shell.run_cell(PLAIN_CELL, store_history=True)
        tracker.stop()
        t4 = time.perf_counter()
        return {
            "import": t1 - t0,
            "construct": t2 - t1,
            "start": t3 - t2,
            "cell_stop": t4 - t3,
            "total": t4 - t0,
        }
    ok = shell.run_cell("%load_ext notebook_carbon", store_history=True).success
    t1 = time.perf_counter()
    ok = shell.run_cell(CARBON_CELL, store_history=True).success and ok
    t2 = time.perf_counter()
    loaded = [name for name in HEAVY if name in sys.modules]
    modules_added = len(sys.modules) - modules_before
    from notebook_carbon.magic import extension_for

    ext = extension_for(shell)
    run_id = ext.last.run_id(timeout=60)  # start_run committed
    ext.session.writer().flush()  # finish_run committed
    t3 = time.perf_counter()
    if not ok or ext.last.status != "ok" or run_id is None or ext.session.writer().errors:
        raise RuntimeError("the first metered cell did not become a recorded run")
    return {
        "load_ext": t1 - t0,
        "first_cell": t2 - t1,
        "total": t2 - t0,
        "durable": t3 - t0,
        "loaded": loaded,
        "modules_added": modules_added,
        "import_threads": watch.threads,
    }


def cold_start(trials: int, workdir: Path) -> dict:
    results: dict[str, list[dict]] = {"ours": [], "codecarbon": []}
    # One discarded trial each first, so the OS file cache is warm for all counted ones.
    for trial in range(trials + 1):
        for kind, done in results.items():  # interleaved, like the per-cell variants
            trial_dir = workdir / f"{kind}-{trial}"
            env = isolated_env(trial_dir)  # a fresh registry: the first run creates it
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind],
                env=env,
                cwd=trial_dir,
                capture_output=True,
                text=True,
                check=True,
            )
            if trial:
                done.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few iterations, write no doc")
    parser.add_argument(
        "--out", type=Path, help=f"where to write the report (default {DOC.relative_to(ROOT)})"
    )
    parser.add_argument("--child", choices=("ours", "codecarbon"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    cfg = QUICK if args.quick else FULL
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-"))
    # Removed at exit, after IPython's history and the registry writer have closed their databases
    # in it: their atexit hooks are registered later, so they run earlier.
    atexit.register(shutil.rmtree, tmp, True)
    print(f"per-cell overhead: {cfg['rounds']} rounds ...", file=sys.stderr)
    cell = per_cell(cfg["rounds"], cfg["warmup"], tmp / "cell")
    print(f"cold start: {cfg['trials']} trials per tool ...", file=sys.stderr)
    cold = cold_start(cfg["trials"], tmp / "cold")
    text = report(cell, cold, command, cfg)
    out = args.out or (None if args.quick else DOC)  # a quick run's figures never replace the full ones
    if out is None:
        print(text)
    else:
        out.write_text(with_kept_sections(text, out.read_text()) if out.exists() else text)
        print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
