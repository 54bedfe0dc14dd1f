"""What the dashboard shows, read from the totals the database keeps: no widgets here.

``snapshot`` reads the totals of three scopes (this kernel session, this notebook, the project),
each turned into the ``totals`` and ``development`` of an impact statement by the statement's own
``statements.tally.figures``, so a figure on the dashboard is the figure a statement of the same
runs prints; the costliest sweeps with their varying parameters; and the latest redundant runs,
each with the run it repeats. A few indexed reads, whatever the number of runs: the dashboard
refreshes after every metered cell on the kernel's thread. Energy in J, emissions in g CO2e,
water in L, times in UTC.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..registry import catalog
from ..settings import Settings
from ..statements.tally import figures

if TYPE_CHECKING:
    from ..registry.store import Registry
    from ..registry.sweeps import SweepSummary
    from ..registry.totals import Totals

CHART_COLUMNS = ("emissions_g", "energy_j", "status", "redundant_of", "project")
"""What the charts read of each run besides ``analysis``'s core columns (off the kernel's thread)."""

SCOPES = ("session", "notebook", "project")


@dataclasses.dataclass(frozen=True)
class Kernel:
    """The process whose runs are "this session": its host, process id and start (epoch s)."""

    host: str
    pid: int
    started_at: float


@dataclasses.dataclass(frozen=True)
class Scope:
    """One column of the totals: ``facts`` is the statement of its runs, None with the reason in
    ``missing`` when the scope cannot be known (no notebook: not run from Jupyter)."""

    name: str
    """One of ``SCOPES``."""
    title: str
    facts: dict[str, Any] | None
    missing: str | None = None


@dataclasses.dataclass(frozen=True)
class SweepRow:
    """One sweep of the project: the statement's figures and the parameters that vary."""

    key: str
    label: str
    runs: int
    varying: dict[str, tuple[Any, ...]]
    energy_j: float
    emissions_g: float
    overhead_ratio: float | None
    failed_runs: int
    failed_energy_j: float
    redundant_runs: int
    redundant_energy_j: float


@dataclasses.dataclass(frozen=True)
class RunRef:
    """A run as the dashboard names it: id, name (may be None), start (UTC)."""

    id: int
    name: str | None
    started: pd.Timestamp | None


@dataclasses.dataclass(frozen=True)
class RedundantRow:
    """A run that repeated an earlier identical one (same code, inputs and parameters)."""

    run: RunRef
    energy_j: float
    repeats: RunRef
    """The earlier run; its name and start are None if it is not among the project's runs."""


@dataclasses.dataclass(frozen=True)
class RunRow:
    """One of the latest runs: what it was, how it ended, what it cost, when it started."""

    run: RunRef
    sweep: str | None
    """The label of its sweep, as every view shows it; None for a run in no sweep."""
    status: str
    energy_j: float | None
    emissions_g: float | None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything the dashboard shows, as of ``read_at``."""

    project: str
    notebook: str | None
    registry: str
    read_at: datetime.datetime
    scopes: tuple[Scope, ...]
    sweeps: tuple[SweepRow, ...]
    """The costliest sweeps, most energy first, at most the ``top_sweeps`` asked for."""
    sweeps_total: int
    redundant: tuple[RedundantRow, ...]
    """The latest redundant runs, latest first, at most the ``top_redundant`` asked for."""
    redundant_total: int
    redundant_energy_j: float
    latest: tuple[RunRow, ...] = ()
    """A page of the project's runs, newest first (``runs_offset`` runs skipped)."""
    runs_total: int = 0
    runs_offset: int = 0

    def scope(self, name: str) -> Scope:
        return next(scope for scope in self.scopes if scope.name == name)


