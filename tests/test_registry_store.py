"""Registry on real databases: schema, round trips, transactions, foreign data, migrations.

Tests taking ``registry_url`` (or ``registry``) run on an SQLite file and on a fresh PostgreSQL
database (see conftest.py); those named ``test_sqlite_*`` concern SQLite files only (their bytes,
WAL mode, directories, permissions) and ``test_postgresql_*`` PostgreSQL URLs and servers.
"""

from __future__ import annotations

import concurrent.futures
import random
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from notebook_carbon.errors import RegistryError
from notebook_carbon.registry import Registry, engine as engines, new_uid
from notebook_carbon.registry.migrations import migration_plan
from notebook_carbon.registry.schema import SCHEMA_VERSION

V = SCHEMA_VERSION  # fake migrations below go to V + 1, V + 2: the tests outlive real schema changes


@pytest.fixture
def registry(registry_url: str):
    with Registry.open(registry_url) as reg:
        yield reg


def _tables(engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def _meta(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT key, value FROM meta")).all())


def _start(reg: Registry, **fields) -> str:
    uid = new_uid()
    reg.start_run({"uid": uid, "project": "proj", **fields})
    return uid


COMPONENTS = [
    {"component": "gpu", "device": "GPU 0: H100", "method": "nvml-counter", "energy_j": 900.0},
    {
        "component": "cpu",
        "device": "package-0",
        "method": "estimate-tdp",
        "energy_j": 80.0,
        "reason": "RAPL present but not readable without root",
    },
    {"component": "ram", "device": "64 GB", "method": "estimate-ram", "energy_j": 20.0, "degraded": None},
]


def test_open_creates_the_schema(registry_url: str, registry_engine) -> None:
    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION
    assert {"meta", "runs", "components", "samples"} <= _tables(registry_engine)
    with registry_engine.connect() as conn:
        inspector = inspect(conn)
        indexes = {index["name"] for table in ("runs", "samples") for index in inspector.get_indexes(table)}
    assert {"ix_runs_project_started_at", "ix_runs_status", "ix_runs_sweep_key", "ix_samples_run_uid"} <= indexes
    stamped = _meta(registry_engine)
    assert (stamped["application"], stamped["schema_version"]) == ("notebook-carbon", str(SCHEMA_VERSION))


def test_sqlite_open_creates_directories_and_uses_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "registry.sqlite"
    with Registry.open(str(path)) as reg:
        assert reg.schema_version() == SCHEMA_VERSION
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_sqlite_open_accepts_sqlite_url_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    with Registry.open(f"sqlite:///{path}") as reg:
        uid = _start(reg)
    with Registry.open(str(path)) as reg:
        assert reg.get_run(uid)["status"] == "running"


def test_start_finish_get_round_trip_with_json_fields(registry: Registry) -> None:
    uid = new_uid()
    run_id = registry.start_run(
        {
            "uid": uid,
            "project": "proj",
            "notebook": "train.ipynb",
            "name": "baseline",
            "sweep": "lr",
            "tags": ["gpu", "draft"],
            "params": {"lr": 0.001, "layers": [2, 3]},
            "cell_source": "fit()",
            "started_at": 1000.0,
            "host": "node1",
            "pid": 42,
        }
    )
    row = {
        "status": "ok",
        "ended_at": 1010.5,
        "energy_j": 1000.0,
        "gpu_energy_j": 900.0,
        "cpu_energy_j": 80.0,
        "ram_energy_j": 20.0,
        "gpu_method": "nvml-counter",
        "cpu_method": "estimate-tdp",
        "ram_method": "estimate-ram",
        "pue": 1.2,
        "intensity_g_per_kwh": 56.0,
        "intensity_region": "FR",
        "intensity_source": "codecarbon",
        "emissions_g": 0.0187,
        "water_l": 0.0,
        "notes": ["RAPL not readable"],
    }
    registry.finish_run(uid, row, COMPONENTS, [])
    run = registry.get_run(uid)
    assert run["id"] == run_id
    assert run["tags"] == ["gpu", "draft"]
    assert run["params"] == {"lr": 0.001, "layers": [2, 3]}
    assert run["notes"] == ["RAPL not readable"]
    assert run["duration_s"] == pytest.approx(10.5)  # computed from started_at when not given
    assert {k: run[k] for k in row} == row
    assert registry.get_run(run_id) == run == registry.get_run(str(run_id))
    assert registry.get_run(run_id + 1) is None


def test_runs_newest_first_with_filters(registry: Registry) -> None:
    uids = [_start(registry, started_at=100.0 + i, project="a" if i % 2 else "b") for i in range(6)]
    registry.finish_run(uids[0], {"status": "failed", "error": "ValueError: bad"})
    assert [r["uid"] for r in registry.runs()] == uids[::-1]
    assert [r["uid"] for r in registry.runs(project="a")] == [uids[5], uids[3], uids[1]]
    assert [r["uid"] for r in registry.runs(limit=2)] == [uids[5], uids[4]]
    assert [r["uid"] for r in registry.runs(status="failed")] == [uids[0]]
    assert len(registry.runs(status=("running", "failed"))) == 6
    assert registry.last_run()["uid"] == uids[5]
    assert registry.last_run(project="b")["uid"] == uids[4]
    assert registry.last_run(project="nobody") is None
    with pytest.raises(RegistryError, match="status"):
        registry.runs(status="finished")


def test_components_and_samples_are_stored(registry: Registry) -> None:
    uid = _start(registry)
    samples = [
        {"t_s": t / 10, "component": "gpu", "device": "GPU 0", "power_w": 200.0 + t} for t in range(50)
    ]
    registry.finish_run(uid, {"status": "ok"}, COMPONENTS, samples[::-1])
    stored = registry.components(uid)
    assert [{k: c.get(k) for k in COMPONENTS[1]} for c in stored[1:2]] == [COMPONENTS[1]]
    assert [c["component"] for c in stored] == ["gpu", "cpu", "ram"]
    assert all(c["run_uid"] == uid for c in stored)
    got = registry.samples(uid)
    assert [s["t_s"] for s in got] == [s["t_s"] for s in samples]  # ordered by time
    assert got[3]["power_w"] == 203.0
    assert registry.components(new_uid()) == [] == registry.samples(new_uid())


def test_finish_is_one_transaction(registry: Registry) -> None:
    uid = _start(registry)
    bad_samples = [{"t_s": 0.0, "component": "gpu", "power_w": 1.0}, {"t_s": None, "component": "gpu"}]
    with pytest.raises(RegistryError, match="finishing run"):
        registry.finish_run(uid, {"status": "ok", "energy_j": 5.0}, COMPONENTS, bad_samples)
    # The run update and the components went in before the failing sample: all rolled back.
    run = registry.get_run(uid)
    assert run["status"] == "running" and run["energy_j"] is None
    assert registry.components(uid) == [] and registry.samples(uid) == []
    registry.finish_run(uid, {"status": "ok", "energy_j": 5.0}, COMPONENTS)
    assert registry.get_run(uid)["status"] == "ok"


def test_finish_unknown_or_finished_run_is_refused(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="no run with uid"):
        registry.finish_run(new_uid(), {"status": "ok"})
    uid = _start(registry)
    registry.finish_run(uid, {"status": "interrupted", "energy_j": 3.0})
    with pytest.raises(RegistryError, match="never rewritten"):
        registry.finish_run(uid, {"status": "ok", "energy_j": 99.0})
    assert registry.get_run(uid)["energy_j"] == 3.0


def test_checkpoint_updates_only_a_running_run(registry: Registry) -> None:
    uid = _start(registry)
    assert registry.checkpoint_run(uid, {"energy_j": 10.0, "duration_s": 60.0}) is True
    assert registry.get_run(uid)["energy_j"] == 10.0
    registry.finish_run(uid, {"status": "ok", "energy_j": 12.0})
    assert registry.checkpoint_run(uid, {"energy_j": 11.0}) is False
    assert registry.get_run(uid)["energy_j"] == 12.0
    with pytest.raises(RegistryError, match="no run with uid"):
        registry.checkpoint_run(new_uid(), {"energy_j": 1.0})


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"project": "p"}, "uid"),
        ({"uid": "not-a-uid"}, "uid"),
        ({"uid": "NEW", "status": "ok"}, "'running'"),
        ({"uid": "NEW", "status": "weird"}, "status must be one of"),
        ({"uid": "NEW", "colour": "blue"}, "unknown run fields"),
        ({"uid": "NEW", "tags": "a,b"}, "tags must be a list"),
        ({"uid": "NEW", "params": {"f": object()}}, "JSON"),
        ({"uid": "NEW", "gpu_method": "guess"}, "method must be one of"),
    ],
)
def test_start_run_validates(registry: Registry, row: dict, match: str) -> None:
    row = {k: new_uid() if v == "NEW" else v for k, v in row.items()}
    with pytest.raises(RegistryError, match=match):
        registry.start_run(row)
    assert registry.runs() == []


