"""What a run achieved (issue 17): the values of metrics logged for it, and whether higher or lower
is better for each metric, as a project or a sweep declares it.

``check_metrics`` imports nothing more (the magic checks a cell's metrics with it); SQLAlchemy is
imported by the functions that read and write. Every value logged is kept (a training loop logs one per step); a run's value of a metric is the
last one logged (the latest, then the last written), step or none: a held-out evaluation logged
after the epochs' values is the run's. Functions of an open
``Registry``, as ``parts`` and ``jobs`` are.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, RegistryError

if TYPE_CHECKING:
    from .store import Registry

__all__ = ["DIRECTIONS", "check_metrics", "directions", "latest_metrics", "log_metrics", "set_direction",
           "sweeps_with_metrics"]

DIRECTIONS = ("higher", "lower")
"""Whether a higher or a lower value of a metric is the better result."""
MAX_NAME = 200
_CHUNK = 500


def check_metrics(values: Mapping[str, Any], step: Any = None) -> dict[str, float]:
    """``values`` (a metric's name to a real number) checked, as floats: a clear ``ConfigError``
    for a name that is empty, too long or holds a NUL, a value that is not a finite real number
    (``True`` is not 1), or a ``step`` that is not a whole number of 0 or more."""
    if not isinstance(values, Mapping) or not values:
        raise ConfigError("give at least one metric, as name=value (e.g. acc=0.93)")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ConfigError(f"a metric's step is a whole number of 0 or more; got {step!r}")
    checked = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or "\x00" in name:
            raise ConfigError(f"a metric's name is 1 to {MAX_NAME} characters, without NUL; got {str(name)[:80]!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ConfigError(f"metric {name!r} must be a finite number; got {value!r}")
        checked[name] = float(value)
    return checked


def _run_uid(conn: Any, where: str, run: int | str) -> str:
    from sqlalchemy import select

    from .schema import runs
    from .values import is_uid

    if isinstance(run, str) and is_uid(run):
        found = conn.execute(select(runs.c.uid).where(runs.c.uid == run)).scalar()
    elif isinstance(run, int) and not isinstance(run, bool):
        found = conn.execute(select(runs.c.uid).where(runs.c.id == run)).scalar()
    else:
        raise RegistryError(f"a run is named by its id or its uid; got {run!r}")
    if found is None:
        raise RegistryError(f"there is no run {run} in registry {where}; `%carbon last` or `notebook-carbon runs` lists them")
    return found


def log_metrics(registry: Registry, run: int | str, values: Mapping[str, Any], *, step: int | None = None,
                logged_at: float | None = None) -> str:  # fmt: skip
    """Record ``values`` (``check_metrics``) for run ``run`` (its id or uid) at ``step``; its uid."""
    from sqlalchemy import insert

    from .schema import metrics

    checked = check_metrics(values, step)
    at = time.time() if logged_at is None else logged_at
    with registry.write(f"logging metrics of run {run}") as conn:
        uid = _run_uid(conn, registry.where, run)
        conn.execute(insert(metrics), [{"run_uid": uid, "name": name, "value": value, "step": step, "logged_at": at}
                                       for name, value in checked.items()])  # fmt: skip
    return uid


def latest_metrics(registry: Registry, uids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each run's (by uid) last value of each metric logged for it; a run with none is left out.
    The database picks the last row of each run and metric (a window over the runs' rows, which
    ``ix_metrics_run`` finds): a training loop's thousands of steps are not sent to be dropped."""
    from sqlalchemy import func, select

    from .schema import metrics

    found: dict[str, dict[str, float]] = {}
    rank = func.row_number().over(partition_by=(metrics.c.run_uid, metrics.c.name),
                                  order_by=(metrics.c.logged_at.desc(), metrics.c.id.desc()))  # fmt: skip
    with registry.read("reading the runs' metrics") as conn:
        for start in range(0, len(uids), _CHUNK):
            chunk = list(uids[start : start + _CHUNK])
            ranked = select(metrics.c.run_uid, metrics.c.name, metrics.c.value, rank.label("rank"))
            ranked = ranked.where(metrics.c.run_uid.in_(chunk)).subquery()
            query = select(ranked.c.run_uid, ranked.c.name, ranked.c.value).where(ranked.c.rank == 1)
            for uid, name, value in conn.execute(query):
                found.setdefault(uid, {})[name] = value
    return found


def sweeps_with_metrics(registry: Registry, project: str) -> set[str]:
    """The keys of ``project``'s sweeps that hold a run with a metric logged: one read, so a view
    of a project whose runs logged none (most of them) reads no sweep's runs to find that out."""
    from sqlalchemy import select

    from .schema import metrics, runs

    logged = select(metrics.c.id).where(metrics.c.run_uid == runs.c.uid).exists()  # the index's first row: no scan
    query = select(runs.c.sweep_key).distinct().where(runs.c.project == project, runs.c.sweep_key.is_not(None), logged)
    with registry.read(f"finding the sweeps of project {project!r} with metrics") as conn:
        return {key for (key,) in conn.execute(query)}


def set_direction(registry: Registry, project: str, name: str, direction: str, *, sweep_key: str | None = None) -> None:
    """Declare that ``direction`` (``higher`` or ``lower``) is better for metric ``name`` in
    ``project``, or in one of its sweeps (``sweep_key``), replacing an earlier declaration."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"a metric's direction is higher or lower (which is better); got {direction!r}")
    from sqlalchemy import delete, insert

    from .schema import metric_directions

    check_metrics({name: 0.0})
    key = {"project": project, "sweep_key": sweep_key or "", "name": name}
    with registry.write(f"declaring the direction of metric {name!r}") as conn:
        conn.execute(delete(metric_directions).where(*(metric_directions.c[k] == v for k, v in key.items())))
        conn.execute(insert(metric_directions).values(**key, direction=direction, set_at=time.time()))


def directions(registry: Registry, project: str, sweep_key: str | None = None) -> dict[str, str]:
    """The directions declared for ``project``'s metrics, a sweep's own (``sweep_key``) over the
    project's."""
    from sqlalchemy import select

    from .schema import metric_directions

    scopes = ["", sweep_key] if sweep_key else [""]
    query = select(metric_directions.c.sweep_key, metric_directions.c.name, metric_directions.c.direction).where(
        metric_directions.c.project == project, metric_directions.c.sweep_key.in_(scopes)
    )
    with registry.read(f"reading the metrics' directions of project {project!r}") as conn:
        rows = sorted(conn.execute(query), key=lambda row: row.sweep_key != "")  # the project's, then the sweep's
    return {row.name: row.direction for row in rows}
