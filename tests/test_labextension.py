"""The sidebar's pure helpers (labextension/src/format.ts), unit-tested by node's own test runner.

``pip install -e .`` builds the extension and installs its node packages (the build hook runs
``jlpm``); this runs ``jlpm test`` there: TypeScript compiled, then ``node --test``. Skipped without
node or jlpm, except under CI, where it fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pg import in_ci

EXTENSION = Path(__file__).resolve().parent.parent / "labextension"


def _jlpm() -> str | None:
    beside = Path(sys.executable).with_name("jlpm")
    return str(beside) if beside.exists() else shutil.which("jlpm")


def test_sidebar_helpers_pass_their_unit_tests():
    jlpm = _jlpm()
    missing = [name for name, found in (("node", shutil.which("node")), ("jlpm", jlpm)) if not found]
    if missing:
        reason = f"{' and '.join(missing)} not found: install Node.js and the test extra (jupyter-builder)"
        if in_ci():
            pytest.fail(reason + "; CI is set, so the front-end tests must run", pytrace=False)
        pytest.skip(reason)
    if not (EXTENSION / "node_modules").is_dir():  # installed by the build hook; again if removed since
        done = subprocess.run([jlpm, "install", "--immutable"], cwd=EXTENSION, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    done = subprocess.run([jlpm, "test"], cwd=EXTENSION, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "# fail 0" in output and "# pass " in output, output[-2000:]