def test_finish_run_validates(registry: Registry) -> None:
    uid = _start(registry)
    with pytest.raises(RegistryError, match="final status"):
        registry.finish_run(uid, {"status": "running"})
    with pytest.raises(RegistryError, match="component must be one of"):
        registry.finish_run(uid, {"status": "ok"}, [{"component": "disk", "method": "none"}])
    with pytest.raises(RegistryError, match="method must be one of"):
        registry.finish_run(uid, {"status": "ok"}, [{"component": "gpu", "method": "magic"}])
    with pytest.raises(RegistryError, match="uid"):
        registry.start_run({"uid": uid})  # the same uid twice: nothing overwritten
    assert registry.get_run(uid)["status"] == "running"


def test_the_inserts_of_a_metered_cell_store_what_the_general_way_stores(registry: Registry) -> None:
    """A run, its components and samples go as driver SQL when their values are plain (text,
    numbers, booleans, None) and the general way otherwise, to the same rows, with the same errors."""
    import numpy as np

    start = {"project": "proj", "name": "plain", "started_at": 1.7e9, "gpu_count": 2, "is_final": False,
             "params": {"lr": 0.1}}  # fmt: skip
    final = {"status": "ok", "ended_at": 1.7e9 + 10, "energy_j": 1000.0, "emissions_g": 0.1}
    samples = [{"component": "gpu", "t_s": 1.0, "power_w": 250.0}, {"component": "gpu", "t_s": 2.0, "power_w": 260.0}]
    plain = registry.record_run({"uid": new_uid(), **start}, final, COMPONENTS, samples)
    # values of another type than the driver's own: numpy's numbers, as a training loop makes them
    odd = {**start, "name": "odd", "started_at": np.float64(1700000000.5)}
    odd_final = {**final, "energy_j": np.float64(2000.0)}
    other = registry.record_run({"uid": new_uid(), **odd}, odd_final, [{**COMPONENTS[0], "energy_j": np.float64(900)}])
    assert other == plain + 1
    first, second = registry.get_run(plain), registry.get_run(other)
    assert (first["name"], first["gpu_count"], first["energy_j"], first["params"]) == ("plain", 2, 1000.0, {"lr": 0.1})
    assert [c["component"] for c in registry.components(first["uid"])] == ["gpu", "cpu", "ram"]
    assert [x["power_w"] for x in registry.samples(first["uid"])] == [250.0, 260.0]
    assert (second["started_at"], second["energy_j"]) == (1700000000.5, 2000.0)
    assert [c["energy_j"] for c in registry.components(second["uid"])] == [900.0]
    assert registry.totals("proj").energy_j == 3000.0
    with pytest.raises(RegistryError, match=r"recording run .* in registry .* failed"):
        registry.record_run({"uid": first["uid"], **start}, final)  # its uid again: nothing overwritten
    assert registry.totals("proj").runs == 2 and registry.get_run(plain)["name"] == "plain"


