"""The facts of an impact statement, from a scope's figures: one JSON-ready dict every format renders.

``statement_data`` computes everything a statement says — scope, hardware, how each component was
measured, the intensity and PUE used, the distributed jobs among the runs (``jobs``), totals with
ranges, embodied emissions and water, the development overhead, the sweeps, the SCI per run, other
grids, an equivalent — and every figure's basis. The Markdown and LaTeX templates only lay it out,
and the JSON format is this dict itself (``schema/statement.schema.json`` documents it), so the
formats cannot disagree. The figures come from the registry (``Registry.figures``: its totals,
sweeps and runs grouped by hardware, methods and grid), summed by the database.

Energy in J, emissions in g CO2e, water in L, as everywhere; templates convert for display.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..errors import ConfigError
from ..impact import embodied as embodied_maths
from ..impact.equivalents import car_km
from ..impact.footprint import J_PER_KWH
from ..impact.intensity import GridIntensity, resolve_intensity
from ..impact.uncertainty import UNATTRIBUTED_RANGE, method_range
from ..impact.whatif import cleanest_regions, in_regions
from ..record import ESTIMATED, MEASURED, method_kind
from ..registry.figures import Group, ScopeFigures
from ..settings import Settings
from .disclosure import Disclosed, disclosure_fact
from .jobs import JobFigures, hosts_count, jobs_fact
from .tally import figures

SCHEMA_VERSION = 1
"""Version of the statement's JSON document (``schema/statement.schema.json``); raised on any
change that is not an added optional field."""

SCHEMA_ID = "https://notebook-carbon.org/schemas/statement-v1.json"

COMPONENTS = ("gpu", "cpu", "ram")

METHOD_WORDS = {
    "rapl": "read from the processor's RAPL energy counters (Linux powercap)",
    "nvml-counter": "read from the GPU's NVML energy counter",
    "nvml-power": "integrated from NVML power readings sampled during the run",
    "estimate-tdp": "estimated from the processor's TDP and its utilisation, with an idle floor of 21 % of "
    "TDP (no sensor could be read)",
    "estimate-ram": "estimated at 0.375 W per GB of memory (no sensor could be read)",
    "unattributed": "recorded without a per-component method (imported logs)",
}

SOURCES = {
    "sci": "Green Software Foundation, Software Carbon Intensity (SCI) Specification, version 1.1.0 "
    "(ISO/IEC 21031:2024): SCI = (E x I + M) per R; M = TE x (time reserved / expected lifespan)",
    "jay2023": "Jay et al. (2023), An experimental comparison of software-based power meters: focus on CPU and "
    "GPU, CCGrid 2023",
}


def statement_data(
    found: ScopeFigures,
    *,
    scope: dict[str, Any],
    settings: Settings,
    regions: Sequence[str] = (),
    cleanest: int = 0,
    now: datetime.datetime | None = None,
    jobs: JobFigures | None = None,
    disclosed: Disclosed | None = None,
    equivalents: bool = False,
) -> dict[str, Any]:
    """The statement of a scope's runs, as a JSON-ready dict.

    ``found``: the scope's figures (``Registry.figures``: its kept totals, or those of a scope cut
    by time, status or tags summed by the database, and its runs grouped). ``scope`` says what was
    selected (project, filters) and is copied in, with the runs left out for implausible figures,
    which no figure counts. ``settings`` give the hardware, lifetime and reuse used to compute
    embodied emissions for runs recorded without them, and the WUE for water. ``regions`` are grids
    to compare with, besides the ``cleanest`` ones. ``jobs``: the distributed jobs among the runs
    (``jobs.read_jobs``), stated as ``methods.jobs`` when there are any. Other grids are compared
    only when the user names them (``regions``; ``cleanest`` adds that many of the cleanest
    countries, none by default); an everyday equivalent only with ``equivalents``. ``disclosed``
    (``disclosure.read_disclosure``): the TDP notes and the runs never checked for repeats.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    t, groups = found.totals, found.groups
    counted = figures(t, settings, disclosed.embodied_recorded if disclosed else ())
    embodied_g = counted["totals"]["embodied_g"]["value"]
    facility, emissions = t.facility_energy_j, t.emissions_g
    intensity = _intensity(groups, facility, emissions)
    sci = embodied_maths.sci(
        facility, intensity["g_per_kwh"] if facility else 0.0, embodied_g, functional_units=max(t.runs, 1)
    )
    data = {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "generator": f"notebook-carbon {__version__}",
        "generated_at": now.isoformat(timespec="seconds"),
        "scope": {**scope, **counted["scope"], "excluded": [dict(e) for e in found.excluded]},
        "hardware": _hardware(groups, jobs),
        "methods": {
            "components": _components(groups, t.energy_j),
            **_shares(groups, t.energy_j),
            "attribution": sorted({str(g.attribution) for g in groups if g.attribution is not None}),
            "attribution_rules": [ATTRIBUTION_RULES.get(a, f"Runs recorded with attribution {a!r} were charged as that "
                                  "version of the tool did.") for a in _attributions(groups)],
            "machine_energy_j": t.machine_energy_j,
            "idle": _idle(found, t.machine_energy_j),
            "jobs": jobs_fact(jobs),
            "pue": sorted({float(g.pue) for g in groups if g.pue is not None}),
            "intensity": intensity,
            "wue_l_per_kwh": settings.wue_l_per_kwh,
            "embodied": counted["embodied"],
            "uncertainty": "each component's energy has a range from its method; a run's "
            "range is the sum of its components' lows and of their highs (conservative); emissions scale with "
            "energy (grid intensity and PUE taken as exact); embodied emissions take the range of their factor",
        },
        "totals": counted["totals"],
        "development": counted["development"],
        "sweeps": _sweeps(found, scope.get("project")),
        "sci": {
            "g_per_run": sci.sci_g_per_unit,
            "operational_g": sci.operational_g,
            "embodied_g": sci.embodied_g,
            "runs": t.runs,
            "basis": sci.basis,
        },
        "what_if": _what_if(facility, emissions, intensity, regions, cleanest),
        "lifetime_extension": _lifetime(embodied_g, counted["embodied"]["lifetime_years"]),
        "equivalents": [_equivalent(emissions + embodied_g)] if equivalents else [],
        "sources": list(SOURCES.values()),
    }
    data["methods"]["disclosure"] = disclosure_fact(
        data["methods"], disclosed, runs=t.runs, wue_l_per_kwh=settings.wue_l_per_kwh,
        wue_source=settings.wue_source,
    )
    data["methods"]["wue_l_per_kwh"] = data["methods"]["disclosure"]["wue"]["l_per_kwh"]  # as recorded
    return plain(data)


