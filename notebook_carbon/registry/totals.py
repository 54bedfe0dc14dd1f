"""Totals kept by the database: what every view of a project adds up, exact, seen by every writer.

The ``run_totals`` table holds, per (project, notebook, sweep), the sums of its runs' figures in
integer micro-units (µJ, µg CO2e, µL, µs), so adding a run and taking it away again leaves the
totals exactly as they were, whatever the order. The ``sweeps`` table holds each sweep's label and
its selected run (the run marked final, else the latest ``ok`` run). Triggers on ``runs`` keep both
current on every insert, update and delete, whoever writes: a kernel, a script, the importer, an
older notebook-carbon, or a person fixing a row by hand. Readers never add up a project's runs.

Each figure is defined once, in ``FIGURES``, as SQL over one run's row: the triggers apply it to
``NEW`` and ``OLD``, the migration to every existing run, and ``aggregate`` (a filtered scope, such
as the runs since a date) to the runs selected, so every path gives the same integers.

A run whose figures break ``record.BOUNDS`` (a row edited by hand into ``1e300``) is counted in
``excluded_runs`` only, as every reader leaves it out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..record import BOUNDS, FAILED_STATUSES, STATUSES

MICRO = 1_000_000
"""Sums are integers of these many parts of the figure's unit (J, g, L, s)."""

_SAFE = 9e12
"""Largest figure (in its unit) whose micro-units fit a 64-bit integer; SQLite adds larger ones as
reals (exact to 2^53 µ-units, about 9 GJ, beyond which a sweep's sum may drift in its last digits)."""

# Each figure: (column of run_totals, SQL of one run's contribution over row alias {r}, scale).
# scale: MICRO for an amount scaled to an integer; None for a count (an integer already).
_LOW = "COALESCE({r}.energy_low_factor, 1.0)"
_HIGH = "COALESCE({r}.energy_high_factor, 1.0)"
_PUE = "COALESCE({r}.pue, 1.0)"
_FAILED = "{r}.status IN (" + ", ".join(f"'{s}'" for s in FAILED_STATUSES) + ")"
_REDUNDANT = "{r}.redundant_of IS NOT NULL"

FIGURES: tuple[tuple[str, str, int | None], ...] = (
    ("runs", "1", None),
    *((f"n_{status}", f"CASE WHEN {{r}}.status = '{status}' THEN 1 ELSE 0 END", None) for status in STATUSES),
    ("duration_us", "{r}.duration_s", MICRO),
    ("energy_uj", "{r}.energy_j", MICRO),
    ("energy_low_uj", "{r}.energy_j * " + _LOW, MICRO),
    ("energy_high_uj", "{r}.energy_j * " + _HIGH, MICRO),
    ("gpu_energy_uj", "{r}.gpu_energy_j", MICRO),
    ("cpu_energy_uj", "{r}.cpu_energy_j", MICRO),
    ("ram_energy_uj", "{r}.ram_energy_j", MICRO),
    ("facility_energy_uj", "{r}.energy_j * " + _PUE, MICRO),
    ("facility_energy_low_uj", "{r}.energy_j * " + _PUE + " * " + _LOW, MICRO),
    ("facility_energy_high_uj", "{r}.energy_j * " + _PUE + " * " + _HIGH, MICRO),
    ("emissions_ug", "{r}.emissions_g", MICRO),
    ("emissions_low_ug", "{r}.emissions_g * " + _LOW, MICRO),
    ("emissions_high_ug", "{r}.emissions_g * " + _HIGH, MICRO),
    ("water_ul", "{r}.water_l", MICRO),
    ("water_runs", "CASE WHEN {r}.water_l IS NULL THEN 0 ELSE 1 END", None),
    ("embodied_ug", "{r}.embodied_g", MICRO),
    ("embodied_runs", "CASE WHEN {r}.embodied_g IS NULL THEN 0 ELSE 1 END", None),
    ("unembodied_runs", "CASE WHEN {r}.embodied_g IS NULL AND {r}.duration_s IS NOT NULL THEN 1 ELSE 0 END", None),
    ("unembodied_us", "CASE WHEN {r}.embodied_g IS NULL THEN {r}.duration_s END", MICRO),
    ("failed_runs", f"CASE WHEN {_FAILED} THEN 1 ELSE 0 END", None),
    ("failed_energy_uj", f"CASE WHEN {_FAILED} THEN {{r}}.energy_j END", MICRO),
    ("redundant_runs", f"CASE WHEN {_REDUNDANT} THEN 1 ELSE 0 END", None),
    ("redundant_energy_uj", f"CASE WHEN {_REDUNDANT} THEN {{r}}.energy_j END", MICRO),
    ("redundant_emissions_ug", f"CASE WHEN {_REDUNDANT} THEN {{r}}.emissions_g END", MICRO),
)
COLUMNS = tuple(column for column, _, _ in FIGURES)
KEYS = ("project", "notebook", "sweep_key", "gpu_count")
"""A run_totals row's key: a missing notebook or sweep is '', a missing GPU count 0 (the embodied
emissions of runs recorded without them are computed per GPU count, by a statement)."""

