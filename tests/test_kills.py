"""Kills at random moments: a run whose summary line was printed is in the registry, and a killed
run keeps its energy up to shortly before the kill.

The metered process is a real IPython shell in a child process (and once a real kernel), killed
with SIGKILL: no handler, no atexit, nothing of ours runs after it. Meters are ``FakeMeter`` at a
constant 10 W, so the energy a run must keep follows from its duration.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from notebook_carbon.registry.liveness import reap_crashed
from notebook_carbon.registry.store import Registry

POWER_W = 10.0

CHILD = r"""
import sys
from IPython.core.interactiveshell import InteractiveShell
from notebook_carbon.magic import load_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter

registry, mode = sys.argv[1], sys.argv[2]
settings = Settings(registry=registry, region="FR", sample_interval_s=float(sys.argv[3]),
                    checkpoint_interval_s=float(sys.argv[4]))
meters = (FakeMeter("cpu", "rapl", "package-0", %(power)r),)
session = Session(settings, detection=Detection(meters=meters, notes=()))
shell = InteractiveShell.instance()
load_ipython_extension(shell, session=session)
if mode == "quick":
    i = 0
    while True:
        i += 1
        shell.run_cell(f"%%%%carbon --name q{i}\nx = {i}")
else:
    shell.run_cell("%%%%carbon --name warm-up\nx = 0")
    print("LONG", flush=True)
    shell.run_cell("%%%%carbon --name long\nimport time\ntime.sleep(60)")
""" % {"power": POWER_W}


def start_child(tmp_path: Path, mode: str, *, sample_s: float = 1.0, checkpoint_s: float = 10.0):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    registry = tmp_path / "registry.sqlite"
    return registry, subprocess.Popen(
        [sys.executable, str(script), str(registry), mode, str(sample_s), str(checkpoint_s)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
    )


def printed_names(lines: list[str]) -> list[str]:
    return [line.split("]")[0].removeprefix("carbon [") for line in lines if line.startswith("carbon [")]


def stored(registry: Path) -> dict[str, dict]:
    with Registry.open(str(registry)) as reg:
        return {r["name"]: r for r in reg.runs()}


def test_every_run_whose_summary_line_was_printed_survives_a_kill(tmp_path: Path) -> None:
    rng = random.Random(20261206)
    for attempt in range(12):
        workdir = tmp_path / f"attempt-{attempt}"
        workdir.mkdir()
        registry, child = start_child(workdir, "quick")
        lines: list[str] = []
        wanted = rng.randint(1, 25)  # kill after this many summary lines ...
        while len(printed_names(lines)) < wanted:
            line = child.stdout.readline()
            assert line, "the child stopped before it was killed"
            lines.append(line)
        time.sleep(rng.uniform(0.0, 0.1))  # ... at a random moment within 100 ms of the last one
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        lines.extend(child.stdout.read().splitlines(keepends=True))  # whatever was printed before it died
        child.stdout.close()
        runs = stored(registry)
        for name in printed_names(lines):
            assert name in runs and runs[name]["status"] == "ok", (attempt, name, sorted(runs))
            assert runs[name]["energy_j"] is not None


def test_a_run_killed_three_seconds_in_keeps_at_least_a_second_of_energy(tmp_path: Path) -> None:
    registry, child = start_child(tmp_path, "long")
    while child.stdout.readline().strip() != "LONG":
        pass
    time.sleep(3.0)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    child.stdout.close()
    with Registry.open(str(registry)) as reg:
        assert reap_crashed(reg)  # its process is gone: the run reads crashed
        run = stored(registry)["long"]
    assert run["status"] == "crashed"
    assert run["duration_s"] >= 1.0
    assert run["energy_j"] >= POWER_W * 1.0 * 0.99
    assert run["cpu_method"] == "rapl"  # a crashed run still says how its energy was obtained


def test_kills_during_frequent_checkpoints_leave_a_readable_run_with_its_energy(tmp_path: Path) -> None:
    rng = random.Random(7)
    for attempt in range(5):
        workdir = tmp_path / f"attempt-{attempt}"
        workdir.mkdir()
        registry, child = start_child(workdir, "long", sample_s=0.05, checkpoint_s=0.1)
        while child.stdout.readline().strip() != "LONG":
            pass
        time.sleep(rng.uniform(0.3, 1.5))  # most moments fall on or near a checkpoint's write
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
        with Registry.open(str(registry)) as reg:
            reap_crashed(reg)
            run = stored(registry)["long"]
        assert run["status"] == "crashed"
        assert run["duration_s"] > 0.05
        # the energy kept is the energy of the time kept: 10 W over the checkpointed duration
        assert abs(run["energy_j"] - POWER_W * run["duration_s"]) <= POWER_W * 0.1


def test_a_killed_kernel_keeps_the_run_it_printed(tmp_path: Path) -> None:
    registry = tmp_path / "kernel.sqlite"
    env = {**os.environ, "NOTEBOOK_CARBON_REGISTRY": str(registry), "NOTEBOOK_CARBON_REGION": "FR"}
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        client.execute_interactive("%load_ext notebook_carbon", timeout=60)
        seen: list[str] = []

        def keep(msg) -> None:
            if msg["msg_type"] == "stream":
                seen.append(msg["content"]["text"])

        client.execute_interactive("%%carbon --name printed\nx = 1", timeout=60, output_hook=keep)
        assert "carbon [printed]" in "".join(seen)
        os.kill(manager.provisioner.pid, signal.SIGKILL)  # at once, as the OOM killer would
    finally:
        manager.shutdown_kernel(now=True)
        client.stop_channels()
    assert stored(registry)["printed"]["status"] == "ok"