# -- parts -------------------------------------------------------------------------------------

ATTRIBUTION_RULES = {
    "share": (
        "Each run was charged its share of each device it used (attribution by share): of "
        "the CPU, its process tree's CPU time over the machine's busy CPU time; of the memory, its resident "
        "memory over the memory in use; of a GPU, nothing unless one of its processes held a compute context "
        "on it, then the GPU's energy above idle split by the processes' SM utilisation and its idle energy "
        "split between the processes holding a context."
    ),
    "machine": (
        "Runs recorded with whole-machine attribution were charged everything the machine's devices drew "
        "during their windows."
    ),
    "process": (
        "Runs recorded with process attribution (an earlier version) were charged their process tree's CPU "
        "time and resident memory where these were estimated, and the whole of each measured device."
    ),
}
"""What a run was charged of the devices it ran on, by ``runs.attribution``: stated in every statement."""


def _idle(found: ScopeFigures, machine_energy_j: float) -> dict[str, Any] | None:
    """What the devices drew idling under the runs, where ``notebook-carbon calibrate`` measured
    their hosts' idle power: per group of runs, the idle power of the devices its runs metered (a
    component measured, not estimated; as many GPUs as they saw, at the measured GPUs' mean) times
    their time; and, when every host of the runs was measured, the energy above idle."""
    if not found.idle:
        return None
    devices: dict[str, list[dict[str, Any]]] = {}
    for row in found.idle:
        devices.setdefault(row["host"], []).append(
            {k: row[k] for k in ("component", "device", "method", "idle_w", "measured_at")})
    run_time: dict[str, float] = {}
    idle_by_host: dict[str, float] = {}
    runs_elsewhere = 0
    for g in found.groups:
        if g.host not in devices:
            runs_elsewhere += g.runs
            continue
        run_time[g.host] = run_time.get(g.host, 0.0) + g.run_time_s
        idle_by_host[g.host] = idle_by_host.get(g.host, 0.0) + _metered_idle_w(devices[g.host], g) * g.run_time_s
    hosts = [{"host": host, "run_time_s": run_time.get(host, 0.0), "devices": listed,
              "idle_energy_j": idle_by_host.get(host, 0.0)}
             for host, listed in sorted(devices.items()) if host in run_time]  # fmt: skip
    if not hosts:
        return None
    idle_j = sum(h["idle_energy_j"] for h in hosts)
    return {
        "hosts": hosts,
        "idle_energy_j": idle_j,
        "runs_on_other_hosts": runs_elsewhere,
        "above_idle_j": max(0.0, machine_energy_j - idle_j) if not runs_elsewhere else None,
    }


