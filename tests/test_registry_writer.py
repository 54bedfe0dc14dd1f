"""BackgroundWriter against real databases: order, futures, errors, flushing, exit, merging.

Tests taking ``location`` run on an SQLite file and on a fresh PostgreSQL database (see conftest.py);
``test_sqlite_*`` ones concern SQLite files only. Many processes at once: test_registry_concurrency.py.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

import notebook_carbon.registry
from notebook_carbon.errors import RegistryError
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.writer import BackgroundWriter

ROOT = Path(notebook_carbon.registry.__file__).resolve().parents[2]
COMPONENTS = [
    {"component": "gpu", "device": "GPU 0", "method": "nvml-counter", "energy_j": 10.0},
    {"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": 2.0},
    {"component": "ram", "device": "dram", "method": "estimate-ram", "energy_j": 0.5},
]


def _python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "notebook-carbon-registry"]


@pytest.fixture
def location(registry_url: str) -> str:
    return registry_url


@pytest.fixture
def write_lock(registry_backend: str, location: str, registry_engine):
    """``with write_lock():`` another client holds a lock that registry writes must wait for."""

    @contextlib.contextmanager
    def hold():
        if registry_backend == "sqlite":
            locker = sqlite3.connect(location, isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
            try:
                yield
            finally:
                locker.execute("ROLLBACK")
                locker.close()
        else:
            with registry_engine.connect() as conn, conn.begin():
                conn.execute(text("LOCK TABLE runs IN EXCLUSIVE MODE"))  # reads pass, writes wait
                yield

    return hold


@pytest.fixture
def writer(location: str):
    w = BackgroundWriter(location)
    yield w
    w.close(timeout=10)


def test_import_does_not_import_sqlalchemy() -> None:
    done = _python("""
        import sys
        import notebook_carbon.registry.writer
        from notebook_carbon.registry import BackgroundWriter, new_uid
        BackgroundWriter("unused.sqlite")
        assert "sqlalchemy" not in sys.modules, "sqlalchemy was imported"
    """)
    assert done.returncode == 0, done.stderr


def test_thread_starts_on_first_operation_only(writer: BackgroundWriter, location: str) -> None:
    before = len(_writer_threads())
    assert not writer.started and len(_writer_threads()) == before
    assert writer.flush(timeout=1) is True  # nothing to wait for, and flushing starts nothing
    assert not writer.started and ("://" in location or not Path(location).exists())
    writer.schema_version().result(timeout=30)
    assert writer.started and len(_writer_threads()) == before + 1
    assert all(t.daemon for t in _writer_threads())


def test_submissions_run_in_order_with_results(writer: BackgroundWriter, location: str) -> None:
    uids = [new_uid() for _ in range(30)]
    futures = [writer.start_run({"uid": uid, "started_at": 1.0}) for uid in uids]
    finishes = [writer.finish_run(uid, {"status": "ok"}, COMPONENTS) for uid in uids]
    assert writer.flush(timeout=30) is True
    assert all(f.done() for f in futures + finishes)
    ids = [f.result() for f in futures]
    assert ids == sorted(ids) and len(set(ids)) == 30  # inserted in submission order
    with Registry.open(location) as reg:
        assert [reg.get_run(i)["uid"] for i in ids] == uids
        assert {r["status"] for r in reg.runs()} == {"ok"}
        assert len(reg.components(uids[-1])) == 3


def test_errors_go_to_futures_and_list_without_stopping_later_work(writer: BackgroundWriter) -> None:
    bad = writer.finish_run(new_uid(), {"status": "ok"})
    worse = writer.set_final(10**6)  # no such run
    uid = new_uid()
    good = writer.start_run({"uid": uid})
    assert isinstance(good.result(timeout=30), int)
    with pytest.raises(RegistryError, match="no run with uid"):
        bad.result()
    with pytest.raises(RegistryError, match="there is no run"):
        worse.result()
    assert writer.errors == [bad.exception(), worse.exception()]
    assert writer.take_errors() == [bad.exception(), worse.exception()]
    assert writer.errors == [] and writer.take_errors() == []


def test_an_awaited_failure_goes_to_its_future_only(writer: BackgroundWriter) -> None:
    awaited = writer.finish_run(new_uid(), {"status": "ok"}, awaited=True)
    with pytest.raises(RegistryError, match="no run with uid"):
        awaited.result(timeout=30)
    assert writer.errors == []  # its caller reports it, once


def test_a_misspelt_operation_fails_where_it_is_called(writer: BackgroundWriter) -> None:
    # An operation is a method, never a name in a string: a typo is an AttributeError at once,
    # in the caller's thread, rather than a failure on the writer's thread reported a cell later.
    with pytest.raises(AttributeError, match="strat_run"):
        writer.strat_run({"uid": new_uid()})
    for by_name in ("submit", "submit_awaited"):
        with pytest.raises(AttributeError):
            getattr(writer, by_name)("start_run", {"uid": new_uid()})
    assert not writer.started and writer.errors == []


def test_each_operation_returns_what_the_registry_returns(writer: BackgroundWriter, location: str) -> None:
    uid, quick, part = new_uid(), new_uid(), new_uid()
    code = {"code_fingerprint": "code", "inputs_fingerprint": "inputs", "params_fingerprint": "params"}
    assert writer.schema_version().result(timeout=30) >= 1
    run_id = writer.start_run({"uid": uid, "project": "p", "sweep": "s", **code}).result(timeout=30)
    assert writer.checkpoint_run(uid, {"energy_j": 1.0}).result(timeout=30) is True
    assert writer.finish_run(uid, {"status": "ok", "energy_j": 2.0}, COMPONENTS).result(timeout=30) is None
    assert writer.checkpoint_run(uid, {"energy_j": 3.0}).result(timeout=30) is False  # finished meanwhile
    other = writer.record_run({"uid": quick, "project": "p", "sweep": "s"}, {"status": "ok"}).result(timeout=30)
    assert other == run_id + 1
    part_row = {"uid": part, "parent_uid": uid, "status": "ok", "started_at": 1.0}
    assert isinstance(writer.record_part(part_row).result(timeout=30), int)
    found = writer.find_redundant("p", **code).result(timeout=30)
    assert (found["id"], found["repeats"]) == (run_id, 1)
    assert writer.find_redundant("q", **code).result(timeout=30) is None
    assert writer.set_final(run_id).result(timeout=30)["id"] == run_id
    assert [s.key for s in writer.sweeps("p").result(timeout=30)] == ["s"]
    assert writer.reap_crashed().result(timeout=30) == []
    assert writer.errors == []
    with Registry.open(location) as reg:
        assert reg.get_run(run_id)["is_final"] and reg.get_run(run_id)["energy_j"] == 2.0


def test_flush_waits_for_a_locked_registry(writer: BackgroundWriter, write_lock) -> None:
    writer.schema_version().result(timeout=30)
    with write_lock():
        pending = writer.start_run({"uid": new_uid()})
        assert writer.flush(timeout=0.3) is False  # still waiting on the busy timeout
        assert not pending.done()
    assert writer.flush(timeout=30) is True
    assert pending.result() == 1


def test_open_failure_is_reported_and_recovers(location: str, registry_engine) -> None:
    with registry_engine.begin() as conn:
        conn.execute(text("CREATE TABLE contacts (name TEXT)"))  # another program's database
    writer = BackgroundWriter(location)
    try:
        first = writer.start_run({"uid": new_uid()})
        with pytest.raises(RegistryError, match="not a notebook-carbon registry"):
            first.result(timeout=30)
        with registry_engine.begin() as conn:
            conn.execute(text("DROP TABLE contacts"))  # the user gives the registry its own database
        assert writer.start_run({"uid": new_uid()}).result(timeout=30) == 1
        assert len(writer.errors) == 1
    finally:
        writer.close(timeout=10)


def test_sqlite_damaged_file_open_failure_is_reported_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    writer = BackgroundWriter(str(path))
    try:
        first = writer.start_run({"uid": new_uid()})
        with pytest.raises(RegistryError, match="move it aside"):
            first.result(timeout=30)
        path.rename(tmp_path / "damaged.sqlite")  # what the message tells the user to do
        assert writer.start_run({"uid": new_uid()}).result(timeout=30) == 1
        assert len(writer.errors) == 1
    finally:
        writer.close(timeout=10)
    assert (tmp_path / "damaged.sqlite").read_bytes() == b"not a database at all" * 100


def test_close_flushes_and_stops(location: str) -> None:
    writer = BackgroundWriter(location)
    uid = new_uid()
    writer.start_run({"uid": uid})
    done = writer.finish_run(uid, {"status": "ok"}, COMPONENTS)
    thread = _writer_threads()[-1]
    assert writer.close(timeout=30) is True
    assert done.done() and not thread.is_alive()
    assert writer.close() is True and writer.flush() is True  # harmless twice
    with pytest.raises(RegistryError, match="closed"):
        writer.start_run({"uid": new_uid()})
    with Registry.open(location) as reg:
        assert reg.get_run(uid)["status"] == "ok"


def test_interpreter_exit_flushes_pending_writes(location: str) -> None:
    uid = new_uid()
    done = _python(
        """
        import sys
        from notebook_carbon.registry.writer import BackgroundWriter
        location, uid = sys.argv[1:]
        writer = BackgroundWriter(location)
        writer.start_run({"uid": uid, "project": "script"})
        writer.finish_run(uid, {"status": "ok", "energy_j": 4.2},
                      [{"component": "cpu", "method": "rapl", "energy_j": 4.2}])
        # no flush, no close: the script just ends
        """,
        location,
        uid,
    )
    assert done.returncode == 0, done.stderr
    with Registry.open(location) as reg:
        run = reg.get_run(uid)
        assert (run["status"], run["energy_j"], run["project"]) == ("ok", 4.2, "script")
        assert len(reg.components(uid)) == 1


def test_a_queued_start_and_finish_are_merged_into_one_insert(
    writer: BackgroundWriter, location: str, write_lock, monkeypatch
) -> None:
    merged = []
    real_record = Registry.record_run

    def spy(self, row, final, *children):
        merged.append(row["uid"])
        return real_record(self, row, final, *children)

    monkeypatch.setattr(Registry, "record_run", spy)
    writer.schema_version().result(timeout=30)
    with write_lock():  # hold the writer on its first job so the next ones queue
        first = writer.start_run({"uid": new_uid()})
        quick = new_uid()
        started = writer.start_run({"uid": quick, "name": "quick"})
        finished = writer.finish_run(
            quick,
            {"status": "ok", "energy_j": 3.0, "cpu_energy_j": 3.0, "cpu_method": "rapl"},
            [{"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": 3.0}],
            [{"t_s": 1.0, "component": "cpu", "device": "package-0", "power_w": 3.0}],
        )
    assert first.result(timeout=30) == 1
    assert started.result(timeout=30) == 2 and finished.result(timeout=30) is None
    assert merged == [quick]
    with Registry.open(location) as reg:
        run = reg.get_run(quick)
        assert (run["status"], run["name"], run["energy_j"], run["cpu_method"]) == ("ok", "quick", 3.0, "rapl")
        assert run["duration_s"] == pytest.approx(run["ended_at"] - run["started_at"])
        assert [c["energy_j"] for c in reg.components(quick)] == [3.0]
        assert [s["power_w"] for s in reg.samples(quick)] == [3.0]


def test_a_merged_write_that_fails_fails_both_futures(writer: BackgroundWriter, write_lock) -> None:
    writer.schema_version().result(timeout=30)
    with write_lock():
        writer.start_run({"uid": new_uid()})
        uid = new_uid()
        started = writer.start_run({"uid": uid})
        finished = writer.finish_run(uid, {"status": "exploded"})
    with pytest.raises(RegistryError, match="status must be one of"):
        started.result(timeout=30)
    with pytest.raises(RegistryError, match="status must be one of"):
        finished.result(timeout=30)


def test_a_start_waits_briefly_for_its_finish_and_is_written_alone_when_none_comes(
    location: str, monkeypatch
) -> None:
    merged = []
    real_record = Registry.record_run
    monkeypatch.setattr(Registry, "record_run", lambda self, row, *rest: merged.append(row["uid"]) or real_record(self, row, *rest))
    writer = BackgroundWriter(location, merge_window_s=5.0)
    try:
        writer.schema_version().result(timeout=30)
        quick = new_uid()
        started = writer.start_run({"uid": quick})
        time.sleep(0.05)  # the cell runs; the writer is waiting for its finish, not writing
        assert not started.done()
        writer.finish_run(quick, {"status": "ok", "energy_j": 1.0})
        assert started.result(timeout=30) == 1 and merged == [quick]

        long_running = new_uid()
        started = writer.start_run({"uid": long_running})
        assert writer.flush(timeout=2)  # a flush ends the wait at once (the window is 5 s)
        assert started.result(timeout=0) == 2 and merged == [quick]
    finally:
        writer.close()
    with Registry.open(location) as reg:
        assert reg.get_run(long_running)["status"] == "running"

    short_window = BackgroundWriter(location, merge_window_s=0.01)
    try:
        alone = new_uid()
        assert short_window.start_run({"uid": alone}).result(timeout=30) == 3  # written unmerged
    finally:
        short_window.close()
