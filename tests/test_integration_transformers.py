"""Hugging Face transformers, the real package (the test extra installs it, without torch): the
``CarbonCallback`` driven through its real hook calls with transformers' ``TrainerState`` and
``TrainerControl``. Training itself needs torch, which CI does not install, so ``Trainer`` and
``TrainingArguments`` (which imports torch) are not run; the arguments the callback reads are
given as a plain object. One process: one run with the trainer's logs and evaluation metrics at
their steps. Two ranks launched as torchrun launches them: one job run of two parts, every rank
metered, the metrics logged once, by the main process."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

pytest.importorskip("transformers")

from test_distributed_jobs import torchrun_env  # noqa: E402
from transformers import TrainerControl, TrainerState  # noqa: E402

from notebook_carbon.distributed.huggingface import CarbonCallback  # noqa: E402
from notebook_carbon.errors import ConfigError  # noqa: E402
from notebook_carbon.meters.detect import Detection  # noqa: E402
from notebook_carbon.registry import Registry  # noqa: E402
from notebook_carbon.registry.metrics import latest_metrics  # noqa: E402
from notebook_carbon.session import Session  # noqa: E402
from notebook_carbon.settings import Settings  # noqa: E402
from notebook_carbon.testing import FakeMeter  # noqa: E402

DRIVE = """
import json, sys, types
from transformers import TrainerControl, TrainerState
from notebook_carbon.distributed.huggingface import CarbonCallback

rank = int(sys.argv[1])
callback = CarbonCallback(sweep="bert")
args = types.SimpleNamespace(run_name="bert-base", output_dir="out")
state, control = TrainerState(is_world_process_zero=rank == 0), TrainerControl()
callback.on_train_begin(args, state, control)
for step in range(1, 4):
    state.global_step = step
    sum(range(200_000))
    callback.on_step_end(args, state, control)
    callback.on_log(args, state, control, logs={"loss": 1.0 / step, "learning_rate": 5e-5, "epoch": step / 3})
callback.on_evaluate(args, state, control, metrics={"eval_loss": 0.4, "eval_accuracy": 0.91, "epoch": 1.0})
callback.on_train_end(args, state, control)
print(json.dumps({"uid": callback.result.uid}))
"""


def drive(callback, *, steps=3, main=True):
    """The hook calls ``Trainer.train()`` makes, in its order, with real TrainerState/TrainerControl."""
    args = types.SimpleNamespace(run_name="bert-base", output_dir="out", world_size=1)
    state, control = TrainerState(is_world_process_zero=main), TrainerControl()
    callback.on_init_end(args, state, control)
    callback.on_train_begin(args, state, control)
    for step in range(1, steps + 1):
        state.global_step = step
        callback.on_step_begin(args, state, control)
        sum(range(100_000))
        callback.on_step_end(args, state, control)
        callback.on_log(args, state, control, logs={"loss": 1.0 / step, "learning_rate": 5e-5, "note": "text"})
    # Trainer.evaluate: self.log(metrics) (on_log, the epoch added), then on_evaluate with the same metrics
    evaluated = {"eval_loss": 0.4, "eval_accuracy": 0.91}
    callback.on_log(args, state, control, logs={**evaluated, "epoch": 1.0})
    callback.on_evaluate(args, state, control, metrics=evaluated)
    callback.on_train_end(args, state, control)
    return callback.result


def test_training_is_one_run_with_the_trainer_s_metrics(tmp_path):
    detection = Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 60.0),), notes=())
    session = Session(Settings(registry=str(tmp_path / "r.sqlite"), region="FR", project="hf"), detection=detection)
    result = drive(CarbonCallback(sweep="bert", session=session))
    assert result.status == "ok" and result.row["energy_j"] > 0
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as reg:
        (run,) = reg.runs(project="hf")
        found = latest_metrics(reg, [run["uid"]])[run["uid"]]
    assert (run["name"], run["sweep"], run["tags"]) == ("bert-base", "bert", ["transformers"])
    assert found == {"loss": pytest.approx(1 / 3), "learning_rate": 5e-5, "eval_loss": 0.4, "eval_accuracy": 0.91,
                     "epoch": 1.0}  # fmt: skip
    with Registry.open(session.settings.registry_location()) as reg, reg.read("test") as conn:
        rows = conn.exec_driver_sql("SELECT name, step, count(*) FROM metrics GROUP BY name, step").fetchall()
    # every value once, at its step: the evaluation's too, which the trainer hands over twice
    assert sorted(rows) == sorted([("loss", s, 1) for s in (1, 2, 3)] + [("learning_rate", s, 1) for s in (1, 2, 3)]
                                  + [("eval_loss", 3, 1), ("eval_accuracy", 3, 1), ("epoch", 3, 1)])  # fmt: skip
    with pytest.raises(ConfigError, match="job name, True or False"):
        CarbonCallback(job=3)


def test_a_training_that_raises_is_closed_with_its_cell_not_left_to_swallow_later_runs(tmp_path):
    """The trainer calls no callback when training raises: the run, anchored on ``train``'s frame,
    is closed as interrupted by the next ``close_left_open`` (what the magic calls after each cell),
    and a later block is a run of its own, not a part of the training's."""
    from notebook_carbon import track
    from notebook_carbon.session.run import close_left_open

    detection = Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 60.0),), notes=())
    session = Session(Settings(registry=str(tmp_path / "r.sqlite"), region="FR", project="hf"), detection=detection)
    callback = CarbonCallback(session=session)

    def train():  # as Trainer.train: the hooks are called below it
        callback.on_train_begin(types.SimpleNamespace(run_name="oom"), TrainerState(), TrainerControl())
        raise MemoryError("CUDA out of memory")

    try:
        train()
    except MemoryError as exc:
        kept = exc.__traceback__  # as IPython keeps the last traceback (sys.last_traceback): its frames stay
    close_left_open()
    assert kept is not None
    with track(name="next cell", session=session, quiet=True) as block:
        sum(range(1000))
    assert block.result.parent_uid is None
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as reg:
        assert {run["name"]: run["status"] for run in reg.runs(project="hf")} == {"oom": "interrupted", "next cell": "ok"}


def test_two_ranks_are_one_job_run_every_rank_metered_and_the_metrics_logged_once(tmp_path):
    registry = str(tmp_path / "registry.sqlite")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEBOOK_CARBON_", "SLURM", "TORCHELASTIC"))}
    base.update(NOTEBOOK_CARBON_REGISTRY=registry, NOTEBOOK_CARBON_GPU="off", NOTEBOOK_CARBON_PROJECT="hf",
                PYTHONPATH=os.pathsep.join(sys.path))  # fmt: skip
    processes = [subprocess.Popen([sys.executable, "-c", DRIVE, str(rank)], env={**base, **torchrun_env(rank, 2)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(2)]  # fmt: skip
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
    with Registry.open(registry) as reg:
        (run,) = reg.runs(project="hf")
        found = latest_metrics(reg, [run["uid"]])[run["uid"]]
        with reg.read("counting") as conn:
            logged = conn.exec_driver_sql("SELECT COUNT(*) FROM metrics WHERE name = 'loss'").scalar()
    assert (run["name"], run["job_world_size"], run["job_parts"], run["status"]) == ("bert-base", 2, 2, "ok")
    assert found["eval_accuracy"] == 0.91 and found["loss"] == pytest.approx(1 / 3)
    assert logged == 3  # three steps, by rank 0 only
