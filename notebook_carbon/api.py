"""The plain Python API for scripts and sweep workers: ``with notebook_carbon.track(...)``.

::

    import notebook_carbon

    with notebook_carbon.track(name="lr-0.1", params={"lr": 0.1}, sweep="lr-sweep") as run:
        train(lr=0.1)
    print(run.result.footprint.emissions_g)

In a distributed job (torchrun, accelerate, DeepSpeed, SLURM, mpirun: ``distributed.detect_job``)
each rank's block is a part of one run of the job, each device counted once; ``job="name"``
names the job explicitly, ``job=False`` records the block as a run of its own whatever launched it.

It records a run exactly as ``%%carbon`` does (``running`` at once, then ``ok``, ``failed`` or
``interrupted``), never swallows the block's exception, and also works as a decorator. The run is
in the registry when the block exits: a sweep's worker process (``multiprocessing``, a process
pool, joblib) may be ended right after, without ``atexit``. A failure of ours becomes one
``NotebookCarbonWarning`` per cause, at the block that met it, and the block runs on: a metering
or registry problem must never stop a sweep, nor pass in silence.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ContextDecorator
from typing import Any

from .distributed import detect_job
from .integrations import trackers
from .errors import ConfigError, NotebookCarbonWarning
from .record import Job
from .session import ActiveRun, RunResult, Session, block_status, current, first_report
from .settings import Settings


trackers.install()  # each run's figures go to an active MLflow or W&B run too


class track(ContextDecorator):
    """Meter a block of code and record it as a run. ``run.result`` holds the ``RunResult`` after.

    Without ``session``, the session in use (``session.current()``): inside IPython with the
    extension loaded, the magic's own, so ``%carbon config`` applies to ``track()`` blocks in the
    notebook too; else one process-wide session. ``settings`` or ``project``: a session of its own.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        sweep: str | None = None,
        tags: Sequence[str] = (),
        project: str | None = None,
        quiet: bool = False,
        session: Session | None = None,
        settings: Settings | None = None,
        job: str | bool | None = None,
    ) -> None:
        if session is not None and (settings is not None or project is not None):
            raise TypeError("pass either session or settings/project, not both")
        if job is True or not isinstance(job, (str, bool, type(None))):
            raise TypeError(f"job is a job's name, False (never a job) or None (from the launcher), got {job!r}")
        if isinstance(job, str):
            detect_job({}, job)  # a name that cannot be recorded is the caller's error, said here
        if session is None and (settings is not None or project is not None):
            base = settings if settings is not None else current().settings
            session = Session(base.replace(project=project) if project is not None else base)
        self._session = session
        self._fields = {"name": name, "params": params, "sweep": sweep, "tags": tags}
        self._job = job
        self._quiet = quiet
        self._run: ActiveRun | None = None
        self.result: RunResult | None = None

    def log(self, values: Mapping[str, float] | None = None, /, *, step: int | None = None, **more: float) -> None:
        """Record metrics of this block's run, during the block or after it (``run.log(acc=0.93)``,
        or a mapping: ``run.log({"step": 3.0})`` for a metric a keyword cannot name; ``step``: a
        training loop's), written after the run's own writes. A ``ConfigError`` for a value that
        is not a finite number, or a block that ran unmetered (it has no run)."""
        if self._run is None:
            raise ConfigError("this block has no run to log metrics for: it has not started, or ran unmetered")
        self._run.log(values, step=step, **more)

    def _recreate_cm(self) -> track:
        # As a decorator each call needs its own window; ContextDecorator would reuse ``self``.
        clone = track.__new__(track)
        clone.__dict__.update(self.__dict__, _run=None, result=None)
        return clone

    def __enter__(self) -> track:
        self._run = None
        try:
            session = self._session or current()  # settings are read here: a bad file is ours to say
            self._run = session.begin(cell_source=None, job=self._detect_job(), **self._fields, **_notebook_cell())
            self._run.start(anchor=sys._getframe(1))  # the frame running the block
        except KeyboardInterrupt:
            if self._run is not None:  # the block never runs; its window must not meter what follows
                self._run.finish("interrupted", "interrupted as it started")
            raise
        except Exception as exc:
            _warn(f"notebook-carbon: this block runs unmetered: {exc}", exc)
            self._run = None
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            return self._exit(exc)
        except KeyboardInterrupt:  # finish what the interrupt left (the window must stop), then let it through
            if self._run is not None:  # finish is idempotent: a run it completed before the interrupt is kept
                self.result = self._run.finish("interrupted", exc)
            raise

    def _exit(self, exc: BaseException | None) -> bool:
        run = self._run
        if run is None:
            return False
        try:
            self.result = run.finish(block_status(exc), exc)
        except Exception as err:
            _warn(f"notebook-carbon: the run was not recorded: {err}", err, 2)
            return False
        problem = self.result.recorded()
        if problem is not None:
            where = getattr(problem, "where", None) or run.session.writer().location
            said = str(problem) if where in str(problem) else f"registry {where}: {problem}"
            _warn(f"notebook-carbon: this block's run was not recorded: {said}", problem, 2)
        if not self._quiet:
            line = self.result.summary() + (" · NOT RECORDED (registry unavailable)" if problem is not None else "")
            print(line, file=sys.stderr, flush=True)
        return False  # never swallow the block's exception

    def _detect_job(self) -> Job | None:
        """The job this block is a rank's block of; a launcher's variable that cannot be used is said
        once, and the block is then recorded as a run of its own."""
        if self._job is False:
            return None
        said: list[str] = []
        try:
            job = detect_job(os.environ, self._job if isinstance(self._job, str) else None, said)
        except ConfigError as exc:
            _warn(f"notebook-carbon: this block is recorded as a run of its own: {exc}", exc, 2)
            return None
        said += job.notes if job is not None else ()
        if said and first_report(ValueError(said[0])):
            warnings.warn(f"notebook-carbon: {'; '.join(said)}", NotebookCarbonWarning, stacklevel=3)
        return job

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every write queued so far is done (a block's own run already is when it exits)."""
        session = self._session or current()
        return session.writer().flush(timeout)



def _notebook_cell() -> dict[str, Any]:
    """The cell a block runs in when it runs in IPython: its In [n] and, in a notebook, its id
    (``cell.front_end_cell_id``), so a view opens the notebook there; nothing elsewhere."""
    if "IPython" not in sys.modules:  # a script: never imported for this
        return {}
    from IPython import get_ipython

    from .cell import front_end_cell_id

    shell = get_ipython()
    if shell is None:
        return {}
    count = getattr(shell, "execution_count", None)
    return {"execution_count": count if isinstance(count, int) else None, "cell_id": front_end_cell_id(shell)}


def _warn(message: str, cause: BaseException, depth: int = 1) -> None:
    """One ``NotebookCarbonWarning`` per cause, pointing at the user's ``with`` line, which is
    ``depth`` frames above the method that calls this (``__enter__``: 1; ``_exit``: 2)."""
    if first_report(cause):
        warnings.warn(message, NotebookCarbonWarning, stacklevel=2 + depth)
