"""What the dashboard shows, computed from a frame of runs: pure, no widgets, no I/O.

``snapshot`` takes the project's frame (``analysis.runs``) once and derives everything from it:
the totals of three scopes (this kernel session, this notebook, the project), each the
``totals`` and ``development`` of the impact statement (``statements.build.statement_data``) of
that scope's runs, so a figure on the dashboard is the figure a statement of the same runs
prints; the costliest sweeps with their varying parameters; and the redundant runs, each with the
run it repeats. Energy in J, emissions in g CO2e, water in L, times in UTC.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.plausible import excluded, keep_only
from ..registry.sweeps import varying_params
from ..settings import Settings
from ..statements import COLUMNS as STATEMENT_COLUMNS
from ..statements.build import statement_data

READ_COLUMNS = (*STATEMENT_COLUMNS, "params", "pid")
"""What the dashboard reads of each run besides ``analysis``'s core columns: the statement's
columns, the params (for the varying ones) and the process id (for this session's runs)."""

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

    def scope(self, name: str) -> Scope:
        return next(scope for scope in self.scopes if scope.name == name)


def session_mask(df: pd.DataFrame, kernel: Kernel) -> np.ndarray:
    """Which runs of ``df`` this kernel recorded: its host and process id, started after it did
    (a process id of a kernel long gone may have been given to this one)."""
    pid = df["pid"].to_numpy(dtype="float64", na_value=np.nan)
    host = df["host"].to_numpy(dtype=object)
    started = df["started_at"].to_numpy(dtype=float)
    # the process start is read to the clock tick, the boot time to the second: a second's slack
    return (pid == kernel.pid) & (host == kernel.host) & (started >= kernel.started_at - 1.0)


def snapshot(
    df: pd.DataFrame,
    *,
    project: str,
    notebook: str | None,
    kernel: Kernel,
    settings: Settings,
    registry: str,
    top_sweeps: int = 20,
    top_redundant: int = 20,
    now: datetime.datetime | None = None,
) -> Snapshot:
    """The dashboard's figures for ``df``, the runs of ``project`` (``analysis.runs`` with
    ``READ_COLUMNS``). ``notebook`` is the current notebook's path as runs record it (None
    outside Jupyter); ``settings`` give what a statement computes for runs recorded without it
    (embodied emissions, water); ``registry`` is where the runs were read, for the header."""
    now = now or datetime.datetime.now(datetime.timezone.utc)

    def facts(runs: pd.DataFrame, **scope: Any) -> dict[str, Any]:
        # cleanest=0: the dashboard shows no other grids
        return statement_data(
            runs, scope={"project": project, **scope}, settings=settings, cleanest=0, now=now
        )

    in_session = df.loc[session_mask(df, kernel)]
    # the runs left out (``analysis.excluded``) are the project's: a scope keeps those it can tell are its
    in_session.attrs["excluded"] = ()
    scopes = [Scope("session", "This session", facts(in_session, kernel_pid=kernel.pid))]
    if notebook is None:
        scopes.append(Scope("notebook", "This notebook", None, "not run from a notebook"))
    else:
        in_notebook = df.loc[(df["notebook"] == notebook).to_numpy(dtype=bool, na_value=False)]
        in_notebook.attrs["excluded"] = keep_only(excluded(df), notebook=notebook)
        scopes.append(Scope("notebook", "This notebook", facts(in_notebook, notebook=notebook)))
    whole = facts(df)
    scopes.append(Scope("project", f"Project {project}", whole))
    sweeps = whole["sweeps"]
    redundant = df.loc[df["is_redundant"].to_numpy(dtype=bool)]
    return Snapshot(
        project=project,
        notebook=notebook,
        registry=registry,
        read_at=now,
        scopes=tuple(scopes),
        sweeps=_sweep_rows(df, sweeps[:top_sweeps]),
        sweeps_total=len(sweeps),
        redundant=_redundant_rows(df, redundant.iloc[::-1][:top_redundant]),
        redundant_total=len(redundant),
        redundant_energy_j=float(redundant["energy_j"].fillna(0.0).sum()),
    )


def _sweep_rows(df: pd.DataFrame, shown: list[dict[str, Any]]) -> tuple[SweepRow, ...]:
    """The statement's rows of the sweeps ``shown``, with each one's varying parameters, found
    as ``%carbon sweeps`` finds them (over its runs' params in start order)."""
    wanted = {row["key"] for row in shown}
    params: dict[str, list[Any]] = {key: [] for key in wanted}
    # the frame is in start order, as the sweeps' runs are in ``list_sweeps``
    for key, found in zip(df["sweep_key"].to_numpy(dtype=object), df["params"].to_numpy(dtype=object)):
        if key in wanted:
            params[key].append(found)
    return tuple(
        SweepRow(
            key=row["key"],
            label=row["label"],
            runs=row["runs"],
            varying=varying_params(params[row["key"]]),
            energy_j=row["energy_j"],
            emissions_g=row["emissions_g"],
            overhead_ratio=row["overhead_ratio"],
            failed_runs=row["failed_runs"],
            failed_energy_j=row["failed_energy_j"],
            redundant_runs=row["redundant_runs"],
            redundant_energy_j=row["redundant_energy_j"],
        )
        for row in shown
    )


def _redundant_rows(df: pd.DataFrame, shown: pd.DataFrame) -> tuple[RedundantRow, ...]:
    rows = []
    for run_id, energy, earlier in zip(
        shown.index.tolist(), shown["energy_j"].fillna(0.0).tolist(), shown["redundant_of"].tolist()
    ):
        rows.append(
            RedundantRow(run=_ref(df, run_id), energy_j=float(energy), repeats=_ref(df, int(earlier)))
        )
    return tuple(rows)


def _ref(df: pd.DataFrame, run_id: int) -> RunRef:
    if run_id not in df.index:
        return RunRef(run_id, None, None)
    name = df.at[run_id, "name"]
    return RunRef(run_id, name if isinstance(name, str) and name else None, df.at[run_id, "started"])
