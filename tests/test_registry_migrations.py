"""A registry written by the spine (schema version 1) is upgraded in place on open, losing nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.schema import SCHEMA_VERSION
from notebook_carbon.registry.sweeps import group_sweeps, list_sweeps

V1_DUMP = Path(__file__).parent / "data" / "registry-v1.sql"


@pytest.fixture
def v1_file(tmp_path) -> Path:
    path = tmp_path / "spine.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V1_DUMP.read_text())
    return path


def rows(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


def test_v1_registry_is_upgraded_and_keeps_every_run(v1_file):
    before_runs = rows(v1_file, "SELECT * FROM runs ORDER BY id")
    before_components = rows(v1_file, "SELECT * FROM components ORDER BY id")
    before_samples = rows(v1_file, "SELECT * FROM samples ORDER BY id")
    assert rows(v1_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]

    with Registry.open(str(v1_file)) as reg:
        assert reg.schema_version() == SCHEMA_VERSION == 4
        runs = list(reversed(reg.runs()))
        assert [r["name"] for r in runs] == ["lr=0.1", "lr=0.5", "lr=1.0", "still running"]
        assert [r["status"] for r in runs] == ["ok", "ok", "failed", "running"]
        assert [r["params"] for r in runs[:3]] == [{"lr": 0.1}, {"lr": 0.5}, {"lr": 1.0}]
        assert [r["energy_j"] for r in runs[:3]] == [3600.0, 7200.0, 10800.0]
        assert all(r["is_final"] in (False, 0) and r["checkpoint_interval_s"] is None for r in runs)
        assert [c["energy_j"] for c in reg.components(runs[1]["uid"])] == [7200.0]
        assert [s["power_w"] for s in reg.samples(runs[2]["uid"])] == [180.0]
        # the upgraded file takes new runs and finishes the one left running
        reg.finish_run(runs[3]["uid"], {"status": "ok", "energy_j": 1.0})
        reg.start_run({"uid": new_uid(), "project": "thesis", "is_final": True, "checkpoint_interval_s": 10.0})

    # every value recorded under v1 is still there, byte for byte, in the same columns
    after_runs = rows(v1_file, "SELECT * FROM runs ORDER BY id")
    width = len(before_runs[0])
    assert [r[:width] for r in after_runs[:3]] == before_runs[:3]
    assert rows(v1_file, "SELECT * FROM components ORDER BY id") == before_components
    assert rows(v1_file, "SELECT * FROM samples ORDER BY id") == before_samples
    assert rows(v1_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    indexes = {name for (name,) in rows(v1_file, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_runs_redundancy" in indexes


def test_v3_counts_the_sweeps_already_recorded_and_lists_them_as_the_runs_say(v1_file):
    """The upgrade to v3 gives every sweep of the old file a generation; the first listing fills
    the cache, and a run recorded afterwards (the trigger) moves its sweep's generation on."""
    with Registry.open(str(v1_file)) as reg:
        state = rows(v1_file, "SELECT project, sweep_key, generation FROM sweep_state ORDER BY sweep_key")
        keys = {s.key for s in group_sweeps(reg.runs(project="thesis"))}
        assert {key for _, key, _ in state} == keys and all(g == 1 for *_, g in state)
        assert rows(v1_file, "SELECT count(*) FROM sweep_cache") == [(0,)]
        listed = list_sweeps(reg, "thesis")
        assert listed == group_sweeps(reg.runs(project="thesis")) and listed
        assert rows(v1_file, "SELECT count(*) FROM sweep_cache") == [(len(state),)]
        first = reg.runs(project="thesis")[-1]  # the oldest, in sweep "lr"
        reg.start_run({"uid": new_uid(), "project": "thesis", "sweep": first["sweep"],
                       "code_fingerprint": first["code_fingerprint"], "params": {"lr": 2.0}})
        assert list_sweeps(reg, "thesis") == group_sweeps(reg.runs(project="thesis"))
        assert rows(v1_file, "SELECT generation FROM sweep_state WHERE sweep_key = 'lr'") == [(2,)]


def test_upgrade_is_idempotent_and_a_fresh_registry_matches_an_upgraded_one(v1_file, tmp_path):
    Registry.open(str(v1_file)).close()
    Registry.open(str(v1_file)).close()  # nothing left to do the second time
    fresh = tmp_path / "fresh.sqlite"
    Registry.open(str(fresh)).close()

    def columns(path):
        return [(name, type_.upper()) for _, name, type_, *_ in rows(path, "PRAGMA table_info(runs)")]

    assert sorted(columns(v1_file)) == sorted(columns(fresh))
    for kind in ("table", "index", "trigger"):
        query = f"SELECT name FROM sqlite_master WHERE type = '{kind}' ORDER BY name"
        assert rows(v1_file, query) == rows(fresh, query)


def test_v2_to_v3_on_either_database(registry_url, registry_engine):
    """The v3 step (sweep counters, cache and triggers) on SQLite and PostgreSQL: a registry put
    back to its v2 shape by hand is upgraded on open, its sweeps counted, its triggers working."""
    from sqlalchemy import text

    with Registry.open(registry_url) as reg:
        for code, t in (("a", 1.0), ("a", 2.0), ("b", 3.0)):
            reg.record_run({"uid": new_uid(), "project": "p", "code_fingerprint": code, "started_at": t},
                           {"status": "ok", "energy_j": t})
    undo = ["DROP TABLE run_parts", "DROP TABLE sweep_cache", "DROP TABLE sweep_state",
            "UPDATE meta SET value = '2' WHERE key = 'schema_version'"]
    if registry_engine.dialect.name == "sqlite":
        undo[:0] = [f"DROP TRIGGER runs_sweep_{op}" for op in ("insert", "update", "delete")]
    else:
        undo[:0] = ["DROP TRIGGER runs_sweep_changed ON runs", "DROP FUNCTION notebook_carbon_sweep_changed()"]
    with registry_engine.begin() as conn:
        for statement in undo:
            conn.execute(text(statement))

    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION
        with registry_engine.connect() as conn:
            state = conn.execute(text("SELECT sweep_key, generation FROM sweep_state ORDER BY sweep_key")).all()
        assert [tuple(row) for row in state] == [("code:a", 1), ("code:b", 1)]
        assert list_sweeps(reg, "p") == group_sweeps(reg.runs(project="p"))
        reg.record_run({"uid": new_uid(), "project": "p", "code_fingerprint": "b", "started_at": 4.0},
                       {"status": "ok", "energy_j": 4.0})
        listed = list_sweeps(reg, "p")
        assert listed == group_sweeps(reg.runs(project="p"))
        assert [(s.key, s.energy_j) for s in listed] == [("code:b", 7.0), ("code:a", 3.0)]
