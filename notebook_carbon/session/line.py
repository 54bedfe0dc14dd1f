"""The one line printed after a metered cell (``RunResult.summary``): what it cost, and how each
figure was obtained. ``summary`` builds the longer reports on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..units import duration_text, emissions_text, energy_text, number_text, terminal_text

if TYPE_CHECKING:
    from .run import RunResult

_LABELS = {"gpu": "GPU", "cpu": "CPU", "ram": "RAM"}


def summary_line(result: RunResult) -> str:
    """``carbon: 12.3 Wh (GPU 10.1 Wh nvml-counter, ...) · 4.1 g CO2e · 2 min 13 s · FR grid 56.3 g/kWh``."""
    m = result.measurement
    parts = []
    for component, (energy_j, method) in m.by_component().items():
        degraded = any(c.degraded for c in m.components if c.component == component)
        parts.append(
            f"{_LABELS[component]} {energy_text(energy_j)} {method}" + (" (degraded)" if degraded else "")
        )
    energy = energy_text(m.energy_j) + (f" ({', '.join(parts)})" if parts else " (no meters)")
    fields = [
        energy,
        emissions_text(result.footprint.emissions_g),
        duration_text(m.duration_s),
        grid_text(result.footprint),
    ]
    head = "carbon"
    if result.row.get("name"):
        head += f" [{terminal_text(result.row['name'], 60)}]"
    if result.status != "ok":
        head += f" ({terminal_text(result.status)})"
    return f"{head}: " + " · ".join(fields)


def grid_text(fp) -> str:
    intensity = fp.intensity
    if intensity.is_override:
        region = terminal_text(intensity.region)
        where = f"{region} grid (user value)" if intensity.region else "user-set grid"
    elif intensity.is_default:
        where = "world-average grid (no region set)"
    else:
        where = f"{terminal_text(intensity.region)} grid"
    text = f"{where} {number_text(intensity.g_per_kwh)} g/kWh"
    if fp.pue != 1.0:
        text += f", PUE {fp.pue:g}"
    return text


