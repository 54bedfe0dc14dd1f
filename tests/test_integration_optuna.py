"""Optuna, the real package (the test extra installs it): a study of 20 trials, some pruned, one
failing, gives 20 runs in one sweep with their params, states and objective values, and the
study's direction for its metric; an energy budget stops a second study early and says so; the
trials keep their runs' figures."""

from __future__ import annotations

import warnings

import pytest

optuna = pytest.importorskip("optuna")

from notebook_carbon.errors import ConfigError, NotebookCarbonWarning  # noqa: E402
from notebook_carbon.integrations.optuna import EnergyBudget, metered  # noqa: E402
from notebook_carbon.meters.detect import Detection  # noqa: E402
from notebook_carbon.registry import Registry  # noqa: E402
from notebook_carbon.registry.metrics import directions, latest_metrics  # noqa: E402
from notebook_carbon.session import Session  # noqa: E402
from notebook_carbon.settings import Settings  # noqa: E402
from notebook_carbon.testing import FakeMeter  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture
def session(tmp_path):
    detection = Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 50.0),), notes=())
    return Session(Settings(registry=str(tmp_path / "r.sqlite"), region="FR", project="tune"), detection=detection)


def test_a_study_of_20_trials_is_20_runs_of_one_sweep(session):
    @metered(session=session)
    def objective(trial):
        x = trial.suggest_float("x", -4.0, 4.0)
        depth = trial.suggest_int("depth", 1, 3)
        if trial.number == 7:
            raise ValueError("a diverging trial")
        trial.report(x, step=1)
        if trial.number % 5 == 4:
            raise optuna.TrialPruned()
        return -((x - 1.0) ** 2) - depth

    study = optuna.create_study(direction="maximize", study_name="quadratic", sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective, n_trials=20, catch=(ValueError,))
    assert session.writer().flush(30)
    with Registry.open(session.settings.registry_location()) as reg:
        runs = {run["name"]: run for run in reg.runs(project="tune")}
        logged = latest_metrics(reg, [run["uid"] for run in runs.values()])
        declared = directions(reg, "tune", "optuna: quadratic")
        (sweep,) = reg.sweeps("tune")
    assert len(runs) == 20 and sweep.key == "optuna: quadratic" and sweep.runs == 20
    for trial in study.trials:
        run = runs[f"trial {trial.number}"]
        assert run["params"] == trial.params and run["tags"] == ["optuna"]
        expected = {"COMPLETE": "ok", "PRUNED": "interrupted", "FAIL": "failed"}[trial.state.name]
        assert run["status"] == expected, (trial.number, trial.state)
        assert trial.user_attrs["notebook_carbon.run_uid"] == run["uid"]
        assert trial.user_attrs["notebook_carbon.energy_j"] == pytest.approx(run["energy_j"])
        if trial.state.name == "COMPLETE":
            assert logged[run["uid"]] == {"objective": pytest.approx(trial.value)}
        else:
            assert run["uid"] not in logged
    assert runs["trial 7"]["error"] == "ValueError: a diverging trial"
    assert runs["trial 4"]["error"].startswith("pruned by Optuna")
    states = [t.state.name for t in study.trials]
    assert (states.count("PRUNED"), states.count("FAIL"), states.count("COMPLETE")) == (4, 1, 15)  # 4, 9, 14, 19; 7
    assert declared == {"objective": "higher"}
    # the study's best trial is the sweep's selected result
    assert sweep.selected_run_id == runs[f"trial {study.best_trial.number}"]["id"] and sweep.selected_is_marked


def test_a_study_inside_a_metered_block_says_its_trials_are_parts_and_fails_nothing(session):
    """Inside a metered cell or block, the trials are parts of its run (its energy counted once):
    said once, with what to do; no trial's value goes to the block's run, and nothing fails (a
    review found the best trial marked final by a part's uid, failing on the writer)."""
    from notebook_carbon import track

    @metered(session=session, sweep="nested")
    def objective(trial):
        return trial.suggest_float("x", 0.0, 1.0)

    study = optuna.create_study(direction="maximize", study_name="inside")
    with warnings.catch_warnings(record=True) as caught, track(name="the cell", session=session, quiet=True):
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=3)
    said = [str(w.message) for w in caught if isinstance(w.message, NotebookCarbonWarning)]
    assert len(said) == 1 and "parts of that run" in said[0] and "without %%carbon" in said[0]
    assert session.writer().flush(10) and not session.writer().take_errors()
    with Registry.open(session.settings.registry_location()) as reg:
        runs = reg.runs(project="tune")
        assert [run["name"] for run in runs] == ["the cell"]
        assert latest_metrics(reg, [runs[0]["uid"]]) == {}


def test_numpy_values_are_values(session):
    @metered(session=session, sweep="np")
    def objective(trial):
        import numpy as np

        return np.float32(trial.suggest_float("x", 0.0, 1.0))

    study = optuna.create_study(direction="maximize", study_name="np")
    study.optimize(objective, n_trials=2)
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as reg:
        runs = reg.runs(project="tune")
        found = latest_metrics(reg, [run["uid"] for run in runs])
    assert len(found) == 2 and all("objective" in values for values in found.values())


def test_an_energy_budget_stops_a_study_early_and_says_so(session):
    @metered(session=session, sweep="budgeted")
    def objective(trial):
        trial.suggest_float("x", 0.0, 1.0)
        return 1.0

    study = optuna.create_study(direction="minimize", study_name="budget")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=50, callbacks=[EnergyBudget(max_energy_j=1e-9)])
    assert len(study.trials) == 1  # the first trial used more than a nanojoule
    said = study.user_attrs["notebook_carbon.stopped"]
    assert said.startswith("stopped after trial 0 (1 trials): budget reached, energy")
    assert any(isinstance(w.message, NotebookCarbonWarning) and "budget reached" in str(w.message) for w in caught)
    with Registry.open(session.settings.registry_location()) as reg:
        assert directions(reg, "tune", "budgeted") == {"objective": "lower"}
    for bad in ({}, {"max_energy_j": 0}, {"max_emissions_g": float("nan")}, {"max_energy_j": True}):
        with pytest.raises(ConfigError, match="EnergyBudget"):
            EnergyBudget(**bad)


def test_trials_in_parallel_mark_the_best_whichever_finishes_first(session):
    """With ``n_jobs=2`` two trials end together, before Optuna has marked either complete: the
    better one ending first must stay the sweep's result (a review found the later, worse one
    marked, each judged only against completed trials). Driven with ask/tell, deterministically."""

    @metered(session=session)
    def objective(trial):
        return trial.suggest_float("x", 0.0, 1.0)

    study = optuna.create_study(direction="maximize", study_name="parallel")
    study.enqueue_trial({"x": 0.9})
    study.enqueue_trial({"x": 0.95})
    first, second = study.ask(), study.ask()
    better = objective(second)  # 0.95, ends first
    worse = objective(first)  # 0.9, ends before the better one is told complete
    study.tell(second, better)
    study.tell(first, worse)
    assert session.writer().flush(30)
    with Registry.open(session.settings.registry_location()) as reg:
        (sweep,) = reg.sweeps("tune")
        selected = reg.get_run(sweep.selected_run_id)
    assert (better, worse) == (0.95, 0.9)
    assert selected["name"] == f"trial {second.number}" and sweep.selected_is_marked
