"""Interrupts at any moment: no run is left open, no window keeps metering an idle kernel.

A kernel's interrupt is a SIGINT, which Python turns into a KeyboardInterrupt wherever the main
thread happens to be: in the cell, in IPython, or in our code opening or closing a run. Before, 3
of 195 interrupts left a run ``running`` whose window went on metering (62 J in 6 s with no cell
running). The child below is a real IPython shell whose own thread sends SIGINT at random moments
while it runs hundreds of metered cells (whose time is mostly our opening and closing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from notebook_carbon.registry.parts import parts
from notebook_carbon.registry.store import Registry

CHILD = r"""
import json, os, random, signal, sys, threading, time
from IPython.core.interactiveshell import InteractiveShell
import notebook_carbon
from notebook_carbon import measure, session as session_mod
from notebook_carbon.magic import load_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter

registry, cells, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
session = Session(Settings(registry=registry, region="FR"),
                  detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 10.0),), notes=()))
shell = InteractiveShell.instance()
ext = load_ipython_extension(shell, session=session)
shell.user_ns["notebook_carbon"] = notebook_carbon
import stack_data.core  # IPython's tracebacks import it lazily; an interrupt there would break IPython itself
shell.run_cell("%%carbon --quiet\nx = 0")  # everything imported before the interrupts begin
shell.run_cell("1/0")
rng = random.Random(seed)
stop = threading.Event()
sent = 0

def interrupter():
    global sent
    while not stop.is_set():
        time.sleep(rng.uniform(0.0005, 0.004))
        os.kill(os.getpid(), signal.SIGINT)
        sent += 1

thread = threading.Thread(target=interrupter, daemon=True)
thread.start()
done = 0
while done < cells:
    try:
        source = rng.choice([
            "%%carbon --quiet\nx = 1",
            "%%carbon --quiet --name n\nx = 2",
            "with notebook_carbon.track(quiet=True):\n    x = 3",
            "%%carbon --quiet\nwith notebook_carbon.track(quiet=True):\n    x = 4",
        ])
        shell.run_cell(source)
        done += 1
    except KeyboardInterrupt:
        pass  # an interrupt outside any cell: the researcher pressed it between two cells
stop.set()
while thread.is_alive():
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
# the interrupter is gone: let a last pending interrupt land before looking
for _ in range(3):
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass
for _ in range(3):
    try:
        session.writer().flush(30)
        break
    except KeyboardInterrupt:
        pass
# The researcher's next cell: a cell whose post-run event an interrupt kept away is only known to
# be over when the next cell at its depth starts (its run, if any, was closed already).
shell.run_cell("pass")
print(json.dumps({
    "sent": sent,
    "open_windows": measure._SAMPLER.open_windows(),
    "open_runs": len(session_mod._open_runs),
    "open_cells": len(ext._open),
}))
"""


def test_interrupts_at_random_moments_leave_no_run_open(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    registry = tmp_path / "registry.sqlite"
    total_sent = 0
    for seed in (1, 2, 3):
        done = subprocess.run(
            [sys.executable, str(script), str(registry), "150", str(seed)],
            capture_output=True, text=True, timeout=240,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        state = json.loads(done.stdout.strip().splitlines()[-1])
        total_sent += state["sent"]
        assert state["open_windows"] == 0 and state["open_runs"] == 0 and state["open_cells"] == 0, state
    assert total_sent > 100  # the interrupts did land, many times
    with Registry.open(str(registry)) as reg:
        runs = reg.runs()
        assert runs and all(r["status"] != "running" for r in runs)
        assert all(r["ended_at"] is not None and r["energy_j"] is not None for r in runs)
        # no window went on metering after its cell: a run's energy is that of its own duration
        for run in runs:
            assert abs(run["energy_j"] - 10.0 * run["duration_s"]) <= 0.05 + 0.02 * run["energy_j"], run
            for part in parts(reg, run["uid"]):
                assert part["status"] != "running" and part["energy_j"] <= run["energy_j"] + 1e-9


SWEEP = r"""
import linecache, sys, threading
from IPython.core.interactiveshell import InteractiveShell
import notebook_carbon
from notebook_carbon import measure
from notebook_carbon.magic import load_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.session import Session, state
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter

registry, kind = sys.argv[1], sys.argv[2]
session = Session(Settings(registry=registry, region="FR"),
                  detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 10.0),), notes=()))
shell = InteractiveShell.instance()
ext = load_ipython_extension(shell, session=session)
shell.user_ns["notebook_carbon"] = notebook_carbon
shell.showtraceback = lambda *args, **kwargs: None
source = {
    "magic": "%%carbon --quiet\nx = 1",
    "track": "with notebook_carbon.track(quiet=True):\n    x = 3",
    "nested": "%%carbon --quiet\nwith notebook_carbon.track(quiet=True):\n    x = 4",
}[kind]
shell.run_cell(source)
OURS = ("notebook_carbon/magic/", "notebook_carbon/session/", "notebook_carbon/api.py", "notebook_carbon/measure.py")
main, leaks, n = threading.main_thread(), [], 0
while True:
    n += 1
    count, where = [0], [None]

    def local(frame, event, arg):
        # (not on a with line: a tracer's interrupt there can land between a lock's acquire and the
        # block that releases it, which CPython's own bytecode never allows a signal to do)
        if event == "line" and not linecache.getline(frame.f_code.co_filename, frame.f_lineno).lstrip().startswith("with "):
            count[0] += 1
            if count[0] == n:
                where[0] = f"{frame.f_code.co_filename.split('notebook_carbon/')[-1]}:{frame.f_lineno}"
                raise KeyboardInterrupt
        return local

    def calls(frame, event, arg):
        if threading.current_thread() is main and any(f in frame.f_code.co_filename for f in OURS):
            return local
        return None

    sys.settrace(calls)
    try:
        shell.run_cell(source)
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    if where[0] is None:
        break  # every line of ours this cell runs has had its interrupt
    shell.run_cell("pass")  # the researcher goes on with a cell that meters nothing
    left = (len(state._open_runs), measure._SAMPLER.open_windows(), len(ext._open))
    if left != (0, 0, 0):
        leaks.append((where[0], left))
        for run in list(state._open_runs):
            run.finish("interrupted")
        ext._open.clear()
print("LINES", n - 1)
for leak in leaks:
    print("LEAK", leak)
"""


@pytest.mark.parametrize("kind", ["magic", "track", "nested"])
def test_an_interrupt_on_any_line_of_ours_leaves_nothing_open(tmp_path: Path, kind: str) -> None:
    # Deterministic where the random interrupts above are statistical: the cell is run once for
    # every line of our code it executes, with a KeyboardInterrupt raised on that line.
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "r.sqlite"), kind],
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert int(next(line for line in lines if line.startswith("LINES")).split()[1]) > 100
    assert [line for line in lines if line.startswith("LEAK")] == []
