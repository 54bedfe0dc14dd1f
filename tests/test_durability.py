"""Nothing recorded is lost: a kernel beside other processes, and track() in worker processes.

Each test here reproduces a way runs were lost (issue: nothing recorded is ever lost) with real
parts: a real kernel (jupyter_client), the real CLI in its own process, scripts that exit, and
multiprocessing / concurrent.futures / joblib workers, which end without running ``atexit``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import joblib
import pytest
from jupyter_client.manager import start_new_kernel
from totals_oracle import check

import notebook_carbon
from notebook_carbon.registry.parts import parts
from notebook_carbon.registry.store import Registry

CLI = str(Path(sys.executable).with_name("notebook-carbon"))
SCRIPT = "import notebook_carbon\nwith notebook_carbon.track(name='script', quiet=True):\n    sum(range(1000))\n"
POOL = (
    "import multiprocessing, notebook_carbon\n"
    "def work(i):\n"
    "    with notebook_carbon.track(name=f'worker-{i}', quiet=True):\n"
    "        return sum(range(1000))\n"
    "if __name__ == '__main__':\n"
    "    with multiprocessing.get_context('fork').Pool(2) as pool:\n"
    "        pool.map(work, range(4))\n"
)


def execute(client, code: str) -> str:
    """Run ``code`` in the kernel; its stdout (the summary lines); fails on an error."""
    out: list[str] = []

    def keep(msg) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])

    reply = client.execute_interactive(code, timeout=120, output_hook=keep)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def test_a_kernels_runs_survive_other_processes_opening_and_closing_the_registry(registry_url: str) -> None:
    env = {**os.environ, "NOTEBOOK_CARBON_REGISTRY": registry_url, "NOTEBOOK_CARBON_REGION": "FR"}
    subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True)  # the registry exists
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        execute(client, "%load_ext notebook_carbon")
        assert "carbon [c1]" in execute(client, "%%carbon --name c1\nx = 1")
        # A colleague's CLI and a sweep script open and close the same registry meanwhile.
        listed = subprocess.run([CLI, "runs", "--registry", registry_url], env=env, capture_output=True, text=True)
        assert listed.returncode == 0 and "c1" in listed.stdout, listed.stderr
        subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True)
        subprocess.run([sys.executable, "-c", POOL], env=env, check=True)  # a sweep's pool workers
        for i in range(2, 6):
            assert f"carbon [c{i}]" in execute(client, f"%%carbon --name c{i}\nx = {i}")
        # Then the kernel is killed in the middle of a long cell, once that cell has checkpointed.
        client.execute("%%carbon --name killed\nimport time\ntime.sleep(60)")
        deadline = time.monotonic() + 60
        with Registry.open(registry_url) as reg:
            while time.monotonic() < deadline:
                killed = [r for r in reg.runs() if r["name"] == "killed" and r["energy_j"] is not None]
                if killed:
                    break
                time.sleep(0.2)
        assert killed, "the long cell never checkpointed"
        manager.signal_kernel(signal.SIGKILL)  # no atexit, no post_run_cell
    finally:
        if manager.is_alive():
            manager.shutdown_kernel(now=True)
        client.stop_channels()
    with Registry.open(registry_url) as reg:
        runs = list(reversed(reg.runs()))
        for project in {r["project"] for r in runs}:
            # the totals the triggers kept, written from all these processes at once, are the runs'
            check(reg, project)
    named = [(r["name"], r["status"]) for r in runs]
    workers = sorted(n for n, _ in named if n.startswith("worker-"))
    assert workers == [f"worker-{i}" for i in range(4)] and all(status == "ok" for _, status in named[:-1])
    assert [n for n, _ in named if not n.startswith("worker-")] == [
        "script", "c1", "script", "c2", "c3", "c4", "c5", "killed"]
    last = runs[-1]  # the killed run keeps its checkpoint: charged a share, and what the machine drew
    assert last["status"] == "running" and last["energy_j"] > 0
    assert last["attribution"] == "share" and last["machine_energy_j"] >= last["energy_j"]


def _block(i: int) -> int:
    with notebook_carbon.track(name=f"block-{i}", sweep="workers", params={"i": i}, quiet=True):
        sum(range(10_000))
    return i


def _recorded(location: str) -> list[str]:
    with Registry.open(location) as reg:
        return sorted(r["name"] for r in reg.runs() if r["status"] == "ok")


@pytest.fixture
def worker_registry(tmp_path, monkeypatch) -> str:
    """A registry that workers find through the environment, as a sweep's workers would."""
    location = str(tmp_path / "workers.sqlite")
    monkeypatch.setenv("NOTEBOOK_CARBON_REGISTRY", location)
    monkeypatch.setenv("NOTEBOOK_CARBON_REGION", "FR")
    # A process resolves its settings once, for its first track(): forked workers inherit that
    # session, so this test's process must not have one from an earlier test.
    import notebook_carbon.session.state

    monkeypatch.setattr(notebook_carbon.session.state, "_default", None)
    # An IPython shell made by an earlier test replaces __main__ with a module without __spec__,
    # which multiprocessing's spawn reads; as in a script, there is no main module to re-import.
    if not hasattr(sys.modules["__main__"], "__spec__"):
        monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    return location


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_track_in_multiprocessing_processes_and_pools(worker_registry: str, method: str) -> None:
    context = multiprocessing.get_context(method)
    processes = [context.Process(target=_block, args=(i,)) for i in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    with context.Pool(4) as pool:  # leaving the with block terminates the workers: no atexit
        assert pool.map(_block, range(10, 30)) == list(range(10, 30))
    pool = context.Pool(3)
    pool.map(_block, range(30, 42))
    pool.close()
    pool.join()
    expected = [f"block-{i}" for i in [*range(4), *range(10, 42)]]
    assert _recorded(worker_registry) == sorted(expected)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_track_in_a_process_pool_executor(worker_registry: str, method: str) -> None:
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context(method)) as executor:
        assert list(executor.map(_block, range(20))) == list(range(20))
    assert _recorded(worker_registry) == sorted(f"block-{i}" for i in range(20))


