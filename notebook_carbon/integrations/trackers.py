"""Each finished run's figures, logged to the active MLflow run and the active W&B run (issue 17).

When a metered cell, a ``track()`` block or an integration's trial ends, and MLflow or W&B is
imported in the process with a run active, that run gets the figures: metrics (``carbon/energy_j``,
``carbon/emissions_g`` with ``_low`` and ``_high``, ``carbon/water_l``, ``carbon/embodied_g``,
``carbon/duration_s``) and a JSON artifact of the run's record (its methods per component, what it
was charged of each device and by which rule, its grid): an MLflow artifact
``notebook_carbon/run-<uid>.json``, a file of the same name in the W&B run. Nothing is logged, and neither library is imported, when none
is active; nothing goes over the network that the user's own run would not send (MLflow's tracking
URI, W&B's mode: a file store and offline mode stay local). A block metered inside another run is
not logged (its energy is inside that run's). A failure to log is said once, as a warning, turns that
tracker off for the process, and never fails the run. The logging runs on the thread that ends
the run: with a tracker's run active, each metered cell waits for its calls (an empty ``track()``
block took 5.0 ms with an MLflow file-store run active, 1.1 ms without: docs/mlflow.md).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

from ..errors import NotebookCarbonWarning
from ..record import energy_range
from ..session import state

__all__ = ["figures", "install", "log_finished", "log_step"]

PREFIX = "carbon/"
_off: set[str] = set()  # trackers that failed once: not tried again in this process
_last_step: dict[str, int] = {}  # an open run's last step (its uid): where its final figures go in MLflow


def install() -> None:
    """Log each finished run of this process to an active MLflow or W&B run, and its energy so far
    at each step it logs metrics at (once, however often called)."""
    if log_finished not in state.finish_listeners:
        state.finish_listeners.append(log_finished)
    if log_step not in state.step_listeners:
        state.step_listeners.append(log_step)


def log_step(active: Any, step: int) -> None:
    """``state.step_listeners``' hook: the energy an open run has used so far (``carbon/energy_j``,
    as of the sampler's last reading), at ``step``: MLflow at that step, W&B with the step's other
    metrics (W&B counts its own steps)."""
    modules = [(name, sys.modules.get(name)) for name in ("mlflow", "wandb") if name not in _off]
    if active.parent_uid is not None or not active.window.started or not any(m for _, m in modules):
        return
    _last_step[active.uid] = step
    energy = {PREFIX + "energy_j": float(sum(active.window.energy_so_far_j().values()))}
    for name, module in modules:
        if name == "mlflow" and module is not None:
            _guarded(name, lambda: module.active_run() and module.log_metrics(energy, step=step))
        elif name == "wandb" and module is not None:  # W&B counts its own steps: with its current one's
            _guarded(name, lambda: getattr(module, "run", None) and module.run.log(energy, commit=False))


def _guarded(name: str, call: Any) -> None:
    """``call()``; a failure is said once and turns that tracker off for the process (a tracking
    server that does not answer would otherwise hold up every cell), never raised."""
    try:
        call()
    except Exception as exc:
        _off.add(name)
        warnings.warn(f"notebook-carbon: the run's figures were not logged to {name}, and will not be again in "
                      f"this process: {exc}", NotebookCarbonWarning, stacklevel=3)  # fmt: skip


def figures(result: Any) -> dict[str, float]:
    """The metrics a finished run (``RunResult``) logs: its energy, emissions with their range,
    water, embodied emissions and run time, each a finite number (those unknown left out)."""
    row = result.row
    low, high = energy_range(row) if row.get("energy_j") is not None else (1.0, 1.0)
    emissions = row.get("emissions_g")
    found = {
        "energy_j": row.get("energy_j"),
        "emissions_g": emissions,
        "emissions_g_low": emissions * low if emissions is not None else None,
        "emissions_g_high": emissions * high if emissions is not None else None,
        "water_l": row.get("water_l"),
        "embodied_g": row.get("embodied_g"),
        "duration_s": row.get("duration_s"),
    }
    return {PREFIX + name: float(value) for name, value in found.items() if isinstance(value, (int, float))}


def _record(result: Any) -> dict[str, Any]:
    """What the JSON artifact holds: the run's record, as written to the registry."""
    keep = ("name", "sweep", "project", "notebook", "status", "error", "started_at", "ended_at", "duration_s",
            "energy_j", "gpu_energy_j", "cpu_energy_j", "ram_energy_j", "gpu_method", "cpu_method", "ram_method",
            "machine_energy_j", "attribution", "pue", "intensity_g_per_kwh", "intensity_region", "intensity_source",
            "emissions_g", "water_l", "embodied_g", "host", "gpu_model", "gpu_count", "cpu_model", "notes", "params")  # fmt: skip
    record = {key: result.row.get(key) for key in keep}
    record["uid"] = result.uid
    record["components"] = [
        {"component": c.component, "device": c.device, "method": c.method, "energy_j": c.energy_j,
         "machine_energy_j": c.machine_energy_j, "share": c.share, "share_how": c.share_how, "reason": c.reason}
        for c in result.measurement.components
    ]  # fmt: skip
    return record


def log_finished(result: Any) -> None:
    """``state.finish_listeners``' hook: log ``result`` to each active tracker; warn once on failure."""
    step = _last_step.pop(result.uid, None)
    if result.parent_uid is not None:
        return
    for name, log in (("mlflow", _to_mlflow), ("wandb", _to_wandb)):
        module = sys.modules.get(name)
        if module is not None and name not in _off:  # never the run's failure (``_guarded``)
            _guarded(name, lambda: log(module, result, step))


def _to_mlflow(mlflow: Any, result: Any, step: int | None) -> None:
    if mlflow.active_run() is None:
        return
    mlflow.log_metrics(figures(result), step=step)  # at the run's last step, when it logged steps
    mlflow.log_dict(_record(result), f"notebook_carbon/run-{result.uid}.json")
    mlflow.set_tags({"notebook_carbon.run_uid": result.uid, "notebook_carbon.status": result.status})


def _to_wandb(wandb: Any, result: Any, step: int | None) -> None:
    run = getattr(wandb, "run", None)
    if run is None:
        return
    found = figures(result)
    run.log(found, commit=False)  # with W&B's current step: never a step of its own, which would move the user's
    run.summary.update(found)
    # the record as one of the run's files (offline: kept in the run's folder, synced with it later)
    path = Path(run.dir) / "notebook_carbon" / f"run-{result.uid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_record(result), indent=1, default=str), encoding="utf-8")
    run.save(str(path), base_path=run.dir, policy="now")