def test_sqlite_garbage_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    garbage = random.Random(7).randbytes(8192)
    path.write_bytes(garbage)
    with pytest.raises(RegistryError, match="not an SQLite database.*move it aside.*nothing was overwritten"):
        Registry.open(str(path))
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.sqlite"]


def test_sqlite_damaged_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    damaged = b"SQLite format 3\x00" + random.Random(8).randbytes(8192)
    path.write_bytes(damaged)
    with pytest.raises(RegistryError, match="move it aside") as info:
        Registry.open(str(path))
    assert info.value.__cause__ is not None  # the driver's error stays visible
    assert str(path) in str(info.value)
    assert path.read_bytes() == damaged


@pytest.mark.parametrize(
    ("statements", "match"),
    [
        (
            ["CREATE TABLE contacts (name TEXT)", "INSERT INTO contacts VALUES ('keep me')"],
            "not a notebook-carbon",
        ),
        (
            ["CREATE TABLE runs (name TEXT)", "INSERT INTO runs VALUES ('keep me')"],
            "not a notebook-carbon|named like ours",
        ),
        (
            ["CREATE TABLE meta (key TEXT, value TEXT)", "INSERT INTO meta VALUES ('application', 'other')"],
            "has a 'meta' table but is not a notebook-carbon registry",
        ),
    ],
    ids=["other-tables", "a-table-named-like-ours", "another-programs-meta"],
)
def test_other_programs_database_is_refused_and_left_untouched(
    registry_url: str, registry_engine, statements: list[str], match: str
) -> None:
    with registry_engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    table = statements[0].split()[2]
    for read_only in (False, True):
        with pytest.raises(RegistryError, match=match) as info:
            Registry.open(registry_url, read_only=read_only)
        assert "nothing was" in str(info.value)  # and says what to do instead
    assert _tables(registry_engine) == {table}
    with registry_engine.connect() as conn:
        assert len(conn.execute(text(f"SELECT * FROM {table}")).all()) == 1


