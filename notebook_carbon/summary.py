"""The one line printed after a metered cell, and the longer ``%carbon last`` report.

Every figure says how it was obtained: each component carries its method (``rapl``,
``nvml-counter``, ``estimate-tdp``...), and the grid intensity its region, or that no region was
set and the world average stood in. Text that users, devices or settings chose (names, projects,
sweeps, parameters, devices, reasons) goes through ``units.terminal_text``, so no name can act on
the terminal or split a line; figures are shown by the one display scheme, ``units``.

A rank's block of a distributed job (or the notebook cell driving one) is a part of the job's run:
its report says so, with the job's ranks and nodes, and lists the run's parts after its own
components, read from the registry (``registry.parts``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .errors import NotebookCarbonError
from .impact.uncertainty import short_window_range
from .session.line import _LABELS, grid_text, summary_line
from .units import (
    duration_text,
    emissions_text,
    energy_text,
    mass_text,
    number_text,
    ratio_text,
    terminal_text,
)

if TYPE_CHECKING:
    from .session import RunResult

__all__ = ["grid_text", "job_lines", "run_report", "settings_table", "summary_line", "sweeps_table"]

PARTS_SHOWN = 16
"""A job's parts listed in a run's report; the rest are counted."""


def run_report(result: RunResult, *, registry: str | None = None) -> str:
    """Several lines on one run: every component with device, method and why; intensity source.
    For a rank's block of a distributed job, the job's run and its parts, read from ``registry``
    (a location) when given."""
    m, fp, row = result.measurement, result.footprint, result.row
    run_id = result.run_id(timeout=5.0)
    title = f"run {run_id}" if run_id is not None else f"run {result.uid[:12]}"
    shared = any(c.share is not None for c in m.components)
    machine_j = m.machine_energy_j()
    lines = [
        f"{title} [{terminal_text(row.get('name') or 'unnamed')}] status {terminal_text(result.status)}, "
        f"project {terminal_text(row['project'])}"
        + (f", sweep {terminal_text(row['sweep'])}" if row.get("sweep") else ""),
        f"  duration {duration_text(m.duration_s)}; energy {energy_text(m.energy_j)} (IT)"
        + (f", {energy_text(fp.facility_energy_j)} with PUE {fp.pue:g}" if fp.pue != 1.0 else ", PUE 1.0"),
        (f"  attribution: this run's share of each device, of the {energy_text(machine_j)} its devices drew "
         "in the window" if shared and machine_j is not None else
         "  attribution: the whole machine (every device's energy in the window charged to this run)"),
    ]
    job = _job(result, run_id, registry)
    if job is not None:
        lines.insert(1, job[0])
    for c in m.components:
        device = terminal_text(c.device)
        line = f"  {_LABELS[c.component]:<4}{energy_text(c.energy_j):>12}  {c.method:<13} {device}"
        if c.share is not None and c.machine_energy_j is not None:
            line += (f": {number_text(100 * c.share)} % of the device's {energy_text(c.machine_energy_j)}"
                     f" ({terminal_text(c.share_how or 'share')})")
        short = short_window_range(c.method, m.duration_s) if c.component == "gpu" else None
        if short is not None:
            line += (f"; between {energy_text(c.energy_j * short.low)} and {energy_text(c.energy_j * short.high)}:"
                     f" {terminal_text(short.basis)}")
        if c.reason:
            line += f"; {terminal_text(c.reason)}"
        if c.degraded:
            line += f"; degraded: {terminal_text(c.degraded)}"
        lines.append(line)
    if not m.components:
        lines.append("  no meters: no energy could be measured or estimated")
    if job is not None:
        lines.extend(job[1:])
    intensity = fp.intensity
    source = f"{intensity.source}" + (f", {intensity.year}" if intensity.year else "")
    lines.append(
        f"  emissions {emissions_text(fp.emissions_g)} at {number_text(intensity.g_per_kwh)} g/kWh"
        f" ({terminal_text(intensity.name)}; {terminal_text(source)})"
    )
    if row.get("params"):
        shown = (f"{terminal_text(k)}={terminal_text(repr(v))}" for k, v in row["params"].items())
        lines.append("  params " + ", ".join(shown))
    reasons = [c.reason for c in m.components if c.reason]
    for note in m.notes:
        if not any(reason in note for reason in reasons):  # already shown on its component's line
            lines.append(f"  note: {terminal_text(note)}")
    if registry:
        lines.append(f"  registry: {terminal_text(registry)}")
    return "\n".join(lines)


def _job(result: RunResult, run_id: int | None, registry: str | None) -> list[str] | None:
    """The report's lines on the job a run is a part of (``job_lines``), its run and parts read
    from ``registry``; None for a run that is no job's."""
    job = result.job
    if job is None:
        return None
    own = "the driving cell's" if job.driver else f"rank {job.rank if job.rank is not None else '?'}'s"
    said = f"  distributed job {terminal_text(job.key, 80)}"
    if registry is None or run_id is None:
        why = "no registry to read" if registry is None else "its run is not in the registry"
        return [f"{said}: its parts cannot be listed ({why}); the figures below are {own} own"]
    from .registry.parts import parts
    from .registry.store import Registry

    try:
        with Registry.open(registry, read_only=True) as reg:
            run = reg.get_run(run_id)
            found = parts(reg, run["uid"]) if run is not None else []
    except NotebookCarbonError as exc:  # the report still shows the run's own figures
        return [f"{said}: its parts could not be read ({terminal_text(exc, 200)}); the figures below are {own} own"]
    if run is None:
        return [f"{said}: run {run_id} is no longer in the registry; the figures below are {own} own"]
    return job_lines(run, found, own=own)