def snapshot(
    reg: Registry,
    *,
    project: str,
    notebook: str | None,
    kernel: Kernel,
    settings: Settings,
    top_sweeps: int = 20,
    top_redundant: int = 20,
    latest: int = 10,
    runs_offset: int = 0,
    now: datetime.datetime | None = None,
) -> Snapshot:
    """The dashboard's figures of ``project`` in the registry ``reg``, read from the totals the
    database keeps: a few indexed reads, whatever the number of runs. ``notebook`` is the current
    notebook's path as runs record it (None outside Jupyter); ``settings`` give what a statement
    computes for runs recorded without it (embodied emissions, water)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)

    def facts(totals: Totals, excluded: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        found = figures(totals, settings)  # a statement's own totals and development
        found["scope"]["excluded"] = excluded or []
        return found

    whole = reg.totals(project)
    # this kernel's runs: its host and process id, started after it did (a process id of a kernel
    # long gone may have been given to this one; its start is read to the clock tick: a second's slack)
    mine = reg.aggregate(project, since=kernel.started_at - 1.0, pid=kernel.pid, host=kernel.host)
    scopes = [Scope("session", "This session", facts(mine))]
    if notebook is None:
        scopes.append(Scope("notebook", "This notebook", None, "not run from a notebook"))
    else:
        in_notebook = reg.totals(project, notebook=notebook)
        left_out = reg.excluded(project, notebook) if in_notebook.excluded_runs else []
        scopes.append(Scope("notebook", "This notebook", facts(in_notebook, left_out)))
    scopes.append(Scope("project", f"Project {project}", facts(whole, reg.excluded(project) if whole.excluded_runs else [])))
    listed = reg.sweeps(project, params=top_sweeps)  # the varying parameters of those shown only
    shown = listed[:top_sweeps]
    redundant = reg.redundant_page(project, limit=top_redundant)
    page, runs_total = reg.page(project, limit=latest, offset=runs_offset)
    labels = catalog.sweep_labels(reg, project) if page else {}
    return Snapshot(
        project=project,
        notebook=notebook,
        registry=reg.where,
        read_at=now,
        scopes=tuple(scopes),
        sweeps=tuple(_sweep_row(s, s.varying_params) for s in shown),
        sweeps_total=len(listed),
        redundant=tuple(_redundant_row(row) for row in redundant),
        redundant_total=whole.redundant_runs,
        redundant_energy_j=whole.redundant_energy_j,
        latest=tuple(_run_row(row, labels) for row in page),
        runs_total=runs_total,
        runs_offset=runs_offset,
    )


def _run_row(row: dict[str, Any], labels: dict[str, str]) -> RunRow:
    return RunRow(
        run=RunRef(row["id"], row.get("name") or None, _utc(row.get("started_at"))),
        sweep=catalog.run_sweep_label(row, labels),
        status=str(row["status"]),
        energy_j=row.get("energy_j"),
        emissions_g=row.get("emissions_g"),
    )


def _sweep_row(sweep: SweepSummary, varying: dict[str, tuple[Any, ...]]) -> SweepRow:
    return SweepRow(
        key=sweep.key,
        label=sweep.label,
        runs=sweep.runs,
        varying=dict(varying),
        energy_j=sweep.energy_j,
        emissions_g=sweep.emissions_g,
        overhead_ratio=sweep.overhead_ratio,
        failed_runs=sweep.failed_runs,
        failed_energy_j=sweep.failed_energy_j,
        redundant_runs=sweep.redundant_runs,
        redundant_energy_j=sweep.redundant_energy_j,
    )


def _redundant_row(row: dict[str, Any]) -> RedundantRow:
    earlier = row["repeats"]
    return RedundantRow(
        run=RunRef(row["id"], row.get("name") or None, _utc(row.get("started_at"))),
        energy_j=float(row.get("energy_j") or 0.0),
        repeats=RunRef(int(earlier["id"]), earlier.get("name") or None, _utc(earlier.get("started_at"))),
    )


def _utc(epoch_s: float | None) -> pd.Timestamp | None:
    return None if epoch_s is None else pd.Timestamp(epoch_s, unit="s", tz="UTC")


def current_notebook(shell: Any) -> str | None:
    """The notebook runs of this kernel record, as the magic finds it: IPython's ``__session__``,
    else what Jupyter tells its kernels."""
    from ..session import current_notebook as jupyter_notebook

    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    found = shell.user_ns.get("__session__") if shell is not None else None
    return found or jupyter_notebook()


def this_kernel() -> Kernel:
    """This kernel as runs record it: host, process id and when the process started."""
    from ..meters.detect import host_info
    from ..registry.liveness import process_started_at

    pid = os.getpid()
    return Kernel(host=host_info()["hostname"], pid=pid, started_at=process_started_at(pid) or 0.0)
