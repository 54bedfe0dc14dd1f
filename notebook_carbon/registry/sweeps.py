"""Sweeps, the selected run of each, development overhead, and the redundancy lookup.

A sweep is the set of a project's runs that share an explicit sweep name or, without one, a code
fingerprint: the same cell run with different inputs or parameters. Its development overhead is the
sweep's total energy over the energy of its selected run, the one marked final (``%carbon final``,
``--final``) or else the latest ``ok`` run: "the result took 1 run's energy, getting there took 14".

Two runs are redundant when code, inputs and explicit parameters are identical, none of them is
unknown, and the earlier finished ``ok``; ``find_redundant`` is the index search made before every
metered cell. ``group_sweeps`` is pure, so its arithmetic is tested on hand-made rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update

from ..errors import RegistryError
from .schema import decode_row, runs

_SWEEP_COLUMNS = (
    runs.c.id,
    runs.c.uid,
    runs.c.name,
    runs.c.sweep,
    runs.c.code_fingerprint,
    runs.c.cell_source,
    runs.c.params,
    runs.c.status,
    runs.c.started_at,
    runs.c.energy_j,
    runs.c.emissions_g,
    runs.c.redundant_of,
    runs.c.is_final,
)


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    """One sweep's runs and costs. Energy in J, emissions in g CO2e."""

    key: str
    """The explicit sweep name, or ``code:<fingerprint>`` for an automatic sweep."""
    label: str
    """What to show: the sweep name, or the first line of the cell for an automatic sweep."""
    explicit: bool
    run_ids: tuple[int, ...]
    statuses: Mapping[str, int]
    varying_params: Mapping[str, tuple[Any, ...]]
    """Each parameter whose value differs between runs, with its distinct values."""
    energy_j: float
    emissions_g: float
    failed_energy_j: float
    failed_emissions_g: float
    redundant_energy_j: float
    redundant_emissions_g: float
    redundant_runs: int
    selected_run_id: int | None
    selected_is_marked: bool
    """True when the selected run was marked final, False when it is the latest ok run."""
    selected_energy_j: float | None

    @property
    def runs(self) -> int:
        return len(self.run_ids)

    @property
    def overhead_ratio(self) -> float | None:
        """Sweep energy over the selected run's energy; None without a selected run with energy."""
        if not self.selected_energy_j:
            return None
        return self.energy_j / self.selected_energy_j


def sweep_key(row: Mapping[str, Any]) -> str | None:
    """The sweep a run belongs to, or None for a run with neither a sweep name nor code (a bare
    ``track()`` block): such a run is in no sweep."""
    if row.get("sweep"):
        return row["sweep"]
    if row.get("code_fingerprint"):
        return "code:" + row["code_fingerprint"]
    return None


