"""Ray Tune: each trial of a function trainable is a run of the experiment's sweep, measured inside
the trial's own process, and a budget that stops the experiment (issue 17).

::

    from ray import tune
    from notebook_carbon.integrations.ray import EnergyBudget, metered, report

    @metered                                       # each trial: a run in sweep "ray: <experiment>"
    def trainable(config):
        for epoch in range(10):
            report({"acc": train_one_epoch(config["lr"])})   # Tune's report, plus carbon/energy_j

    tuner = tune.Tuner(trainable, param_space={"lr": tune.grid_search([0.01, 0.1])},
                       run_config=tune.RunConfig(stop=EnergyBudget(max_energy_j=3.6e6)))
    tuner.fit()

A trial's run records its config as params, each ``report`` as metrics at its iteration (the
count of the process's reports: Tune's ``training_iteration``, unless the trial was restored from a
checkpoint, whose run starts again at 1), and its
state (``ok``, ``failed``, ``interrupted`` when Tune stopped it). ``report`` adds the energy the
trial's run has used so far (``carbon/energy_j``, its meters read at the report, or at most a
quarter of the sample interval before) to what Tune
receives, so Tune's schedulers,
stoppers and results see it. Importing this module imports Ray. ``EnergyBudget`` is a Tune stopper on the driver: it adds up the
trials' latest ``carbon/energy_j`` and stops every trial once the sum reaches the budget, saying so
once (``stopped``, and a warning). Each trial's process records with the settings it inherits
(``NOTEBOOK_CARBON_*`` set before ``ray.init`` reach the workers Ray starts).
"""

from __future__ import annotations

import functools
import math
import sys
import time
from numbers import Real
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from ray.tune.stopper import Stopper

from ..errors import ConfigError, NotebookCarbonWarning
from ..record import recordable_param
from ..session import Session, block_status, current

__all__ = ["ENERGY", "EnergyBudget", "metered", "report"]

ENERGY = "carbon/energy_j"
"""The metric ``report`` adds: the energy the trial's run has used so far, in J."""

_trial: dict[str, Any] = {}  # the metered trial running in this process: its run and its count of reports


def metered(trainable: Callable[[dict], Any] | None = None, *, sweep: str | None = None,
            session: Session | None = None) -> Any:  # fmt: skip
    """Meter each trial of Tune function ``trainable(config)`` as a run in sweep ``sweep`` (default
    ``ray: <experiment name>``), named by Tune's trial name; as ``@metered`` or ``@metered(sweep=...)``."""
    if trainable is None:
        return functools.partial(metered, sweep=sweep, session=session)

    # Ray pickles this wrapper by value, with a copy of what it names of this module: it names
    # functions only, which are pickled by reference, so the trial's state is this module's own
    @functools.wraps(trainable)
    def run_trial(config: dict) -> Any:
        active = _open_trial(config, sweep, session)
        status, error = "ok", None
        try:
            return trainable(config)
        except BaseException as exc:  # SystemExit(0) inside report: how Tune stops a trial
            stopped = isinstance(exc, SystemExit) and exc.code in (0, None)
            status, error = ("interrupted", "stopped by Tune") if stopped else (block_status(exc), exc)
            raise
        finally:
            _close_trial(active, status, error)

    return run_trial


def _open_trial(config: dict, sweep: str | None, session: Session | None) -> Any:
    """Begin the run of the trial running in this process, named as Tune names it."""
    from ray import tune

    from .trackers import install

    install()
    context = tune.get_context()
    params = {}
    for name, value in dict(config).items():
        try:
            params[str(name)] = recordable_param(value, repr(name))
        except ConfigError:
            params[str(name)] = repr(value)  # a search space's object: its text
    key = sweep or f"ray: {context.get_experiment_name()}"
    active = (session or current()).begin(name=context.get_trial_name(), sweep=key, params=params, tags=["ray"])
    active.start(anchor=sys._getframe(1))
    _trial.update(run=active, reports=0, read_at=-math.inf)
    return active


def _close_trial(active: Any, status: str, error: Any) -> None:
    _trial.clear()
    _recorded(active.finish(status, error))  # before Tune ends the trial's process


def _recorded(result: Any) -> None:
    """Wait until the trial's run is in the registry (Tune may end its process next); say if not."""
    problem = result.recorded()
    if problem is not None:
        warnings.warn(f"notebook-carbon: the trial's run was not recorded: {problem}", NotebookCarbonWarning, stacklevel=3)


def report(metrics: Mapping[str, Any], **options: Any) -> None:
    """``ray.tune.report(metrics)``, with ``carbon/energy_j`` (the energy used so far) added and the
    numbers among ``metrics`` recorded as the run's metrics at this report's iteration, when a
    ``metered`` trial runs in this process; just Tune's report otherwise."""
    from ray import tune

    active = _trial.get("run")
    found = dict(metrics)
    if active is not None:
        # the energy so far as of this report (what a budget judges, and what MLflow and W&B get
        # with its metrics), not of the sampler's last read; at most four reads more per interval
        now = time.monotonic()
        if now - _trial["read_at"] >= active.window.interval_s / 4:
            active.window.read_now()
            _trial["read_at"] = now
        _trial["reports"] += 1
        numbers = {name: float(v) for name, v in found.items()
                   if isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)}  # fmt: skip
        if numbers:
            active.log(numbers, step=_trial["reports"])
        found[ENERGY] = float(sum(active.window.energy_so_far_j().values()))
    tune.report(found, **options)


class EnergyBudget(Stopper):
    """A Tune stopper (``RunConfig(stop=...)``): stops every trial once the trials' latest reported
    ``carbon/energy_j`` add up to ``max_energy_j``; ``stopped`` then says why."""

    def __init__(self, *, max_energy_j: float) -> None:
        if isinstance(max_energy_j, bool) or not isinstance(max_energy_j, (int, float)) or not (
            math.isfinite(max_energy_j) and max_energy_j > 0
        ):
            raise ConfigError(f"EnergyBudget's max_energy_j must be a positive number; got {max_energy_j!r}")
        self.max_energy_j = float(max_energy_j)
        self.energy_j: dict[str, float] = {}
        self.stopped: str | None = None

    @property
    def total_energy_j(self) -> float:
        return sum(self.energy_j.values())

    def __call__(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        if isinstance(result.get(ENERGY), (int, float)):
            self.energy_j[trial_id] = float(result[ENERGY])
        return self.stop_all()

    def stop_all(self) -> bool:
        if self.stopped is None and self.total_energy_j >= self.max_energy_j:
            self.stopped = (f"budget reached: {self.total_energy_j:.6g} J >= {self.max_energy_j:g} J over "
                            f"{len(self.energy_j)} trials")  # fmt: skip
            warnings.warn(f"notebook-carbon: Tune experiment stopped, {self.stopped}", NotebookCarbonWarning, stacklevel=2)
        return self.stopped is not None
