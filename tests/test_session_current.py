"""session.current(): the session in use, found without importing the magic."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

import notebook_carbon.session
from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.session import Session, attach, current, detach, shell_session, state
from notebook_carbon.settings import Settings


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No default session yet and no extension attached, as in a new process."""
    monkeypatch.setenv("NOTEBOOK_CARBON_REGISTRY", str(tmp_path / "default.sqlite"))
    monkeypatch.setattr(state, "_default", None)
    monkeypatch.setattr(state, "_attached", {})


def test_without_an_extension_one_process_wide_session_made_on_first_use(fresh, tmp_path):
    assert state._default is None and shell_session() is None
    session = current()
    assert isinstance(session, Session) and current() is session
    assert session.settings.registry_location() == str(tmp_path / "default.sqlite")


def test_the_loaded_extensions_session_is_current_until_it_unloads(fresh, tmp_path):
    mine = Session(Settings(registry=str(tmp_path / "mine.sqlite")))
    shell = InteractiveShell.instance()
    load_ipython_extension(shell, session=mine)
    try:
        assert current() is mine and shell_session() is mine
    finally:
        unload_ipython_extension(shell)
    assert shell_session() is None and current() is not mine
    assert current().settings.registry_location() == str(tmp_path / "default.sqlite")


def test_a_session_attached_to_a_shell_that_is_not_running_is_not_current(fresh, tmp_path):
    other = Session(Settings(registry=str(tmp_path / "other.sqlite")))
    elsewhere = object()  # not the running IPython shell
    attach(elsewhere, other)
    try:
        assert shell_session() is None and current() is not other
    finally:
        detach(elsewhere)
    detach(elsewhere)  # harmless twice
    assert state._attached == {}


def test_track_and_the_dashboard_find_the_session_without_the_magic(tmp_path):
    """The API and the widgets sit below the magic: using them never imports it."""
    code = f"""
import sys
import notebook_carbon
from notebook_carbon.widgets import Dashboard
with notebook_carbon.track("block", quiet=True):
    pass
board = Dashboard()
assert board.session is None and board.snapshot is not None
assert notebook_carbon.session.current() is notebook_carbon.session.current()
print("notebook_carbon.magic" in sys.modules)
"""
    env = {"NOTEBOOK_CARBON_REGISTRY": str(tmp_path / "r.sqlite"), "NOTEBOOK_CARBON_REGION": "FR", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env={**env, "PYTHONPATH": ":".join(sys.path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_the_package_exports_current():
    assert notebook_carbon.session.current is current
    assert {"current", "shell_session", "attach", "detach"} <= set(notebook_carbon.session.__all__)