TRIGGER_COLUMNS = (
    "project", "notebook", "sweep", "code_fingerprint", "status", "started_at", "duration_s", "energy_j",
    "gpu_energy_j", "cpu_energy_j", "ram_energy_j", "energy_low_factor", "energy_high_factor", "pue",
    "intensity_g_per_kwh", "emissions_g", "water_l", "embodied_g", "redundant_of", "is_final", "ended_at",
    "gpu_count",
)  # fmt: skip
"""The run columns the totals and selections depend on: an update of any other leaves them alone."""


def _scaled(expression: str, scale: int | None, dialect: str) -> str:
    if scale is None:
        return expression
    if dialect == "postgresql":  # NUMERIC arithmetic: exact at any size the column holds
        # (the guard: PostgreSQL may compute a value before the WHERE leaves an absurd run out)
        return f"COALESCE(CASE WHEN abs({expression}) < 1e30 THEN ROUND(CAST({expression} AS NUMERIC) * {scale}) END, 0)"
    limit = _SAFE * MICRO / scale
    return (
        f"COALESCE(CASE WHEN abs({expression}) < {limit:.0f} THEN CAST(ROUND(({expression}) * {scale}) AS INTEGER) "
        f"ELSE ROUND(({expression}) * {scale}) END, 0)"
    )


def contributions(row: str, dialect: str) -> list[str]:
    """SQL of each of ``COLUMNS`` for one run, the row named ``row`` (NEW, OLD, a table alias)."""
    return [_scaled(sql.format(r=row), scale, dialect) for _, sql, scale in FIGURES]


def plausible(row: str) -> str:
    """SQL true when run ``row``'s figures are all within ``record.BOUNDS`` (or missing)."""
    return "(" + " AND ".join(
        f"({row}.{column} IS NULL OR ({row}.{column} >= {low!r} AND {row}.{column} <= {high!r}))"
        for column, (low, high, _) in BOUNDS.items()
    ) + ")"


def _key_values(row: str) -> str:
    return f"{row}.project, COALESCE({row}.notebook, ''), COALESCE({row}.sweep_key, ''), COALESCE({row}.gpu_count, 0)"


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
        f"SELECT {_key_values(row)}, {values}, 0 WHERE {plausible(row)} "
        f"ON CONFLICT ({', '.join(KEYS)}) DO UPDATE SET {update}; "
        f"INSERT INTO run_totals ({', '.join(KEYS)}, {', '.join(COLUMNS)}, excluded_runs) "
        f"SELECT {_key_values(row)}, {', '.join('0' for _ in COLUMNS)}, 1 WHERE NOT {plausible(row)} "
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


