"""The one line printed after a metered cell, and the longer ``%carbon last`` report.

Every figure says how it was obtained: each component carries its method (``rapl``,
``nvml-counter``, ``estimate-tdp``...), and the grid intensity its region, or that no region was
set and the world average stood in. Text that users, devices or settings chose (names, projects,
sweeps, parameters, devices, reasons) goes through ``units.terminal_text``, so no name can act on
the terminal or split a line; figures are shown by the one display scheme, ``units``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

__all__ = ["grid_text", "run_report", "settings_table", "summary_line", "sweeps_table"]


def run_report(result: RunResult, *, registry: str | None = None) -> str:
    """Several lines on one run: every component with device, method and why; intensity source."""
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
    lines = [f"project {terminal_text(project, 100)}: {len(summaries)} sweeps", header]
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
