"""Hugging Face ``transformers``: a ``TrainerCallback`` that meters ``Trainer.train()`` as a run and
records the trainer's logs and evaluation metrics as the run's metrics (issue 17).

::

    from notebook_carbon.distributed.huggingface import CarbonCallback

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
                      callbacks=[CarbonCallback(sweep="bert-lr")])
    trainer.train()

Every process meters its own devices, not the main process only (what the callback shipped with
transformers does, leaving the other GPUs uncounted): launched by torchrun, accelerate, DeepSpeed or
SLURM with several processes, each is a rank of one job, recorded as one run made of one part per
rank (``detect_job``, as ``track()`` does; docs/distributed.md). The main process alone (the
trainer's ``is_world_process_zero``) records the logs and metrics, once, at their global step.
Evaluation inside training is metered as part of the training run; a ``trainer.evaluate()`` called
on its own is not (the trainer says evaluation has begun to no callback). A training that raises
calls no callback: its run is closed as ``interrupted`` at the end of the notebook cell (it is
anchored on ``Trainer.train``'s frame), or found ``crashed`` once a script's process has ended.

It lives beside ``detect_job``, which it needs, so ``import transformers`` happens only here.
"""

from __future__ import annotations

import math
import os
import sys
from numbers import Real as numbers_Real
from typing import Any

from transformers import TrainerCallback

from ..errors import ConfigError
from ..integrations.trackers import install
from ..session import Session, current
from .environment import detect_job

__all__ = ["CarbonCallback"]


class CarbonCallback(TrainerCallback):
    """Meter ``Trainer.train()`` as a run named ``name`` (default: the training arguments'
    ``run_name``, else ``train``) in ``sweep``; ``job``: a job name every rank shares (default: from
    the launcher's environment), or False to record each process as a run of its own."""

    def __init__(self, *, name: str | None = None, sweep: str | None = None, session: Session | None = None,
                 job: str | bool | None = None) -> None:  # fmt: skip
        if job is not None and not isinstance(job, (str, bool)):
            raise ConfigError(f"CarbonCallback's job is a job name, True or False; got {job!r}")
        self.name, self.sweep, self.session, self.job = name, sweep, session, job
        install()  # the run's figures go to an active MLflow or W&B run too
        self.run: Any = None
        self.result: Any = None
        self._logged: dict[str, tuple[Any, float]] = {}  # each metric's last (step, value) logged

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is not None:  # train() called again before the last one ended: that one ends here
            self.run.finish("interrupted", "another train() began before this one ended")
        job = None if self.job is False else detect_job(os.environ, self.job if isinstance(self.job, str) else None)
        name = self.name or getattr(args, "run_name", None) or "train"
        self.run = (self.session or current()).begin(name=name, sweep=self.sweep, tags=["transformers"], job=job)
        # anchored on Trainer.train's frame: a training that raises leaves it, and the run is closed
        # (interrupted) at the end of the cell, not left to take in the next cells as its parts
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != "train":
            frame = frame.f_back
        self.run.start(anchor=frame)
        self._logged = {}

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._log(state, logs)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                    **kwargs: Any) -> None:  # fmt: skip
        self._log(state, metrics)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is not None:
            self.result = self.run.finish("ok")
            self.run = None

    def _log(self, state: Any, values: dict[str, Any] | None) -> None:
        """The numbers among ``values``, as metrics of the run at the global step (main process only)."""
        if self.run is None or not values or not getattr(state, "is_world_process_zero", True):
            return
        numbers = {name: float(value) for name, value in values.items()
                   if isinstance(value, numbers_Real) and not isinstance(value, bool) and math.isfinite(value)}  # fmt: skip
        step = getattr(state, "global_step", None)
        # Trainer.evaluate hands the same metrics to on_log, then to on_evaluate: each is kept once
        numbers = {name: value for name, value in numbers.items() if self._logged.get(name) != (step, value)}
        if numbers:
            self.run.log(numbers, step=step)
            self._logged.update({name: (step, value) for name, value in numbers.items()})
