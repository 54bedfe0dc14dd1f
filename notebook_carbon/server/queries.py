"""The SQL behind the server's pages: a page of runs, a page of redundant runs, the change token.

Plain functions of an open connection (``Registry._transaction``), so the reader decides what is
cached and the handlers never touch the database. Rows come back JSON-ready: energy in J,
emissions in g CO2e, water in L, times in UTC epoch seconds, JSON columns decoded.

JSON has no infinity or NaN, and one stored row must never make a page fail: a figure that is not
a finite number is sent as null (the row's ``excluded`` says why: ``record.implausible``), and such
a number among the params (``--param x=1e999``) as the text ``"Infinity"``, ``"-Infinity"`` or
``"NaN"``; params that are not valid JSON as null.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from sqlalchemy import Float, and_, cast, func, or_, select

from ..record import implausible
from ..registry.rows import decode_many, tuples
from ..registry.schema import runs, sweep_state
from ..registry.sweeps import sweep_key

RUN_COLUMNS = (
    "id", "uid", "project", "notebook", "name", "sweep", "code_fingerprint", "status", "error",
    "started_at", "ended_at", "duration_s", "energy_j", "gpu_energy_j", "cpu_energy_j", "ram_energy_j",
    "emissions_g", "water_l", "embodied_g", "intensity_region", "host", "gpu_model", "tags", "params",
    "redundant_of", "is_final", "pue", "intensity_g_per_kwh", "gpu_count",
)  # fmt: skip
"""What a page of runs says of each run: not the cell's source, most of a row's bytes; every
column of ``record.BOUNDS``, so a row's ``excluded`` gives the reason the statement gives."""

_JSON = ("tags", "params")
_IN_LIMIT = 500  # ids per IN list


BLOCK = 1024
"""The runs of a sweep (and those in no sweep) are tallied in blocks of this many consecutive ids
(``server.tallies``): recounting a block after a run is recorded reads at most this many runs."""
MEMBER_COLUMNS = (
    "id", "started_at", "status", "is_final", "updated_at", "notebook", "energy_j", "emissions_g", "redundant_of",
)  # fmt: skip
"""What ``members`` reads of each run of a sweep: its block, what tells that a block changed,
what picks the selected run, and what that run adds to a tally."""
_NUMBERS = ("started_at", "updated_at", "energy_j", "emissions_g")


def unswept() -> Any:
    """The runs in no sweep (``sweep_key`` None): neither a sweep name nor a code fingerprint."""
    return and_(or_(runs.c.sweep.is_(None), runs.c.sweep == ""),
                or_(runs.c.code_fingerprint.is_(None), runs.c.code_fingerprint == ""))  # fmt: skip


def in_sweep(key: str) -> Any:
    """The runs whose ``sweep_key`` is ``key``: a sweep name, or ``code:<fingerprint>`` for the
    runs with that code and no sweep name (and those of a sweep named so)."""
    return or_(*_sweep_searches(key))


def _sweep_searches(key: str) -> list[Any]:
    """``in_sweep(key)`` as conditions each found by an index search (a name: ``ix_runs_sweep``;
    a code: the ``(project, code_fingerprint, ...)`` index), for a read that must be quick."""
    if not key.startswith("code:"):
        return [runs.c.sweep == key]
    unnamed = or_(runs.c.sweep.is_(None), runs.c.sweep == "")
    return [runs.c.sweep == key, and_(unnamed, runs.c.code_fingerprint == key[len("code:") :])]


def members(conn: Any, project: str, key: str | None) -> list[tuple]:
    """``MEMBER_COLUMNS`` of every run of the sweep ``key`` of ``project`` (None: of its runs in
    no sweep), in no order: one index search per condition."""
    # numbers as numbers even where a hand edit left text (SQLite keeps it; CAST makes it 0): the
    # tallies compare and sum them, and read_runs leaves such a run out, naming it
    columns = [cast(runs.c[name], Float) if name in _NUMBERS else runs.c[name] for name in MEMBER_COLUMNS]
    found: list[tuple] = []
    for search in _unswept_searches() if key is None else _sweep_searches(key):
        found += tuples(conn, select(*columns).where(runs.c.project == project, search))
    return found


