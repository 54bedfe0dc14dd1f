"""Thin adapters over the session for the tools where sweeps really run (issue 17).

``optuna``  each trial a run of the study's sweep, measured inside the objective; a budget that
            stops a study

Each module imports its tool only when used, so ``import notebook_carbon`` never does.
"""
