"""CPU the live meter and the sampler use while a metered cell idles, in real kernels.

    python benchmarks/live_cpu.py            # 5 rounds of 30 s cells (about 8 minutes)
    python benchmarks/live_cpu.py --quick    # 1 round of 5 s cells: checks that it works
    python benchmarks/live_cpu.py --rounds 3 --seconds 20

Two kernels, each with ``%load_ext notebook_carbon``, the machine's real meters and default settings,
a throwaway registry and config:

- one driven by a front end with a widget manager (``notebook_carbon.testing.FakeWidgetFrontEnd``,
  the client the tests use): its ``%%carbon`` cells get the live line, updated once a second;
- one driven by a front end without widgets (the same client, ``widgets=False``): its ``%%carbon``
  cells run as under nbclient, with the sampler and no live line.

After one warm-up cell per kernel (the first metered cell imports SQLAlchemy, the first live line
ipywidgets: once per kernel), each round runs, in a rotating order, ``time.sleep(T)`` plain and under
``%%carbon`` in the first kernel, and under ``%%carbon`` in the second. A cell's figure is the kernel
process's CPU time (all its threads, user + system, from ``psutil``) over the wall time, from sending
the request to the kernel going idle. The report gives the median of the rounds per variant and the
medians of the per-round differences from the plain cell; the target is <= 1 % of one core for the
live meter and the sampler together. A second figure is what the live path adds to a quick metered
cell in a widget front end (a meter is made for every cell, then never shown): 150 ``run_cell``
calls each way, alternated, inside the first kernel.

Needs the test extra (the front end lives in the tests) and the repository root as working directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import psutil

from jupyter_client.manager import start_new_kernel

from notebook_carbon.testing import FakeWidgetFrontEnd

DETECTED = "current_extension().session.detection().meters"
QUICK_CELLS = """
import contextlib, io, statistics, time
from notebook_carbon.magic import current_extension
ext, shell, times = current_extension(), get_ipython(), {"on": [], "off": []}
with contextlib.redirect_stdout(io.StringIO()):
    for i in range(20 + 2 * ROUNDS):
        state = "on" if i % 2 else "off"
        ext.frontend.disabled = None if state == "on" else "benchmark: the live path off"
        t0 = time.perf_counter()
        shell.run_cell(f"%%carbon\\nx = {i}")
        if i >= 20:
            times[state].append(time.perf_counter() - t0)
