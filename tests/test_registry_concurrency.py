"""Many processes writing one registry at once: nothing lost, no "database is locked", ids unique.

8 processes x 200 runs into one new registry, on an SQLite file and on a PostgreSQL database. Half
the processes write as the magic does (a ``BackgroundWriter``: the start and finish of a quick run
merged into one insert), half as a script using ``Registry`` directly (start, checkpoint and finish,
three transactions per run). All of them open the registry at the same moment, so they also race
to create its schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import text

import notebook_carbon.registry

ROOT = Path(notebook_carbon.registry.__file__).resolve().parents[2]
PROCESSES = 8
RUNS = 200
HOW = ("direct", "writer")  # even processes use Registry, odd ones a BackgroundWriter

CHILD = """
    import json, sys, time
    import notebook_carbon.registry.store  # imported before "ready": SQLAlchemy's import is not the test
    from notebook_carbon.registry import Registry, new_uid
    from notebook_carbon.registry.writer import BackgroundWriter

    location, project, how, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every process starts writing at the same moment
    started = time.perf_counter()
    errors = []

    def final(i):
        return {"status": "ok", "energy_j": float(i), "cpu_energy_j": float(i), "cpu_method": "rapl"}

    def parts(i):
        return [{"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": float(i)}]

    if how == "writer":
        writer = BackgroundWriter(location)
        futures = []
        for i in range(runs):
            uid = new_uid()
            futures.append(writer.start_run({"uid": uid, "project": project, "params": {"i": i}}))
            futures.append(writer.finish_run(uid, final(i), parts(i)))
        if not writer.close(timeout=240):
            errors.append("the writer did not finish within 240 s")
        errors += [repr(f.exception()) for f in futures if f.done() and f.exception() is not None]
    else:
        with Registry.open(location) as registry:
            for i in range(runs):
                uid = new_uid()
                try:
                    registry.start_run({"uid": uid, "project": project, "params": {"i": i}})
                    if not registry.checkpoint_run(uid, {"energy_j": i / 2}):
                        errors.append(f"checkpoint of running run {uid} refused")
                    registry.finish_run(uid, final(i), parts(i))
                except Exception as exc:
                    errors.append(repr(exc))
    print(json.dumps({"errors": errors, "seconds": time.perf_counter() - started}), flush=True)
"""


def test_processes_writing_one_registry_at_once_lose_nothing(
    registry_url: str, registry_engine, tmp_path: Path
) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    logs = [(tmp_path / f"p{n}.stderr").open("w+") for n in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CHILD), registry_url, f"p{n}", HOW[n % 2], str(RUNS)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=logs[n],  # a file, not a pipe: a chatty child cannot block on it
            text=True,
        )
        for n in range(PROCESSES)
    ]

    def stderr_of(n: int) -> str:
        logs[n].seek(0)
        return logs[n].read()

    try:
        for n, proc in enumerate(procs):
            assert proc.stdout.readline().strip() == "ready", stderr_of(n)
        started = time.perf_counter()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.close()
        reports = []
        for n, proc in enumerate(procs):
            out = proc.stdout.read()
            assert proc.wait(timeout=240) == 0, stderr_of(n)
            reports.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        for log in logs:
            log.close()
    errors = [error for report in reports for error in report["errors"]]
    assert errors == [], errors[:5]  # "database is locked" among them would fail here
    slowest = max(report["seconds"] for report in reports)
    print(f"{PROCESSES} x {RUNS} runs in {elapsed:.1f} s; the slowest process wrote for {slowest:.1f} s")

    total = PROCESSES * RUNS
    with registry_engine.connect() as conn:
        counts = text("SELECT count(*), count(DISTINCT id), count(DISTINCT uid) FROM runs")
        assert tuple(conn.execute(counts).one()) == (total, total, total)
        per_project = conn.execute(
            text(
                "SELECT project, count(*), sum(energy_j), min(duration_s) FROM runs "
                "WHERE status = 'ok' AND ended_at IS NOT NULL GROUP BY project ORDER BY project"
            )
        ).all()
        assert [(project, n, energy) for project, n, energy, _ in per_project] == [
            (f"p{n}", RUNS, float(sum(range(RUNS)))) for n in range(PROCESSES)
        ]
        assert all(shortest >= 0 for *_, shortest in per_project)
        components = conn.execute(text("SELECT count(*), count(DISTINCT run_uid) FROM components")).one()
        assert tuple(components) == (total, total)
        assert conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() is not None
