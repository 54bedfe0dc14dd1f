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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .pareto import Point, metric_direction, pareto_front, primary_metric, within_tolerance

if TYPE_CHECKING:
    from ..registry.store import Registry

__all__ = ["TOLERANCE", "describe", "sweep_tradeoffs"]

TOLERANCE = 0.01
"""How close to the selected run's metric counts as as good: 1 % of its value."""


def sweep_tradeoffs(registry: Registry, project: str, *, tolerance: float = TOLERANCE,
                    keys: Sequence[str] | None = None, points: bool = False,
                    limit: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """For each result sweep of ``project`` (or the sweeps ``keys``), in the registry's order of
    results (with ``limit``: the costliest first, and at most ``limit`` of them: what a dashboard
    shows, reading only the sweeps it needs): ``sweep`` (key), ``label``, ``metric``, ``direction``, ``tolerance`` (relative),
    ``runs`` (that logged the metric), ``selected`` and ``cheapest`` (``run_id``, ``energy_j``,
    ``value``), ``marked`` (whether the selected run was marked final, else it is the latest ok run), ``energy_share`` (the cheapest's energy over the selected's) and ``front`` (the run
    ids on the front, least energy first); with ``points``, also ``points``: every run that logged
    the metric as ``[run id, energy J, value]`` (what a chart of them draws)."""
    from ..registry.metrics import directions, latest_metrics, sweeps_with_metrics

    measured = sweeps_with_metrics(registry, project)
    if not measured:
        return []  # most projects: one read, no sweep's runs
    listed = registry.sweeps(project, params=False)  # the most energy first
    sweeps = {sweep.key: sweep for sweep in listed}
    if keys is not None:
        wanted = list(keys)
    else:
        # the statement's order, by key; a view's, the costliest first
        wanted = ([key for key, _ in registry.totals(project).results] if limit is None
                  else [sweep.key for sweep in listed if sweep.is_result])  # fmt: skip
    wanted = [key for key in wanted if key in measured]
    found: list[dict[str, Any]] = []
    for key in wanted:
        if limit is not None and len(found) >= limit:
            break
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
            "marked": bool(sweep.selected_is_marked),
        })  # fmt: skip
        if points:
            found[-1]["points"] = [[p.run_id, p.energy_j, p.value] for p in found_points if p.usable]
    return found


def describe(tradeoff: dict[str, Any], text: Callable[[str], str] = str, *, named: bool = True) -> str:
    """One of ``sweep_tradeoffs``'s answers as a line: ``lr: selected run 12, acc 0.93 with 1.2 kJ;
    run 10 (acc 0.925, within 1 %) used 45 % of that energy (higher is better; front: runs 10, 12)``.
    ``text`` makes the user's names (the sweep's label, the metric) safe where the line goes: a
    terminal's or HTML's escape; the line is otherwise plain text. ``named=False`` leaves out the
    sweep's label (``selected run 12, ...``), for a view that shows it above the line."""
    from ..units import energy_text, number_text, percent_text

    picked, cheap, metric = tradeoff["selected"], tradeoff["cheapest"], text(tradeoff["metric"])
    within = percent_text(tradeoff["tolerance"])
    latest = "" if tradeoff["marked"] else " (the latest: none marked final)"
    name = f"{text(tradeoff['label'] or tradeoff['sweep'])}: " if named else ""
    head = (f"{name}selected run {picked['run_id']}{latest}, {metric} "
            f"{number_text(picked['value'])} with {energy_text(picked['energy_j'])}")  # fmt: skip
    if cheap["run_id"] == picked["run_id"]:
        tail = f"no run within {within} of it used less energy"
    else:
        tail = (f"run {cheap['run_id']} ({metric} {number_text(cheap['value'])}, within {within}) used "
                f"{percent_text(tradeoff['energy_share'])} of that energy")  # fmt: skip
    front = ", ".join(map(str, tradeoff["front"]))
    return f"{head}; {tail} ({tradeoff['direction']} is better; front: run{'s' if len(tradeoff['front']) != 1 else ''} {front})"