@pytest.mark.parametrize(
    "statements",
    [
        ["CREATE TABLE contacts (name TEXT)"],
        # another program's table that happens to be called meta, with or without our key
        ["CREATE TABLE meta (key TEXT, value TEXT)", "INSERT INTO meta VALUES ('application', 'other')"],
        ["CREATE TABLE meta (key TEXT, value TEXT)"],
        ["CREATE TABLE meta (version INTEGER)"],
    ],
    ids=["other-tables", "meta-of-another-application", "empty-meta", "meta-of-another-shape"],
)
def test_sqlite_other_programs_file_is_not_even_switched_to_wal(tmp_path: Path, statements: list[str]) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(RegistryError, match="not a notebook-carbon registry"):
        Registry.open(str(path))
    assert path.read_bytes() == before


def test_sqlite_unusable_directory_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    with pytest.raises(RegistryError, match="cannot create the registry directory") as info:
        Registry.open(str(blocker / "sub" / "registry.sqlite"))
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(RegistryError, match="is a directory"):
        Registry.open(str(tmp_path))
    assert blocker.read_text() == "I am a file"


def test_newer_schema_tells_to_upgrade(registry_url: str, registry_engine) -> None:
    Registry.open(registry_url).close()
    with registry_engine.begin() as conn:
        conn.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(RegistryError, match=r"schema version 99.*upgrade notebook-carbon"):
        Registry.open(registry_url)
    assert _meta(registry_engine)["schema_version"] == "99"


def _add_label(conn) -> None:
    """A fake next version: a new column filled from existing data (what real migrations look like)."""
    conn.execute(text("ALTER TABLE runs ADD COLUMN label TEXT"))
    conn.execute(text("UPDATE runs SET label = project || ':' || coalesce(name, '')"))


def _columns(engine, table: str = "runs") -> list[str]:
    with engine.connect() as conn:
        return [column["name"] for column in inspect(conn).get_columns(table)]


