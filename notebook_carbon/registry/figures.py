"""What an impact statement says of a scope of runs, read from the database in one transaction.

``figures`` gives a scope's (``frames.Scope``) ``Totals``: those the database keeps
(``Registry.totals``: ``sweeps.read_totals``) for a whole project, notebook or sweep, and for a
scope cut by status, time or tags the triggers' own per-run figures summed over its runs
(``totals.aggregate_sql``: ``aggregate``, ``Registry.aggregate``); its sweeps with their overhead;
its runs grouped by hardware, measurement methods, grid, PUE and attribution (``Group``), the one
read that goes through its runs; and the runs left out, each with its reason. No run's row comes
back to Python and no pandas object is made: at 100,000 runs a statement takes a few grouped reads.

A scope's sweep keeps its selected run (decided over the whole sweep): a scope that cuts a sweep
counts that run only if it is among its runs, and a selected run that breaks ``record.BOUNDS`` is
no result at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from ..errors import RegistryError
from ..record import BOUNDS, implausible
from . import totals as kept
from .calibration import latest_rows
from .frames import Scope
from .schema import GROUP_SUMMED, GROUPED_BY, runs
from .totals import Totals

if TYPE_CHECKING:
    from .store import Registry
    from .sweeps import SweepSummary

__all__ = ["GROUPED_BY", "Group", "ScopeFigures", "aggregate", "figures"]

_SWEEP, _GPUS, _SUMS = kept.KEYS.index("sweep_key"), kept.KEYS.index("gpu_count"), len(kept.KEYS)
"""Where a row of sums (``totals.aggregate_sql``'s, ``run_totals``') has its sweep key and its sums."""
_PARTS = ("gpu", "cpu", "ram")
_TOLERANCE = 1e-9
"""A run's parts summed in another order than its total differ in the last bits: that is no energy."""


@dataclasses.dataclass(frozen=True)
class Group:
    """The runs of a scope that share hardware, measurement methods, grid, PUE and attribution
    (``GROUPED_BY``), with their sums. Energy in J: ``energy_j`` of the runs that recorded one, each
    component's energy, facility energy (x PUE, 1 if missing); ``unattributed_j``: what of their
    energy no component with a measured or estimated method accounts for (``record.method_kind``), and
    ``unattributed_positive_j`` the same with each run's negative part (its components add up to
    more than its total) taken as 0."""

    gpu_model: str | None
    gpu_count: int | None
    cpu_model: str | None
    host: str | None
    gpu_method: str | None
    cpu_method: str | None
    ram_method: str | None
    attribution: str | None
    pue: float | None
    intensity_region: str | None
    intensity_g_per_kwh: float | None
    intensity_source: str | None
    runs: int
    energy_j: float
    gpu_energy_j: float
    cpu_energy_j: float
    ram_energy_j: float
    facility_energy_j: float
    unattributed_j: float
    unattributed_positive_j: float
    run_time_s: float = 0.0
    """The runs' summed duration: with a device's idle power, what it drew idling under them."""


@dataclasses.dataclass(frozen=True)
class ScopeFigures:
    """What a statement says of a scope, read in one transaction (see the module doc)."""

    totals: Totals
    sweeps: tuple[SweepSummary, ...]
    """The scope's sweeps, the most energy first: their runs in scope, and the selected run's energy
    when that run is in scope (``selected_energy_j`` None otherwise: no overhead to tell)."""
    groups: tuple[Group, ...]
    excluded: tuple[dict[str, Any], ...]
    """The runs left out of every figure, by id: ``id``, ``name`` and ``reason`` (``record.BOUNDS``)."""
    idle: tuple[dict[str, Any], ...] = ()
    """The latest idle power measured on the hosts of the runs, per device (``calibration``)."""


def figures(registry: Registry, scope: Scope) -> ScopeFigures:
    """The ``ScopeFigures`` of ``scope``, which must name a project: a few reads, of which one (the
    groups) goes through the scope's runs."""
    if scope.project is None:
        raise RegistryError("a statement's figures are of one project: give the project")
    from .sweeps import read_totals

    with registry.read(f"reading the figures of project {scope.project!r}") as conn:
        rows = _aggregate(conn, scope) if scope.cut else _kept_rows(conn, scope)
        groups, extent = _groups(conn, scope, checked=any(row[-1] for row in rows))
        if scope.cut:
            totals, sweeps = _summed(conn, scope, rows, extent)
        else:
            totals = read_totals(conn, scope.project, scope.notebook, scope.sweep)
            sweeps = _sweeps(conn, scope, rows)[1]
        excluded = _excluded(conn, scope) if totals.excluded_runs else ()
        hosts = sorted({str(g.host) for g in groups if g.host is not None})
        idle = latest_rows(conn, hosts) if hosts else []
    return ScopeFigures(totals, tuple(sweeps), tuple(groups), excluded, tuple(idle))


