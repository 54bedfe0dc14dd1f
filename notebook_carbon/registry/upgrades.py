"""The steps that bring a registry of an older schema version up by one version (``MIGRATIONS``),
and the triggers every version since 5 keeps its totals with.

Each step runs inside the upgrade's transaction (``migrations.upgrade``). Steps only add (tables,
columns, indexes, values derived from what is recorded) or replace derived caches; they never drop
or rewrite recorded data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Boolean, Connection, Double, Integer, String, bindparam, false, inspect, select, update

from ..errors import RegistryError
from ..record import energy_range, sweep_key, sweep_label
from . import schema, totals, triggers
from .schema import calibrations, metric_directions, metrics, run_parts, run_totals, runs, sweep_params, sweeps

Migration = Callable[[Connection], None]
"""Upgrades a registry by one version, given a connection inside the upgrade transaction."""


def _to_v2(conn: Connection) -> None:
    """Sweeps' selected runs, checkpoint intervals and the redundancy index (issue: registry)."""
    dialect = conn.dialect
    boolean = Boolean().compile(dialect=dialect)
    no = false().compile(dialect=dialect)
    double = Double().compile(dialect=dialect)
    conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN is_final {boolean} NOT NULL DEFAULT {no}")
    conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN checkpoint_interval_s {double}")
    next(i for i in runs.indexes if i.name == "ix_runs_redundancy").create(conn)


def _to_v3(conn: Connection) -> None:
    """Version 3 added caches of sweep summaries (``sweep_state``, ``sweep_cache``) and their
    triggers. Version 5 replaced them with totals kept by the database, so an older registry
    passes through version 3 without them: there is nothing to add here."""


def _to_v4(conn: Connection) -> None:
    """The parts of a run: blocks metered inside another run of the same process (issue: nothing lost)."""
    run_parts.create(conn)


def _to_v5(conn: Connection) -> None:
    """Totals kept by the database (issue: one run vocabulary).

    Adds the run's generated sweep key, its sweep label and energy range (computed here for every
    run already recorded, as a new run's are when it is written), the ``run_totals`` and ``sweeps``
    tables filled from the runs, and the triggers that keep them. Drops the caches of version 3
    (``sweep_state``, ``sweep_cache`` and their triggers), which only held derived figures.
    """
    dialect = conn.dialect.name
    _add_share_columns(conn)
    stored = " STORED" if dialect == "postgresql" else ""  # SQLite can only add a virtual one
    double = Double().compile(dialect=conn.dialect)
    conn.exec_driver_sql(
        f"ALTER TABLE runs ADD COLUMN sweep_key TEXT GENERATED ALWAYS AS ({schema.SWEEP_KEY_SQL}){stored}"
    )
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN sweep_label TEXT")
    conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN energy_low_factor {double}")
    conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN energy_high_factor {double}")
    _drop_v3_caches(conn)
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_runs_sweep")  # sweeps are found by sweep_key now
    _derive_recorded(conn)
    for index in runs.indexes:
        if index.name in ("ix_runs_sweep_key", "ix_runs_final", "ix_runs_notebook"):
            index.create(conn)
    _result_index(conn)
    run_totals.create(conn)
    sweeps.create(conn)
    sweep_params.create(conn)
    totals.summed(conn, lambda sum_: triggers.fill_statements(dialect, sum_)[0])
    for statement in triggers.fill_statements(dialect)[1:]:
        conn.exec_driver_sql(statement)
    if dialect == "postgresql":  # statistics for the new indexes, or the planner scans (0.4 s at 100,000 runs)
        conn.exec_driver_sql("ANALYZE runs")
    for statement in triggers.fill_params_statements(dialect):
        conn.exec_driver_sql(statement)
    install_triggers(conn)


