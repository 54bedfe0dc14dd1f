"""track() against a registry it cannot write: one warning naming the cause, nothing else changed.

Every run used to be lost in silence (exit code 0, no warning) when the registry could not be
written. Each case runs the blocks in a child process, as a sweep script would, so the warnings
are those a researcher sees. Permissions do not bind root, so as root the child runs as the
unprivileged user ``nobody``; a full disk and a read-only file system are real mounts made in a
private mount namespace of the child (``unshare``), which leaves the machine's own mounts alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from notebook_carbon.registry.store import Registry

ROOT = os.geteuid() == 0

BLOCKS = r"""
import json, sys, warnings
import notebook_carbon
name = sys.argv[1] if len(sys.argv) > 1 else "blocked"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with notebook_carbon.track(name=name, quiet=True):
        result = 6 * 7
    with notebook_carbon.track(name="second", quiet=True):
        second = "ran"
print(json.dumps({
    "result": result, "second": second,
    "warnings": [[w.category.__name__, str(w.message), w.filename] for w in caught],
}))
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="notebook-carbon-unwritable-"))
    path.chmod(0o777)
    yield path
    subprocess.run(["umount", "-l", str(path / "mnt")], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_registry(path: Path) -> None:
    with Registry.open(str(path)) as reg:
        reg.record_run({"uid": "a" * 32, "project": "default", "name": "kept"}, {"status": "ok", "energy_j": 1.0})
    path.chmod(0o666)


def run_blocks(registry: str, *, as_nobody: bool = False, prefix: list[str] | None = None,
               setup: str = "", after: str = "", name: str = "blocked") -> dict:
    env = {**os.environ, "NOTEBOOK_CARBON_REGISTRY": registry, "NOTEBOOK_CARBON_REGION": "FR",
           "XDG_CONFIG_HOME": str(Path(registry).parent)}  # a config home the child may read, with no file
    command = [sys.executable, "-c", BLOCKS, name]
    if as_nobody and ROOT:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    if setup or after:  # shell commands around the blocks, in the child's own mount namespace
        command = ["sh", "-ec", f'{setup or ":"}\n"$@"\n{after or ":"}', "sh", *command]
    if prefix:
        command = [*prefix, *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr  # the script itself never fails
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_one_warning(outcome: dict, *needles: str) -> str:
    assert outcome["result"] == 42 and outcome["second"] == "ran"  # the blocks' own work stands
    ours = [w for w in outcome["warnings"] if w[0] == "NotebookCarbonWarning"]
    assert len(ours) == 1, outcome["warnings"]  # two blocks, one cause: said once
    message = ours[0][1]
    for needle in needles:
        assert needle in message, message
    assert ours[0][2] == "<string>"  # it points at the user's block, not at our code
    return message


def private_mounts() -> list[str]:
    """The prefix that runs a command in a mount namespace of its own (as root, or mapped to root)."""
    return ["unshare", "--mount"] if ROOT else ["unshare", "--mount", "--map-root-user"]


def test_truncated_file(shared_dir: Path) -> None:
    path = shared_dir / "registry.sqlite"
    make_registry(path)
    path.write_bytes(path.read_bytes()[:3000])  # a copy cut short
    before = digest(path)
    message = check_one_warning(run_blocks(str(path)), str(path))
    assert "damaged" in message or "malformed" in message or "not an SQLite database" in message
    assert digest(path) == before


def test_newer_schema(shared_dir: Path) -> None:
    path = shared_dir / "registry.sqlite"
    make_registry(path)
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    before = digest(path)
    check_one_warning(run_blocks(str(path)), "schema version 99", "pip install -U notebook-carbon")
    assert digest(path) == before


def test_read_only_file(shared_dir: Path) -> None:
    path = shared_dir / "registry.sqlite"
    make_registry(path)
    path.chmod(0o444)
    before = digest(path)
    check_one_warning(run_blocks(str(path), as_nobody=True), str(path), "writable")
    assert digest(path) == before


def test_read_only_directory(shared_dir: Path) -> None:
    folder = shared_dir / "lab"
    folder.mkdir()
    path = folder / "registry.sqlite"
    make_registry(path)
    folder.chmod(0o555)
    before = digest(path)
    try:
        check_one_warning(run_blocks(str(path), as_nobody=True), str(path), "writable")
    finally:
        folder.chmod(0o777)
    assert digest(path) == before


def test_read_only_file_system(shared_dir: Path) -> None:
    folder = shared_dir / "mnt"
    folder.mkdir()
    path = folder / "registry.sqlite"
    make_registry(path)
    before = digest(path)
    setup = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}"
    check_one_warning(run_blocks(str(path), prefix=private_mounts(), setup=setup), str(path))
    assert digest(path) == before


SEED = """
import sys
from notebook_carbon.registry.store import Registry
with Registry.open(sys.argv[1]) as reg:
    reg.record_run({"uid": "a" * 32, "project": "default", "name": "kept"}, {"status": "ok", "energy_j": 1.0})
"""


def test_full_disk(shared_dir: Path) -> None:
    folder = shared_dir / "mnt"
    folder.mkdir()
    path = folder / "registry.sqlite"
    (shared_dir / "seed.py").write_text(SEED)
    # A 1 MiB file system holding a registry, filled to the last byte: no run can be written.
    setup = (
        f"mount -t tmpfs -o size=1m tmpfs {folder}\n"
        f"{sys.executable} {shared_dir / 'seed.py'} {path}\n"
        f"dd if=/dev/zero of={folder}/filler bs=1k 2>/dev/null || true\n"
        f"sha256sum {path} > {shared_dir / 'before.txt'}"
    )
    after = f"sha256sum {path} > {shared_dir / 'after.txt'}"
    outcome = run_blocks(str(path), prefix=private_mounts(), setup=setup, after=after)
    check_one_warning(outcome, str(path), "full")
    assert (shared_dir / "before.txt").read_text() == (shared_dir / "after.txt").read_text()


def test_postgresql_server_down(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/lab"
    check_one_warning(run_blocks(url), f"127.0.0.1:{port}", "cannot connect", "server is running")


def test_nul_in_a_name(registry_url: str) -> None:
    # PostgreSQL cannot store a NUL in text: the block is said to run unmetered, on either database.
    with Registry.open(registry_url):
        pass
    env = {**os.environ, "NOTEBOOK_CARBON_REGISTRY": registry_url, "NOTEBOOK_CARBON_REGION": "FR"}
    code = BLOCKS.replace('sys.argv[1] if len(sys.argv) > 1 else "blocked"', "'bad' + chr(0) + 'name'")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    check_one_warning(json.loads(done.stdout.strip().splitlines()[-1]), "NUL", "runs unmetered")
    with Registry.open(registry_url) as reg:  # the block with a good name is recorded
        assert [r["name"] for r in reg.runs()] == ["second"]


READER = r"""
import contextlib, io, json, sys
from notebook_carbon.registry.store import Registry
from notebook_carbon import analysis
from notebook_carbon.cli import main
from notebook_carbon.server.reader import RegistryReader
with Registry.open(sys.argv[1], read_only=True) as reg:
    names = [r["name"] for r in reg.runs()]
frame = analysis.runs(registry=sys.argv[1])
codes = {}
for command in (["runs"], ["sweeps"], ["summary"], ["statement"], ["check", "--budget", "1kg"]):
    with contextlib.redirect_stdout(io.StringIO()):
        codes[command[0]] = main([*command, "--registry", sys.argv[1]])
from notebook_carbon.settings import Settings
reader = RegistryReader(sys.argv[1], settings=Settings())
server = reader.summary("default")["runs"]
reader.close()
print(json.dumps({"names": names, "frame": list(frame["name"]), "cli": codes, "server_runs": server}))
"""


def test_a_registry_on_a_read_only_file_system_is_read(shared_dir: Path) -> None:
    # Cleanly closed (no WAL files left), then mounted read-only: SQLite cannot make the WAL's
    # shared-memory file there, yet every reader must still read it.
    folder = shared_dir / "mnt"
    folder.mkdir()
    path = folder / "registry.sqlite"
    make_registry(path)
    assert sorted(p.name for p in folder.iterdir()) == ["registry.sqlite"]
    before = digest(path)
    (shared_dir / "reader.py").write_text(READER)
    setup = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}"
    command = ["sh", "-ec", f'{setup}\n"$@"', "sh", sys.executable, str(shared_dir / "reader.py"), str(path)]
    done = subprocess.run([*private_mounts(), *command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "names": ["kept"], "frame": ["kept"], "server_runs": 1,
        "cli": {"runs": 0, "sweeps": 0, "summary": 0, "statement": 0, "check": 0},
    }
    assert digest(path) == before
