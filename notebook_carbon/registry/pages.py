"""Pages of runs: a project's runs (``Registry.page``), its redundant runs, each with the earlier run
it repeats, and the runs the totals leave out for implausible figures.

Each is one query. The redundant runs are counted, with their energy and emissions, in the totals
the database keeps (``Totals.redundant_*``), so a page of them needs no count of its own. The runs
left out are looked for only when ``Totals.excluded_runs`` says there are some (normally none):
the search reads every run of the project, as no index can hold ``totals.plausible``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, text

from ..record import BOUNDS, implausible
from .schema import runs
from .values import check_status, decode_row
from .totals import plausible

if TYPE_CHECKING:
    from .store import Registry

__all__ = ["excluded", "redundant_page", "runs_page"]


REPEATS = ("name", "status", "started_at", "notebook", "cell_id", "execution_count", "host")
"""What a redundant run's ``repeats`` says of the earlier run, beside its id."""


def redundant_page(
    registry: Registry, project: str, *, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """The redundant runs of ``project`` (``redundant_of`` set), newest first (start, then id),
    ``limit`` from ``offset``, as ``Registry.page`` gives runs, each with ``repeats``: the earlier
    run's ``id``, ``name``, ``status``, ``started_at``, and its cell: ``notebook``, ``cell_id``,
    ``execution_count`` and ``host`` (all but the id None if it was deleted)."""
    earlier = runs.alias("earlier")
    columns = [c for c in runs.c if c.name != "cell_source"]
    repeats = [earlier.c[name].label(f"repeats_{name}") for name in REPEATS]
    query = (
        select(*columns, *repeats)
        .select_from(runs.outerjoin(earlier, earlier.c.id == runs.c.redundant_of))
        .where(runs.c.project == project, runs.c.redundant_of.is_not(None))
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(int(limit))
        .offset(int(offset))
    )
    with registry.read(f"listing the redundant runs of project {project!r}") as conn:
        found = [dict(row._mapping) for row in conn.execute(query)]
    for row in found:
        row["repeats"] = {"id": row["redundant_of"], **{name: row.pop(f"repeats_{name}") for name in REPEATS}}
        decode_row(row)
    return found


def excluded(registry: Registry, project: str, notebook: str | None = None) -> list[dict[str, Any]]:
    """The runs of ``project`` (of one notebook; ``''``: of none) whose figures break
    ``record.BOUNDS``, which every total leaves out: their ``id``, ``name`` and ``reason``
    (``record.implausible``), by id."""
    where = [runs.c.project == project, text(f"NOT {plausible('runs')}")]
    if notebook is not None:
        where.append(runs.c.notebook == notebook if notebook else runs.c.notebook.is_(None))
    query = select(runs.c.id, runs.c.name, *(runs.c[column] for column in BOUNDS)).where(and_(*where))
    with registry.read(f"listing the runs left out of project {project!r}") as conn:
        rows = [dict(row._mapping) for row in conn.execute(query.order_by(runs.c.id))]
    return [{"id": row["id"], "name": row["name"], "reason": implausible(row)} for row in rows]


def runs_page(
    registry: Registry, project: str, *, status: str | None, sweep: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """``Registry.page``: one page of ``project``'s runs, newest first, and how many match in all."""
    where = [runs.c.project == project]
    if status is not None:
        check_status(status)
        where.append(runs.c.status == status)
    if sweep is not None:
        where.append(runs.c.sweep_key == sweep)
    columns = [c for c in runs.c if c.name != "cell_source"]
    query = select(*columns).where(*where).order_by(runs.c.started_at.desc(), runs.c.id.desc())
    with registry.read(f"listing the runs of project {project!r}") as conn:
        total = conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one()
        rows = conn.execute(query.limit(int(limit)).offset(int(offset))).all()
    return [decode_row(dict(row._mapping)) for row in rows], int(total)
