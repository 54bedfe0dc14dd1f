"""Ray Tune, the real package (the test extra installs it), on this machine's two cores: a grid of
four trials of a tiny function trainable gives four runs of one sweep, measured in the trials' own
processes, with their configs, reports and states; Tune receives each trial's energy so far; a
budget stops a second experiment early and says so."""

from __future__ import annotations

import os
import time
import warnings

import pytest

ray = pytest.importorskip("ray")
tune = pytest.importorskip("ray.tune")

from notebook_carbon.errors import ConfigError, NotebookCarbonWarning  # noqa: E402
from notebook_carbon.integrations.ray import ENERGY, EnergyBudget, metered, report  # noqa: E402
from notebook_carbon.registry import Registry  # noqa: E402
from notebook_carbon.registry.metrics import latest_metrics  # noqa: E402


@metered
def trainable(config):
    x = config["x"]
    for step in range(3):
        time.sleep(0.15)
        report({"score": x * (step + 1), "label": "not a number"})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Ray on this machine, its workers recording into one registry (their inherited environment)."""
    folder = tmp_path_factory.mktemp("ray")
    registry = str(folder / "registry.sqlite")
    keys = ("NOTEBOOK_CARBON_REGISTRY", "NOTEBOOK_CARBON_PROJECT", "NOTEBOOK_CARBON_SAMPLE_INTERVAL_S",
            "RAY_AIR_NEW_OUTPUT", "PYTHONPATH")
    saved = {k: os.environ.get(k) for k in keys}
    here = os.path.dirname(__file__)  # the workers unpickle the module-level trainable by its name
    # samples every 50 ms: a report's energy so far is the last sample's, and these trials are short
    os.environ.update(NOTEBOOK_CARBON_REGISTRY=registry, NOTEBOOK_CARBON_PROJECT="ray", RAY_AIR_NEW_OUTPUT="0",
                      NOTEBOOK_CARBON_SAMPLE_INTERVAL_S="0.05",
                      PYTHONPATH=os.pathsep.join(filter(None, [here, saved["PYTHONPATH"]])))  # fmt: skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield folder, registry
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_four_trials_are_four_runs_of_one_sweep_measured_in_their_processes(cluster):
    """The trainable defined here, as in a script: Ray pickles it, and the wrapper, by value."""
    folder, registry = cluster

    @metered
    def local(config):
        for step in range(3):
            time.sleep(0.15)
            report({"score": config["x"] * (step + 1)})

    tuner = tune.Tuner(local, param_space={"x": tune.grid_search([1, 2, 3, 4])},
                       run_config=tune.RunConfig(name="grid", storage_path=str(folder / "results"), verbose=0))  # fmt: skip
    results = tuner.fit()
    assert not results.errors
    energies = [result.metrics[ENERGY] for result in results]  # each trial's last report
    assert all(energy > 0 for energy in energies), energies
    with Registry.open(registry) as reg:
        runs = reg.runs(project="ray")
        logged = latest_metrics(reg, [run["uid"] for run in runs])
    assert len(runs) == 4 and {run["sweep"] for run in runs} == {"ray: grid"}
    assert sorted(run["params"]["x"] for run in runs) == [1, 2, 3, 4]
    assert {run["status"] for run in runs} == {"ok"} and {run["pid"] for run in runs} != {os.getpid()}
    for run in runs:
        assert logged[run["uid"]] == {"score": run["params"]["x"] * 3}  # the last report's, at iteration 3


def test_a_budget_stops_the_experiment_early_and_says_so(cluster):
    folder, registry = cluster
    budget = EnergyBudget(max_energy_j=1e-9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner = tune.Tuner(trainable, param_space={"x": tune.grid_search([5, 6, 7, 8])},
                           run_config=tune.RunConfig(name="budget", stop=budget,
                                                     storage_path=str(folder / "results"), verbose=0))  # fmt: skip
        results = tuner.fit()
    assert budget.stopped is not None and budget.stopped.startswith("budget reached")
    assert any(isinstance(w.message, NotebookCarbonWarning) for w in caught)
    iterations = [result.metrics.get("training_iteration", 0) for result in results]
    assert max(iterations) < 3  # every trial stopped before its three reports
    with Registry.open(registry) as reg:  # stopped by Tune (it exits in report): never failed. Tune may end
        # the trial's process before its end is written: such a run stays running until found crashed
        statuses = {run["status"] for run in reg.runs(project="ray") if run["sweep"] == "ray: budget"}
    assert statuses and statuses <= {"interrupted", "running"}, statuses
    with pytest.raises(ConfigError, match="max_energy_j must be a positive number"):
        EnergyBudget(max_energy_j=0)
