"""Was the result worth its energy? For each result sweep of a project: its selected run's metric
and energy, the cheapest run whose metric is within a tolerance of it, and the runs on the
accuracy-against-energy front (issue 17). What ``%carbon sweeps`` and the statement say.

The sweep's metric is ``pareto.primary_metric`` of what its runs logged (``registry.metrics``): a
declared one first, else an accuracy-like one, else a loss-like one. Only its ``ok`` runs that
logged it count; a sweep whose selected run logged none, or with fewer than two such runs, has
nothing to say and is left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .pareto import Point, metric_direction, pareto_front, primary_metric, within_tolerance

if TYPE_CHECKING:
    from ..registry.store import Registry

__all__ = ["TOLERANCE", "sweep_tradeoffs"]

TOLERANCE = 0.01
"""How close to the selected run's metric counts as as good: 1 % of its value."""


def sweep_tradeoffs(registry: Registry, project: str, *, tolerance: float = TOLERANCE,
                    keys: Sequence[str] | None = None, points: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """For each result sweep of ``project`` (or the sweeps ``keys``), in the registry's order of
    results: ``sweep`` (key), ``label``, ``metric``, ``direction``, ``tolerance`` (relative),
    ``runs`` (that logged the metric), ``selected`` and ``cheapest`` (``run_id``, ``energy_j``,
    ``value``), ``energy_share`` (the cheapest's energy over the selected's) and ``front`` (the run
    ids on the front, least energy first); with ``points``, also ``points``: every run that logged
    the metric as ``[run id, energy J, value]`` (what a chart of them draws)."""
    from ..registry.metrics import directions, latest_metrics

    sweeps = {sweep.key: sweep for sweep in registry.sweeps(project, params=False)}
    wanted = list(keys) if keys is not None else [key for key, _ in registry.totals(project).results]
    found = []
    for key in wanted:
        sweep = sweeps.get(key)
        if sweep is None or sweep.selected_run_id is None:
            continue
        names, rows = registry.columns(["id", "uid", "energy_j"], project=project, sweep=key, statuses=("ok",))
        runs = [dict(zip(names, row)) for row in rows]
        logged = latest_metrics(registry, [run["uid"] for run in runs])
        declared = directions(registry, project, key)
        metric = primary_metric({name for values in logged.values() for name in values}, declared)
        if metric is None:
            continue
        found_points = [Point(run["id"], run["energy_j"], logged[run["uid"]][metric])
                        for run in runs if metric in logged.get(run["uid"], {})]  # fmt: skip
        selected = next((p for p in found_points if p.run_id == sweep.selected_run_id and p.usable), None)
        if selected is None or len(found_points) < 2:
            continue
        direction = metric_direction(metric, declared)
        tradeoff = within_tolerance(found_points, selected.run_id, abs(selected.value) * tolerance, direction)
        found.append({
            "sweep": key, "label": sweep.label, "metric": metric, "direction": direction, "tolerance": tolerance,
            "runs": len(found_points), "selected": dataclasses.asdict(selected),
            "cheapest": dataclasses.asdict(tradeoff.cheapest), "energy_share": tradeoff.energy_share,
            "front": [point.run_id for point in pareto_front(found_points, direction)],
        })  # fmt: skip
        if points:
            found[-1]["points"] = [[p.run_id, p.energy_j, p.value] for p in found_points if p.usable]
    return found