def aggregate(registry: Registry, scope: Scope) -> Totals:
    """The ``Totals`` of the runs of ``scope`` (one project's), summed by the database with the
    triggers' own per-run figures: what ``Registry.totals`` keeps, for any scope."""
    if scope.project is None:
        raise RegistryError("totals are of one project: give the project")
    with registry.read(f"adding up the runs of project {scope.project!r}") as conn:
        return _summed(conn, scope, _aggregate(conn, scope))[0]


def _aggregate(conn: Any, scope: Scope) -> list[Any]:
    where, params = scope.where(conn.dialect.name)
    return kept.summed(conn, lambda sum_: kept.aggregate_sql(conn.dialect.name, where, sum_), params)


def _kept_rows(conn: Any, scope: Scope) -> list[tuple]:
    """The ``run_totals`` rows of a scope that is not cut, as ``aggregate_sql`` gives them: ``KEYS``,
    ``COLUMNS``, ``excluded_runs``."""
    where = ["project = :project"]
    params = {"project": scope.project}
    for column, value in (("notebook", scope.notebook), ("sweep_key", scope.sweep)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    sql = (
        f"SELECT {', '.join(kept.KEYS)}, {', '.join(kept.COLUMNS)}, excluded_runs FROM run_totals "
        f"WHERE {' AND '.join(where)}"
    )
    return conn.execute(text(sql).bindparams(**params)).all()


_Extent = tuple[float | None, float | None]
"""The first and last start (epoch s) of a scope's plausible runs."""


def _summed(
    conn: Any, scope: Scope, rows: Sequence[Sequence[Any]], extent: _Extent | None = None
) -> tuple[Totals, list[SweepSummary]]:
    """The ``Totals`` and the sweeps of a scope from its rows of sums by ``totals.KEYS``, as
    ``sweeps.read_totals`` makes them of the rows the database keeps: every figure of its runs within
    ``record.BOUNDS``. ``extent``: the first and last start, if known already."""
    sums, excluded = kept.add_up([row[_SUMS:] for row in rows])
    first, last = extent or _extent(conn, scope)
    selected, sweeps = _sweeps(conn, scope, rows)
    totals = kept.from_sums(
        sums, excluded,
        sweeps=len(sweeps),
        selected_runs=len(selected),
        results=tuple(sorted((s.key, s.label) for s in sweeps if s.key in selected)),
        selected_energy_j=sum(energy for energy, _ in selected.values()),
        selected_emissions_g=sum(emissions for _, emissions in selected.values()),
        unembodied_s_by_gpus=_by_gpus(rows, "unembodied_us"),
        embodied_g_by_gpus=_by_gpus(rows, "embodied_ng"),
        first_at=first,
        last_at=last,
    )  # fmt: skip
    return totals, sweeps


def _extent(conn: Any, scope: Scope) -> _Extent:
    """The ``_Extent`` of a scope in a query of its own (``figures`` has it from the groups): each
    end found by walking the (project, started_at) index to its first run within the bounds."""
    where, params = scope.where(conn.dialect.name)
    first, last = (
        f"(SELECT runs.started_at FROM runs WHERE {where} AND {kept.plausible('runs')} "
        f"ORDER BY runs.started_at {order} LIMIT 1)"
        for order in ("ASC", "DESC")
    )
    return tuple(conn.execute(text(f"SELECT {first}, {last}").bindparams(**params)).one())


def _by_gpus(rows: Sequence[Sequence[Any]], column: str) -> dict[int, float]:
    """The sum of ``column`` (a figure of ``totals.COLUMNS``, in micro-units) by GPU count over rows
    of sums, in its unit, of the GPU counts where it is not 0."""
    at = _SUMS + kept.COLUMNS.index(column)
    found: dict[int, int] = {}
    for row in rows:
        if row[at]:
            found[int(row[_GPUS] or 0)] = found.get(int(row[_GPUS] or 0), 0) + int(row[at])
    return {gpus: micro / kept.SCALES[column] for gpus, micro in sorted(found.items())}


def _sweeps(
    conn: Any, scope: Scope, rows: Sequence[Sequence[Any]]
) -> tuple[dict[str, tuple[float, float]], list[SweepSummary]]:
    """The energy and emissions of the selected runs in scope, by sweep, and the sweeps of a scope
    from its rows of sums, each with its selected run's energy if that run is in scope (and
    plausible: a selected run left out leaves its sweep without a result)."""
    from .sweeps import SweepSummary

    by_key: dict[str, list] = {}
    for row in rows:
        if row[_SWEEP] != "":
            by_key.setdefault(row[_SWEEP], []).append(row[_SUMS:])
    totals = {key: kept.from_sums(*kept.add_up(found)) for key, found in by_key.items()}
    totals = {key: t for key, t in totals.items() if t.runs}  # a sweep whose runs here were all left out
    where, params = scope.where(conn.dialect.name)
    sql = (
        "SELECT sweeps.sweep_key, sweeps.label, sweeps.selected_run_id, runs.is_final, runs.energy_j, "
        f"runs.emissions_g, CASE WHEN {where} AND {kept.plausible('runs')} THEN 1 ELSE 0 END, sweeps.is_result "
        "FROM sweeps LEFT JOIN runs ON runs.id = sweeps.selected_run_id "
        "WHERE sweeps.project = :sweeps_project"
    )
    found = conn.execute(text(sql).bindparams(**params, sweeps_project=scope.project))
    selected: dict[str, tuple[float, float]] = {}
    sweeps = []
    for key, label, run_id, marked, energy, emissions, in_scope, result in found:
        if key not in totals:
            continue
        chosen = run_id is not None and bool(in_scope)
        if chosen and result:  # only a result's selected run counts in the scope's overhead
            selected[key] = (float(energy or 0.0), float(emissions or 0.0))
        explicit = not key.startswith("code:")
        sweeps.append(SweepSummary(
            key=key, label=key if explicit else label or key, explicit=explicit, totals=totals[key],
            varying_params={}, selected_run_id=run_id, selected_is_marked=bool(marked),
            selected_energy_j=energy if chosen else None, is_result=bool(result),
        ))  # fmt: skip
    return selected, sorted(sweeps, key=lambda s: (-s.energy_j, s.key))


def _groups(conn: Any, scope: Scope, *, checked: bool = True) -> tuple[list[Group], _Extent]:
    """The scope's plausible runs grouped by ``GROUPED_BY``, with their sums (``Group``), and their
    ``_Extent`` (from the same read). ``checked=False``: the scope has no run to leave out (its
    totals count none), so the bounds need not be checked run by run."""
    from ..record import ESTIMATED, MEASURED, method_kind

    dims = ", ".join(f"runs.{name}" for name in GROUPED_BY)
    parts = ("runs.gpu_energy_j", "runs.cpu_energy_j", "runs.ram_energy_j")
    # what a run's components leave of its total, all three counted; exact for a group whose
    # components that are not counted (method none or unknown) hold no energy, else recounted below
    left = "runs.energy_j - " + " - ".join(f"COALESCE({part}, 0)" for part in parts)
    sums = (
        "COUNT(*), SUM(runs.energy_j), "
        "SUM(runs.gpu_energy_j), SUM(runs.cpu_energy_j), SUM(runs.ram_energy_j), "
        "SUM(runs.energy_j * COALESCE(runs.pue, 1.0)), " + _unattributed_sums(left) + ", "
        "MIN(runs.started_at), MAX(runs.started_at), SUM(runs.duration_s)"
    )
    where, params = scope.where(conn.dialect.name)
    if checked:
        where += f" AND {kept.plausible('runs')}"
    sql = f"SELECT {dims}, {sums} FROM {_runs_in_order(conn, scope)} WHERE {where} GROUP BY {dims}"
    groups = []
    recount: dict[tuple, list[int]] = {}
    firsts, lasts = [], []
    n = len(GROUPED_BY)
    for row in conn.execute(text(sql).bindparams(**params)):
        group = Group(*row[:n], int(row[n]), *(float(v or 0.0) for v in row[n + 1 : n + 8]),
                      run_time_s=float(row[n + 10] or 0.0))  # fmt: skip
        firsts.append(row[n + 8])
        lasts.append(row[n + 9])
        uncounted = [c for c in _PARTS if method_kind(getattr(group, f"{c}_method")) not in (MEASURED, ESTIMATED)]
        if any(getattr(group, f"{c}_energy_j") for c in uncounted):
            recount.setdefault((group.gpu_method, group.cpu_method, group.ram_method), []).append(len(groups))
        groups.append(group)
    for methods, at in recount.items():
        _recount(conn, scope, methods, [groups[i] for i in at], groups, at)
    return groups, (min(firsts, default=None), max(lasts, default=None))


def _runs_in_order(conn: Any, scope: Scope) -> str:
    """``runs``, read on SQLite through the index that serves a scope of a project's runs best: all
    of them, ``ix_runs_groups``, which holds every column the groups need, in group order (nothing
    read from the table, nothing sorted); a cut by time, status or tags, the (project, started_at)
    index, its rows then in the order they were written, a third quicker than through the index
    SQLite's planner (lacking statistics) picks, by notebook. Elsewhere the planner's choice."""
    if conn.dialect.name != "sqlite" or scope.notebook is not None or scope.sweep is not None:
        return "runs"
    wanted = ["project", "started_at"] if scope.cut else ["project", *GROUPED_BY, *GROUP_SUMMED]
    found = [i.name for i in runs.indexes if [c.name for c in i.columns] == wanted]
    return f"runs INDEXED BY {found[0]}" if found else "runs"


def _unattributed_sums(left: str) -> str:
    """SQL sums of ``left`` (a run's energy no counted component accounts for), within tolerance as 0:
    signed, and with a negative part as 0."""
    small = f"{_TOLERANCE} * ABS(runs.energy_j)"
    return (
        f"SUM(CASE WHEN ABS({left}) > {small} THEN {left} ELSE 0 END), "
        f"SUM(CASE WHEN {left} > {small} THEN {left} ELSE 0 END)"
    )


def _recount(
    conn: Any, scope: Scope, methods: tuple, found: list[Group], groups: list[Group], at: list[int]
) -> None:
    """The unattributed energy of the groups with these methods whose uncounted components hold
    energy (a hand edit, a method this version does not know): with only the counted ones taken off."""
    from ..record import ESTIMATED, MEASURED, method_kind

    counted = [f"COALESCE(runs.{c}_energy_j, 0)" for c, method in zip(("gpu", "cpu", "ram"), methods)
               if method_kind(method) in (MEASURED, ESTIMATED)]  # fmt: skip
    left = " - ".join(["runs.energy_j", *counted])
    where, params = scope.where(conn.dialect.name)
    same = "IS NOT DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS"
    for i, column in enumerate(("gpu_method", "cpu_method", "ram_method")):
        where += f" AND runs.{column} {same} :method_{i}"
        params[f"method_{i}"] = methods[i]
    dims = ", ".join(f"runs.{name}" for name in GROUPED_BY)
    sql = (
        f"SELECT {dims}, {_unattributed_sums(left)} FROM runs WHERE {where} AND {kept.plausible('runs')} "
        f"GROUP BY {dims}"
    )
    found_rows = conn.execute(text(sql).bindparams(**params))
    recounted = {tuple(row[: len(GROUPED_BY)]): row[len(GROUPED_BY) :] for row in found_rows}
    for i, group in zip(at, found):
        signed, positive = recounted.get(tuple(getattr(group, name) for name in GROUPED_BY), (0.0, 0.0))
        groups[i] = dataclasses.replace(
            group, unattributed_j=float(signed or 0.0), unattributed_positive_j=float(positive or 0.0)
        )


def _excluded(conn: Any, scope: Scope) -> tuple[dict[str, Any], ...]:
    """The scope's runs whose figures break ``record.BOUNDS``, by id, each with the first reason."""
    where, params = scope.where(conn.dialect.name)
    bounded = ", ".join(f"runs.{column}" for column in BOUNDS)
    sql = (
        f"SELECT runs.id, runs.name, {bounded} FROM runs WHERE {where} AND NOT {kept.plausible('runs')} "
        "ORDER BY runs.id"
    )
    found = []
    for row in conn.execute(text(sql).bindparams(**params)):
        reason = implausible(dict(zip(BOUNDS, row[2:])))
        name = row[1] if isinstance(row[1], str) else None
        found.append({"id": int(row[0]), "name": name, "reason": reason or "implausible figures"})
    return tuple(found)