def test_track_in_joblib_workers(worker_registry: str) -> None:
    assert joblib.Parallel(n_jobs=3)(joblib.delayed(_block)(i) for i in range(15)) == list(range(15))
    assert _recorded(worker_registry) == sorted(f"block-{i}" for i in range(15))


def test_a_forked_child_of_a_process_with_an_open_registry_records_its_own_run(worker_registry: str) -> None:
    # The parent has a writer thread and a connection; the child must use neither, nor close
    # them (which would drop locks the parent's SQLite counts on), and its runs are its own.
    _block(-1)
    context = multiprocessing.get_context("fork")
    with notebook_carbon.track(name="parent", quiet=True):
        child = context.Process(target=_block, args=(-2,))
        child.start()
        child.join(60)
    assert child.exitcode == 0
    _block(-3)  # the parent's writer still works after the child closed its copy of everything
    assert _recorded(worker_registry) == sorted(["block--1", "block--2", "block--3", "parent"])


def _probed_in_child(queue) -> None:
    session = notebook_carbon.session.current()
    queue.put(session._detection is None)


def test_a_forked_worker_probes_its_own_meters(worker_registry: str) -> None:
    # The parent's meters watch the parent's process tree: a worker must not be charged it.
    import notebook_carbon.session

    parent = notebook_carbon.session.current()
    parent.detection()  # probed here, as a notebook's session always is before a pool starts
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_probed_in_child, args=(queue,))
    child.start()
    assert queue.get(timeout=60) is True
    child.join(60)
    assert parent._detection is not None  # the parent keeps its own


RANK = "import sys, time, notebook_carbon\nwith notebook_carbon.track(name='rank', quiet=True):\n    time.sleep(float(sys.argv[1]))\n"
DRIVER = (
    "%%carbon --job lab-job --name driver\n"
    "import os, subprocess, sys, time\n"
    "ranks = [subprocess.Popen([sys.executable, '-c', {rank!r}, seconds], start_new_session=True,\n"
    "                          env={{**os.environ, 'RANK': str(r), 'WORLD_SIZE': '2'}})\n"
    "         for r, seconds in enumerate(('120', '6'))]\n"
    "time.sleep(120)\n"
)


def test_a_kernel_driving_a_job_killed_beside_its_ranks_and_a_reading_cli_loses_no_part(registry_url: str) -> None:
    """A ``%%carbon --job`` cell in a real kernel starts two ranks; the CLI reads the registry while
    they run; one rank and then the kernel are SIGKILLed. Every part keeps its energy, the dead are
    marked crashed, the survivor's end is kept, and the kept totals stay exact."""
    env = {**os.environ, "NOTEBOOK_CARBON_REGISTRY": registry_url, "NOTEBOOK_CARBON_REGION": "FR",
           "NOTEBOOK_CARBON_GPU": "off", "NOTEBOOK_CARBON_CHECKPOINT_INTERVAL_S": "0.2"}  # fmt: skip
    subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True)  # the registry exists
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        execute(client, "%load_ext notebook_carbon")
        client.execute(DRIVER.format(rank=RANK))
        deadline, parts_ = time.monotonic() + 90, []
        while time.monotonic() < deadline and not (len(parts_) == 3 and all(p["energy_j"] for p in parts_)):
            time.sleep(0.2)
            with Registry.open(registry_url) as reg:
                run = next((r for r in reg.runs() if r["job"] == "lab-job"), None)
                parts_ = parts(reg, run["uid"]) if run else []
        assert len(parts_) == 3 and all(p["energy_j"] for p in parts_), parts_
        listed = subprocess.run([CLI, "runs", "--parts", "--registry", registry_url], env=env,
                                capture_output=True, text=True)  # fmt: skip
        assert listed.returncode == 0 and "lab-job" in listed.stdout, listed.stderr
        os.kill(next(p["pid"] for p in parts_ if p["rank"] == 0), signal.SIGKILL)
        manager.signal_kernel(signal.SIGKILL)  # the driver: no atexit, no post_run_cell
    finally:
        if manager.is_alive():
            manager.shutdown_kernel(now=True)
        client.stop_channels()
    survivor = next(p["pid"] for p in parts_ if p["rank"] == 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and os.path.exists(f"/proc/{survivor}"):
        time.sleep(0.2)
    listed = subprocess.run([CLI, "runs", "--registry", registry_url], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr  # a reader marks the dead parts
    with Registry.open(registry_url) as reg:
        (run,) = [r for r in reg.runs() if r["job"] == "lab-job"]
        found = {p["rank"]: p for p in parts(reg, run["uid"])}
        check(reg, run["project"])
    assert {rank: p["status"] for rank, p in found.items()} == {None: "crashed", 0: "crashed", 1: "ok"}
    assert all(p["energy_j"] > 0 for p in found.values()) and run["status"] == "crashed"
