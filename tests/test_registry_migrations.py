"""Registries of every older schema version are upgraded in place on open, losing nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from totals_oracle import check

from notebook_carbon.record import sweep_key
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.schema import SCHEMA_VERSION
from notebook_carbon.registry.triggers import drop_statements, param_trigger_statements, trigger_statements

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
        assert reg.schema_version() == SCHEMA_VERSION == 12
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
    after_components = rows(v1_file, "SELECT * FROM components ORDER BY id")
    assert [c[: len(before_components[0])] for c in after_components] == before_components
    assert {c[len(before_components[0]) :] for c in after_components} == {(None, None, None)}  # v7: charged whole
    assert rows(v1_file, "SELECT * FROM samples ORDER BY id") == before_samples
    assert rows(v1_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    indexes = {name for (name,) in rows(v1_file, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_runs_redundancy" in indexes


def test_v5_keeps_the_totals_of_the_runs_already_recorded(v1_file):
    """The upgrade to v5 derives each run's sweep, label and energy range, fills the totals and
    selections from the old runs, drops nothing recorded, and its triggers then follow new runs."""
    with Registry.open(str(v1_file)) as reg:
        tables = {name for (name,) in rows(v1_file, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"run_totals", "sweeps"} <= tables and not {"sweep_state", "sweep_cache"} & tables
        check(reg, "thesis")
        runs = reg.runs(project="thesis")
        assert [r["sweep_key"] for r in runs] == [sweep_key(r["sweep"], r["code_fingerprint"]) for r in runs]
        assert all(r["energy_low_factor"] is not None for r in runs)
        first = runs[-1]
        reg.record_run({"uid": new_uid(), "project": "thesis", "sweep": first["sweep"],
                        "code_fingerprint": first["code_fingerprint"], "params": {"lr": 2.0},
                        "started_at": first["started_at"] + 1000},
                       {"status": "ok", "energy_j": 5.0})
        check(reg, "thesis")


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


def test_v4_to_v5_on_either_database(registry_url, registry_engine):
    """The v5 step on SQLite and PostgreSQL: a registry put back to its v4 shape by hand (its
    sweep caches as v4 had them) is upgraded on open, its totals those of its runs, its triggers working."""
    from sqlalchemy import text

    with Registry.open(registry_url) as reg:
        for code, t in (("a", 1.0), ("a", 2.0), ("b", 3.0)):
            reg.record_run({"uid": new_uid(), "project": "p", "code_fingerprint": code, "started_at": 1.7e9 + t,
                            "params": {"lr": t, "bs": 32, "layers": [t, 2]}},
                           {"status": "ok", "energy_j": t, "cpu_energy_j": t, "cpu_method": "rapl"})
    sqlite = registry_engine.dialect.name == "sqlite"
    undo = ["DROP INDEX ix_runs_distinct", "DROP INDEX ix_runs_sweep_names", "DROP TABLE run_totals", "DROP TABLE sweeps", "DROP TABLE sweep_params",
            "DROP INDEX ix_runs_sweep_key",
            "DROP INDEX ix_runs_final", "DROP INDEX ix_runs_notebook", "DROP INDEX ix_runs_groups",
            "ALTER TABLE runs DROP COLUMN sweep_key", "ALTER TABLE runs DROP COLUMN sweep_label",
            "ALTER TABLE runs DROP COLUMN energy_low_factor", "ALTER TABLE runs DROP COLUMN energy_high_factor",
            "CREATE TABLE sweep_state (project VARCHAR(200), sweep_key TEXT, generation INTEGER)",
            "CREATE TABLE sweep_cache (project VARCHAR(200), sweep_key TEXT, generation INTEGER, summary TEXT)",
            "UPDATE meta SET value = '4' WHERE key = 'schema_version'"]
    undo[:0] = drop_statements(registry_engine.dialect.name)
    if sqlite:
        undo.append("CREATE TRIGGER runs_sweep_insert AFTER INSERT ON runs BEGIN SELECT 1; END")
    with registry_engine.begin() as conn:
        for statement in undo:
            conn.execute(text(statement))

    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION
        check(reg, "p")
        assert [(s.key, s.energy_j) for s in reg.sweeps("p")] == [("code:a", 3.0), ("code:b", 3.0)]
        # filled from the runs, lists as lists
        assert [s.varying_params for s in reg.sweeps("p")] == [{"layers": ([1.0, 2], [2.0, 2]), "lr": (1.0, 2.0)}, {}]
        reg.record_run({"uid": new_uid(), "project": "p", "code_fingerprint": "b", "started_at": 1.7e9 + 4},
                       {"status": "ok", "energy_j": 4.0})
        check(reg, "p")
        assert [(s.key, s.energy_j) for s in reg.sweeps("p")] == [("code:b", 7.0), ("code:a", 3.0)]
    with registry_engine.connect() as conn:
        found = {name for (name,) in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table'" if sqlite else
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))}
    assert not {"sweep_state", "sweep_cache"} & found


KEPT = ("run_totals", "sweeps", "sweep_params")


def test_v5_to_v6_on_either_database(registry_url, registry_engine):
    """The v6 step: a registry put back to its v5 shape by hand (on SQLite the kept tables with a
    rowid; the index of parameter values by first start, not that of the groups) keeps every kept
    row as it was, in the tables a fresh registry has, its triggers go on keeping them, and it has
    the index a statement reads its groups from."""
    from sqlalchemy import text


    with Registry.open(registry_url) as reg:
        for code, t in (("a", 1.0), ("a", 2.0), ("b", 3.0)):
            reg.record_run({"uid": new_uid(), "project": "p", "code_fingerprint": code, "started_at": 1.7e9 + t,
                            "params": {"lr": t, "bs": 32}, "notebook": "n.ipynb"},
                           {"status": "ok", "energy_j": t, "cpu_energy_j": t, "cpu_method": "rapl"})
    sqlite = registry_engine.dialect.name == "sqlite"

    def kept(conn):
        return {table: sorted(tuple(map(str, row)) for row in conn.execute(text(f"SELECT * FROM {table}")))
                for table in KEPT}  # fmt: skip

    undo = ["DROP INDEX ix_runs_distinct",
            "CREATE INDEX ix_sweep_params_first ON sweep_params (project, sweep_key, name, first_at)",
            "DROP INDEX ix_runs_groups",
            "UPDATE meta SET value = '5' WHERE key = 'schema_version'"]  # fmt: skip
    with registry_engine.begin() as conn:
        before = kept(conn)
        if sqlite:  # the v5 tables: the same columns, with a rowid
            for statement in drop_statements("sqlite"):
                conn.execute(text(statement))
            for table in KEPT:
                (sql,) = conn.execute(text(f"SELECT sql FROM sqlite_master WHERE name = '{table}'")).one()
                assert sql.rstrip().endswith("WITHOUT ROWID")
                conn.execute(text(f"ALTER TABLE {table} RENAME TO old_{table}"))
                conn.execute(text(sql.rstrip().removesuffix("WITHOUT ROWID")))
                conn.execute(text(f"INSERT INTO {table} SELECT * FROM old_{table}"))
                conn.execute(text(f"DROP TABLE old_{table}"))
            for statement in trigger_statements("sqlite") + param_trigger_statements("sqlite"):
                conn.execute(text(statement))  # the same triggers as v5's
        for statement in undo:
            conn.execute(text(statement))

    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION
        with registry_engine.connect() as conn:
            assert kept(conn) == before
        check(reg, "p")
        reg.record_run({"uid": new_uid(), "project": "p", "code_fingerprint": "b", "started_at": 1.7e9 + 4,
                        "params": {"lr": 4.0, "bs": 32}}, {"status": "ok", "energy_j": 4.0})
        check(reg, "p")
        assert [s.varying_params for s in reg.sweeps("p")] == [{"lr": (3.0, 4.0)}, {"lr": (1.0, 2.0)}]
    with registry_engine.connect() as conn:
        if sqlite:
            shapes = {name: sql for name, sql in conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE name IN ('run_totals', 'sweeps', 'sweep_params')"))}
            assert all(sql.rstrip().endswith("WITHOUT ROWID") for sql in shapes.values()) and len(shapes) == 3
            indexes = "SELECT name FROM sqlite_master WHERE type = 'index'"
        else:
            indexes = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        found = {name for (name,) in conn.execute(text(indexes))}
        assert "ix_sweep_params_first" not in found and "ix_runs_groups" in found


def test_v6_to_v7_on_either_database(registry_url, registry_engine):
    """The v7 step: a registry put back to its v6 shape by hand (no machine energy, no shares) gains
    the columns, its kept totals hold the machine's energy of every run (its own energy for a run
    charged the whole machine), and the triggers keep them as new runs come, shares included."""
    from sqlalchemy import text


    with Registry.open(registry_url) as reg:
        for code, t in (("a", 1.0), ("a", 2.0), ("b", 3.0)):
            reg.record_run({"uid": new_uid(), "project": "p", "code_fingerprint": code, "started_at": 1.7e9 + t},
                           {"status": "ok", "energy_j": t, "cpu_energy_j": t, "cpu_method": "rapl"},
                           [{"component": "cpu", "method": "rapl", "energy_j": t, "device": "package-0"}])
    sqlite = registry_engine.dialect.name == "sqlite"
    undo = ["DROP INDEX ix_runs_distinct",
            "ALTER TABLE runs DROP COLUMN machine_energy_j", "ALTER TABLE components DROP COLUMN machine_energy_j",
            "ALTER TABLE components DROP COLUMN share", "ALTER TABLE components DROP COLUMN share_how",
            "ALTER TABLE run_totals DROP COLUMN machine_energy_uj", "DROP TABLE calibrations",
            "DROP INDEX ix_runs_groups",  # v6's groups index, without the runs' duration
            "CREATE INDEX ix_runs_groups ON runs (project, gpu_model, gpu_count, cpu_model, host, gpu_method, "
            "cpu_method, ram_method, attribution, pue, intensity_region, intensity_g_per_kwh, intensity_source, "
            "energy_j, gpu_energy_j, cpu_energy_j, ram_energy_j, started_at)",
            "UPDATE meta SET value = '6' WHERE key = 'schema_version'"]  # fmt: skip
    undo[:0] = drop_statements(registry_engine.dialect.name)
    with registry_engine.begin() as conn:
        for statement in undo:
            conn.execute(text(statement))

    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION
        check(reg, "p")
        assert reg.totals("p").machine_energy_j == 6.0 == reg.totals("p").energy_j
        uid = new_uid()
        reg.record_run({"uid": uid, "project": "p", "code_fingerprint": "b", "started_at": 1.7e9 + 4},
                       {"status": "ok", "energy_j": 1.0, "machine_energy_j": 4.0, "cpu_energy_j": 1.0,
                        "cpu_method": "rapl"},
                       [{"component": "cpu", "method": "rapl", "energy_j": 1.0, "device": "package-0",
                         "machine_energy_j": 4.0, "share": 0.25, "share_how": "CPU time 1 s of 4 s"}])
        check(reg, "p")
        assert (reg.totals("p").energy_j, reg.totals("p").machine_energy_j) == (7.0, 10.0)
        (component,) = reg.components(uid)
        assert (component["machine_energy_j"], component["share"], component["share_how"]) == (4.0, 0.25, "CPU time 1 s of 4 s")
    with registry_engine.connect() as conn:  # the groups' index made again, with the runs' duration
        if sqlite:
            found = [row[2] for row in conn.execute(text("PRAGMA index_info(ix_runs_groups)"))]
        else:
            found = [conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_runs_groups'")).scalar()]
        assert "duration_s" in " ".join(found)
        tables = "SELECT name FROM sqlite_master WHERE type = 'table'" if sqlite else (
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        assert "calibrations" in {name for (name,) in conn.execute(text(tables))}


def test_v7_to_v8_on_either_database(registry_url, registry_engine):
    """The v8 step: a registry put back to its v7 shape (no job columns on runs, none of the ranks'
    columns on parts) gains them empty, keeps every run and part as they were (no run a job, no
    part a rank, none counted again), and then records a distributed job."""
    from sqlalchemy import text

    from notebook_carbon.registry import jobs
    from notebook_carbon.registry.parts import parts

    parent = new_uid()
    with Registry.open(registry_url) as reg:
        reg.record_run({"uid": parent, "project": "p", "started_at": 1.7e9}, {"status": "ok", "energy_j": 5.0})
        reg.record_part({"uid": new_uid(), "parent_uid": parent, "status": "ok", "started_at": 1.7e9 + 1, "energy_j": 2.0})
    job_columns = ("job", "job_block", "job_world_size", "job_parts", "job_nodes")
    part_columns = ("job", "block", "attempt", "rank", "local_rank", "node", "devices", "machine_energy_j", "water_l",
                    "embodied_g", "attribution", "updated_at", "checkpoint_interval_s", "counted")  # fmt: skip
    quote = registry_engine.dialect.identifier_preparer.quote
    undo = ["DROP INDEX ix_runs_job", "DROP INDEX ix_run_parts_status"]  # (v10's ix_runs_distinct, which today's triggers name, kept)
    undo += [f"ALTER TABLE runs DROP COLUMN {c}" for c in job_columns]
    undo += [f"ALTER TABLE run_parts DROP COLUMN {quote(c)}" for c in part_columns]
    undo += ["UPDATE meta SET value = '7' WHERE key = 'schema_version'"]
    with registry_engine.begin() as conn:
        for statement in undo:
            conn.execute(text(statement))

    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION == 12
        (run,) = reg.runs(project="p")
        assert run["energy_j"] == 5.0 and all(run[c] is None for c in job_columns)
        (part,) = parts(reg, parent)
        assert part["energy_j"] == 2.0 and part["counted"] in (False, 0) and part["job"] is None
        check(reg, "p")
        job_row = {"uid": new_uid(), "project": "p", "started_at": 1.7e9 + 9, "job": "slurm:7", "job_block": 1,
                   "job_world_size": 2}  # fmt: skip
        for rank in (0, 1):
            run_id = jobs.start_part(reg, {**job_row, "uid": new_uid()},
                                     {"uid": new_uid(), "job": "slurm:7", "block": 1, "rank": rank, "node": "n",
                                      "started_at": 1.7e9 + 9 + rank})  # fmt: skip
        assert len(reg.runs(project="p")) == 2 and len(parts(reg, reg.get_run(run_id)["uid"])) == 2
        check(reg, "p")
    with registry_engine.connect() as conn:
        sqlite = registry_engine.dialect.name == "sqlite"
        indexes = ("SELECT name FROM sqlite_master WHERE type = 'index'" if sqlite
                   else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")  # fmt: skip
        assert {"ix_runs_job", "ix_run_parts_status"} <= {name for (name,) in conn.execute(text(indexes))}
