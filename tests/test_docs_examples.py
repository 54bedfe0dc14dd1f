"""Each integration's page has a complete example (issue 17): run here as it is written in the
page, in a process of its own, with the real packages the test extra installs, offline (MLflow on
a file store, W&B in offline mode, Ray on this machine), recording into a registry of its own. The
Hugging Face page's example trains a model, which needs torch, which CI does not install: it is not
run (its callback is tested through its real hooks in test_integration_transformers.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notebook_carbon.registry import Registry
from notebook_carbon.registry.metrics import latest_metrics

DOCS = Path(__file__).resolve().parents[1] / "docs"


def example(page: str) -> str:
    """The Python block under the page's "A complete example" heading."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = re.search(r"^## A complete example\n.*?^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert found, f"docs/{page} has no complete example"
    return found.group(1)


def run_example(page: str, where: Path, timeout_s: float = 300) -> tuple[str, str]:
    """Run ``page``'s example in ``where``: its registry, its MLflow store and W&B files all there."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "example.py").write_text(example(page), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEBOOK_CARBON_", "MLFLOW_", "WANDB_", "RAY_"))}
    env.update(NOTEBOOK_CARBON_REGISTRY=str(where / "registry.sqlite"), NOTEBOOK_CARBON_GPU="off",
               NOTEBOOK_CARBON_REGION="FR", MLFLOW_TRACKING_URI=(where / "mlruns").as_uri(),
               MLFLOW_ALLOW_FILE_STORE="true", WANDB_DIR=str(where), WANDB_SILENT="true",
               RAY_USAGE_STATS_ENABLED="0", RAY_AIR_NEW_OUTPUT="0")  # fmt: skip
    done = subprocess.run([sys.executable, "example.py"], cwd=where, env=env, capture_output=True, text=True,
                          timeout=timeout_s, check=False)  # fmt: skip
    assert done.returncode == 0, f"docs/{page}'s example failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout, done.stderr


def recorded(where: Path) -> list[dict]:
    """The example's runs, oldest first, each with its metrics (``metrics``)."""
    with Registry.open(str(where / "registry.sqlite")) as reg:
        runs = list(reversed(reg.runs()))
        logged = latest_metrics(reg, [run["uid"] for run in runs])
    return [{**run, "metrics": logged.get(run["uid"], {})} for run in runs]


def test_the_optuna_example(tmp_path):
    pytest.importorskip("optuna")
    out, _ = run_example("optuna.md", tmp_path)
    runs = recorded(tmp_path)
    assert len(runs) == 40 and {run["sweep"] for run in runs} == {"optuna: logistic"}
    assert all(run["status"] == "ok" and 0.5 < run["metrics"]["objective"] <= 1.0 for run in runs)
    assert out.strip().splitlines()[-1] == "ran every trial"  # 40 short trials stay far below 10 Wh


def test_the_mlflow_example(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    run_example("mlflow.md", tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read the example's file store here
    runs = recorded(tmp_path)
    assert [run["name"] for run in runs] == ["lr=0.1", "lr=0.5"] and {run["sweep"] for run in runs} == {"lr"}
    assert all(set(run["metrics"]) == {"loss", "acc"} for run in runs)
    client = mlflow.tracking.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "logistic"]
    tracked = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in tracked) == ["lr=0.1", "lr=0.5"]
    for found in tracked:
        steps = [m.step for m in client.get_metric_history(found.info.run_id, "carbon/energy_j")]
        assert steps[:4] == [24, 49, 74, 99] and found.data.metrics["carbon/energy_j"] > 0
        assert "acc" in found.data.metrics and found.data.tags["notebook_carbon.status"] == "ok"
    assert len(list((tmp_path / "mlruns").glob("*/*/artifacts/notebook_carbon/run-*.json"))) == 2


def test_the_wandb_example(tmp_path):
    pytest.importorskip("wandb")
    run_example("wandb.md", tmp_path)
    runs = recorded(tmp_path)
    assert [run["name"] for run in runs] == ["lr=0.1", "lr=0.5"]
    assert all(set(run["metrics"]) == {"loss", "acc"} for run in runs)
    offline = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 2
    for folder in offline:
        assert list(folder.glob("files/notebook_carbon/run-*.json")), sorted(p.name for p in folder.rglob("*"))[:20]
        (records,) = folder.glob("run-*.wandb")  # what wandb sync would upload: the history and summary
        assert b"carbon/energy_j" in records.read_bytes() and b"carbon/emissions_g_high" in records.read_bytes()


def test_the_ray_example(tmp_path):
    pytest.importorskip("ray")
    out, _ = run_example("ray.md", tmp_path)
    runs = recorded(tmp_path)
    assert len(runs) == 4 and {run["sweep"] for run in runs} == {"ray: logistic"}
    assert all(run["status"] == "ok" and set(run["metrics"]) == {"acc"} for run in runs)
    assert float(out.strip().splitlines()[-1]) > 0  # the best trial's energy, as its last report gave it