def _label(row: str) -> str:
    """A new sweep's label: its name (a hand edit of ``sweep`` included), else its run's label."""
    return f"CASE WHEN substr({row}.sweep_key, 1, 5) = 'code:' THEN COALESCE({row}.sweep_label, {row}.sweep_key) ELSE {row}.sweep_key END"


def _selection(row: str) -> str:
    """(Re)decide the selected run of run ``row``'s sweep; create the sweep's row with its label."""
    same = f"r.project = {row}.project AND r.sweep_key = {row}.sweep_key"
    latest = "ORDER BY r.started_at DESC, r.id DESC LIMIT 1"
    chosen = (
        f"COALESCE((SELECT r.id FROM runs r WHERE {same} AND r.is_final {latest}), "
        f"(SELECT r.id FROM runs r WHERE {same} AND r.status = 'ok' {latest}))"
    )
    return (
        f"INSERT INTO sweeps (project, sweep_key, label, selected_run_id) "
        f"SELECT {row}.project, {row}.sweep_key, {_label(row)}, {chosen} "
        f"WHERE {row}.sweep_key IS NOT NULL "
        "ON CONFLICT (project, sweep_key) DO UPDATE SET selected_run_id = excluded.selected_run_id"
    )


def trigger_statements(dialect: str) -> list[str]:
    """The DDL of the triggers that keep ``run_totals`` and ``sweeps`` (SQLite or PostgreSQL)."""
    on_insert = [_add("NEW", dialect), _selection("NEW")]
    on_delete = [_remove("OLD", dialect), _selection("OLD")]
    on_update = [_remove("OLD", dialect), _add("NEW", dialect), _selection("OLD"), _selection("NEW")]
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

VALUES_SHOWN = 20
"""Distinct values of a varying parameter read back per sweep (in first-seen order); the rest counted."""


def _sqlite_params(row: str) -> str:
    """The (name, JSON value) pairs of run ``row``'s params: none unless they are a JSON object."""
    checked = (
        f"CASE WHEN json_valid({row}.params) THEN CASE WHEN json_type({row}.params) = 'object' "
        f"THEN {row}.params ELSE '{{}}' END ELSE '{{}}' END"
    )
    value = "CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' ELSE json_quote(j.value) END"
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
    bad = "WHEN invalid_text_representation OR invalid_parameter_value THEN NULL"
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
            "EXCEPTION WHEN invalid_text_representation THEN RETURN '{}'::jsonb; END $$"
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


def fill_statements(dialect: str) -> list[str]:
    """Fill ``run_totals`` and ``sweeps`` from the runs already recorded (a migration, in one pass)."""
    values = contributions("runs", dialect)
    sums = ", ".join(f"SUM({v})" for v in values)
    zeros = ", ".join("0" for _ in COLUMNS)
    keys = _key_values("runs")
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
        "UPDATE sweeps SET label = CASE WHEN substr(sweeps.sweep_key, 1, 5) = 'code:' "
        f"THEN COALESCE(({first}), sweeps.sweep_key) ELSE sweeps.sweep_key END, selected_run_id = COALESCE("
        f"(SELECT r.id FROM runs r WHERE {same} AND r.is_final {latest}), "
        f"(SELECT r.id FROM runs r WHERE {same} AND r.status = 'ok' {latest}))",
    ]


def aggregate_sql(dialect: str, where: str) -> str:
    """One query of ``COLUMNS`` summed over the runs matching ``where`` (SQL over ``runs``), plus
    ``excluded_runs``, grouped by ``KEYS``: a filtered scope, with the triggers' arithmetic."""
    sums = ", ".join(
        f"SUM(CASE WHEN {plausible('runs')} THEN {v} ELSE 0 END)" for v in contributions("runs", dialect)
    )
    keys = _key_values("runs")
    return (
        f"SELECT {keys}, {sums}, SUM(CASE WHEN {plausible('runs')} THEN 0 ELSE 1 END) "
        f"FROM runs WHERE {where} GROUP BY {keys}"
    )