def test_migration_upgrades_in_place_and_keeps_data(registry_url: str, registry_engine) -> None:
    with Registry.open(registry_url) as reg:
        uid = _start(reg, name="first", tags=["keep"])
        reg.finish_run(uid, {"status": "ok", "energy_j": 7.0}, COMPONENTS)
    calls = []

    def migrate(conn) -> None:
        calls.append(1)
        _add_label(conn)

    with Registry.open(registry_url, migrations={V + 1: migrate}) as reg:
        assert reg.schema_version() == V + 1
        run = reg.get_run(uid)
        assert (run["tags"], run["energy_j"], len(reg.components(uid))) == (["keep"], 7.0, 3)
        with registry_engine.connect() as conn:
            assert conn.execute(text("SELECT label FROM runs")).scalar() == "proj:first"
        reg.start_run({"uid": new_uid()})  # still writable after the upgrade
    Registry.open(registry_url, migrations={V + 1: migrate}).close()
    assert calls == [1]  # applied once, not on every open
    with pytest.raises(RegistryError, match="upgrade notebook-carbon"):
        Registry.open(registry_url)  # this code only knows version V


def test_failed_migration_rolls_back_everything(registry_url: str, registry_engine) -> None:
    with Registry.open(registry_url) as reg:
        uid = _start(reg)

    def half_done(conn) -> None:
        conn.execute(text("ALTER TABLE runs ADD COLUMN other TEXT"))
        raise RuntimeError("disk full, say")

    with pytest.raises(RegistryError, match=f"version {V + 2} failed: disk full.*unchanged") as info:
        Registry.open(registry_url, migrations={V + 1: _add_label, V + 2: half_done})
    assert isinstance(info.value.__cause__, RuntimeError)
    with Registry.open(registry_url) as reg:  # still version V, and the DDL of step V + 1 was rolled back too
        assert reg.schema_version() == V
        assert reg.get_run(uid)["status"] == "running"
    columns = _columns(registry_engine)
    assert "label" not in columns and "other" not in columns


def test_migration_plan_is_ordered_and_has_no_gaps() -> None:
    def step(conn) -> None: ...

    assert migration_plan(V, {}) == []
    assert [v for v, _ in migration_plan(V, {V + 2: step, V + 1: step})] == [V + 1, V + 2]
    assert [v for v, _ in migration_plan(V + 1, {V + 2: step, V + 1: step})] == [V + 2]
    with pytest.raises(ValueError, match=f"version {V + 1}"):
        migration_plan(V, {V + 2: step})


def test_read_only_open_never_writes(registry_url: str, registry_engine, registry_backend: str) -> None:
    with pytest.raises(RegistryError, match="no registry|does not exist yet"):
        Registry.open(registry_url, read_only=True)
    if registry_backend == "sqlite":
        assert not Path(registry_url).exists()
    else:
        assert _tables(registry_engine) == set()
    with Registry.open(registry_url) as reg:
        uid = _start(reg)
        with Registry.open(registry_url, read_only=True) as reader:  # while a writer has it open
            assert reader.get_run(uid)["uid"] == uid
            with pytest.raises(RegistryError, match="read-only"):
                reader.start_run({"uid": new_uid()})
            # Below the registry's own check, the database itself refuses to write.
            refused = pytest.raises(RegistryError, match="readonly|read-only")
            with refused, reader.read("writing behind the check") as conn:
                conn.execute(text("UPDATE runs SET name = 'changed'"))
        assert reg.get_run(uid)["name"] is None


