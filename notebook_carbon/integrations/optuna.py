"""Optuna: each trial of a study is a run in the study's sweep, and a study can stop at a budget.

::

    import optuna
    from notebook_carbon.integrations.optuna import EnergyBudget, metered

    @metered                                   # each trial: a run in sweep "optuna: <study name>"
    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return train(lr)                       # the value: the run's metric "objective"

    study = optuna.create_study(direction="maximize", study_name="lr-search")
    study.optimize(objective, n_trials=50, callbacks=[EnergyBudget(max_energy_j=3.6e6)])

A trial is measured inside the objective: Optuna's callbacks run after a trial, too late to meter
it. The run records the trial's parameters (known once the objective has suggested them), its
value as the metric ``objective`` (``objective_0``, ``objective_1``... for several objectives),
whose direction is the study's (declared for the sweep: ``registry.metrics``), and its state: a
completed trial ``ok``, a pruned one ``interrupted`` (its error says it was pruned), a failing
one ``failed``. The study's best trial so far (a single objective's) is marked its sweep's selected
result (``set_final``), so statements compare with it. The trial keeps its run's figures in its user attributes (``notebook_carbon.*``):
energy (J), emissions (g CO2e) and the run's uid. ``EnergyBudget`` stops the study once its
trials' energy or emissions reach a limit, and records that it did in the study's user
attributes (``notebook_carbon.stopped``).
"""

from __future__ import annotations

import functools
import math
import sys
import threading
from numbers import Real
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, NotebookCarbonWarning
from ..record import recordable_param
from ..session import Session, block_status, current

__all__ = ["EnergyBudget", "metered"]

ATTR = "notebook_carbon."
"""The prefix of the user attributes a trial and a study keep."""

_declared: set[tuple[str, str, str]] = set()  # (registry, sweep, metric): directions declared in this process


def metered(objective: Callable[[Any], Any] | None = None, *, sweep: str | None = None,
            session: Session | None = None, metric: str = "objective") -> Any:  # fmt: skip
    """Meter each call of Optuna ``objective(trial)`` as a run in sweep ``sweep`` (default
    ``optuna: <study name>``), named ``trial N``; as ``@metered`` or ``@metered(sweep=...)``."""
    if objective is None:
        return functools.partial(metered, sweep=sweep, session=session, metric=metric)
    from .trackers import install

    install()  # a trial's figures go to an active MLflow or W&B run too

    @functools.wraps(objective)
    def run_trial(trial: Any) -> Any:
        import optuna

        study = trial.study
        key = sweep or f"optuna: {study.study_name}"
        active = (session or current()).begin(name=f"trial {trial.number}", sweep=key, tags=["optuna"])
        active.start(anchor=sys._getframe(0))
        status, error, value = "ok", None, None
        try:
            value = objective(trial)
            return value
        except BaseException as exc:
            pruned = isinstance(exc, optuna.TrialPruned)
            status = "interrupted" if pruned else block_status(exc)
            error = (f"pruned by Optuna: {exc}" if str(exc) else "pruned by Optuna") if pruned else exc
            raise
        finally:
            _finish(active, trial, study, key, metric, status, error, value)

    return run_trial


def _finish(active: Any, trial: Any, study: Any, key: str, metric: str, status: str, error: Any, value: Any) -> None:
    """Record the trial's params and value with its run, end the run, and keep its figures on the trial."""
    try:
        active.row["params"] = {name: recordable_param(v, repr(name)) for name, v in trial.params.items()}
    except ConfigError as exc:  # a parameter JSON cannot hold: the run is recorded without params
        warnings.warn(f"notebook-carbon: trial {trial.number}'s params are not recorded: {exc}", NotebookCarbonWarning, stacklevel=3)
    values = _values(value, metric) if status == "ok" else {}
    if active.parent_uid is not None:  # inside a metered cell or block: a part of its run, in no sweep
        _nested_once(study)
        values = {}
    if values:
        active.log(values)
        try:
            _declare(active, study, key, values)
        except Exception as exc:  # never the trial's failure: the study goes on
            warnings.warn(f"notebook-carbon: the direction of {sorted(values)} was not declared: {exc}",
                          NotebookCarbonWarning, stacklevel=3)  # fmt: skip
    result = active.finish(status, error)
    problem = result.recorded()  # in the registry before the study goes on (or the process ends)
    if problem is not None:
        warnings.warn(f"notebook-carbon: trial {trial.number}'s run was not recorded: {problem}", NotebookCarbonWarning, stacklevel=3)
    if values and len(study.directions) == 1:
        with _marking:  # trials ending together (n_jobs): judged, and their marks queued, one at a time
            if _best(study, values[metric]):
                active.session.writer().set_final(result.uid)  # the study's best trial: its sweep's result
    trial.set_user_attr(ATTR + "run_uid", result.uid)
    trial.set_user_attr(ATTR + "energy_j", result.row.get("energy_j") or 0.0)
    trial.set_user_attr(ATTR + "emissions_g", result.row.get("emissions_g") or 0.0)


