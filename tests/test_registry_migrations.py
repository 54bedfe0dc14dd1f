"""A registry written by the spine (schema version 1) is upgraded in place on open, losing nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.schema import SCHEMA_VERSION

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
        assert reg.schema_version() == SCHEMA_VERSION == 2
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
    assert rows(v1_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
    indexes = {name for (name,) in rows(v1_file, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_runs_redundancy" in indexes


def test_upgrade_is_idempotent_and_a_fresh_registry_matches_an_upgraded_one(v1_file, tmp_path):
    Registry.open(str(v1_file)).close()
    Registry.open(str(v1_file)).close()  # nothing left to do the second time
    fresh = tmp_path / "fresh.sqlite"
    Registry.open(str(fresh)).close()

    def columns(path):
        return [(name, type_.upper()) for _, name, type_, *_ in rows(path, "PRAGMA table_info(runs)")]

    assert sorted(columns(v1_file)) == sorted(columns(fresh))
