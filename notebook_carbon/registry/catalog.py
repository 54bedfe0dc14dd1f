"""What a registry knows by name: its projects, each project's notebooks and sweeps, and which of
its ``running`` runs have lost their process.

A reader that is given a name (a project, a notebook, a sweep) looks here first, so that a typo is
told from a selection that is merely empty: a statement or a budget check of a project that does
not exist must be an error naming the close matches, not a report of zero runs.

``dead_runs`` is ``liveness.reap_crashed``'s judgement without its writes, for a reader that has
the registry read-only and must still not show a killed run as running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from . import liveness
from .jobs import dead_job_runs
from .schema import run_totals, runs
from .schema import sweeps as sweeps_table

__all__ = ["dead_runs", "notebooks", "projects", "run_sweep_label", "sweep_labels", "sweeps"]


def dead_runs(registry, **options) -> dict[int, str]:
    """The ``running`` runs whose process is gone, and the jobs none of whose running ranks' is
    alive, by id, with why (``liveness.dead_runs``, ``jobs.dead_job_runs``): found without writing."""
    return {**liveness.dead_runs(registry, **options), **dead_job_runs(registry, **options)}


def projects(registry) -> list[str]:
    """The projects of ``registry``'s runs, sorted; empty when it has no runs."""
    query = select(runs.c.project).distinct().order_by(runs.c.project)
    return [row["project"] for row in registry.select(query, "listing the projects")]


def notebooks(registry, project: str) -> list[str]:
    """The notebooks recorded with ``project``'s runs (paths as their kernels recorded them), sorted."""
    query = (
        select(runs.c.notebook)
        .where(runs.c.project == project, runs.c.notebook.is_not(None))
        .distinct()
        .order_by(runs.c.notebook)
    )
    found = registry.select(query, f"listing the notebooks of project {project!r}")
    return [row["notebook"] for row in found]


def sweeps(registry, project: str) -> list[str]:
    """The sweep keys of ``project``, sorted: as ``sweeps.sweep_key``, an explicit name, else
    ``code:<fingerprint>``."""
    query = (
        select(run_totals.c.sweep_key)
        .where(run_totals.c.project == project, run_totals.c.sweep_key != "", run_totals.c.runs + run_totals.c.excluded_runs > 0)
        .distinct()
    )
    return sorted(row["sweep_key"] for row in registry.select(query, f"listing the sweeps of project {project!r}"))


def sweep_labels(registry, project: str) -> dict[str, str]:
    """Each sweep key of ``project`` and the label it is shown with (``sweeps.label``: its name,
    what its runs' names share, or its notebook and cell)."""
    query = select(sweeps_table.c.sweep_key, sweeps_table.c.label).where(sweeps_table.c.project == project)
    return {row["sweep_key"]: row["label"] or row["sweep_key"]
            for row in registry.select(query, f"listing the sweeps of project {project!r}")}  # fmt: skip


def run_sweep_label(row: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """The label of run ``row``'s sweep as every view shows it, given its project's ``sweep_labels``
    (else the run's own label, else its key); None for a run in no sweep."""
    key = row.get("sweep_key")
    if not key:
        return None
    return labels.get(key) or row.get("sweep_label") or row.get("sweep") or key
