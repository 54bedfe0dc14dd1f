"""Totals kept by the database: what every view of a project adds up, exact, seen by every writer.

The ``run_totals`` table holds, per (project, notebook, sweep), the sums of its runs' figures in
integers of small units (µJ, µs, ng CO2e, nL), so adding a run and taking it away again leaves the
totals exactly as they were, whatever the order. The ``sweeps`` table holds each sweep's label and
its selected run (the run marked final, else the latest ``ok`` run), and whether it is a result. Triggers on ``runs`` keep both
current on every insert, update and delete, whoever writes: a kernel, a script, the importer, an
older notebook-carbon, or a person fixing a row by hand. Readers never add up a project's runs.

Each figure is defined once, in ``FIGURES``, as SQL over one run's row: the triggers (``triggers``) apply it
to ``NEW`` and ``OLD``, the migration to every existing run, and ``aggregate_sql`` (a filtered
scope, such as the runs since a date) to the runs selected, so every path gives the same integers.

A run whose figures break ``record.BOUNDS`` (a row edited by hand into ``1e300``) is counted in
``excluded_runs`` only, as every reader leaves it out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..impact.uncertainty import METHOD_RANGES, UNATTRIBUTED_RANGE
from ..record import BOUNDS, FAILED_STATUSES, STATUSES

MICRO = 1_000_000
"""Energy and time are summed as integers of these many parts of their unit (µJ, µs)."""
NANO = 1_000_000_000
"""Mass and water as integers of these (ng CO2e, nL): a one-line cell emits well under a microgram."""

_SAFE = 9e12
"""Largest figure (in its unit) whose micro-units fit a 64-bit integer (scaled for a nano-unit);
SQLite adds larger ones as reals (exact to 2^53 µ-units, about 9 GJ, beyond which a sweep's sum may drift in its last digits)."""

# Each figure: (column of run_totals, SQL of one run's contribution over row alias {r}, scale).
# scale: MICRO or NANO for an amount scaled to an integer; None for a count (an integer already).
_LOW = "COALESCE({r}.energy_low_factor, 1.0)"
_HIGH = "COALESCE({r}.energy_high_factor, 1.0)"
_PUE = "COALESCE({r}.pue, 1.0)"
_FAILED = "{r}.status IN (" + ", ".join(f"'{s}'" for s in FAILED_STATUSES) + ")"
_REDUNDANT = "{r}.redundant_of IS NOT NULL"


def _component_factor(component: str, side: str) -> str:
    """SQL of the low or high factor of a component's energy from its method (``impact.uncertainty``):
    a ``+``-joined method takes the widest of its parts, as ``method_range`` does; a method known to
    none (or none at all) the range of unattributed energy."""
    ranges = {m: r for m, r in METHOD_RANGES.items() if m != "none"}
    order = sorted(ranges, key=lambda m: getattr(ranges[m], side), reverse=side == "high")
    method = f"COALESCE({{r}}.{component}_method, '')"
    cases = " ".join(f"WHEN {{find}}({method}, '{m}') > 0 THEN {getattr(ranges[m], side)!r}" for m in order)
    return f"(CASE {cases} ELSE {getattr(UNATTRIBUTED_RANGE, side)!r} END)"

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
    *(
        (f"{component}_energy_{side}_uj", f"{{r}}.{component}_energy_j * {_component_factor(component, side)}", MICRO)
        for component in ("gpu", "cpu", "ram") for side in ("low", "high")
    ),
    ("machine_energy_uj", "COALESCE({r}.machine_energy_j, {r}.energy_j)", MICRO),
    ("facility_energy_uj", "{r}.energy_j * " + _PUE, MICRO),
    ("facility_energy_low_uj", "{r}.energy_j * " + _PUE + " * " + _LOW, MICRO),
    ("facility_energy_high_uj", "{r}.energy_j * " + _PUE + " * " + _HIGH, MICRO),
    ("emissions_ng", "{r}.emissions_g", NANO),
    ("emissions_low_ng", "{r}.emissions_g * " + _LOW, NANO),
    ("emissions_high_ng", "{r}.emissions_g * " + _HIGH, NANO),
    ("water_nl", "{r}.water_l", NANO),
    ("water_runs", "CASE WHEN {r}.water_l IS NULL THEN 0 ELSE 1 END", None),
    ("embodied_ng", "{r}.embodied_g", NANO),
    ("embodied_runs", "CASE WHEN {r}.embodied_g IS NULL THEN 0 ELSE 1 END", None),
    ("unembodied_runs", "CASE WHEN {r}.embodied_g IS NULL AND {r}.duration_s IS NOT NULL THEN 1 ELSE 0 END", None),
    ("unembodied_us", "CASE WHEN {r}.embodied_g IS NULL THEN {r}.duration_s END", MICRO),
    ("failed_runs", f"CASE WHEN {_FAILED} THEN 1 ELSE 0 END", None),
    ("failed_energy_uj", f"CASE WHEN {_FAILED} THEN {{r}}.energy_j END", MICRO),
    ("redundant_runs", f"CASE WHEN {_REDUNDANT} THEN 1 ELSE 0 END", None),
    ("redundant_energy_uj", f"CASE WHEN {_REDUNDANT} THEN {{r}}.energy_j END", MICRO),
    ("redundant_emissions_ng", f"CASE WHEN {_REDUNDANT} THEN {{r}}.emissions_g END", NANO),
)
COLUMNS = tuple(column for column, _, _ in FIGURES)
SCALES = {column: scale or 1 for column, _, scale in FIGURES}
"""What each sum of ``COLUMNS`` is divided by to give the figure in its unit (1 for a count)."""
KEYS = ("project", "notebook", "sweep_key", "gpu_count")
"""A run_totals row's key: a missing notebook or sweep is '', a missing GPU count 0 (the embodied
emissions of runs recorded without them are computed per GPU count, by a statement)."""

