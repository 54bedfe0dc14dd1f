"""MLflow and W&B, the real packages (the test extra installs them), offline: a run's figures and
its record reach the active MLflow run (a file store) and W&B run (offline mode), from a
``track()`` block and from a metered notebook cell; nothing is logged, and nothing fails, when
neither has a run active; a block inside another run is not logged twice."""

from __future__ import annotations

import json

import pytest

mlflow = pytest.importorskip("mlflow")
wandb = pytest.importorskip("wandb")

from notebook_carbon import track  # noqa: E402
from notebook_carbon.meters.detect import Detection  # noqa: E402
from notebook_carbon.session import Session  # noqa: E402
from notebook_carbon.settings import Settings  # noqa: E402
from notebook_carbon.testing import FakeMeter  # noqa: E402

FIGURES = {"carbon/energy_j", "carbon/emissions_g", "carbon/emissions_g_low", "carbon/emissions_g_high",
           "carbon/embodied_g", "carbon/duration_s"}  # fmt: skip


@pytest.fixture
def session(tmp_path):
    detection = Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 40.0),), notes=())
    return Session(Settings(registry=str(tmp_path / "r.sqlite"), region="FR", project="log"), detection=detection)


@pytest.fixture
def file_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store only on request
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    yield tmp_path / "mlruns"
    mlflow.set_tracking_uri(None)


def test_an_active_mlflow_run_gets_the_figures_and_the_record(session, file_store):
    with track(name="outside", session=session, quiet=True):  # no MLflow run active: nothing, no error
        sum(range(10_000))
    with mlflow.start_run() as active:
        with track(name="fit", session=session, quiet=True) as block:
            with track(name="inner", session=session, quiet=True):  # its energy is the outer run's
                sum(range(10_000))
    data = mlflow.get_run(active.info.run_id).data
    row = block.result.row
    history = mlflow.tracking.MlflowClient().get_metric_history(active.info.run_id, "carbon/energy_j")
    assert len(history) == 1  # the outer run only: the inner block's energy is in it
    assert set(data.metrics) == FIGURES
    assert data.metrics["carbon/energy_j"] == pytest.approx(row["energy_j"])
    assert data.metrics["carbon/emissions_g_low"] <= data.metrics["carbon/emissions_g"] <= data.metrics["carbon/emissions_g_high"]
    assert data.tags["notebook_carbon.run_uid"] == block.result.uid
    (record,) = list(file_store.glob("*/*/artifacts/notebook_carbon/run-*.json"))
    saved = json.loads(record.read_text())
    assert saved["uid"] == block.result.uid and saved["name"] == "fit" and saved["cpu_method"] == "rapl"
    assert saved["components"][0]["method"] == "rapl" and "share" in saved["components"][0]
    assert len([p for p in file_store.glob("*/*") if p.is_dir()]) == 1  # one MLflow run: "outside" made none


def test_an_offline_wandb_run_gets_the_figures_and_the_record(session, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(mode="offline", dir=str(tmp_path), project="notebook-carbon-test")
    try:
        with track(name="fit", session=session, quiet=True) as block:
            sum(range(10_000))
        summary = {k: v for k, v in dict(run.summary).items() if k.startswith("carbon/")}
        saved = json.loads((tmp_path.joinpath(run.dir) / "notebook_carbon" / f"run-{block.result.uid}.json").read_text())
    finally:
        run.finish()
    assert set(summary) == FIGURES and summary["carbon/energy_j"] == pytest.approx(block.result.row["energy_j"])
    assert saved["name"] == "fit" and saved["components"][0]["device"] == "package-0"


def test_a_tracker_that_fails_is_said_once_and_not_tried_again(session, file_store, monkeypatch):
    """A tracking server that does not answer would hold up every cell: the first failure is one
    warning, and the tracker is off for the process after it."""
    import warnings

    from notebook_carbon.errors import NotebookCarbonWarning
    from notebook_carbon.integrations import trackers

    calls = []

    def down(*args, **kwargs):
        calls.append(1)
        raise ConnectionError("tracking server not answering")

    monkeypatch.setattr(mlflow, "log_metrics", down)
    monkeypatch.setattr(trackers, "_off", set())
    with mlflow.start_run(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("a", "b", "c"):
            with track(name=name, session=session, quiet=True) as block:
                block.log(loss=1.0, step=0)
    said = [str(w.message) for w in caught if isinstance(w.message, NotebookCarbonWarning)]
    assert len(calls) == 1 and len(said) == 1 and "not answering" in said[0] and "will not be again" in said[0]


def test_a_metered_cell_is_logged_too(shell, session, file_store):
    with mlflow.start_run() as active:
        assert shell.run_cell("%%carbon --name cell --quiet\nx = sum(range(10_000))\n").success
    assert session.writer().flush(10)
    assert set(mlflow.get_run(active.info.run_id).data.metrics) == FIGURES


def test_each_step_a_run_logs_metrics_at_logs_its_energy_so_far(session, file_store):
    """A training loop's ``run.log(step=...)``: the active MLflow run gets ``carbon/energy_j`` at
    that step, never decreasing, and the final figure when the block ends."""
    import time

    with mlflow.start_run() as active:
        with track(name="loop", session=session, quiet=True) as block:
            for step in range(3):
                time.sleep(1.1)  # one sample a second: each step has a new reading
                block.log(step=step, loss=1.0 / (step + 1))
    history = mlflow.tracking.MlflowClient().get_metric_history(active.info.run_id, "carbon/energy_j")
    stepped = [(m.step, m.value) for m in history]
    assert [step for step, _ in stepped] == [0, 1, 2, 2]  # three steps, then the end, at the last step
    values = [value for _, value in stepped]
    assert values == sorted(values) and values[-1] == pytest.approx(block.result.row["energy_j"])