def _to_v6(conn: Connection) -> None:
    """The kept tables written in fewer pages (issue 12: a metered cell no slower than before them),
    and a statement's groups read from one index.

    On SQLite, ``run_totals``, ``sweeps`` and ``sweep_params`` become tables WITHOUT ROWID (each
    one b-tree in key order instead of a table and its key's index), their rows copied as they are;
    on either database, ``sweep_params`` loses its index by first start, which no read needed, and
    ``runs`` gains ``ix_runs_groups`` (``schema.GROUPED_BY`` and what a group sums)."""
    _add_share_columns(conn)
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_sweep_params_first")
    next(index for index in runs.indexes if index.name == "ix_runs_groups").create(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE runs")
    if conn.dialect.name != "sqlite":
        return
    rebuilt = [table for table in (run_totals, sweeps, sweep_params) if _has_rowid(conn, table.name)]
    if not rebuilt:  # made by the v5 step of this version already
        return
    remove_triggers(conn)  # they name the tables: made again once these are
    for table in rebuilt:
        kept = {column["name"] for column in inspect(conn).get_columns(table.name)}
        conn.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {table.name}_v5")
        table.create(conn)
        # the columns both have (a column of a later version is filled by its own step)
        columns = ", ".join(column.name for column in table.columns if column.name in kept)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {table.name}_v5")
        conn.exec_driver_sql(f"DROP TABLE {table.name}_v5")
    install_triggers(conn)


def _to_v7(conn: Connection) -> None:
    """Attribution by share (issue 13): what the devices drew beside what the run is charged.

    Adds ``runs.machine_energy_j`` and the components' ``machine_energy_j``, ``share`` and
    ``share_how`` (NULL for the runs already recorded: none was charged a share), the
    kept totals' ``machine_energy_uj``, filled again from the runs with the triggers that keep it
    (a run recorded before counts its energy as the machine's: charged the whole machine, or with
    ``process`` attribution its process tree's estimate, so their machine figure is a lower bound),
    the table of idle powers measured by ``notebook-carbon calibrate`` (``calibrations``), and the
    groups' index made again with the runs' duration in it."""
    _add_share_columns(conn)
    calibrations.create(conn, checkfirst=True)
    # the groups' index gained the runs' duration (what a statement's idle draw is computed from)
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_runs_groups")
    next(index for index in runs.indexes if index.name == "ix_runs_groups").create(conn)
    dialect = conn.dialect.name
    remove_triggers(conn)
    run_totals.drop(conn)  # derived: made again from the runs, with the new figure
    run_totals.create(conn)
    totals.summed(conn, lambda sum_: triggers.fill_statements(dialect, sum_)[0])
    conn.exec_driver_sql(triggers.fill_statements(dialect)[1])
    install_triggers(conn)


def _to_v8(conn: Connection) -> None:
    """Distributed jobs (issue 14): the runs' job columns and the parts' rank columns (empty for
    what is recorded: no run was a job, no part a rank), and their indexes. ``run_parts`` made by
    the step to version 4 already has the parts' columns: only those missing are added."""
    dialect = conn.dialect
    double, integer = Double().compile(dialect=dialect), Integer().compile(dialect=dialect)
    boolean, no = Boolean().compile(dialect=dialect), false().compile(dialect=dialect)
    wanted = {
        "runs": {"job": "TEXT", "job_block": integer, "job_world_size": integer, "job_parts": integer,
                 "job_nodes": integer},
        "run_parts": {"job": "TEXT", "block": integer, "attempt": integer, "rank": integer, "local_rank": integer, "node": "TEXT",
                      "devices": "TEXT", "machine_energy_j": double, "water_l": double, "embodied_g": double,
                      "attribution": String(16).compile(dialect=dialect), "updated_at": double,
                      "checkpoint_interval_s": double, "counted": f"{boolean} NOT NULL DEFAULT {no}"},
    }  # fmt: skip
    for table, columns in wanted.items():
        found = {column["name"] for column in inspect(conn).get_columns(table)}
        for column, kind in columns.items():
            if column not in found:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {_quoted(conn, column)} {kind}")
    for table, name in ((runs, "ix_runs_job"), (run_parts, "ix_run_parts_status")):
        next(index for index in table.indexes if index.name == name).create(conn, checkfirst=True)


def _to_v9(conn: Connection) -> None:
    """Sweep labels that are never a line of code, and results told from development (issue 15).

    Adds ``runs.execution_count`` (NULL for what is recorded), the sweeps' ``first_label`` and
    ``is_result`` (where missing: the step to version 5 makes ``sweeps`` as today's code does), and
    ``ix_runs_sweep_names``; relabels every recorded run (``record.sweep_label``: the sweep name,
    else its notebook and code) and every sweep (its name, else what its runs' names share, else its
    first run's label), decides each sweep's ``is_result`` again, and makes the triggers again.
    Nothing recorded changes but the derived label, and no kept total: a run's energy range stays
    the one it was counted with."""
    dialect = conn.dialect
    boolean, no = Boolean().compile(dialect=dialect), false().compile(dialect=dialect)
    wanted = {"runs": {"execution_count": Integer().compile(dialect=dialect)},
              "sweeps": {"first_label": "TEXT", "is_result": f"{boolean} NOT NULL DEFAULT {no}"}}  # fmt: skip
    for table, columns in wanted.items():
        found = {column["name"] for column in inspect(conn).get_columns(table)}
        for column, kind in columns.items():
            if column not in found:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    conn.exec_driver_sql(triggers.names_index_statement(dialect.name))
    remove_triggers(conn)
    _derive_recorded(conn, factors=False)
    _result_index(conn)
    for statement in triggers.fill_statements(dialect.name)[-2:]:
        conn.exec_driver_sql(statement)
    install_triggers(conn)
    if dialect.name == "postgresql":  # statistics for the new index
        conn.exec_driver_sql("ANALYZE runs")


def _to_v10(conn: Connection) -> None:
    """Repeats do not make a result (issue 15): a sweep is a result when a run of it is marked final
    or it has two runs that repeat no identical earlier run (``record.is_result``). Adds the partial
    index ``ix_runs_distinct`` that finds those two at once, decides every sweep's ``is_result``
    again and makes the triggers again; nothing recorded changes."""
    _result_index(conn)
    remove_triggers(conn)
    conn.exec_driver_sql(f"UPDATE sweeps SET is_result = {triggers._is_result('sweeps', conn.dialect.name)}")
    install_triggers(conn)


def _to_v11(conn: Connection) -> None:
    """What the sidebar shows (issue 16): adds ``runs.cell_id``, the notebook cell a run was metered
    in (NULL for what is recorded: those runs are found by their ``execution_count``), and the index
    ``ix_runs_history`` a project's emissions over time are read from. Nothing recorded changes."""
    if "cell_id" not in {column["name"] for column in inspect(conn).get_columns("runs")}:
        conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN cell_id {String(64).compile(dialect=conn.dialect)}")
    next(index for index in runs.indexes if index.name == "ix_runs_history").create(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":  # statistics for the new index
        conn.exec_driver_sql("ANALYZE runs")


def _to_v12(conn: Connection) -> None:
    """What a run achieved (issue 17): the tables ``metrics`` (each value of a metric logged for a
    run) and ``metric_directions`` (higher or lower is better, as declared). Nothing recorded changes."""
    for table in (metrics, metric_directions):
        table.create(conn, checkfirst=True)


def _result_index(conn: Connection) -> None:
    """``ix_runs_distinct``, which the SQL deciding a sweep's ``is_result`` names on SQLite: made
    by whichever step first fills or keeps the sweeps (5, 9 or 10), once."""
    next(index for index in runs.indexes if index.name == "ix_runs_distinct").create(conn, checkfirst=True)


def _quoted(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)  # ``rank`` is a function's name in PostgreSQL


def _add_share_columns(conn: Connection) -> None:
    """The columns of version 7 that the kept totals read (``totals.FIGURES``), where missing.

    The steps to versions 5 and 6 make the kept tables and their triggers as today's code defines
    them, so the run columns those read must be there first: each adds them (once)."""
    double = Double().compile(dialect=conn.dialect)
    found = {table: {column["name"] for column in inspect(conn).get_columns(table)} for table in ("runs", "components")}
    wanted = {"runs": (("machine_energy_j", double),),
              "components": (("machine_energy_j", double), ("share", double), ("share_how", "TEXT"))}  # fmt: skip
    for table, columns in wanted.items():
        for column, kind in columns:
            if column not in found[table]:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _has_rowid(conn: Connection, name: str) -> bool:
    (sql,) = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).one()
    return "WITHOUT ROWID" not in " ".join(sql.upper().split())


_DERIVE_BATCH = 5000


def _derive_recorded(conn: Connection, *, factors: bool = True) -> None:
    """Each recorded run's sweep label and energy range, as ``values.start_values`` gives a new run
    (``factors=False``: its label only; the kept totals hold the factors it was counted with).

    Read in batches by id (a few thousand runs in memory at a time), each batch's values written
    with one executemany. A run recorded before version 9 has no execution count: its label names
    its notebook and code (``record.cell_label``)."""
    columns = [runs.c.id, runs.c.sweep, runs.c.code_fingerprint, runs.c.notebook, runs.c.energy_j]
    for component in ("gpu", "cpu", "ram"):
        columns += [runs.c[f"{component}_energy_j"], runs.c[f"{component}_method"]]
    derived = {"sweep_label": bindparam("label")}
    if factors:
        derived.update(energy_low_factor=bindparam("low"), energy_high_factor=bindparam("high"))
    statement = update(runs).where(runs.c.id == bindparam("run_id")).values(**derived)
    last = None
    while True:
        query = select(*columns).order_by(runs.c.id).limit(_DERIVE_BATCH)
        if last is not None:
            query = query.where(runs.c.id > last)
        rows = conn.execute(query).mappings().all()
        if not rows:
            return
        batch = []
        for row in rows:
            fingerprint = _text(row["code_fingerprint"])
            key = sweep_key(_text(row["sweep"]), fingerprint)
            low, high = energy_range(row) if factors else (None, None)
            label = sweep_label(key, _text(row["notebook"]), None, fingerprint)
            batch.append({"run_id": row["id"], "label": label, "low": low, "high": high})
        conn.execute(statement, batch)
        last = rows[-1]["id"]


def _text(value: Any) -> str | None:
    """A text column's value as text (a row edited by hand may hold a number there), or None."""
    return None if value is None else str(value)


def _drop_v3_caches(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS runs_sweep_changed ON runs")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS notebook_carbon_sweep_changed()")
    else:
        for name in ("runs_sweep_insert", "runs_sweep_update", "runs_sweep_delete"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    conn.exec_driver_sql("DROP TABLE IF EXISTS sweep_cache")
    conn.exec_driver_sql("DROP TABLE IF EXISTS sweep_state")


def install_triggers(conn: Connection) -> None:
    """The triggers on ``runs`` that keep ``run_totals`` and ``sweeps`` (SQLite or PostgreSQL)."""
    if conn.dialect.name not in ("sqlite", "postgresql"):
        raise RegistryError(
            f"the registry supports SQLite and PostgreSQL databases, not {conn.dialect.name}; "
            "set NOTEBOOK_CARBON_REGISTRY to a file path or a postgresql:// URL"
        )
    _result_index(conn)  # which the triggers name on SQLite
    for statement in triggers.trigger_statements(conn.dialect.name) + triggers.param_trigger_statements(conn.dialect.name):
        conn.exec_driver_sql(statement)


def remove_triggers(conn: Connection) -> None:
    """The triggers ``install_triggers`` made, removed (before the tables they keep are made again)."""
    for statement in triggers.drop_statements(conn.dialect.name):
        conn.exec_driver_sql(statement)


MIGRATIONS: Mapping[int, Migration] = {
    2: _to_v2, 3: _to_v3, 4: _to_v4, 5: _to_v5, 6: _to_v6, 7: _to_v7, 8: _to_v8, 9: _to_v9, 10: _to_v10, 11: _to_v11, 12: _to_v12,
}
"""Migration producing version ``v`` from version ``v - 1``, keyed by ``v`` (2, 3, ...)."""
