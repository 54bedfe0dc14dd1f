"""One row of codecarbon's ``emissions.csv``: checked against the run bounds and converted, or rejected.

Pure: no file, no registry. ``convert_row`` turns a row (a mapping of header to cell text) into the
records ``Registry.record_run`` takes, or raises ``RowRejected`` with every problem of the row, each
naming its columns. Every figure that would be stored is checked against ``record.BOUNDS`` before
anything is converted further, so no row can bring ``inf``, an overflowing count or a year-1
timestamp into the registry, where one such run would break every reader of its project.

Units: codecarbon writes energy in kWh, emissions in kg CO2e, water in L, durations in s, RAM in GB.
The registry stores joules (1 kWh = 3.6e6 J exactly), grams, litres and seconds. codecarbon
multiplies every energy figure by the PUE before it adds it up, so its energies are facility
energy; the registry's ``energy_j`` is IT energy before PUE, hence ``codecarbon kWh x 3.6e6 / pue``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import ConfigError
from ..impact.footprint import J_PER_KWH
from ..meters.base import METHODS
from ..record import BOUNDS, check_figure, implausible
from .codecarbon_fields import (
    Problems,
    check_project,
    checked_number,
    date,
    device,
    end_time,
    field_text,
    region,
    run_name,
    scaled_bound,
    shown,
    time_note,
)

__all__ = [
    "IMPORTED_METHOD",
    "RAM_MAX_GB",
    "ParsedRun",
    "RowRejected",
    "convert_row",
    "method_for",
]

G_PER_KG = 1000.0

RAM_MAX_GB = 1e6
"""A petabyte: twenty times the largest single-system memory sold (48 TB). ``ram_total_size`` only
labels the RAM component, but a larger figure means the row is corrupt."""

IMPORTED_METHOD = "imported"
"""The method that says "measured by another tool, which did not record how" (proposed for METHODS)."""

# codecarbon's CSV does not say how each figure was obtained, and the registry's vocabulary has no
# word for "not recorded". Until METHODS gains IMPORTED_METHOD, each component gets the least
# certain method that could describe codecarbon's figure, so an imported run never claims more
# precision than it has (a measured figure labelled an estimate errs on the safe side):
_LABELS = {
    # RAPL (measured) when readable, else TDP x load or a constant: both estimates
    "cpu": ("estimate-tdp", "codecarbon reads RAPL where it can and otherwise estimates from the TDP"),
    # estimated from memory size on almost every machine (measured only on a Raspberry Pi's PMIC)
    "ram": ("estimate-ram", "codecarbon estimates RAM power on almost every machine"),
    # the vendor's energy counter, falling back to integrating sampled power; never an estimate
    "gpu": ("nvml-power", "codecarbon reads the GPU energy counter and falls back to sampling power"),
}


def method_for(component: str) -> str:
    """The method recorded for a component imported from codecarbon (``cpu``, ``ram`` or ``gpu``)."""
    return IMPORTED_METHOD if IMPORTED_METHOD in METHODS else _LABELS[component][0]


@dataclasses.dataclass(frozen=True)
class ParsedRun:
    """One row converted to registry records: ``Registry.record_run(row, final, components)``."""

    uid: str
    line: int
    run_id: str | None
    row: dict[str, Any]
    final: dict[str, Any]
    components: tuple[dict[str, Any], ...]


class RowRejected(Exception):
    """A row's problems, all of them: ``columns`` at fault (in the order found) and one message."""

    def __init__(self, problems: Problems) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.columns = tuple(dict.fromkeys(column for columns, _ in problems for column in columns))


