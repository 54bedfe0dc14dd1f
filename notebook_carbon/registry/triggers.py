"""The triggers on ``runs`` that keep the totals (``run_totals``), each sweep's label and selected run
(``sweeps``) and its parameter values (``sweep_params``), and the statements that fill them from
the runs already recorded (the migration to schema v5). The figures themselves are defined once,
in ``totals.FIGURES``; this module only applies them to a run's ``NEW`` and ``OLD`` rows.

The same statements serve SQLite and PostgreSQL (a row of ``NEW``/``OLD`` reads alike in both), but
for the scaling of amounts (``totals.contributions``) and the reading of JSON parameters.
"""

from __future__ import annotations

from ..record import LABEL_LENGTH, NAME_DIGITS, NAME_SEPARATORS
from .totals import COLUMNS, KEYS, TRIGGER_COLUMNS, contributions, key_values, plausible

__all__ = [
    "SQLITE_TRIGGERS", "drop_statements", "fill_params_statements", "fill_statements", "names_index_statement",
    "param_trigger_statements",
    "trigger_statements",
]

SQLITE_TRIGGERS = tuple(f"runs_{kept}_{event}" for kept in ("totals", "params") for event in ("insert", "update", "delete"))
"""The names of the triggers made on SQLite (``trigger_statements``, ``param_trigger_statements``)."""


def drop_statements(dialect: str) -> list[str]:
    """The DDL that removes what ``trigger_statements`` and ``param_trigger_statements`` made, if there."""
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
    return [
        "DROP TRIGGER IF EXISTS runs_totals ON runs", "DROP FUNCTION IF EXISTS notebook_carbon_totals()",
        "DROP TRIGGER IF EXISTS runs_params ON runs", "DROP FUNCTION IF EXISTS notebook_carbon_params()",
    ]


def _key_match(row: str) -> str:
    return (
        f"run_totals.project = {row}.project AND run_totals.notebook = COALESCE({row}.notebook, '') "
        f"AND run_totals.sweep_key = COALESCE({row}.sweep_key, '') AND run_totals.gpu_count = COALESCE({row}.gpu_count, 0)"
    )


def _add(row: str, dialect: str) -> str:
    """Add run ``row`` (NEW) to its totals, or count it excluded; creates the totals row if needed."""
    values = ", ".join(contributions(row, dialect))
    update = ", ".join(f"{c} = run_totals.{c} + excluded.{c}" for c in COLUMNS)
    return (
        f"INSERT INTO run_totals ({', '.join(KEYS)}, {', '.join(COLUMNS)}, excluded_runs) "
        f"SELECT {key_values(row)}, {values}, 0 WHERE {plausible(row)} "
        f"ON CONFLICT ({', '.join(KEYS)}) DO UPDATE SET {update}; "
        f"INSERT INTO run_totals ({', '.join(KEYS)}, {', '.join(COLUMNS)}, excluded_runs) "
        f"SELECT {key_values(row)}, {', '.join('0' for _ in COLUMNS)}, 1 WHERE NOT {plausible(row)} "
        f"ON CONFLICT ({', '.join(KEYS)}) DO UPDATE SET excluded_runs = run_totals.excluded_runs + 1"
    )


def _remove(row: str, dialect: str) -> str:
    """Take run ``row`` (OLD) out of its totals."""
    values = contributions(row, dialect)
    taken = ", ".join(f"{c} = run_totals.{c} - {v}" for c, v in zip(COLUMNS, values))
    return (
        f"UPDATE run_totals SET {taken} WHERE {_key_match(row)} AND {plausible(row)}; "
        f"UPDATE run_totals SET excluded_runs = run_totals.excluded_runs - 1 "
        f"WHERE {_key_match(row)} AND NOT {plausible(row)}"
    )


