"""What a registry knows by name: its projects, each project's notebooks and sweeps, and which of
its ``running`` runs have lost their process.

A reader that is given a name (a project, a notebook, a sweep) looks here first, so that a typo is
told from a selection that is merely empty: a statement or a budget check of a project that does
not exist must be an error naming the close matches, not a report of zero runs.

``dead_runs`` is ``liveness.reap_crashed``'s judgement without its writes, for a reader that has
the registry read-only and must still not show a killed run as running.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from .liveness import _why_dead, process_started_at
from .schema import runs

__all__ = ["dead_runs", "notebooks", "projects", "sweeps"]


def projects(registry) -> list[str]:
    """The projects of ``registry``'s runs, sorted; empty when it has no runs."""
    query = select(runs.c.project).distinct().order_by(runs.c.project)
    return [row["project"] for row in registry._select(query, "listing the projects")]


def notebooks(registry, project: str) -> list[str]:
    """The notebooks recorded with ``project``'s runs (paths as their kernels recorded them), sorted."""
    query = (
        select(runs.c.notebook)
        .where(runs.c.project == project, runs.c.notebook.is_not(None))
        .distinct()
        .order_by(runs.c.notebook)
    )
    found = registry._select(query, f"listing the notebooks of project {project!r}")
    return [row["notebook"] for row in found]


def sweeps(registry, project: str) -> list[str]:
    """The sweep keys of ``project``, sorted: as ``sweeps.sweep_key``, an explicit name, else
    ``code:<fingerprint>``."""
    query = select(runs.c.sweep, runs.c.code_fingerprint).where(runs.c.project == project).distinct()
    keys = set()
    for row in registry._select(query, f"listing the sweeps of project {project!r}"):
        if row["sweep"]:
            keys.add(row["sweep"])
        elif row["code_fingerprint"]:
            keys.add("code:" + row["code_fingerprint"])
    return sorted(keys)


def dead_runs(
    registry, *, host: str | None = None, now: float | None = None, started_at_of=process_started_at
) -> dict[int, str]:
    """The ``running`` runs whose process is gone, by id, with why: what ``reap_crashed`` would
    mark ``crashed`` now (same arguments), found without writing anything."""
    if host is None:
        from ..meters.detect import host_info

        host = host_info()["hostname"]
    now = time.time() if now is None else now
    query = select(
        runs.c.id, runs.c.host, runs.c.pid, runs.c.started_at, runs.c.updated_at, runs.c.checkpoint_interval_s
    ).where(runs.c.status == "running")
    found = {}
    for run in registry._select(query, "looking for runs whose process died"):
        why = _why_dead(run, host, now, started_at_of)
        if why is not None:
            found[run["id"]] = why
    return found