def _unswept_searches() -> list[Any]:
    """``unswept()`` as two conditions, each found by a search of the ``(project, code_fingerprint,
    ...)`` index: with ``code_fingerprint IS NULL OR = ''`` SQLite would read the whole project."""
    unnamed = or_(runs.c.sweep.is_(None), runs.c.sweep == "")
    return [and_(runs.c.code_fingerprint.is_(None), unnamed), and_(runs.c.code_fingerprint == "", unnamed)]


def change_token(conn: Any, project: str) -> tuple:
    """Something that changes whenever a figure of ``project`` may have: the generation of each
    of its sweeps (moved on by the registry's triggers when a run of the sweep is inserted,
    deleted or its figures change), and for the runs in no sweep their count, last id and last
    ``updated_at`` (set by every start, checkpoint and finish). Indexed reads, well under a
    millisecond at 100,000 runs, where reading the runs themselves takes seconds."""
    generations = conn.execute(
        select(sweep_state.c.sweep_key, sweep_state.c.generation)
        .where(sweep_state.c.project == project)
        .order_by(sweep_state.c.sweep_key)
    ).all()
    found = [
        conn.execute(
            select(func.count(), func.max(runs.c.id), func.max(runs.c.updated_at)).where(
                runs.c.project == project, search
            )
        ).one()
        for search in _unswept_searches()
    ]
    loose = (sum(row[0] for row in found), _most(row[1] for row in found), _most(row[2] for row in found))
    return tuple(map(tuple, generations)), loose


def _most(values: Any) -> Any:
    found = [value for value in values if value is not None]
    return max(found) if found else None


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
        conditions.append(in_sweep(sweep))
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
    run's id, name, status and start (name, status and start None if that run is gone). (Their
    count and sums come from the reader's tallies: in SQL they read every run of the project.)"""
    redundant = and_(runs.c.project == project, runs.c.redundant_of.is_not(None))
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
        earlier.update((row.id, json_ready(dict(row._mapping))) for row in found)
    for row in rows:
        missing = {"id": row["redundant_of"], "name": None, "status": None, "started_at": None}
        row["repeats"] = earlier.get(row["redundant_of"], missing)
    return {"runs": rows}


VARYING_VALUES = 20
"""The distinct values of a varying parameter a sweep's row lists (a random search gives nearly
every run its own learning rate: 80,000 values and 800 kB of JSON at 100,000 runs)."""
_FAILED = ("failed", "interrupted", "crashed")


def sweep_row(sweep: Any) -> dict[str, Any]:
    """A ``SweepSummary`` as JSON: every field but the run ids (all of a sweep's, possibly
    thousands), with the overhead ratio and the failed runs counted; each varying parameter with
    its first ``VARYING_VALUES`` distinct values, and in ``varying_counts`` how many it has."""
    fields = [field.name for field in dataclasses.fields(sweep) if field.name != "run_ids"]
    row = {name: getattr(sweep, name) for name in fields}
    row["runs"] = sweep.runs
    row["overhead_ratio"] = sweep.overhead_ratio
    row["failed_runs"] = sum(count for status, count in sweep.statuses.items() if status in _FAILED)
    row["statuses"] = dict(sweep.statuses)
    row["varying_params"] = {
        name: json_ready(list(values[:VARYING_VALUES]), as_text=True) for name, values in sweep.varying_params.items()
    }
    row["varying_counts"] = {name: len(values) for name, values in sweep.varying_params.items()}
    return json_ready(row)


def json_ready(value: Any, *, as_text: bool = False) -> Any:
    """``value`` with every float that is not a finite number as None, or with ``as_text`` as the
    text JSON's writers use for it (``Infinity``, ``-Infinity``, ``NaN``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value) if as_text else None
    if isinstance(value, dict):
        return {k: json_ready(v, as_text=as_text) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, as_text=as_text) for v in value]
    return value


def _decoded(rows: list[Any]) -> list[dict[str, Any]]:
    out = [dict(row) for row in rows]
    for name in _JSON:
        texts = [row[name] for row in out]
        try:
            decoded = decode_many(texts)
        except ValueError:  # one broken by hand: each on its own, the broken one as null
            decoded = [_loads(text) for text in texts]
        for row, value in zip(out, decoded):
            row[name] = json_ready(value, as_text=True)
    for row in out:
        row["is_final"] = bool(row["is_final"])
        row["sweep_key"] = sweep_key(row)
        row["excluded"] = implausible(row)
    return [json_ready(row) for row in out]


def _loads(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