def _names_label(row: str, dialect: str) -> str:
    """SQL of what the names of run ``row``'s sweep share (``record.names_label``), or NULL: their
    common prefix is that of the smallest and the largest name, found by ``ix_runs_sweep_names``
    (in code-point order: PostgreSQL's ``C`` collation, SQLite's own)."""
    same = f"r.project = {row}.project AND r.sweep_key = {row}.sweep_key"
    name = 'r.name COLLATE "C"' if dialect == "postgresql" else "r.name"
    lo, hi = (f"(SELECT {pick}({name}) FROM runs r WHERE {same} AND {name} > '')" for pick in ("MIN", "MAX"))
    length = " + ".join(
        f"CASE WHEN substr(n.lo, 1, {k}) = substr(n.hi, 1, {k}) THEN 1 ELSE 0 END" for k in range(1, LABEL_LENGTH + 1)
    )
    shared = f"rtrim(rtrim(substr(n.lo, 1, {length}), '{NAME_DIGITS}'), '{NAME_SEPARATORS}')"
    return (
        f"(SELECT CASE WHEN n.lo IS NULL THEN NULL WHEN n.lo = n.hi THEN substr(n.lo, 1, {LABEL_LENGTH}) "
        f"ELSE COALESCE(NULLIF({shared}, ''), substr(n.lo, 1, 28) || ' ... ' || substr(n.hi, 1, 27)) END "
        f"FROM (SELECT {lo} AS lo, {hi} AS hi) AS n)"
    )


def _is_result(row: str, dialect: str) -> str:
    """SQL: whether run ``row``'s sweep is a result (``record.is_result``): a run of it marked
    final, or two runs or more that repeat no identical earlier run (counted up to two). Each is
    one search of its partial index; SQLite, which has no statistics to choose by, is told which
    (it took ``ix_runs_sweep_names`` and read a sweep of 6,652 runs for its final mark: 10 ms a write)."""
    same = f"r.project = {row}.project AND r.sweep_key = {row}.sweep_key"
    final, distinct = (" INDEXED BY ix_runs_final", " INDEXED BY ix_runs_distinct") if dialect == "sqlite" else ("", "")
    return (
        f"(EXISTS (SELECT 1 FROM runs r{final} WHERE {same} AND r.is_final) "
        f"OR (SELECT COUNT(*) FROM (SELECT 1 FROM runs r{distinct} WHERE {same} AND r.redundant_of IS NULL LIMIT 2) "
        "AS two) > 1)"
    )


def _relabel(row: str, dialect: str) -> str:
    """Set the label of run ``row``'s sweep: its name; else what its runs' names share; else its
    first run's label (``first_label``); else its key."""
    return (
        "UPDATE sweeps SET label = CASE WHEN substr(sweeps.sweep_key, 1, 5) = 'code:' "
        f"THEN COALESCE({_names_label(row, dialect)}, sweeps.first_label, sweeps.sweep_key) ELSE sweeps.sweep_key END "
        f"WHERE sweeps.project = {row}.project AND sweeps.sweep_key = {row}.sweep_key"
    )


def _selection(row: str, dialect: str) -> str:
    """(Re)decide the selected run of run ``row``'s sweep, whether it is a result, and its label;
    create the sweep's row, with its first run's label."""
    same = f"r.project = {row}.project AND r.sweep_key = {row}.sweep_key"
    latest = "ORDER BY r.started_at DESC, r.id DESC LIMIT 1"
    chosen = (
        f"COALESCE((SELECT r.id FROM runs r WHERE {same} AND r.is_final {latest}), "
        f"(SELECT r.id FROM runs r WHERE {same} AND r.status = 'ok' {latest}))"
    )
    return (
        f"INSERT INTO sweeps (project, sweep_key, first_label, selected_run_id, is_result) "
        f"SELECT {row}.project, {row}.sweep_key, {row}.sweep_label, {chosen}, {_is_result(row, dialect)} "
        f"WHERE {row}.sweep_key IS NOT NULL "
        "ON CONFLICT (project, sweep_key) DO UPDATE SET selected_run_id = excluded.selected_run_id, "
        f"is_result = excluded.is_result; {_relabel(row, dialect)}"
    )


def names_index_statement(dialect: str) -> str:
    """``ix_runs_sweep_names``: a sweep's smallest and largest run name found in its index (in the
    order ``_names_label`` compares them), so a run's write does not read its sweep's runs."""
    name = 'name COLLATE "C"' if dialect == "postgresql" else "name"
    return f"CREATE INDEX IF NOT EXISTS ix_runs_sweep_names ON runs (project, sweep_key, {name})"