def _metered_idle_w(listed: Sequence[dict[str, Any]], group: Group) -> float:
    """The idle power of the devices a group's runs metered, of those measured on their host."""
    total = 0.0
    for component in ("cpu", "ram"):
        if method_kind(getattr(group, f"{component}_method")) == MEASURED:
            total += sum(d["idle_w"] for d in listed if d["component"] == component)
    gpus = [d["idle_w"] for d in listed if d["component"] == "gpu"]
    if gpus and group.gpu_count and method_kind(group.gpu_method) == MEASURED:
        total += sum(gpus) / len(gpus) * group.gpu_count
    return total


def _attributions(groups: Sequence[Group]) -> list[str]:
    """The attributions of the runs, ``share`` first (today's), then the others in order."""
    found = {str(g.attribution) for g in groups if g.attribution is not None}
    return sorted(found, key=lambda a: (a != "share", a))



def _intensity(groups: Sequence[Group], facility_j: float, emissions_g: float) -> dict[str, Any]:
    """The grid(s) the runs' emissions were computed with; with several, their weighted mean."""
    by_grid: dict[tuple, list] = {}
    for g in groups:
        found = by_grid.setdefault((g.intensity_region, g.intensity_g_per_kwh, g.intensity_source), [0, 0.0])
        found[0] += g.runs
        found[1] += g.facility_energy_j
    grids = [
        {"region": region, "name": None, "g_per_kwh": g, "source": source, "year": None, "runs": runs,
         "facility_energy_j": energy}
        for (region, g, source), (runs, energy) in by_grid.items()
    ]  # fmt: skip
    for grid in grids:
        grid.update(_bundled_name_and_year(grid))
    grids.sort(key=lambda g: (-g["facility_energy_j"], str(g["region"]), str(g["g_per_kwh"]), str(g["source"])))
    kwh = facility_j / J_PER_KWH
    if kwh:
        mean = float(emissions_g / kwh)
    else:
        mean = float(grids[0]["g_per_kwh"] or 0.0) if grids else 0.0
    return {"grids": grids, "g_per_kwh": mean, "region": grids[0]["region"] if len(grids) == 1 else "mixed"}


def _bundled_name_and_year(grid: dict[str, Any]) -> dict[str, Any]:
    """The place name and data year of a recorded grid, from the bundled data, when the recorded
    figure is the bundled one (a run records region, figure and source, not the year); nothing
    for a user's own figure or a region the data no longer knows."""
    if not grid["region"] or grid["g_per_kwh"] is None or grid["region"] in ("world",):
        return {}
    try:
        known = resolve_intensity(str(grid["region"]))
    except ConfigError:
        return {}
    if not math.isclose(known.g_per_kwh, float(grid["g_per_kwh"]), rel_tol=1e-9) or known.source != grid["source"]:
        return {}
    return {"name": known.name, "year": known.year}


def _hardware(groups: Sequence[Group], jobs: JobFigures | None = None) -> dict[str, Any]:
    gpus = {(g.gpu_model, g.gpu_count) for g in groups if g.gpu_model is not None}
    gpu_s = sum(g.gpu_count * g.run_time_s for g in groups if g.gpu_count and g.run_time_s)
    return {
        "hosts": hosts_count({str(g.host) for g in groups if g.host is not None}, jobs),
        "gpu_hours": gpu_s / 3600 if gpu_s else None,  # each run's GPUs x its run time
        "cpus": sorted({str(g.cpu_model) for g in groups if g.cpu_model is not None}),
        "gpus": [{"model": str(model), "count": None if count is None else int(count)}
                 for model, count in sorted(gpus, key=lambda g: (str(g[0]), g[1] or 0))],
    }  # fmt: skip


def _counted(method: str | None) -> str | None:
    """``measured`` or ``estimated`` for a component's method whose energy counts as such, else None."""
    kind = method_kind(method)
    return kind if kind in (MEASURED, ESTIMATED) else None


