"""JupyterLab and a real browser for the browser tests: a throwaway server, Debian's chromium
driven by Playwright, and the few page actions the tests share.

``.ci/run`` installs Debian's ``chromium`` and exports ``NOTEBOOK_CARBON_TEST_CHROMIUM``
(default ``/usr/bin/chromium``). Without chromium, ``jupyterlab`` or ``playwright`` the browser
tests skip, saying what to install, except under CI (``CI`` set), where they fail: CI must test the
notebook in a browser, not skip it silently. ``playwright install`` is never needed: its browser
downloads are not used. ``NOTEBOOK_CARBON_TEST_ARTIFACTS``, when set, is a folder that receives a
copy of every screenshot.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM_VARIABLE = "NOTEBOOK_CARBON_TEST_CHROMIUM"
ARTIFACTS_VARIABLE = "NOTEBOOK_CARBON_TEST_ARTIFACTS"
# Read at import: the autouse ``clean_environ`` fixture removes NOTEBOOK_CARBON_* from each test.
CHROMIUM_SET = os.environ.get(CHROMIUM_VARIABLE) or None
ARTIFACTS = os.environ.get(ARTIFACTS_VARIABLE) or None
CHROMIUM = CHROMIUM_SET or "/usr/bin/chromium"

CHROMIUM_ARGS = (
    "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

# What JupyterLab shows a first-time user and a test does not want: a news prompt over the page,
# requests to the internet, and cells missing from the DOM while scrolled out of view.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def missing() -> str | None:
    """Why the browser tests cannot run here, saying what to install; None when they can."""
    needs = []
    packages = [name for name in ("jupyterlab", "playwright") if importlib.util.find_spec(name) is None]
    if packages:
        needs.append(f"pip install {' '.join(packages)}")
    if CHROMIUM_SET is None and not os.access(CHROMIUM, os.X_OK):
        needs.append(
            f"no chromium at {CHROMIUM}: apt-get install chromium (Debian's; never `playwright install`) "
            f"or set {CHROMIUM_VARIABLE} to a chromium"
        )
    if not needs:
        return None
    return f"the browser tests cannot run: {'; '.join(needs)}; or run .ci/run, which installs what they need"


def unusable() -> str | None:
    """Why a chromium named by ``NOTEBOOK_CARBON_TEST_CHROMIUM`` cannot be used: a configuration
    error, reported as a failure rather than a skip."""
    if CHROMIUM_SET is not None and not os.access(CHROMIUM_SET, os.X_OK):
        return f"{CHROMIUM_VARIABLE} names {CHROMIUM_SET}, which is not an executable; unset it to skip"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving ``root``, with its own Jupyter and IPython
    directories under ``home`` (the extensions installed in this Python's ``share/jupyter`` are
    still found: Jupyter always searches ``sys.prefix``) and kernels recording into ``registry``
    (a path or URL).
    Started by the constructor, stopped by ``close``."""

    START_TIMEOUT_S = 60.0

    def __init__(self, root: Path, home: Path, registry: str) -> None:
        self.root = root
        self.registry = registry
        self.token = secrets.token_hex(16)
        self.log_path = home / "jupyterlab.log"
        dirs = {
            name: home / name for name in ("config", "data", "runtime", "ipython", "xdg-config", "xdg-data")
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        for name, values in LAB_SETTINGS.items():
            path = dirs["config"] / "lab" / "user-settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        # Built here, not from the test's environment: this server may outlive one test's
        # ``clean_environ``, and must not see a developer's NOTEBOOK_CARBON_* or notebook-carbon config.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("NOTEBOOK_CARBON_", "JUPYTER", "JPY_"))
        }
        env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            IPYTHONDIR=str(dirs["ipython"]),
            XDG_CONFIG_HOME=str(dirs["xdg-config"]),
            XDG_DATA_HOME=str(dirs["xdg-data"]),
            NOTEBOOK_CARBON_REGISTRY=registry,
            PYTHONUNBUFFERED="1",
        )
        for _ in range(3):  # a free port can be taken by someone else before the server binds it
            self.port = _free_port()
            if self._start(env):
                return
        raise RuntimeError(f"JupyterLab found no free port in 3 tries; its log:\n{self._log_tail()}")

    def _start(self, env: dict[str, str]) -> bool:
        """Start the server on ``self.port``; False when that port was taken meanwhile."""
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.allow_root=True",  # CI runs as root
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            # A session of its own, so that ``close`` can end the kernels it started with it.
            self.process = subprocess.Popen(
                command, env=env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "is not available" in self._log_tail():
                    return False
                raise RuntimeError(
                    f"JupyterLab exited with status {self.process.returncode}; its log:\n{self._log_tail()}"
                )
            try:
                self.api("status")
                return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.close()
        raise RuntimeError(
            f"JupyterLab did not answer in {self.START_TIMEOUT_S:.0f} s; its log:\n{self._log_tail()}"
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, notebook: str) -> str:
        """JupyterLab with ``notebook`` open; ``reset``: not the layout an earlier page left, which
        would reopen its notebooks and start their kernels again."""
        return f"{self.base_url}/lab/tree/{notebook}?reset&token={self.token}"

    def api(self, path: str, method: str = "GET"):
        """The decoded JSON answer of the REST API at ``/api/PATH`` (None when empty)."""
        request = urllib.request.Request(
            f"{self.base_url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session and its kernel, as closing a notebook with "Shut Down Kernel" does."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def close(self) -> None:
        """Stop the server (it shuts its kernels down), killing it and whatever it started when
        it does not exit in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:  # kernels left behind by a server that was killed or hung
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- page actions ---------------------------------------------------------------------------------

CODE_CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell"


_KERNEL_IDLE = """
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    const name = panel && panel.querySelector('.jp-Toolbar-kernelName');
    const indicator = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
    return name !== null && indicator !== null
        && !['', 'No Kernel'].includes(name.textContent.trim()) && indicator.dataset.status === 'idle';
"""


def open_notebook(page, lab: JupyterLab, name: str, *, timeout_s: float = 60) -> None:
    """Open notebook ``name`` of the server's root in JupyterLab and wait for its kernel to be idle."""
    page.goto(lab.lab_url(name))
    page.wait_for_selector(f"{CODE_CELLS} .jp-InputPrompt", timeout=timeout_s * 1e3)
    # more room for the notebook, and a screenshot that shows it: close the file browser
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.click()
    wait_until_idle(page, timeout_s=timeout_s)


def wait_until_idle(page, *, timeout_s: float) -> None:
    """Wait for the notebook's kernel to be started, connected and idle. (The execution indicator
    reads "idle" before any kernel is attached too: Run All then would ask for a kernel instead.)"""
    page.wait_for_function(f"() => {{ {_KERNEL_IDLE} }}", timeout=timeout_s * 1e3, polling=100)


def menu(page, *path: str) -> None:
    """Click through the menu bar, as a user does: ``menu(page, "Run", "Run All Cells")``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=_exactly(path[0])).click()
    for label in path[1:]:
        page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=_exactly(label)).click()


def _exactly(text: str) -> re.Pattern:
    return re.compile(f"^{re.escape(text)}$")


def run_all_cells(page, *, timeout_s: float = 120) -> None:
    """Run > Run All Cells, then wait until the run is over: no cell queued or running (``[*]``)
    and the kernel idle. A cell that raises stops the run, leaving the cells after it unexecuted;
    ``unexecuted_cells`` tells."""
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        f"""selector => {{
            const prompts = [...document.querySelectorAll(selector + ' .jp-InputPrompt')]
                .map(p => p.textContent.trim());
            const started = prompts.some(p => /^\\[(\\d+|\\*)\\]:$/.test(p));  // each began as [ ]:
            const idle = (() => {{ {_KERNEL_IDLE} }})();
            return started && !prompts.includes('[*]:') && idle;
        }}""",
        arg=CODE_CELLS,
        timeout=timeout_s * 1e3,
        polling=200,
    )


def unexecuted_cells(page) -> list[int]:
    """Indexes (among the code cells) of the cells that show no execution count."""
    prompts = page.eval_on_selector_all(
        f"{CODE_CELLS} .jp-InputPrompt", "ps => ps.map(p => p.textContent.trim())"
    )
    return [i for i, prompt in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", prompt)]


def save_notebook(page, *, timeout_s: float = 30) -> None:
    """File > Save Notebook, and wait until its tab is no longer marked modified."""
    menu(page, "File", "Save Notebook")
    page.wait_for_selector(
        ".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current:not(.jp-mod-dirty)", timeout=timeout_s * 1e3
    )


def output_texts(page) -> list[list[str]]:
    """The text of each code cell's outputs, one list per code cell, in notebook order."""
    return page.eval_on_selector_all(
        CODE_CELLS,
        "cells => cells.map(c => [...c.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent))",
    )


def screenshot(page, directory: Path, name: str) -> Path:
    """A PNG of the page in ``directory``, copied to ``NOTEBOOK_CARBON_TEST_ARTIFACTS`` when set."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path))
    if ARTIFACTS:
        Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(ARTIFACTS) / path.name)
    return path