TRIGGER_COLUMNS = (
    "project", "notebook", "sweep", "code_fingerprint", "status", "started_at", "duration_s", "energy_j",
    "gpu_energy_j", "cpu_energy_j", "ram_energy_j", "gpu_method", "cpu_method", "ram_method", "energy_low_factor", "energy_high_factor", "pue",
    "intensity_g_per_kwh", "emissions_g", "water_l", "embodied_g", "redundant_of", "is_final", "ended_at",
    "gpu_count", "machine_energy_j", "name",
)  # fmt: skip
"""The run columns the totals, selections and labels depend on (``name`` since v9: a sweep's label
is what its runs' names share): an update of any other leaves them alone."""


def _scaled(expression: str, scale: int | None, dialect: str) -> str:
    if scale is None:
        return expression
    if dialect == "postgresql":  # NUMERIC arithmetic: exact at any size the column holds
        # (the guard: PostgreSQL may compute a value before the WHERE leaves an absurd run out)
        return f"COALESCE(CASE WHEN abs({expression}) < 1e30 THEN ROUND(CAST({expression} AS NUMERIC) * {scale}) END, 0)"
    limit = _SAFE * MICRO / scale
    # beyond 1e30 (only a row edited by hand, in a column no bound checks): 0, as on PostgreSQL,
    # never an infinity that would make the sums NaN and the row impossible to fix
    return (
        f"COALESCE(CASE WHEN abs({expression}) < {limit:.0f} THEN CAST(ROUND(({expression}) * {scale}) AS INTEGER) "
        f"WHEN abs({expression}) < 1e30 THEN ROUND(({expression}) * {scale}) END, 0)"
    )


def contributions(row: str, dialect: str) -> list[str]:
    """SQL of each of ``COLUMNS`` for one run, the row named ``row`` (NEW, OLD, a table alias)."""
    find = "strpos" if dialect == "postgresql" else "instr"
    return [_scaled(sql.format(r=row, find=find), scale, dialect) for _, sql, scale in FIGURES]


def plausible(row: str) -> str:
    """SQL true when run ``row``'s figures are all within ``record.BOUNDS`` (or missing)."""
    return "(" + " AND ".join(
        f"({row}.{column} IS NULL OR ({row}.{column} >= {low!r} AND {row}.{column} <= {high!r}))"
        for column, (low, high, _) in BOUNDS.items()
    ) + ")"


def key_values(row: str) -> str:
    return f"{row}.project, COALESCE({row}.notebook, ''), COALESCE({row}.sweep_key, ''), COALESCE({row}.gpu_count, 0)"


VALUES_SHOWN = 20
"""Distinct values of a varying parameter read back per sweep (in first-seen order); the rest counted."""


def summed(conn: Any, sql: Callable[[str], str], params: Mapping[str, Any] | None = None) -> list[Any]:
    """The rows of ``sql("SUM")`` (none for a statement that returns none). SQLite's ``SUM`` of
    integers fails past 64 bits, where its ``TOTAL`` goes on in floating point, as the triggers'
    additions do: on that failure (and only there), ``sql("TOTAL")``."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    def run(sum_: str) -> list[Any]:
        result = conn.execute(text(sql(sum_)).bindparams(**(params or {})))
        return result.all() if result.returns_rows else []

    try:
        with conn.begin_nested():  # (a failed statement leaves the transaction as it was)
            return run("SUM")
    except OperationalError as exc:
        if "integer overflow" not in str(exc):  # (SQLite gives this failure no code of its own)
            raise
    return run("TOTAL")


def aggregate_sql(dialect: str, where: str, sum_: str = "SUM") -> str:
    """One query of ``COLUMNS`` summed over the runs matching ``where`` (SQL over ``runs``), plus
    ``excluded_runs``, grouped by ``KEYS``: a filtered scope, with the triggers' arithmetic."""
    sums = ", ".join(
        f"{sum_}(CASE WHEN {plausible('runs')} THEN {v} ELSE 0 END)" for v in contributions("runs", dialect)
    )
    keys = key_values("runs")
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
    ``selected_*``: the selected runs of the result sweeps in scope (``results``; a single unmarked
    run is development, no result); the development overhead is ``energy_j / selected_energy_j``. ``excluded_runs`` broke the plausible bounds and
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
    gpu_energy_low_j: float = 0.0
    gpu_energy_high_j: float = 0.0
    cpu_energy_low_j: float = 0.0
    cpu_energy_high_j: float = 0.0
    ram_energy_low_j: float = 0.0
    ram_energy_high_j: float = 0.0
    machine_energy_j: float = 0.0
    """What the devices metered drew in the runs' windows, of which ``energy_j`` is the runs' share
    (equal to it for runs charged the whole machine; concurrent runs' windows each count theirs)."""
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
    results: tuple[tuple[str, str], ...] = ()
    """The result sweeps in scope whose selected run counts, as ``(key, label)`` sorted by key:
    a sweep with a run marked final or several runs (``record.is_result``)."""
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
