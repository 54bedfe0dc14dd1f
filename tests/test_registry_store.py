"""Registry on real SQLite files: schema, round trips, transactions, damaged files, migrations."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from notebook_carbon.errors import RegistryError
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.schema import SCHEMA_VERSION, migration_plan


@pytest.fixture
def registry(tmp_path: Path):
    with Registry.open(str(tmp_path / "registry.sqlite")) as reg:
        yield reg


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


def test_open_creates_schema_v1_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "registry.sqlite"
    with Registry.open(str(path)) as reg:
        assert reg.schema_version() == SCHEMA_VERSION == 1
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "runs", "components", "samples"} <= tables
    indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_runs_project_started_at", "ix_runs_status", "ix_runs_sweep", "ix_samples_run_uid"} <= indexes
    assert dict(db.execute("SELECT key, value FROM meta"))["schema_version"] == "1"
    db.close()


def test_open_accepts_sqlite_url_and_reopens(tmp_path: Path) -> None:
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


def test_garbage_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    garbage = random.Random(7).randbytes(8192)
    path.write_bytes(garbage)
    with pytest.raises(RegistryError, match="not an SQLite database.*move it aside.*nothing was overwritten"):
        Registry.open(str(path))
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.sqlite"]


def test_damaged_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    damaged = b"SQLite format 3\x00" + random.Random(8).randbytes(8192)
    path.write_bytes(damaged)
    with pytest.raises(RegistryError, match="move it aside") as info:
        Registry.open(str(path))
    assert info.value.__cause__ is not None  # the driver's error stays visible
    assert str(path) in str(info.value)
    assert path.read_bytes() == damaged


def test_other_programs_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(RegistryError, match="not a notebook-carbon registry"):
        Registry.open(str(path))
    assert path.read_bytes() == before  # not even switched to WAL


def test_unusable_directory_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    with pytest.raises(RegistryError, match="cannot create the registry directory") as info:
        Registry.open(str(blocker / "sub" / "registry.sqlite"))
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(RegistryError, match="is a directory"):
        Registry.open(str(tmp_path))
    assert blocker.read_text() == "I am a file"


def test_newer_schema_tells_to_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    Registry.open(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(RegistryError, match=r"schema version 99.*upgrade notebook-carbon"):
        Registry.open(str(path))
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("99",)
    db.close()


def _add_label(conn) -> None:
    """A fake v2: a new column filled from existing data (what real migrations will look like)."""
    conn.execute(text("ALTER TABLE runs ADD COLUMN label TEXT"))
    conn.execute(text("UPDATE runs SET label = project || ':' || coalesce(name, '')"))


def test_migration_upgrades_in_place_and_keeps_data(tmp_path: Path) -> None:
    path = str(tmp_path / "registry.sqlite")
    with Registry.open(path) as reg:
        uid = _start(reg, name="first", tags=["keep"])
        reg.finish_run(uid, {"status": "ok", "energy_j": 7.0}, COMPONENTS)
    calls = []

    def migrate(conn) -> None:
        calls.append(1)
        _add_label(conn)

    with Registry.open(path, migrations={2: migrate}) as reg:
        assert reg.schema_version() == 2
        run = reg.get_run(uid)
        assert (run["tags"], run["energy_j"], len(reg.components(uid))) == (["keep"], 7.0, 3)
        with reg._engine.connect() as conn:
            assert conn.execute(text("SELECT label FROM runs")).scalar() == "proj:first"
        reg.start_run({"uid": new_uid()})  # still writable after the upgrade
    Registry.open(path, migrations={2: migrate}).close()
    assert calls == [1]  # applied once, not on every open
    with pytest.raises(RegistryError, match="upgrade notebook-carbon"):
        Registry.open(path)  # this code only knows version 1


def test_failed_migration_rolls_back_everything(tmp_path: Path) -> None:
    path = str(tmp_path / "registry.sqlite")
    with Registry.open(path) as reg:
        uid = _start(reg)

    def half_done(conn) -> None:
        conn.execute(text("ALTER TABLE runs ADD COLUMN other TEXT"))
        raise RuntimeError("disk full, say")

    with pytest.raises(RegistryError, match="version 3 failed: disk full.*unchanged") as info:
        Registry.open(path, migrations={2: _add_label, 3: half_done})
    assert isinstance(info.value.__cause__, RuntimeError)
    with Registry.open(path) as reg:  # still version 1, and the DDL of step 2 was rolled back too
        assert reg.schema_version() == 1
        assert reg.get_run(uid)["status"] == "running"
        with reg._engine.connect() as conn:
            columns = [row[1] for row in conn.execute(text("PRAGMA table_info(runs)"))]
        assert "label" not in columns and "other" not in columns


def test_migration_plan_is_ordered_and_has_no_gaps() -> None:
    def step(conn) -> None: ...

    assert migration_plan(1, {}) == []
    assert [v for v, _ in migration_plan(1, {3: step, 2: step})] == [2, 3]
    assert [v for v, _ in migration_plan(2, {3: step, 2: step})] == [3]
    with pytest.raises(ValueError, match="version 2"):
        migration_plan(1, {3: step})


def test_read_only_open_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    with pytest.raises(RegistryError, match="no registry"):
        Registry.open(str(path), read_only=True)
    assert not path.exists()
    with Registry.open(str(path)) as reg:
        uid = _start(reg)
        with Registry.open(str(path), read_only=True) as reader:  # while a writer has it open
            assert reader.get_run(uid)["uid"] == uid
            with pytest.raises(RegistryError, match="read-only"):
                reader.start_run({"uid": new_uid()})


def test_time_columns_are_epoch_seconds(registry: Registry) -> None:
    before = time.time()
    uid = _start(registry)
    registry.finish_run(uid, {"status": "ok"})
    run = registry.get_run(uid)
    assert before <= run["started_at"] <= run["ended_at"] <= run["updated_at"] <= time.time()
    assert 0 <= run["duration_s"] < 5