# -- reading ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Totals:
    """The figures of a set of runs: a project, a notebook, a sweep, or a filtered scope.

    Energy in J (IT energy before PUE; ``facility_energy_j`` after it), emissions in g CO2e, water
    in L, run time in s, each ``*_low``/``*_high`` the range from the runs' measurement methods.
    ``selected_*``: the selected runs of the sweeps in scope (each sweep's result); the development
    overhead is ``energy_j / selected_energy_j``. ``excluded_runs`` broke the plausible bounds and
    are in no figure. ``unembodied_s_by_gpus``: run time of the runs recorded without embodied
    emissions, by GPU count (a statement computes theirs from the settings).
    """

    runs: int = 0
    statuses: Mapping[str, int] = dataclasses.field(default_factory=dict)
    duration_s: float = 0.0
    energy_j: float = 0.0
    energy_low_j: float = 0.0
    energy_high_j: float = 0.0
    gpu_energy_j: float = 0.0
    cpu_energy_j: float = 0.0
    ram_energy_j: float = 0.0
    facility_energy_j: float = 0.0
    facility_energy_low_j: float = 0.0
    facility_energy_high_j: float = 0.0
    emissions_g: float = 0.0
    emissions_low_g: float = 0.0
    emissions_high_g: float = 0.0
    water_l: float = 0.0
    water_runs: int = 0
    embodied_g: float = 0.0
    embodied_runs: int = 0
    unembodied_runs: int = 0
    unembodied_s: float = 0.0
    unembodied_s_by_gpus: Mapping[int, float] = dataclasses.field(default_factory=dict)
    embodied_g_by_gpus: Mapping[int, float] = dataclasses.field(default_factory=dict)
    """The recorded embodied emissions (g) by GPU count (each count's factor has its own range)."""
    failed_runs: int = 0
    failed_energy_j: float = 0.0
    redundant_runs: int = 0
    redundant_energy_j: float = 0.0
    redundant_emissions_g: float = 0.0
    excluded_runs: int = 0
    sweeps: int = 0
    selected_runs: int = 0
    selected_energy_j: float = 0.0
    selected_emissions_g: float = 0.0
    first_at: float | None = None
    last_at: float | None = None
    """Epoch seconds (UTC) of the first and last run started in scope."""

    @property
    def overhead_ratio(self) -> float | None:
        """All the energy over that of the results (the selected runs); None without a result."""
        return self.energy_j / self.selected_energy_j if self.selected_energy_j else None

    @property
    def failed_share(self) -> float | None:
        return self.failed_energy_j / self.energy_j if self.energy_j else None

    @property
    def redundant_share(self) -> float | None:
        return self.redundant_energy_j / self.energy_j if self.energy_j else None


def from_sums(sums: Sequence[Any], excluded: Any, **extra: Any) -> Totals:
    """``Totals`` of one row of ``COLUMNS`` sums (integers, Decimals or None) and ``excluded_runs``."""
    values: dict[str, Any] = {}
    statuses = {}
    for (column, _, scale), total in zip(FIGURES, sums):
        number = 0 if total is None else total
        if scale is None:
            count = int(number)
            if column.startswith("n_"):  # a count by status
                if count:
                    statuses[column[2:]] = count
            else:
                values[column] = count
        else:
            name = column[: column.rindex("_")] + "_" + column[-1]  # energy_uj -> energy_j
            values[name] = float(number) / scale
    return Totals(statuses=statuses, excluded_runs=int(excluded or 0), **values, **extra)


def add_up(rows: Sequence[Sequence[Any]]) -> tuple[list[int], int]:
    """The sums of ``COLUMNS`` and ``excluded_runs`` over rows of them (exact: integers)."""
    sums = [0] * len(COLUMNS)
    excluded = 0
    for row in rows:
        for i, value in enumerate(row[: len(COLUMNS)]):
            if value is not None:
                sums[i] += int(value) if not isinstance(value, float) or math.isfinite(value) else 0
        excluded += int(row[len(COLUMNS)] or 0)
    return sums, excluded