def trigger_statements(dialect: str) -> list[str]:
    """The DDL of the triggers that keep ``run_totals`` and ``sweeps`` (SQLite or PostgreSQL)."""
    on_insert = [_add("NEW", dialect), _selection("NEW", dialect)]
    on_delete = [_remove("OLD", dialect), _selection("OLD", dialect)]
    on_update = [_remove("OLD", dialect), _add("NEW", dialect), _selection("OLD", dialect), _selection("NEW", dialect)]
    columns = ", ".join(TRIGGER_COLUMNS)
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER runs_totals_insert AFTER INSERT ON runs BEGIN {'; '.join(on_insert)}; END",
            f"CREATE TRIGGER runs_totals_update AFTER UPDATE OF {columns} ON runs BEGIN {'; '.join(on_update)}; END",
            f"CREATE TRIGGER runs_totals_delete AFTER DELETE ON runs BEGIN {'; '.join(on_delete)}; END",
        ]
    # PostgreSQL: one function; the same statements (NEW/OLD are records there too)
    return [
        "CREATE FUNCTION notebook_carbon_totals() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP = 'INSERT' THEN {'; '.join(on_insert)}; "
        f"ELSIF TG_OP = 'DELETE' THEN {'; '.join(on_delete)}; "
        f"ELSE {'; '.join(on_update)}; END IF; RETURN NULL; END $$",
        "CREATE TRIGGER runs_totals AFTER INSERT OR DELETE OR UPDATE OF "
        f"{columns} ON runs FOR EACH ROW EXECUTE FUNCTION notebook_carbon_totals()",
    ]


# -- each sweep's parameter values: what "varying" is read from -----------------------------------


def _sqlite_params(row: str) -> str:
    """The (name, JSON value) pairs of run ``row``'s params: none unless they are a JSON object."""
    checked = (
        f"CASE WHEN json_valid({row}.params) THEN CASE WHEN json_type({row}.params) = 'object' "
        f"THEN {row}.params ELSE '{{}}' END ELSE '{{}}' END"
    )
    # text quoted, the rest as it is: arrays and objects come as JSON text, numbers as numbers (not
    # json_quote of them all: its JSON subtype is lost in a grouped subquery, quoting an array)
    value = (
        "CASE j.type WHEN 'text' THEN json_quote(j.value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        "WHEN 'null' THEN 'null' ELSE j.value END"
    )
    return f"SELECT j.key AS key, {value} AS value FROM json_each({checked}) j"


def _param_statements(dialect: str) -> tuple[str, str]:
    """SQL taking OLD's params out of ``sweep_params`` and adding NEW's (a JSON object; else none)."""
    if dialect == "sqlite":
        pairs_old, pairs_new, earliest = _sqlite_params("OLD"), _sqlite_params("NEW"), "min"
    else:
        pairs_old = "SELECT j.key AS key, j.value::text AS value FROM jsonb_each(OLD.params::jsonb) j"
        pairs_new, earliest = "SELECT j.key AS key, j.value::text AS value FROM jsonb_each(NEW.params::jsonb) j", "LEAST"
    take = (
        "UPDATE sweep_params SET runs = sweep_params.runs - 1 WHERE sweep_params.project = OLD.project "
        f"AND sweep_params.sweep_key = OLD.sweep_key AND (sweep_params.name, sweep_params.value) IN ({pairs_old})"
    )
    add = (
        "INSERT INTO sweep_params (project, sweep_key, name, value, runs, first_at) "
        f"SELECT NEW.project, NEW.sweep_key, p.key, p.value, 1, NEW.started_at FROM ({pairs_new}) AS p "
        "WHERE NEW.sweep_key IS NOT NULL "
        "ON CONFLICT (project, sweep_key, name, value) DO UPDATE SET runs = sweep_params.runs + 1, "
        f"first_at = {earliest}(sweep_params.first_at, excluded.first_at)"
    )
    return take, add


def param_trigger_statements(dialect: str) -> list[str]:
    """The triggers that keep ``sweep_params``: each sweep's distinct values of each parameter."""
    take, add = _param_statements(dialect)
    watched = "project, sweep, code_fingerprint, params, started_at"
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER runs_params_insert AFTER INSERT ON runs BEGIN {add}; END",
            f"CREATE TRIGGER runs_params_update AFTER UPDATE OF {watched} ON runs BEGIN {take}; {add}; END",
            f"CREATE TRIGGER runs_params_delete AFTER DELETE ON runs BEGIN {take}; END",
        ]
    # PostgreSQL: params that are not a JSON object (a row edited by hand) add no values
    # (data_exception: any value jsonb refuses, a NUL character included; never a lost run)
    bad = "WHEN data_exception THEN NULL"
    return [
        "CREATE FUNCTION notebook_carbon_params() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' AND OLD.sweep_key IS NOT NULL THEN BEGIN {take}; EXCEPTION {bad}; END; END IF; "
        f"IF TG_OP <> 'DELETE' AND NEW.sweep_key IS NOT NULL THEN BEGIN {add}; EXCEPTION {bad}; END; END IF; "
        "RETURN NULL; END $$",
        f"CREATE TRIGGER runs_params AFTER INSERT OR DELETE OR UPDATE OF {watched} ON runs "
        "FOR EACH ROW EXECUTE FUNCTION notebook_carbon_params()",
    ]