ext.frontend.disabled = None
print(json.dumps({k: statistics.median(v) for k, v in times.items()}))
"""


def start(workdir: Path, name: str, *, widgets: bool):
    home = workdir / name
    home.mkdir()
    (home / "config.toml").write_text("")  # the user's own config must not change the figures
    env = {
        **os.environ,
        "IPYTHONDIR": str(home / "ipython"),
        "NOTEBOOK_CARBON_CONFIG": str(home / "config.toml"),
        "NOTEBOOK_CARBON_REGISTRY": str(home / "registry.sqlite"),
        "NOTEBOOK_CARBON_REGION": "FR",
    }
    manager, client = start_new_kernel(kernel_name="python3", env=env, startup_timeout=60)
    front = FakeWidgetFrontEnd(client, widgets=widgets)
    front.run("%load_ext notebook_carbon")
    front.run("import json, os, time")
    # Warm-up, not counted: the first metered cell imports SQLAlchemy (registry writer) and, in a
    # widget front end, ipywidgets (the first live line): once per kernel, not what an idle cell costs.
    output(front, "%%carbon --name warm-up\ntime.sleep(2.5)")
    pid = int(output(front, "print(os.getpid())"))
    front.run("from notebook_carbon.magic import current_extension")
    answered = output(front, "print(current_extension().frontend._answer)")
    if answered != str(widgets):
        raise RuntimeError(f"the kernel's front end answer is {answered}, expected {widgets}")
    return manager, client, front, psutil.Process(pid)


def output(front: FakeWidgetFrontEnd, code: str) -> str:
    messages = front.run(code)
    errors = [m for m in messages if m["msg_type"] == "error"]
    if errors:
        raise RuntimeError(f"benchmark cell failed: {code!r}: {errors[0]['content']['evalue']}")
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream").strip()


def cpu_share(front: FakeWidgetFrontEnd, process: psutil.Process, code: str) -> tuple[float, int]:
    """Share of one core the kernel used while running ``code`` (0.01 = 1 %), and live values shown."""
    times = process.cpu_times()
    t0 = time.monotonic()
    messages = front.run(code)
    wall_s = time.monotonic() - t0
    after = process.cpu_times()
    if any(m["msg_type"] == "error" for m in messages):
        raise RuntimeError(f"benchmark cell failed: {code!r}")
    used_s = (after.user - times.user) + (after.system - times.system)
    updates = sum(1 for m in messages if m["msg_type"] in ("display_data", "comm_msg"))
    return used_s / wall_s, updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 5 s cells")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    cells = {
        "plain": f"time.sleep({seconds})",
        "live": f"%%carbon\ntime.sleep({seconds})",
        "headless": f"%%carbon\ntime.sleep({seconds})",
    }
    figures: dict[str, list[float]] = {name: [] for name in cells}
    shown: list[int] = []
    with tempfile.TemporaryDirectory(prefix="nc-live-cpu-") as tmp:
        lab = start(Path(tmp), "lab", widgets=True)
        headless = start(Path(tmp), "headless", widgets=False)
        kernels = {"plain": lab, "live": lab, "headless": headless}
        try:
            meters = output(lab[2], "print(', '.join(f'{m.component} {m.method}' for m in " + DETECTED + "))")
            names = list(cells)
            for r in range(rounds):
                for name in names[r % 3 :] + names[: r % 3]:
                    _, _, front, process = kernels[name]
                    share, updates = cpu_share(front, process, cells[name])
                    figures[name].append(share)
                    if name == "live":
                        shown.append(updates)
                shares = ", ".join(f"{k} {v[-1]:.2%}" for k, v in figures.items())
                print(f"round {r + 1}/{rounds}: {shares}", file=sys.stderr)
            quick = json.loads(output(lab[2], QUICK_CELLS.replace("ROUNDS", "150")))
        finally:
            for manager, client, _, _ in (lab, headless):
                client.stop_channels()
                manager.shutdown_kernel(now=True)
    print(report(figures, shown, quick, rounds=rounds, seconds=seconds, meters=meters, argv=sys.argv[1:]))


def report(figures, shown, quick, *, rounds: int, seconds: float, meters: str, argv: list[str]) -> str:
    def median(values) -> str:
        return f"{statistics.median(values):.2%}"

    def paired(name: str) -> str:
        return f"{statistics.median(a - b for a, b in zip(figures[name], figures['plain'])):+.2%}"

    live_added = statistics.median(a - b for a, b in zip(figures["live"], figures["plain"]))
    verdict = "met" if live_added <= 0.01 else "missed"
    lines = [
        f"- Command: `python benchmarks/live_cpu.py{' ' + ' '.join(argv) if argv else ''}`",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {rounds} rounds of {seconds:g} s"
        " cells",
        f"- Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; meters: {meters}",
        f"- Software: Python {platform.python_version()}, ipykernel {version('ipykernel')}, "
        f"ipywidgets {version('ipywidgets')}, notebook-carbon {version('notebook-carbon')}",
        "",
        "| cell (`time.sleep`) | kernel CPU, share of one core (median) | minus the plain cell"
        " (median of pairs) |",
        "|---|---|---|",
        f"| plain, no magic | {median(figures['plain'])} | - |",
        f"| `%%carbon`, front end without widgets (sampler only) | {median(figures['headless'])}"
        f" | {paired('headless')} |",
        f"| `%%carbon`, widget front end (sampler + live line) | {median(figures['live'])}"
        f" | {paired('live')} |",
        "",
        f"Live values shown per {seconds:g} s cell (display + updates): median {statistics.median(shown):g}.",
        f"Target: the live meter and the sampler <= 1 % of one core: {live_added:+.2%}, **{verdict}**.",
        "",
        f"A quick `%%carbon` cell in a widget front end: {quick['on'] * 1e3:.2f} ms with the live path, "
        f"{quick['off'] * 1e3:.2f} ms without (medians of 150 alternated `run_cell` calls in the kernel;"
        f" added {(quick['on'] - quick['off']) * 1e6:+.0f} µs).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