def group_sweeps(rows: Iterable[Mapping[str, Any]]) -> list[SweepSummary]:
    """Sweeps of ``rows`` (decoded run dicts), the most energy first."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = sweep_key(row)
        if key is not None:
            groups.setdefault(key, []).append(row)
    summaries = [_summarise(key, sorted(members, key=lambda r: (r["started_at"], r["id"]))) for key, members in groups.items()]
    return sorted(summaries, key=lambda s: (-s.energy_j, s.key))


def _summarise(key: str, members: list[Mapping[str, Any]]) -> SweepSummary:
    def energy(row):
        return row.get("energy_j") or 0.0

    def emissions(row):
        return row.get("emissions_g") or 0.0

    statuses: dict[str, int] = {}
    for row in members:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    failed = [r for r in members if r["status"] in ("failed", "interrupted", "crashed")]
    redundant = [r for r in members if r.get("redundant_of") is not None]
    marked = [r for r in members if r.get("is_final")]
    ok = [r for r in members if r["status"] == "ok"]
    selected = marked[-1] if marked else (ok[-1] if ok else None)
    explicit = not key.startswith("code:")
    first = members[0]
    if explicit:
        label = key
    else:
        lines = [line for line in (first.get("cell_source") or "").splitlines() if line.strip()]
        label = (lines[0].strip() if lines else first.get("name") or key)[:60]
    return SweepSummary(
        key=key,
        label=label,
        explicit=explicit,
        run_ids=tuple(r["id"] for r in members),
        statuses=statuses,
        varying_params=_varying(members),
        energy_j=sum(map(energy, members)),
        emissions_g=sum(map(emissions, members)),
        failed_energy_j=sum(map(energy, failed)),
        failed_emissions_g=sum(map(emissions, failed)),
        redundant_energy_j=sum(map(energy, redundant)),
        redundant_emissions_g=sum(map(emissions, redundant)),
        redundant_runs=len(redundant),
        selected_run_id=selected["id"] if selected else None,
        selected_is_marked=bool(marked),
        selected_energy_j=energy(selected) if selected else None,
    )


def _varying(members: list[Mapping[str, Any]]) -> dict[str, tuple[Any, ...]]:
    values: dict[str, list[Any]] = {}
    for row in members:
        for name, value in (row.get("params") or {}).items():
            seen = values.setdefault(name, [])
            if value not in seen:
                seen.append(value)
    # A parameter missing from some runs also varies: it was added part-way through the sweep.
    everywhere = {name for name in values if all(name in (r.get("params") or {}) for r in members)}
    return {
        name: tuple(seen)
        for name, seen in sorted(values.items())
        if len(seen) > 1 or (name not in everywhere and len(members) > 1)
    }


def list_sweeps(registry, project: str) -> list[SweepSummary]:
    """The sweeps of ``project`` in ``registry`` (a ``Registry``), the most energy first."""
    query = select(*_SWEEP_COLUMNS).where(runs.c.project == project)
    with registry._transaction(f"listing the sweeps of project {project!r}") as conn:
        rows = [decode_row(dict(row._mapping)) for row in conn.execute(query)]
    return group_sweeps(rows)


def find_redundant(
    registry,
    *,
    project: str,
    code_fingerprint: str,
    inputs_fingerprint: str | None,
    params_fingerprint: str | None,
) -> dict[str, Any] | None:
    """The first ``ok`` run identical to these fingerprints, with ``repeats`` (how many such runs
    exist); None when there is none, or when the inputs are unknown (never called redundant)."""
    if not (code_fingerprint and inputs_fingerprint and params_fingerprint):
        return None
    same = and_(
        runs.c.project == project,
        runs.c.code_fingerprint == code_fingerprint,
        runs.c.inputs_fingerprint == inputs_fingerprint,
        runs.c.params_fingerprint == params_fingerprint,
        runs.c.status == "ok",
    )
    first = (
        select(runs.c.id, runs.c.uid, runs.c.name, runs.c.started_at, runs.c.ended_at, runs.c.energy_j, runs.c.emissions_g)
        .where(same)
        .order_by(runs.c.started_at, runs.c.id)
        .limit(1)
    )
    with registry._transaction("looking for an identical earlier run") as conn:
        row = conn.execute(first).first()
        if row is None:
            return None
        repeats = conn.execute(select(func.count()).select_from(runs).where(same)).scalar_one()
    return {**row._mapping, "repeats": repeats}


def set_final(registry, run_id: int | str) -> dict[str, Any]:
    """Mark a run (its id, or its uid) as its sweep's selected result, unmarking the sweep's
    others; returns the run's id, project, sweep and name."""
    which = runs.c.uid == run_id if isinstance(run_id, str) and not run_id.isdigit() else runs.c.id == int(run_id)
    with registry._transaction(f"marking run {run_id} final", write=True) as conn:
        row = conn.execute(
            select(runs.c.id, runs.c.project, runs.c.sweep, runs.c.code_fingerprint, runs.c.status, runs.c.name)
            .where(which)
        ).first()
        if row is None:
            raise RegistryError(f"there is no run {run_id} in registry {registry.where}; `%carbon sweeps` lists them")
        if sweep_key(row._mapping) is None:
            raise RegistryError(f"run {run_id} belongs to no sweep (no sweep name and no code), so it cannot be final")
        if row.status != "ok":
            raise RegistryError(f"run {run_id} finished {row.status!r}; only an ok run can be a sweep's result")
        if row.sweep:
            same_sweep = runs.c.sweep == row.sweep
        else:
            same_sweep = and_(
                or_(runs.c.sweep.is_(None), runs.c.sweep == ""), runs.c.code_fingerprint == row.code_fingerprint
            )
        conn.execute(update(runs).where(runs.c.project == row.project, same_sweep).values(is_final=False))
        conn.execute(update(runs).where(runs.c.id == row.id).values(is_final=True))
        return dict(row._mapping)


@dataclasses.dataclass(frozen=True)
class ProjectTotals:
    """A project's totals over all its runs. Energy in J, emissions in g CO2e, water in L."""

    project: str
    runs: int
    statuses: Mapping[str, int]
    energy_j: float
    emissions_g: float
    water_l: float
    failed_energy_j: float
    redundant_energy_j: float
    redundant_runs: int


def project_totals(registry, project: str) -> ProjectTotals:
    """Totals of ``project``, aggregated by the database (one query, whatever the number of runs)."""
    energy = func.coalesce(runs.c.energy_j, 0.0)
    query = (
        select(
            runs.c.status,
            func.count().label("runs"),
            func.sum(energy).label("energy_j"),
            func.sum(func.coalesce(runs.c.emissions_g, 0.0)).label("emissions_g"),
            func.sum(func.coalesce(runs.c.water_l, 0.0)).label("water_l"),
            func.sum(case((runs.c.redundant_of.is_not(None), energy), else_=0.0)).label("redundant_energy_j"),
            func.count(runs.c.redundant_of).label("redundant_runs"),
        )
        .where(runs.c.project == project)
        .group_by(runs.c.status)
    )
    with registry._transaction(f"totalling project {project!r}") as conn:
        rows = [row._mapping for row in conn.execute(query)]
    failed = [r for r in rows if r["status"] in ("failed", "interrupted", "crashed")]
    return ProjectTotals(
        project=project,
        runs=sum(r["runs"] for r in rows),
        statuses={r["status"]: r["runs"] for r in rows},
        energy_j=sum(r["energy_j"] or 0.0 for r in rows),
        emissions_g=sum(r["emissions_g"] or 0.0 for r in rows),
        water_l=sum(r["water_l"] or 0.0 for r in rows),
        failed_energy_j=sum(r["energy_j"] or 0.0 for r in failed),
        redundant_energy_j=sum(r["redundant_energy_j"] or 0.0 for r in rows),
        redundant_runs=sum(r["redundant_runs"] for r in rows),
    )