def fill_params_statements(dialect: str) -> list[str]:
    """Fill ``sweep_params`` from the runs already recorded (a migration)."""
    if dialect == "sqlite":
        pairs = _sqlite_params("r").replace("SELECT j.key AS key,", "SELECT r.project AS project, r.sweep_key AS sweep_key, j.key AS key,")
        pairs = pairs.replace(" FROM json_each(", ", r.started_at AS started_at FROM runs r, json_each(")
        before: list[str] = []
    else:  # params that are not a JSON object (edited by hand) give no values, as in the triggers
        before = [
            "CREATE FUNCTION pg_temp.notebook_carbon_object(t text) RETURNS jsonb LANGUAGE plpgsql AS $$ "
            "BEGIN IF jsonb_typeof(t::jsonb) = 'object' THEN RETURN t::jsonb; END IF; RETURN '{}'::jsonb; "
            "EXCEPTION WHEN data_exception THEN RETURN '{}'::jsonb; END $$"
        ]
        pairs = (
            "SELECT r.project AS project, r.sweep_key AS sweep_key, j.key AS key, j.value::text AS value, "
            "r.started_at AS started_at FROM runs r, jsonb_each(pg_temp.notebook_carbon_object(r.params)) j"
        )
    return [*before, (
        "INSERT INTO sweep_params (project, sweep_key, name, value, runs, first_at) "
        f"SELECT p.project, p.sweep_key, p.key, p.value, COUNT(*), MIN(p.started_at) FROM ({pairs}) AS p "
        "WHERE p.sweep_key IS NOT NULL GROUP BY p.project, p.sweep_key, p.key, p.value"
    )]


def fill_statements(dialect: str, sum_: str = "SUM") -> list[str]:
    """Fill ``run_totals`` and ``sweeps`` from the runs already recorded (a migration, in one pass)."""
    values = contributions("runs", dialect)
    sums = ", ".join(f"{sum_}({v})" for v in values)
    zeros = ", ".join("0" for _ in COLUMNS)
    keys = key_values("runs")
    columns = f"{', '.join(KEYS)}, {', '.join(COLUMNS)}, excluded_runs"
    first = (
        "SELECT f.sweep_label FROM runs f WHERE f.project = sweeps.project AND f.sweep_key = sweeps.sweep_key "
        "ORDER BY f.started_at, f.id LIMIT 1"
    )
    same = "r.project = sweeps.project AND r.sweep_key = sweeps.sweep_key"
    latest = "ORDER BY r.started_at DESC, r.id DESC LIMIT 1"
    return [
        f"INSERT INTO run_totals ({columns}) SELECT {keys}, {sums}, 0 FROM runs WHERE {plausible('runs')} "
        f"GROUP BY {keys}",
        f"INSERT INTO run_totals ({columns}) SELECT {keys}, {zeros}, COUNT(*) FROM runs "
        f"WHERE NOT {plausible('runs')} GROUP BY {keys} "
        f"ON CONFLICT ({', '.join(KEYS)}) DO UPDATE SET excluded_runs = excluded.excluded_runs",
        "INSERT INTO sweeps (project, sweep_key) "
        "SELECT runs.project, runs.sweep_key FROM runs WHERE runs.sweep_key IS NOT NULL "
        "GROUP BY runs.project, runs.sweep_key",
        f"UPDATE sweeps SET first_label = ({first}), is_result = {_is_result('sweeps', dialect)}, selected_run_id = COALESCE("
        f"(SELECT r.id FROM runs r WHERE {same} AND r.is_final {latest}), "
        f"(SELECT r.id FROM runs r WHERE {same} AND r.status = 'ok' {latest}))",
        _relabel("sweeps", dialect),
    ]