def convert_row(
    record: Mapping[str, str], uid: str, line: int, source: str, project: str | None
) -> tuple[datetime, float, ParsedRun]:
    """One good row as registry records, with its end time and duration; ``RowRejected`` otherwise."""
    problems: Problems = []
    corrupt = [column for column, value in record.items() if value and "\x00" in value]
    if corrupt:
        verb = "contains" if len(corrupt) == 1 else "contain"
        message = (
            f"{', '.join(corrupt)} {verb} a NUL character, which no database can store "
            "(a crash while writing leaves them)"
        )
        problems.append((tuple(corrupt), message))
    number = functools.partial(checked_number, record, problems)
    pue = number("pue", bound=scaled_bound("pue", 1.0))
    # the stored energy is IT energy, codecarbon's figure / PUE: the bound in kWh scales with it
    per_kwh = J_PER_KWH / (pue or 1.0)
    duration_s = number("duration", required=True, bound=scaled_bound("duration_s", 1.0))
    emissions_kg = number("emissions", required=True, bound=scaled_bound("emissions_g", G_PER_KG))
    total_kwh = number("energy_consumed", required=True, energy=True, bound=scaled_bound("energy_j", per_kwh))
    parts_kwh = {
        c: number(f"{c}_energy", energy=True, bound=scaled_bound(f"{c}_energy_j", per_kwh))
        for c in ("gpu", "cpu", "ram")
    }
    water_l = number("water_consumed", bound=scaled_bound("water_l", 1.0))
    gpu_count = number("gpu_count", whole=True, bound=scaled_bound("gpu_count", 1.0))
    ram_gb = number("ram_total_size", bound=(0.0, RAM_MAX_GB))
    timestamp = field_text(record, "timestamp")
    ended, zoned = end_time(timestamp, problems)
    if project is None:
        project = field_text(record, "project_name") or "default"
        try:
            check_project(project, "project_name")
        except ConfigError as exc:
            problems.append((("project_name",), f"{exc}; pass --project to import it under another name"))
    if (
        ended is not None
        and duration_s is not None
        and ended.timestamp() - duration_s < BOUNDS["started_at"][0]
    ):
        message = (
            f"timestamp {timestamp!r} minus duration {field_text(record, 'duration')} s starts the run before "
            f"{date(BOUNDS['started_at'][0])}, outside the plausible range"
        )
        problems.append((("timestamp", "duration"), message))
    intensity = None
    if emissions_kg is not None and total_kwh is not None and total_kwh > 0:
        intensity = emissions_kg * G_PER_KG / total_kwh
        if check_figure("intensity_g_per_kwh", intensity) is not None:
            low, high, unit = BOUNDS["intensity_g_per_kwh"]
            message = (
                f"emissions {field_text(record, 'emissions')} kg over energy_consumed "
                f"{field_text(record, 'energy_consumed')} kWh is {intensity:.3g} {unit}, outside the plausible "
                f"range {shown(low)} to {shown(high)} {unit} of any grid: the row's figures disagree"
            )
            problems.append((("emissions", "energy_consumed"), message))
    if problems:
        raise RowRejected(problems)
    assert ended is not None and duration_s is not None and emissions_kg is not None and total_kwh is not None

    version = field_text(record, "codecarbon_version")
    tool = f"codecarbon {version}" if version else "codecarbon (version not recorded)"
    run_id = field_text(record, "run_id")
    notes = [
        f"imported from {tool} {source} line {line}"
        + (f", run_id {run_id}" if run_id else "; no run_id, so the run is identified by the row's content"),
        time_note(timestamp, ended, zoned),
        f"{tool}'s CSV does not say whether the tracked code failed; imported as ok",
    ]
    if pue is None:
        notes.append("no pue column (older codecarbon): its energy taken as IT energy, PUE 1")
        pue = 1.0
    elif pue != 1.0:
        notes.append(
            f"{tool} multiplies energy by the PUE ({pue:g}); energy_j is IT energy, its figure / PUE"
        )
    present = [kwh for kwh in parts_kwh.values() if kwh is not None]
    if present and not math.isclose(sum(present), total_kwh, rel_tol=1e-6, abs_tol=1e-12):
        notes.append(
            f"energy_consumed {total_kwh!r} kWh differs from the sum of cpu, gpu and ram energy "
            f"{sum(present)!r} kWh; energy_j is energy_consumed"
        )

    final: dict[str, Any] = {
        "status": "ok",
        "ended_at": ended.timestamp(),
        "duration_s": duration_s,
        "energy_j": total_kwh * J_PER_KWH / pue,
        "emissions_g": emissions_kg * G_PER_KG,
        "water_l": water_l,
    }
    components = []
    for component in ("gpu", "cpu", "ram"):
        kwh = parts_kwh[component]
        # codecarbon writes gpu_energy 0 on a machine without GPU: that is no GPU, not an idle one
        if kwh is None or (component == "gpu" and kwh == 0 and not gpu_count):
            final[f"{component}_energy_j"], final[f"{component}_method"] = None, "none"
            continue
        method = method_for(component)
        reason = f"imported from {tool} {source}; measurement method not recorded by codecarbon"
        if method != IMPORTED_METHOD:
            reason += f"; labelled {method}, the least certain that fits: {_LABELS[component][1]}"
        energy_j = kwh * J_PER_KWH / pue
        final[f"{component}_energy_j"], final[f"{component}_method"] = energy_j, method
        components.append(
            {
                "component": component,
                "device": device(component, record, gpu_count, ram_gb),
                "method": method,
                "energy_j": energy_j,
                "reason": reason,
            }
        )
    if components and IMPORTED_METHOD not in METHODS:
        labels = ", ".join(f"{c['component']} {c['method']}" for c in components)
        notes.append(f"methods not recorded by codecarbon; labelled {labels}, the least certain that fit")

    tracking_mode = field_text(record, "tracking_mode")
    row: dict[str, Any] = {
        "uid": uid,
        "project": project,
        "name": run_name(record),
        "started_at": final["ended_at"] - duration_s,
        "cpu_model": field_text(record, "cpu_model"),
        "gpu_model": field_text(record, "gpu_model"),
        "gpu_count": int(gpu_count) if gpu_count is not None else None,
        "attribution": tracking_mode if tracking_mode in ("machine", "process") else None,
        "pue": pue,
        # codecarbon's energy includes the PUE, so this is emissions / (IT energy x PUE)
        "intensity_g_per_kwh": intensity,
        "intensity_region": region(record),
        "intensity_source": f"{tool} (imported)",
        "notes": notes,
    }
    # Each figure was checked above in codecarbon's units; this is the same rule on what is stored,
    # so a rounding at a bound's edge can never let through what every reader would leave out.
    reason = implausible({**row, **final})
    if reason is not None:
        raise RowRejected([((), f"{reason} after conversion")])
    return ended, duration_s, ParsedRun(uid, line, run_id, row, final, tuple(components))

