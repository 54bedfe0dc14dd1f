"""The SQL behind the server's pages: a page of runs, a page of redundant runs, the change token.

Plain functions of an open connection (``Registry._transaction``), so the reader decides what is
cached and the handlers never touch the database. Rows come back JSON-ready: energy in J,
emissions in g CO2e, water in L, times in UTC epoch seconds, JSON columns decoded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select

from ..registry.rows import decode_many
from ..registry.schema import runs, sweep_state
from ..registry.sweeps import sweep_key

RUN_COLUMNS = (
    "id", "uid", "project", "notebook", "name", "sweep", "code_fingerprint", "status", "error",
    "started_at", "ended_at", "duration_s", "energy_j", "gpu_energy_j", "cpu_energy_j", "ram_energy_j",
    "emissions_g", "water_l", "embodied_g", "intensity_region", "host", "gpu_model", "tags", "params",
    "redundant_of", "is_final",
)  # fmt: skip
"""What a page of runs says of each run: not the cell's source, most of a row's bytes."""

_JSON = ("tags", "params")
_IN_LIMIT = 500  # ids per IN list


def change_token(conn: Any, project: str) -> tuple:
    """Something that changes whenever a figure of ``project`` may have: the generation of each
    of its sweeps (moved on by the registry's triggers when a run of the sweep is inserted,
    deleted or its figures change), and for the runs in no sweep their count, last id and last
    ``updated_at`` (set by every start, checkpoint and finish). Two indexed reads, well under a
    millisecond at 100,000 runs, where reading the runs themselves takes seconds."""
    generations = conn.execute(
        select(sweep_state.c.sweep_key, sweep_state.c.generation)
        .where(sweep_state.c.project == project)
        .order_by(sweep_state.c.sweep_key)
    ).all()
    loose = conn.execute(
        select(func.count(), func.max(runs.c.id), func.max(runs.c.updated_at)).where(
            runs.c.project == project,
            runs.c.code_fingerprint.is_(None),  # the (project, code_fingerprint, ...) index
            or_(runs.c.sweep.is_(None), runs.c.sweep == ""),
        )
    ).one()
    return tuple(map(tuple, generations)), tuple(loose)


def sweep_generations(conn: Any, project: str) -> tuple:
    """The first part of ``change_token``: what ``list_sweeps`` depends on."""
    return change_token(conn, project)[0]


def runs_page(
    conn: Any, project: str, *, status: str | None, sweep: str | None, limit: int, offset: int
) -> dict[str, Any]:
    """Runs of ``project`` newest first (start, then id), ``limit`` from ``offset``, and how many
    there are in all with these filters."""
    conditions = [runs.c.project == project]
    if status is not None:
        conditions.append(runs.c.status == status)
    if sweep is not None:
        conditions.append(_in_sweep(sweep))
    total = conn.execute(select(func.count()).select_from(runs).where(*conditions)).scalar_one()
    query = (
        select(*(runs.c[name] for name in RUN_COLUMNS))
        .where(*conditions)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return {"total": total, "runs": _decoded([row._mapping for row in conn.execute(query)])}


def redundant_page(conn: Any, project: str, *, limit: int, offset: int) -> dict[str, Any]:
    """Redundant runs of ``project`` newest first, each with ``repeats``: the earlier identical
    run's id, name, status and start (name, status and start None if that run is gone); the
    count, energy and emissions of all of them."""
    redundant = and_(runs.c.project == project, runs.c.redundant_of.is_not(None))
    total, energy, emissions = conn.execute(
        select(func.count(), func.sum(func.coalesce(runs.c.energy_j, 0.0)),
               func.sum(func.coalesce(runs.c.emissions_g, 0.0))).where(redundant)
    ).one()  # fmt: skip
    query = (
        select(*(runs.c[name] for name in RUN_COLUMNS))
        .where(redundant)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = _decoded([row._mapping for row in conn.execute(query)])
    earlier_ids = sorted({row["redundant_of"] for row in rows})
    earlier: dict[int, dict[str, Any]] = {}
    for start in range(0, len(earlier_ids), _IN_LIMIT):
        chunk = earlier_ids[start : start + _IN_LIMIT]
        found = conn.execute(
            select(runs.c.id, runs.c.name, runs.c.status, runs.c.started_at).where(runs.c.id.in_(chunk))
        )
        earlier.update((row.id, dict(row._mapping)) for row in found)
    for row in rows:
        missing = {"id": row["redundant_of"], "name": None, "status": None, "started_at": None}
        row["repeats"] = earlier.get(row["redundant_of"], missing)
    return {"total": total, "energy_j": energy or 0.0, "emissions_g": emissions or 0.0, "runs": rows}


def _in_sweep(key: str) -> Any:
    """The runs of one sweep: its name, or ``code:<fingerprint>`` for an automatic sweep."""
    if key.startswith("code:"):
        return and_(or_(runs.c.sweep.is_(None), runs.c.sweep == ""), runs.c.code_fingerprint == key[5:])
    return runs.c.sweep == key


def _decoded(rows: list[Any]) -> list[dict[str, Any]]:
    out = [dict(row) for row in rows]
    for name in _JSON:
        for row, value in zip(out, decode_many([row[name] for row in out])):
            row[name] = value
    for row in out:
        row["is_final"] = bool(row["is_final"])
        row["sweep_key"] = sweep_key(row)
    return out
