"""What a distributed job costs the registry: its ranks' starts, checkpoints and ends, by job size.

    python benchmarks/jobs.py                # full run; rewrites docs/performance-jobs.md
    python benchmarks/jobs.py --quick        # smoke run: small jobs, prints the report, writes no file
    python benchmarks/jobs.py --postgres URL # also on a PostgreSQL database URL (an empty database)

Each rank's writes go through the registry's job code (``registry.jobs``) as a rank's writer thread
calls it: a start (joins or creates the job's run, then settles it), a checkpoint round (every rank
checkpoints once: only the first running rank's settles the run), and an end (every rank finishes,
each settling the run and reaping its job's dead ranks). Each part reports a node of 8 GPUs, one CPU
package and RAM, as a rank on an 8-GPU server does. Beside it, the same number of ordinary runs
recorded whole (``record_run``): what each rank's block would cost recorded as a run of its own.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shutil
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from notebook_carbon.registry import Registry, jobs, new_uid
from report import machine, ms, table  # benchmarks/ is on sys.path: this file runs as a script

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance-jobs.md"
INDEX = ROOT / "docs" / "performance.md"
LINK = "Distributed jobs in the registry, by job size: see [performance-jobs.md](performance-jobs.md)."
FULL, QUICK = (8, 64, 256), (4, 16)
T0 = 1_735_689_600.0


def devices(rank: int) -> list[dict]:
    local = rank % 8
    found = [{"component": "gpu", "device": f"GPU {i}", "method": "nvml-counter", "energy_j": 900.0 if i == local else 0.0,
              "machine_energy_j": 900.0 + i, "share": 1.0 if i == local else 0.0} for i in range(8)]  # fmt: skip
    found.append({"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": 40.0,
                  "machine_energy_j": 320.0, "share": 0.125})  # fmt: skip
    found.append({"component": "ram", "device": "RAM 1024 GB", "method": "estimate-ram", "energy_j": 10.0,
                  "machine_energy_j": 80.0, "share": 0.125})  # fmt: skip
    return found


def one_job(location: str, ranks: int) -> dict[str, list[float]]:
    """Seconds per call of each kind of write, for one job of ``ranks`` ranks on ranks/8 nodes."""
    key = f"slurm:{new_uid()[:8]}"
    timings: dict[str, list[float]] = {"start": [], "checkpoint": [], "end": [], "run": []}
    with Registry.open(location) as reg:
        uids = []
        for rank in range(ranks):
            part = {"uid": new_uid(), "job": key, "block": 1, "rank": rank, "node": f"node-{rank // 8}",
                    "started_at": T0 + rank * 0.01, "pid": 0, "checkpoint_interval_s": 2.0}  # fmt: skip
            row = {"uid": new_uid(), "project": "bench", "started_at": T0, "job": key, "job_block": 1,
                   "job_world_size": ranks, "attribution": "share"}  # fmt: skip
            t = time.perf_counter()
            jobs.start_part(reg, row, part)
            timings["start"].append(time.perf_counter() - t)
            uids.append(part["uid"])
        for rank, uid in enumerate(uids):
            t = time.perf_counter()
            jobs.update_part(reg, uid, {"energy_j": 475.0, "duration_s": 1.0, "devices": devices(rank)}, final=False)
            timings["checkpoint"].append(time.perf_counter() - t)
        for rank, uid in enumerate(uids):
            end = {"status": "ok", "ended_at": T0 + 10, "duration_s": 10.0, "energy_j": 950.0, "emissions_g": 0.1,
                   "water_l": 0.0, "embodied_g": 1.0, "devices": devices(rank)}  # fmt: skip
            t = time.perf_counter()
            jobs.update_part(reg, uid, end, final=True)
            timings["end"].append(time.perf_counter() - t)
        for _ in range(ranks):
            t = time.perf_counter()
            reg.record_run({"uid": new_uid(), "project": "bench", "started_at": T0},
                           {"status": "ok", "energy_j": 950.0, "gpu_energy_j": 900.0, "gpu_method": "nvml-counter"},
                           [{"component": "gpu", "device": "GPU 0", "method": "nvml-counter", "energy_j": 900.0}])  # fmt: skip
            timings["run"].append(time.perf_counter() - t)
        (run,) = [r for r in reg.runs(project="bench", limit=10_000) if r["job"] == key]
        assert run["job_parts"] == ranks and run["status"] == "ok", run  # the work was done
    return timings


def measure(location: str, sizes: tuple[int, ...]) -> list[tuple[int, dict[str, list[float]]]]:
    return [(ranks, one_job(location, ranks)) for ranks in sizes]


def rows(results) -> list[str]:
    out = []
    for ranks, t in results:
        med = {kind: statistics.median(values) for kind, values in t.items()}
        total = sum(sum(t[kind]) for kind in ("start", "checkpoint", "end"))
        out.append(
            f"| {ranks} | {ranks // 8 or 1} | {ms(med['start'])} | {ms(med['checkpoint'])} | {ms(max(t['checkpoint']))} "
            f"| {ms(med['end'])} | {ms(max(t['end']))} | {ms(med['run'])} | {total:.2f} |"
        )
    return out


def report(by_backend: dict[str, list], command: str) -> str:
    header = ("| ranks | nodes | start, median (ms) | checkpoint, median (ms) | checkpoint, slowest (ms) "
              "| end, median (ms) | end, slowest (ms) | an ordinary run recorded whole (ms) "
              "| the job's writes in all (s) |")  # fmt: skip
    sections = "\n\n".join(f"### {backend}\n\n{table(header, rows(results))}" for backend, results in by_backend.items())
    return f"""# Distributed jobs in the registry

What recording a distributed job as one run costs the registry, by job size: each rank's start
(joining or creating the job's run, then settling it), one checkpoint by every rank, and every
rank's end (settling the run, reaping its dead ranks). Each rank reports a node of 8 GPUs, a CPU
package and RAM. Beside it, an ordinary run recorded whole, per run. A rank's writes are made on its
writer thread, off its training loop; only its end is waited for, when its block exits.

{sections}

How to read it: the job's run is computed again from all its parts (which grows with the job's
size) only by the first running rank's start and checkpoints and by the job's last end; every
other write touches its own part (the slowest checkpoint and the slowest end are those that
settle the run). So a checkpoint round of a 256-rank job writes the run once, not 256 times.
Writes to one registry are serialised (SQLite's write lock, PostgreSQL's advisory lock): the last
column is what all of a job's writes take one after another.

Measured on {machine()}, Python {platform.python_version()}, SQLAlchemy {version("sqlalchemy")},
{datetime.date.today().isoformat()}, with `{command}`.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small jobs; print the report, write no file")
    parser.add_argument("--postgres", metavar="URL", help="also measure on this (empty) PostgreSQL database")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    command = " ".join(["python benchmarks/jobs.py", *sys.argv[1:]])
    tmp = Path(tempfile.mkdtemp(prefix="nc-jobs-bench-"))
    try:
        by_backend = {"SQLite (a file on local disk)": measure(str(tmp / "registry.sqlite"), sizes)}
        if args.postgres:
            by_backend["PostgreSQL (loopback)"] = measure(args.postgres, sizes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(by_backend, command)
    if args.quick:
        print(text)
        return
    DOC.write_text(text)
    if INDEX.exists() and DOC.name not in INDEX.read_text():
        INDEX.write_text(INDEX.read_text().rstrip("\n") + "\n\n" + LINK + "\n")
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
