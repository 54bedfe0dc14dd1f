"""Thin adapters over the session for the tools where sweeps really run (issue 17).

``optuna``    each trial a run of the study's sweep, measured inside the objective; a budget that
              stops a study
``ray``       each Tune trial a run, measured in its own process; its energy reported to Tune; a
              budget stopper
``trackers``  each finished run's figures logged to an active MLflow run and W&B run

The Hugging Face ``Trainer`` callback is ``distributed.huggingface``: it needs the job detection,
which the layer order puts above this package.

Each module imports its tool only when used, so ``import notebook_carbon`` never does.
"""