def _components(groups: Sequence[Group], total_j: float) -> list[dict[str, Any]]:
    rows = []
    for component in COMPONENTS:
        joules: dict[str, float] = {}
        for g in groups:
            method = getattr(g, f"{component}_method")
            if method is not None:
                joules[method] = joules.get(method, 0.0) + getattr(g, f"{component}_energy_j")
        for method in sorted(joules, key=str):
            if method == "none" or not joules[method] or _counted(method) is None:
                continue
            r = method_range(method)
            rows.append({
                "component": component, "method": str(method), "kind": method_kind(method),
                "energy_j": joules[method], "share": joules[method] / total_j if total_j else None,
                "range": [r.low, r.high], "range_label": r.label, "basis": r.basis,
                "how": " and ".join(METHOD_WORDS.get(m, m) for m in str(method).split("+")),
            })  # fmt: skip
    unattributed = sum(g.unattributed_positive_j for g in groups)
    if unattributed > 0:
        r = UNATTRIBUTED_RANGE
        rows.append({
            "component": "total", "method": "unattributed", "kind": "unattributed",
            "energy_j": unattributed, "share": unattributed / total_j if total_j else None,
            "range": [r.low, r.high], "range_label": r.label, "basis": r.basis, "how": METHOD_WORDS["unattributed"],
        })  # fmt: skip
    return rows


def _shares(groups: Sequence[Group], total_j: float) -> dict[str, float | None]:
    """The shares of the energy measured, estimated, and that no counted component accounts for."""
    found = {MEASURED: 0.0, ESTIMATED: 0.0}
    for g in groups:
        for component in COMPONENTS:
            kind = _counted(getattr(g, f"{component}_method"))
            if kind is not None:
                found[kind] += getattr(g, f"{component}_energy_j")
    unattributed = sum(g.unattributed_j for g in groups)

    def share(part: float) -> float | None:
        return part / total_j if total_j else None

    return {
        "measured_share": share(found[MEASURED]),
        "estimated_share": share(found[ESTIMATED]),
        "unattributed_share": share(unattributed),
    }


def _sweeps(found: ScopeFigures, project: str | None) -> list[dict[str, Any]]:
    """One row per sweep, the most energy first, with its development overhead within the scope."""
    return [
        {"project": str(project), "key": s.key, "label": s.label, "explicit": s.explicit, "runs": s.runs,
         "energy_j": s.energy_j, "emissions_g": s.emissions_g, "failed_runs": s.failed_runs,
         "failed_energy_j": s.failed_energy_j, "redundant_runs": s.redundant_runs,
         "redundant_energy_j": s.redundant_energy_j, "overhead_ratio": s.overhead_ratio}
        for s in found.sweeps
    ]  # fmt: skip


def _what_if(facility_j: float, emissions_g: float, intensity: dict, regions: Sequence[str], n: int) -> dict:
    actual = GridIntensity(
        g_per_kwh=intensity["g_per_kwh"],
        region=str(intensity["region"] or "unknown"),
        name="the grid(s) the runs used" if intensity["region"] == "mixed" else str(intensity["region"] or "unknown"),
        source="the runs' records",
        year=None,
    )
    found = [cleanest_regions(facility_j, actual, n=n)] if n else []
    if regions:
        found.append(in_regions(facility_j, list(regions), actual))
    rows, seen = [], set()
    for what_if in found:
        for row in what_if.rows:
            if row.region in seen:
                continue
            seen.add(row.region)
            rows.append({"region": row.region, "name": row.name, "g_per_kwh": row.g_per_kwh,
                         "source": row.source, "year": row.year, "emissions_g": row.emissions_g, "ratio": row.ratio,
                         "chosen": row.region in {r.upper() for r in regions} or row.region in regions})
    return {"actual_emissions_g": float(emissions_g), "actual_g_per_kwh": intensity["g_per_kwh"],
            "facility_energy_j": facility_j, "rows": rows,
            "basis": found[0].basis if found else "no other grids asked for"}


def _lifetime(embodied_g: float, years: float) -> dict[str, Any] | None:
    """The embodied emissions with the hardware kept half as long again as the ``years`` its factor
    amortised it over (the setting, or the factor's source's own: 6 years for a gpu-server)."""
    if not embodied_g:
        return None
    ext = embodied_maths.lifetime_extension(embodied_g, from_years=years, to_years=years * 1.5)
    return {"from_years": ext.from_years, "to_years": ext.to_years, "before_g": ext.before_g,
            "after_g": ext.after_g, "change_fraction": ext.change_fraction, "sentence": ext.sentence}


def _equivalent(grams: float) -> dict[str, Any]:
    eq = car_km(grams)
    return {"amount": eq.amount, "unit": eq.unit, "what": eq.what, "text": str(eq), "factor": eq.factor,
            "source": eq.source}


def plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN as None: what JSON can hold."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # without importing numpy
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    return value