_marking = threading.Lock()
_marked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per study, the value it marked last


def _best(study: Any, value: float) -> bool:
    """Whether ``value`` beats every completed trial's (the running trial is not one yet) and the
    one last marked in this study (a trial that ended a moment ago, in another of the study's
    threads, is not complete yet either). Called under ``_marking``."""
    done = [t.value for t in study.get_trials(deepcopy=False, states=(_complete(),)) if t.value is not None]
    if study in _marked:
        done.append(_marked[study])
    maximize = study.directions[0].name == "MAXIMIZE"
    better = not done or (value > max(done) if maximize else value < min(done))
    if better:
        _marked[study] = value
    return better


def _complete() -> Any:
    from optuna.trial import TrialState

    return TrialState.COMPLETE


_said_nested: set[str] = set()


def _nested_once(study: Any) -> None:
    if study.study_name not in _said_nested:
        _said_nested.add(study.study_name)
        warnings.warn(
            f"notebook-carbon: study {study.study_name!r} runs inside a metered cell or block, so its trials are "
            "parts of that run (its energy counted once), not runs of a sweep with their values: run the study in "
            "a cell without %%carbon (and with %carbon auto off) to record each trial as a run",
            NotebookCarbonWarning, stacklevel=4,
        )  # fmt: skip


def _values(value: Any, metric: str) -> dict[str, float]:
    """The objective's value(s) as metrics: one, or one per objective; none that is not a finite number."""
    if isinstance(value, (list, tuple)):
        pairs = {f"{metric}_{i}": v for i, v in enumerate(value)}
    else:
        pairs = {metric: value}
    return {name: float(v) for name, v in pairs.items()
            if isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)}  # fmt: skip


def _declare(active: Any, study: Any, key: str, values: dict[str, float]) -> None:
    """Declare, once per process, that the study's direction is the better one for its metric(s)."""
    from ..registry.metrics import set_direction
    from ..registry.store import Registry

    location = active.session.settings.registry_location()
    directions = [d.name for d in study.directions]
    for name in values:
        index = int(name.rsplit("_", 1)[1]) if len(directions) > 1 else 0  # objective_3: the fourth objective
        wanted = "higher" if directions[min(index, len(directions) - 1)] == "MAXIMIZE" else "lower"
        if (location, key, name) in _declared:
            continue
        with Registry.open(location) as registry:
            set_direction(registry, active.session.settings.project, name, wanted, sweep_key=key)
        _declared.add((location, key, name))


class EnergyBudget:
    """An Optuna callback that stops the study once its trials' energy reaches ``max_energy_j``
    (J) or their emissions ``max_emissions_g`` (g CO2e), counted from the figures ``metered``
    keeps on each trial (a trial it did not meter counts nothing), and says why in the study's
    user attribute ``notebook_carbon.stopped``."""

    def __init__(self, *, max_energy_j: float | None = None, max_emissions_g: float | None = None) -> None:
        limits = {"max_energy_j": max_energy_j, "max_emissions_g": max_emissions_g}
        if all(v is None for v in limits.values()):
            raise ConfigError("EnergyBudget needs max_energy_j or max_emissions_g (or both)")
        for name, v in limits.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0):
                raise ConfigError(f"EnergyBudget's {name} must be a positive number; got {v!r}")
        self.max_energy_j, self.max_emissions_g = max_energy_j, max_emissions_g

    def __call__(self, study: Any, trial: Any) -> None:
        trials = study.get_trials(deepcopy=False)
        energy = sum(t.user_attrs.get(ATTR + "energy_j", 0.0) for t in trials)
        emissions = sum(t.user_attrs.get(ATTR + "emissions_g", 0.0) for t in trials)
        reached = []
        if self.max_energy_j is not None and energy >= self.max_energy_j:
            reached.append(f"energy {energy:.6g} J >= {self.max_energy_j:g} J")
        if self.max_emissions_g is not None and emissions >= self.max_emissions_g:
            reached.append(f"emissions {emissions:.6g} g CO2e >= {self.max_emissions_g:g} g")
        if reached and ATTR + "stopped" not in study.user_attrs:
            said = f"stopped after trial {trial.number} ({len(trials)} trials): budget reached, {'; '.join(reached)}"
            study.set_user_attr(ATTR + "stopped", said)
            warnings.warn(f"notebook-carbon: study {study.study_name!r} {said}", NotebookCarbonWarning, stacklevel=2)
            study.stop()
