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
import json
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, update

from ..errors import RegistryError
from .rows import decode_many, tuples
from .schema import runs, sweep_cache, sweep_state

# What ``list_sweeps`` reads of every run, in this order: not the cell's source, most of a row's
# bytes and needed only for the label of each automatic sweep (read for its first run alone).
_MEMBER_COLUMNS = (
    runs.c.sweep,
    runs.c.code_fingerprint,
    runs.c.id,
    runs.c.started_at,
    runs.c.status,
    runs.c.energy_j,
    runs.c.emissions_g,
    runs.c.redundant_of,
    runs.c.is_final,
    runs.c.params,
)
_MEMBER_NAMES = tuple(column.name for column in _MEMBER_COLUMNS)
_SWEEP, _CODE, _ID, _STARTED, _STATUS, _ENERGY, _EMISSIONS, _REDUNDANT, _FINAL, _PARAMS = range(10)
_FAILED = frozenset(("failed", "interrupted", "crashed"))
_IN_LIMIT = 500  # ids per IN list: far below every database's limit on bound parameters


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
    summaries = []
    for key, members in groups.items():
        members = sorted(members, key=lambda r: (r["started_at"], r["id"]))
        first = members[0]
        summaries.append(
            _summarise(
                key,
                _label(key, first.get("cell_source"), first.get("name")),
                [tuple(r.get(name) for name in _MEMBER_NAMES) for r in members],
                [r.get("params") for r in members],
            )
        )
    return sorted(summaries, key=lambda s: (-s.energy_j, s.key))


def _label(key: str, cell_source: str | None, name: str | None) -> str:
    """The sweep name, or for an automatic sweep the first line of its first run's cell."""
    if not key.startswith("code:"):
        return key
    lines = [line for line in (cell_source or "").splitlines() if line.strip()]
    return (lines[0].strip() if lines else name or key)[:60]


def _summarise(key: str, label: str, members: list[tuple], params: list[Mapping | None]) -> SweepSummary:
    """One sweep from its runs, in start order, as ``_MEMBER_NAMES`` tuples, and their decoded params."""
    # Comprehensions rather than per-run function calls: at 100,000 runs the calls alone cost more
    # than the sums. Summed in start order, so every figure is the same to the last bit.
    energy = [r[_ENERGY] or 0.0 for r in members]
    emissions = [r[_EMISSIONS] or 0.0 for r in members]
    failed = [i for i, r in enumerate(members) if r[_STATUS] in _FAILED]
    redundant = [i for i, r in enumerate(members) if r[_REDUNDANT] is not None]
    marked = [i for i, r in enumerate(members) if r[_FINAL]]
    latest_ok = next((i for i in range(len(members) - 1, -1, -1) if members[i][_STATUS] == "ok"), None)
    selected = marked[-1] if marked else latest_ok
    return SweepSummary(
        key=key,
        label=label,
        explicit=not key.startswith("code:"),
        run_ids=tuple([r[_ID] for r in members]),
        statuses=dict(Counter([r[_STATUS] for r in members])),
        varying_params=varying_params(params),
        energy_j=sum(energy),
        emissions_g=sum(emissions),
        failed_energy_j=sum([energy[i] for i in failed]),
        failed_emissions_g=sum([emissions[i] for i in failed]),
        redundant_energy_j=sum([energy[i] for i in redundant]),
        redundant_emissions_g=sum([emissions[i] for i in redundant]),
        redundant_runs=len(redundant),
        selected_run_id=members[selected][_ID] if selected is not None else None,
        selected_is_marked=bool(marked),
        selected_energy_j=energy[selected] if selected is not None else None,
    )


def varying_params(all_params: list[Mapping[str, Any] | None]) -> dict[str, tuple[Any, ...]]:
    """Each parameter with more than one value, or missing from some runs, with its distinct values
    in first-seen order (compared with ``==``)."""
    rows = [params or {} for params in all_params]
    varying = {}
    for name in sorted(set().union(*rows)):
        found = [row[name] for row in rows if name in row]
        try:
            # A random search gives nearly every run its own learning rate: dedupe through a dict
            # (hashable values: all of JSON's scalars), not a list search, which is quadratic.
            distinct = tuple(dict.fromkeys(found))
        except TypeError:  # a list or dict value: compared one by one
            distinct = tuple(_distinct(found))
        # A parameter missing from some runs also varies: it was added part-way through the sweep.
        if len(distinct) > 1 or (len(found) < len(rows) and len(rows) > 1):
            varying[name] = distinct
    return varying


