"""Attribution by share with real processes on this machine: concurrent ``track()`` windows, one
busy and one asleep (then four), each charged its own share of the CPU, never the machine twice.

Each window runs in its own process, as sweep workers and colleagues' kernels do, metered with
the machine's real meters (RAPL where readable, else the TDP estimate, both of the whole
machine) and recorded in one registry. The windows overlap for most of their length: each process
waits for a common start time, then keeps its block open for ``SECONDS``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from notebook_carbon.registry import Registry

SECONDS = 3.0

WORKER = r"""
import json, os, sys, time
import notebook_carbon
kind, start = sys.argv[1], float(sys.argv[2])
with notebook_carbon.track(name=f"{kind}-{os.getpid()}", quiet=True):
    pass  # the first block pays for the imports and the meters' probing, outside the measured one
while time.time() < start:
    time.sleep(0.005)
with notebook_carbon.track(name=kind, quiet=True) as run:
    until = time.monotonic() + float(sys.argv[3])
    if kind == "busy":
        x = 0
        while time.monotonic() < until:
            x += 1
    else:
        time.sleep(float(sys.argv[3]))
print(json.dumps({"uid": run.result.uid}))
"""

TOLERANCE = 1.10
"""The windows' machine energies differ a little: each process reads the machine over its own
window, which starts and ends a few ms from the others' (and on the TDP estimate, ticks of 10 ms).
Their charged shares together may not exceed the largest of them by more than 10 %."""


def _run_concurrently(tmp_path, kinds: list[str]) -> list[dict]:
    env = {**os.environ, "NOTEBOOK_CARBON_REGISTRY": str(tmp_path / "registry.sqlite"),
           "NOTEBOOK_CARBON_REGION": "FR", "NOTEBOOK_CARBON_GPU": "off"}  # fmt: skip
    env.pop("NOTEBOOK_CARBON_ATTRIBUTION", None)  # the default: share
    start = time.time() + 4.0  # every process started and warmed up by then
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, kind, repr(start), repr(SECONDS)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for kind in kinds
    ]
    uids = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        uids.append(json.loads(out.strip().splitlines()[-1])["uid"])
    with Registry.open(str(tmp_path / "registry.sqlite")) as reg:
        runs = [reg.get_run(uid) for uid in uids]
        for run in runs:
            run["components"] = {c["component"]: c for c in reg.components(run["uid"])}
    return runs


def _check(runs: list[dict]) -> None:
    for run in runs:
        assert run["attribution"] == "share" and run["status"] == "ok"
        cpu = run["components"]["cpu"]
        assert cpu["share"] is not None and 0.0 <= cpu["share"] <= 1.0, cpu
        assert cpu["energy_j"] == pytest.approx(cpu["share"] * cpu["machine_energy_j"]), cpu
        assert run["machine_energy_j"] >= run["energy_j"]
    busy = [r for r in runs if r["name"] == "busy"]
    asleep = [r for r in runs if r["name"] == "asleep"]
    for sleeper in asleep:
        for worker in busy:  # a sleeping run is charged close to nothing of the others' work
            assert sleeper["cpu_energy_j"] <= worker["cpu_energy_j"] / 5, (sleeper["components"], worker["components"])
    machine_cpu = max(r["components"]["cpu"]["machine_energy_j"] for r in runs)
    charged_cpu = sum(r["cpu_energy_j"] for r in runs)
    assert charged_cpu <= machine_cpu * TOLERANCE, [r["components"]["cpu"] for r in runs]
    machine = max(r["machine_energy_j"] for r in runs)
    assert sum(r["energy_j"] for r in runs) <= machine * TOLERANCE


def test_a_busy_and_a_sleeping_window_at_once_are_each_charged_their_own_share(tmp_path):
    runs = _run_concurrently(tmp_path, ["busy", "asleep"])
    _check(runs)


def test_four_concurrent_windows_never_count_the_machine_twice(tmp_path):
    runs = _run_concurrently(tmp_path, ["busy", "asleep", "busy", "asleep"])
    _check(runs)
