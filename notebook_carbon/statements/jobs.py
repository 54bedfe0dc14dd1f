"""The distributed jobs among a statement's runs: how many, their ranks and nodes, and how each counts.

A distributed job (torchrun, SLURM, mpirun: ``registry.jobs``) is recorded as one run made of one
part per rank, each device counted once. A paper's methods section has to say so: that a run of
the scope may be many processes on many machines, and why its energy is not every rank's own
figure added up. ``read_jobs`` reads what a statement says of them (a few counting queries over
the scope's job runs and their parts, which ``ix_runs_job`` finds without reading other runs);
``jobs_fact`` is the statement's fact, ``methods.jobs``, given only when the scope has a job, so
a statement of runs that are no jobs stays as it was.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import text

from ..registry.frames import Scope
from ..registry.schema import runs
from ..registry.totals import plausible

__all__ = ["JobFigures", "hosts_count", "jobs_fact", "read_jobs"]

KEYS_SHOWN = 20
"""Job keys listed in the JSON fact; the paragraph names none (a paper has no use for them)."""

HOW = (
    "recorded as one run with each device counted once: the ranks' shares of a device were summed, "
    "never above what the device drew, and a node's CPU and memory were not counted once per rank"
)
INSIDE = (
    "; {n} rank{s} that a notebook cell started on its own machine {were} inside that cell's own "
    "measurement, so not counted again"
)


@dataclasses.dataclass(frozen=True)
class JobFigures:
    """The distributed jobs of a scope's plausible runs (those its figures count)."""

    runs: int
    """The scope's runs that are distributed jobs."""
    driven: int
    """Of these, the runs of a notebook cell that drove its job (``%%carbon --job``)."""
    parts: int
    """The parts recorded: each rank's block, and each driving cell's own."""
    ranks: int
    """The ranks that reported, summed over the jobs (a rank of two jobs counts twice)."""
    inside: int
    """Ranks that a driving cell started on its own machine: in its measurement, not counted again."""
    nodes: frozenset[str]
    """The machines the jobs' parts ran on, each once."""
    run_hosts: frozenset[str]
    """The job runs' own ``host`` (their nodes' names joined), which name no one machine."""
    keys: tuple[str, ...]
    """The jobs' keys, sorted, at most ``KEYS_SHOWN``; ``keys_left_out`` more."""
    keys_left_out: int = 0


def read_jobs(registry: Any, project: str, **selected: Any) -> JobFigures | None:
    """The ``JobFigures`` of the runs of ``project`` in ``selected`` (``Registry.figures``' scope
    arguments) that its figures count (within ``record.BOUNDS``); None when none is a job."""
    scope = Scope(project, **selected)
    with registry.read(f"reading the distributed jobs of project {project!r}") as conn:
        where, params = scope.where(conn.dialect.name)
        runs_in = f"{where} AND {plausible('runs')} AND runs.job IS NOT NULL"
        jobs = _job_runs(conn.dialect.name)

        def rows(sql: str) -> list[Any]:
            return conn.execute(text(sql).bindparams(**params)).all()

        ((count, driven, keys),) = rows(
            "SELECT COUNT(*), SUM(CASE WHEN runs.job_block IS NULL THEN 1 ELSE 0 END), COUNT(DISTINCT runs.job) "
            f"FROM {jobs} WHERE {runs_in}"
        )  # fmt: skip
        if not count:
            return None
        parts_in = (f"FROM {jobs} JOIN run_parts ON run_parts.parent_uid = runs.uid "
                    f"WHERE {runs_in} AND run_parts.job IS NOT NULL")  # fmt: skip
        ranked = f"SELECT DISTINCT run_parts.parent_uid, run_parts.rank {parts_in} AND run_parts.rank IS NOT NULL"
        ((parts,),) = rows(f"SELECT COUNT(*) {parts_in}")
        ((ranks,),) = rows(f"SELECT COUNT(*) FROM ({ranked}) AS ranked")
        ((inside,),) = rows(f"SELECT COUNT(*) FROM ({ranked} AND NOT run_parts.counted) AS inside")
        nodes = {str(node) for (node,) in rows(f"SELECT DISTINCT run_parts.node {parts_in}") if node}
        run_hosts = {str(host) for (host,) in rows(f"SELECT DISTINCT runs.host FROM {jobs} WHERE {runs_in}") if host}
        shown = [str(key) for (key,) in rows(
            f"SELECT DISTINCT runs.job FROM {jobs} WHERE {runs_in} ORDER BY runs.job LIMIT {KEYS_SHOWN}"
        )]  # fmt: skip
    return JobFigures(
        runs=int(count), driven=int(driven or 0), parts=int(parts), ranks=int(ranks), inside=int(inside),
        nodes=frozenset(nodes), run_hosts=frozenset(run_hosts), keys=tuple(shown),
        keys_left_out=max(int(keys) - len(shown), 0),
    )  # fmt: skip


def _job_runs(dialect: str) -> str:
    """``runs``, read on SQLite through ``ix_runs_job``, which holds the jobs' runs only: SQLite's
    planner (lacking statistics) would rather walk every run of the project. Elsewhere the planner's
    choice."""
    if dialect == "sqlite" and any(index.name == "ix_runs_job" for index in runs.indexes):
        return "runs INDEXED BY ix_runs_job"
    return "runs"


def jobs_fact(found: JobFigures | None) -> dict[str, Any] | None:
    """``methods.jobs``: the jobs' counts and ``how`` each was counted, in words; None without jobs."""
    if found is None:
        return None
    how = HOW
    if found.inside:
        plural = found.inside != 1
        how += INSIDE.format(n=found.inside, s="s" if plural else "", were="were" if plural else "was")
    return {
        "runs": found.runs,
        "ranks": found.ranks,
        "nodes": len(found.nodes),
        "parts": found.parts,
        "driven_by_cells": found.driven,
        "inside_ranks": found.inside,
        "keys": list(found.keys),
        "keys_left_out": found.keys_left_out,
        "how": how,
    }


def hosts_count(hosts: set[str], found: JobFigures | None) -> int:
    """How many machines the runs used, of the hosts of their groups: a job's run names its nodes
    joined (``node-a, node-b``), which is no machine; its nodes count instead, each once."""
    if found is None:
        return len(hosts)
    return len((hosts - found.run_hosts) | found.nodes)