def test_concurrent_opens_of_a_new_registry_create_it_once(registry_url: str) -> None:
    """Eight threads opening one new registry together: one creates it, the others find it made."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        opened = list(pool.map(lambda _: Registry.open(registry_url), range(8)))
    try:
        assert {reg.schema_version() for reg in opened} == {SCHEMA_VERSION}
        assert len({reg.start_run({"uid": new_uid()}) for reg in opened}) == 8
    finally:
        for reg in opened:
            reg.close()


def test_time_columns_are_epoch_seconds(registry: Registry) -> None:
    before = time.time()
    uid = _start(registry)
    registry.finish_run(uid, {"status": "ok"})
    run = registry.get_run(uid)
    assert before <= run["started_at"] <= run["ended_at"] <= run["updated_at"] <= time.time()
    assert 0 <= run["duration_s"] < 5


def test_write_transactions_take_turns_and_readers_do_not_wait(registry: Registry) -> None:
    """One writer at a time on both backends (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock),
    so a read-then-write is never interleaved with another writer; readers go on meanwhile."""
    uid = _start(registry)
    inside, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with registry.write("holding the write lock") as conn:
            conn.execute(text("SELECT count(*) FROM runs")).scalar()
            inside.set()
            release.wait(30)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        holder = pool.submit(hold_the_write_lock)
        assert inside.wait(30)
        waiting = pool.submit(registry.checkpoint_run, uid, {"energy_j": 1.0})
        assert registry.get_run(uid)["status"] == "running"  # a reader does not wait
        time.sleep(0.3)
        assert not waiting.done()  # the second writer does
        release.set()
        holder.result(timeout=30)
        assert waiting.result(timeout=30) is True
    assert registry.get_run(uid)["energy_j"] == 1.0


# -- PostgreSQL URLs and servers --------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_use_psycopg_3_and_hide_the_password(scheme: str) -> None:
    engine, where = engines.open_engine(f"{scheme}://lab:s3cret@db.example:5433/carbon", read_only=False)
    try:
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        assert where == "postgresql+psycopg://lab:***@db.example:5433/carbon"
    finally:
        engine.dispose()


def test_postgresql_unreachable_server_says_what_to_check_without_the_password() -> None:
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(RegistryError) as info:
        Registry.open(f"postgresql://lab:s3cret@127.0.0.1:{port}/carbon")
    message = str(info.value)
    assert "s3cret" not in message and "s3cret" not in repr(info.value.__cause__.args)
    for part in (f"127.0.0.1:{port}", "'carbon'", "'lab'", "running", "pg_hba.conf", "NOTEBOOK_CARBON_"):
        assert part in message, part
    assert info.value.__cause__ is not None  # the driver's error stays chained
    assert time.monotonic() - started < 10


@pytest.mark.postgresql
def test_postgresql_missing_database_says_so(postgres_server) -> None:
    missing = postgres_server.admin_url.set(database="notebook_carbon_no_such_database")
    with pytest.raises(RegistryError, match=r"does not exist.*createdb notebook_carbon_no_such_database"):
        Registry.open(missing.render_as_string(hide_password=False))


def test_a_writer_kept_waiting_past_the_timeout_fails_saying_so(
    registry_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "BUSY_TIMEOUT_S", 0.2)  # read when a connection is made
    with Registry.open(registry_url) as holder, Registry.open(registry_url) as waiter:
        uid = _start(holder)
        timed_out = pytest.raises(RegistryError, match=r"finishing run .*more than 0 s; retry later")
        with holder.write("holding the write lock"), timed_out as info:
            waiter.finish_run(uid, {"status": "ok"})
        assert info.value.__cause__ is not None
        assert holder.get_run(uid)["status"] == "running"
        waiter.finish_run(uid, {"status": "ok"})  # once the lock is free
        assert holder.get_run(uid)["status"] == "ok"


def test_sqlite_switching_a_new_file_to_wal_waits_for_another_writers_lock(tmp_path: Path) -> None:
    """SQLite does not apply its busy timeout to the switch to WAL: the registry waits itself."""
    path = tmp_path / "registry.sqlite"
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")  # another process opening the new file at the same moment
    release = threading.Timer(0.3, lambda: locker.execute("ROLLBACK"))
    release.start()
    try:
        started = time.monotonic()
        with Registry.open(str(path)) as reg:
            assert reg.schema_version() == SCHEMA_VERSION
        assert time.monotonic() - started >= 0.25
    finally:
        release.join()
        locker.close()