def job_lines(run: dict[str, Any], found: list[dict[str, Any]], *, own: str | None = None) -> list[str]:
    """A job's run in a report: one line saying it is a distributed job, with its ranks, nodes,
    status and energy (and whose figures the report's others are: ``own``); then one line per
    part (at most ``PARTS_SHOWN``): rank or driver, node, status, energy charged, and the GPUs it
    was charged some of."""
    ranked = [p for p in found if p.get("job") is not None]  # a block nested in a rank's is no rank
    ranks = len({p["rank"] for p in ranked if p["rank"] is not None})
    nodes = len({p["node"] or "" for p in ranked})
    world = run.get("job_world_size")
    of = f" of {world}" if world and world != ranks else ""
    line = (
        f"  distributed job {terminal_text(run.get('job'), 80)}: {ranks}{of} rank{'s' if ranks != 1 else ''} on {nodes}"
        f" node{'s' if nodes != 1 else ''}, recorded as this one run ({terminal_text(run.get('status'))},"
        f" {energy_text(run.get('energy_j') or 0.0)} in all, each device counted once)"
    )  # fmt: skip
    lines = [line + (f"; the figures below are {own} own" if own else "")]
    if ranked:
        lines.append(f"  parts of run {run.get('id')}:")
    shown = ranked[:PARTS_SHOWN]
    nodes_w = max((len(terminal_text(p["node"], 24)) for p in shown), default=1)
    status_w = max((len(terminal_text(p["status"])) for p in shown), default=1)
    for part in shown:
        who = "driver" if part["rank"] is None else f"rank {part['rank']}"
        line = (f"    {who:<8} {terminal_text(part['node'], 24):<{nodes_w}}  {terminal_text(part['status']):<{status_w}}"
                f" {energy_text(part['energy_j'] or 0.0):>9}  {_gpus(part.get('devices'))}")  # fmt: skip
        if not part.get("counted", True):
            line += "; inside the driving cell's measurement, not counted again"
        lines.append(line)
    if len(ranked) > PARTS_SHOWN:
        lines.append(f"    … and {len(ranked) - PARTS_SHOWN} more parts")
    return lines


def _gpus(devices: Any) -> str:
    """The GPUs a part was charged some of (its whole, or a share above 0), by name."""
    try:
        listed = json.loads(devices) if isinstance(devices, str) else devices or []
    except ValueError:
        return "GPUs unreadable"
    charged = [terminal_text(d.get("device"), 40) for d in listed if isinstance(d, dict) and d.get("component") == "gpu"
               and (d.get("share") is None or d["share"] > 0)]  # fmt: skip
    return "charged " + ", ".join(charged) if charged else "no GPU charged"


def settings_table(settings) -> str:
    import dataclasses

    rows = dataclasses.asdict(settings)
    rows["registry"] = settings.registry_location()
    width = max(map(len, rows))
    return "\n".join(f"{key:<{width}}  {terminal_text(value)}" for key, value in rows.items())


def sweeps_table(summaries, *, project: str) -> str:
    """``%carbon sweeps`` / ``notebook-carbon sweeps``: one line per sweep, the costliest first."""
    if not summaries:
        return f"no sweeps in project {terminal_text(repr(project))} yet: every metered cell starts one"
    header = f"{'sweep':<28} {'runs':>4}  {'ok/fail/redund':<14} {'energy':>10} {'CO2e':>10} {'overhead':>8}  selected; varying"
    lines = [f"project {terminal_text(project, 100)}: {len(summaries)} sweep{'s' if len(summaries) != 1 else ''}", header]
    for s in summaries:
        counts = f"{s.statuses.get('ok', 0)}/{s.runs - s.statuses.get('ok', 0) - s.statuses.get('running', 0)}/{s.redundant_runs}"
        overhead = ratio_text(s.overhead_ratio)
        if s.selected_run_id is None:
            selected = "no ok run"
        else:
            selected = f"run {s.selected_run_id}" + (" (final)" if s.selected_is_marked else " (latest ok)")
        varying = ", ".join(f"{terminal_text(k, 40)}: {_values(v)}" for k, v in s.varying_params.items())
        lines.append(
            f"{terminal_text(s.label, 28):<28} {s.runs:>4}  {counts:<14} {energy_text(s.energy_j):>10}"
            f" {mass_text(s.emissions_g):>10} {overhead:>8}  {selected}" + (f"; {varying}" if varying else "")
        )
    return "\n".join(lines)


def _values(values) -> str:
    shown = ", ".join(terminal_text(repr(v), 40) for v in values[:4])
    return f"{shown}, … ({len(values)} values)" if len(values) > 4 else shown