def _distinct(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def list_sweeps(
    registry, project: str, *, memo: MutableMapping[str, tuple[int, SweepSummary | None]] | None = None
) -> list[SweepSummary]:
    """The sweeps of ``project`` in ``registry`` (a ``Registry``), the most energy first.

    Exactly ``group_sweeps`` over the project's runs, without reading them all each time: the
    registry keeps a generation counter per sweep, increased by a trigger whenever one of its runs
    changes, and a cache of each sweep's summary with the generation it was computed at (schema
    v3). Only the sweeps whose generation moved on are recomputed from their runs; the cache is
    then updated (not on a registry opened read-only, which recomputes what it must every time).

    The generations are read before the runs, in one transaction: a run recorded meanwhile can only
    make the computed summary newer than its generation, so at worst it is recomputed once more.

    ``memo`` (sweep key -> (generation, summary or None)) is a cache of the caller's, for a
    registry opened read-only, whose own cache stays as stale as its writers leave it: summaries
    found there at the current generation are used, and those computed are put there.
    """
    memo = {} if memo is None else memo
    doing = f"listing the sweeps of project {project!r}"
    found: dict[str, SweepSummary | None] = {}
    stale: dict[str, int] = {}  # sweep key -> its current generation
    joined = sweep_state.outerjoin(
        sweep_cache, and_(sweep_cache.c.project == sweep_state.c.project, sweep_cache.c.sweep_key == sweep_state.c.sweep_key)
    )
    query = (
        select(sweep_state.c.sweep_key, sweep_state.c.generation, sweep_cache.c.generation, sweep_cache.c.summary)
        .select_from(joined)
        .where(sweep_state.c.project == project)
    )
    with registry._transaction(doing) as conn:
        for key, generation, cached_at, text in conn.execute(query):
            summary = _from_cache(text) if cached_at == generation else _STALE
            if summary is _STALE and memo.get(key, (None,))[0] == generation:
                summary = memo[key][1]
            if summary is _STALE:
                stale[key] = generation
            else:
                found[key] = summary
        if stale:
            computed = _compute(conn, project, set(stale))
            found.update((key, computed.get(key)) for key in stale)
            memo.update((key, (generation, found[key])) for key, generation in stale.items())
    if stale and not registry.read_only:
        _store(registry, project, {key: (generation, found[key]) for key, generation in stale.items()})
    return sorted((s for s in found.values() if s is not None), key=lambda s: (-s.energy_j, s.key))


_CACHE_FORMAT = 1
"""Version of the cached summaries' JSON: raise it whenever ``SweepSummary`` or how it is computed
changes, and every summary cached by an older notebook-carbon is recomputed on its next read."""
_FULL_SCAN_ABOVE = 16
"""More stale sweeps than this (a first listing, an upgraded registry) are computed from one pass
over the project's runs in start order rather than from one indexed query per sweep."""
_STALE = object()


def _compute(conn, project: str, keys: set[str]) -> dict[str, SweepSummary]:
    """Summaries of the sweeps ``keys`` of ``project`` from their runs; a key with no runs left is absent."""
    members: dict[str, list[tuple]] = {}
    if len(keys) > _FULL_SCAN_ABOVE:
        query = select(*_MEMBER_COLUMNS).where(runs.c.project == project).order_by(runs.c.started_at, runs.c.id)
        for row in tuples(conn, query):
            key = row[_SWEEP] or ("code:" + row[_CODE] if row[_CODE] else None)  # as ``sweep_key``
            if key in keys:
                members.setdefault(key, []).append(row)
    else:
        for key in keys:
            if key.startswith("code:"):  # the (project, code_fingerprint, ...) index
                which = and_(or_(runs.c.sweep.is_(None), runs.c.sweep == ""), runs.c.code_fingerprint == key[5:])
            else:
                which = runs.c.sweep == key
            # Sorted here, not by ORDER BY: with one, SQLite's planner (lacking statistics) walks the
            # project's (project, started_at) index in order instead of searching the sweep's runs.
            rows = tuples(conn, select(*_MEMBER_COLUMNS).where(runs.c.project == project, which))
            if rows:
                members[key] = sorted(rows, key=lambda row: (row[_STARTED], row[_ID]))
    firsts = [rows[0][_ID] for key, rows in members.items() if key.startswith("code:")]
    sources: dict[int, tuple] = {}
    for start in range(0, len(firsts), _IN_LIMIT):
        chunk = firsts[start : start + _IN_LIMIT]
        query = select(runs.c.id, runs.c.cell_source, runs.c.name).where(runs.c.id.in_(chunk))
        sources.update((row[0], row[1:]) for row in conn.execute(query))
    return {
        key: _summarise(
            key,
            _label(key, *sources.get(rows[0][_ID], (None, None))),
            rows,
            _decode_params([row[_PARAMS] for row in rows]),
        )
        for key, rows in members.items()
    }


def _store(registry, project: str, summaries: Mapping[str, tuple[int, SweepSummary | None]]) -> None:
    """Cache ``summaries`` (sweep key -> (generation computed at, summary or None for no runs))."""
    rows = [
        {"project": project, "sweep_key": key, "generation": generation, "summary": _to_cache(summary)}
        for key, (generation, summary) in summaries.items()
    ]
    same = and_(sweep_cache.c.project == bindparam("p"), sweep_cache.c.sweep_key == bindparam("k"))
    try:
        with registry._transaction(f"caching the sweeps of project {project!r}", write=True) as conn:
            conn.execute(delete(sweep_cache).where(same), [{"p": project, "k": key} for key in summaries])
            conn.execute(insert(sweep_cache), rows)
    except RegistryError:
        # Only a cache: the listing is right without it, and is recomputed next time. A registry
        # that cannot be written (permissions, a lock held past the busy timeout) must not make
        # reading it fail; the next write would report the problem where it matters.
        pass


def _to_cache(summary: SweepSummary | None) -> str:
    fields = None if summary is None else {f.name: getattr(summary, f.name) for f in dataclasses.fields(summary)}
    return json.dumps({"format": _CACHE_FORMAT, "summary": fields})


def _from_cache(text: str | None) -> SweepSummary | None | object:
    """The cached summary (None: the sweep has no runs left), or ``_STALE`` if unusable."""
    try:
        cached = json.loads(text) if text else None
        if not isinstance(cached, dict) or cached.get("format") != _CACHE_FORMAT:
            return _STALE
        fields = cached["summary"]
        if fields is None:
            return None
        fields["run_ids"] = tuple(fields["run_ids"])
        fields["varying_params"] = {name: tuple(values) for name, values in fields["varying_params"].items()}
        return SweepSummary(**fields)
    except (ValueError, KeyError, TypeError, AttributeError):  # damaged by hand: recompute it
        return _STALE


def _decode_params(texts: list[Any]) -> list[Any]:
    """The JSON ``params`` of a sweep's runs, decoded as ``schema.decode_row`` does (None stays None)."""
    return decode_many(texts)


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
    columns = (runs.c.id, runs.c.uid, runs.c.name, runs.c.started_at, runs.c.ended_at, runs.c.energy_j, runs.c.emissions_g)
    # Equality conditions only, no ORDER BY ... LIMIT: with one, SQLite's planner (lacking
    # statistics) walked the (project, started_at) index instead of ix_runs_redundancy, ~50 ms at
    # 100,000 runs. Identical runs are few, so the first is picked here.
    with registry._transaction("looking for an identical earlier run") as conn:
        rows = [row._mapping for row in conn.execute(select(*columns).where(same))]
    if not rows:
        return None
    first = min(rows, key=lambda r: (r["started_at"], r["id"]))
    return {**first, "repeats": len(rows)}


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
