"""``%%carbon --job [NAME]``: a cell that drives a distributed job owns the job's run.

The cell's run is begun as the job's driver (``record.Job(key, "explicit", driver=True)``): a new
run, never an earlier one, with the cell's own measurement as its "driver" part. While the cell
runs, ``NOTEBOOK_CARBON_JOB`` holds the job's key (and ``NOTEBOOK_CARBON_REGISTRY`` and
``NOTEBOOK_CARBON_PROJECT`` the notebook's), so every process it starts (``!torchrun ...``,
``subprocess.run``, ``sbatch --export=ALL``) inherits them, and each rank's ``track()`` joins that
run as a part, during the cell or after it (``registry.jobs``). The variable is put back as it was
(its earlier value, or its absence) when the cell ends, however it ends. Without NAME, each run of
the cell gets a key of its own, ``cell-`` and 8 hex digits.

A cell run inside another metered run is a part of that run and cannot own a job: its ``--job`` is
ignored, with a warning, and the variable is left alone.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..cell.args import CellArgs
from ..distributed.environment import JOB_VARIABLE, detect_job
from ..record import Job
from ..session.line import summary_line
from ..units import terminal_text

if TYPE_CHECKING:
    from ..session import ActiveRun, RunResult

NESTED_WARNING = (
    "--job is ignored: this cell ran inside another metered run, as a part of it, so it cannot own a job"
)


def new_job_key() -> str:
    """A key no other cell's job has: ``cell-`` and 8 random hex digits."""
    return f"cell-{secrets.token_hex(4)}"


def driver_job(args: CellArgs) -> Job | None:
    """The job a ``--job`` cell drives (a new key for each run without NAME), or None without ``--job``.

    The name is checked again as every rank checks ``NOTEBOOK_CARBON_JOB`` (``ConfigError``), so a
    key the cell sets is one its ranks accept."""
    if not args.job:
        return None
    key = detect_job({}, args.job_name if args.job_name is not None else new_job_key()).key
    return Job(key, "explicit", driver=True)


class JobVariable:
    """``NOTEBOOK_CARBON_JOB`` set to a job's key while its cell runs, with the registry and project
    the notebook records into (``%carbon config`` may have changed them from what the environment
    says: its ranks must write where the cell's run is), then each put back exactly as it was.
    ``restore`` is idempotent, and undoes only this object's ``set``."""

    __slots__ = ("_saved", "_set", "key", "values")

    def __init__(self, key: str, registry: str | None = None, project: str | None = None) -> None:
        self.key = key
        self.values = {JOB_VARIABLE: key, "NOTEBOOK_CARBON_REGISTRY": registry, "NOTEBOOK_CARBON_PROJECT": project}
        self._saved: dict[str, str | None] = {}
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._saved = {name: os.environ.get(name) for name in self.values}
            self._set = True  # first: an interrupt right after the changes below still has them undone
            for name, value in self.values.items():
                if value is not None:
                    os.environ[name] = value

    def restore(self) -> None:
        if not self._set:
            return
        for name, saved in self._saved.items():
            if saved is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = saved
        self._set = False


def job_variable(run: ActiveRun, warn: Callable[[str], None]) -> JobVariable | None:
    """Once ``run`` has started: the variable to ``set`` for its job's ranks, if it is a job's
    driver (kept by the caller first, so that whatever interrupts, it is restored); a nested run,
    a part of its enclosing run, gets ``warn(NESTED_WARNING)`` and none."""
    if run.job is None:
        return None
    if run.parent_uid is not None:
        warn(NESTED_WARNING)
        return None
    return JobVariable(run.job.key, run.session.settings.registry_location(), run.row["project"])


def summary(result: RunResult) -> str:
    """The cell's summary line; a driver's says its job's key and which run its ranks join."""
    job = result.job
    if job is None or not job.driver:
        return result.summary()
    run_id = result.run_id(0)
    where = f"run {run_id}" if run_id is not None else "this cell's run"
    return (
        summary_line(result)
        + f" · job {terminal_text(job.key, 60)}: ranks that report it are added to {where}"
    )
