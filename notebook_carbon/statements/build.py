"""The facts of an impact statement, from a frame of runs: one JSON-ready dict every format renders.

``statement_data`` computes everything a statement says — scope, hardware, how each component was
measured, the intensity and PUE used, totals with ranges, embodied emissions and water, the
development overhead, the sweeps, the SCI per run, other grids, an equivalent — and every figure's
basis. The Markdown and LaTeX templates only lay it out, and the JSON format is this dict itself
(``schema/statement.schema.json`` documents it), so the formats cannot disagree.

Energy in J, emissions in g CO2e, water in L, as everywhere; templates convert for display.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..analysis import COMPONENT_NAMES, excluded, method_kind, shares
from ..impact import embodied as embodied_maths
from ..impact.equivalents import car_km
from ..impact.footprint import J_PER_KWH
from ..errors import ConfigError
from ..impact.intensity import GridIntensity, resolve_intensity
from ..impact.uncertainty import UNATTRIBUTED_RANGE, method_range
from ..impact.whatif import cleanest_regions, in_regions
from ..settings import Settings
from .tally import Codes, figures, groups, tally

SCHEMA_VERSION = 1
"""Version of the statement's JSON document (``schema/statement.schema.json``); raised on any
change that is not an added optional field."""

SCHEMA_ID = "https://notebook-carbon.org/schemas/statement-v1.json"

METHOD_WORDS = {
    "rapl": "read from the processor's RAPL energy counters (Linux powercap)",
    "nvml-counter": "read from the GPU's NVML energy counter",
    "nvml-power": "integrated from NVML power readings sampled during the run",
    "estimate-tdp": "estimated from the processor's TDP and its utilisation (no sensor could be read)",
    "estimate-ram": "estimated at 0.375 W per GB of memory (no sensor could be read)",
    "unattributed": "recorded without a per-component method (imported logs)",
}

SOURCES = {
    "sci": "Green Software Foundation, Software Carbon Intensity (SCI) Specification, version 1.1.0 "
    "(ISO/IEC 21031:2024): SCI = (E x I + M) per R; M = TE x (time reserved / expected lifespan)",
    "jay2023": "Jay et al. (2023), An experimental comparison of software-based power meters: focus on CPU and "
    "GPU, CCGrid 2023",
    "fischer2025": "Fischer (2025), on the error of TDP-based energy estimates (up to 40 %)",
}


def statement_data(
    df: pd.DataFrame,
    *,
    scope: dict[str, Any],
    settings: Settings,
    regions: Sequence[str] = (),
    cleanest: int = 3,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """The statement of the runs in ``df`` (``analysis.runs``), as a JSON-ready dict.

    ``scope`` says what was selected (project, filters) and is copied in, with the runs the frame
    left out for implausible figures (``analysis.excluded``), which no figure counts. ``settings`` give the
    hardware, lifetime and reuse used to compute embodied emissions for runs recorded without them,
    and the WUE for water. ``regions`` are grids to compare with, besides the ``cleanest`` ones.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    energy = df["energy_j"].fillna(0.0).to_numpy(float)
    emissions = df["emissions_g"].fillna(0.0).to_numpy(float)
    facility = energy * df["pue"].fillna(1.0).to_numpy(float)
    codes = Codes(df)  # columns factorised once for every part below
    counted = figures(tally(df, codes), settings)
    totals, embodied_g = counted["totals"], counted["totals"]["embodied_g"]["value"]
    share = shares(df)
    intensity = _intensity(df, facility, emissions, codes)
    runs_count = max(len(df), 1)
    sci = embodied_maths.sci(
        float(facility.sum()),
        intensity["g_per_kwh"] if facility.sum() else 0.0,
        embodied_g,
        functional_units=runs_count,
    )
    data = {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "generator": f"notebook-carbon {__version__}",
        "generated_at": now.isoformat(timespec="seconds"),
        "scope": {**scope, **counted["scope"], "excluded": [e.as_dict() for e in sorted(excluded(df), key=lambda e: e.id)]},
        "hardware": _hardware(df, codes),
        "methods": {
            "components": _components(df, float(energy.sum()), codes),
            "measured_share": share.measured,
            "estimated_share": share.estimated,
            "unattributed_share": share.unattributed,
            "attribution": sorted({str(a) for a in df["attribution"].dropna().unique()}),
            "pue": sorted({float(p) for p in df["pue"].dropna().unique()}),
            "intensity": intensity,
            "wue_l_per_kwh": settings.wue_l_per_kwh,
            "embodied": counted["embodied"],
            "uncertainty": "each component's energy has a range from its method (docs/methods.md); a run's "
            "range is the sum of its components' lows and of their highs (conservative); emissions scale with "
            "energy (grid intensity and PUE taken as exact); embodied emissions take the range of their factor",
        },
        "totals": totals,
        "development": counted["development"],
        "sweeps": _sweeps(df, codes),
        "sci": {
            "g_per_run": sci.sci_g_per_unit,
            "operational_g": sci.operational_g,
            "embodied_g": sci.embodied_g,
            "runs": len(df),
            "basis": sci.basis,
        },
        "what_if": _what_if(float(facility.sum()), emissions.sum(), intensity, regions, cleanest),
        "lifetime_extension": _lifetime(embodied_g, settings),
        "equivalents": [_equivalent(float(emissions.sum()) + embodied_g)],
        "sources": list(SOURCES.values()),
    }
    return plain(data)


# -- parts -------------------------------------------------------------------------------------


def _sums(codes: np.ndarray, size: int, values: np.ndarray) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=size + 1)


def _intensity(df: pd.DataFrame, facility: np.ndarray, emissions: np.ndarray, by_column: Codes) -> dict[str, Any]:
    """The grid(s) the runs' emissions were computed with; with several, their weighted mean."""
    codes, firsts = groups(df, ["intensity_region", "intensity_g_per_kwh", "intensity_source"], by_column)
    counts = np.bincount(codes, minlength=len(firsts))
    energy = np.bincount(codes, weights=facility, minlength=len(firsts))
    grids = [
        {"region": region, "name": None, "g_per_kwh": g, "source": source, "year": None, "runs": int(counts[i]),
         "facility_energy_j": float(energy[i])}
        for i, (region, g, source) in enumerate(firsts)
    ]
    for grid in grids:
        grid.update(_bundled_name_and_year(grid))
    grids.sort(key=lambda g: (-g["facility_energy_j"], str(g["region"])))
    kwh = facility.sum() / J_PER_KWH
    if kwh:
        mean = float(emissions.sum() / kwh)
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


def _hardware(df: pd.DataFrame, codes: Codes) -> dict[str, Any]:
    _, found = groups(df, ["gpu_model", "gpu_count"], codes)
    gpus = [(model, count) for model, count in found if model is not None]
    return {
        "hosts": int(df["host"].nunique()),
        "cpus": sorted({str(c) for c in df["cpu_model"].dropna().unique()}),
        "gpus": [{"model": str(model), "count": None if count is None else int(count)}
                 for model, count in sorted(gpus, key=lambda g: (str(g[0]), g[1] or 0))],
    }


def _components(df: pd.DataFrame, total_j: float, by_column: Codes) -> list[dict[str, Any]]:
    rows = []
    for component in COMPONENT_NAMES:
        codes, methods = by_column(f"{component}_method")
        joules = _sums(codes, len(methods), df[f"{component}_energy_j"].fillna(0.0).to_numpy(float))
        for i, method in sorted(enumerate(methods), key=lambda item: str(item[1])):
            if method == "none" or not joules[i] or method_kind(method) not in ("measured", "estimated"):
                continue
            r = method_range(method)
            rows.append({
                "component": component, "method": str(method), "kind": method_kind(method),
                "energy_j": float(joules[i]), "share": float(joules[i]) / total_j if total_j else None,
                "range": [r.low, r.high], "range_label": r.label, "basis": r.basis,
                "how": " and ".join(METHOD_WORDS.get(m, m) for m in str(method).split("+")),
            })
    unattributed = float(np.clip(df["unattributed_energy_j"].fillna(0.0).to_numpy(float), 0.0, None).sum())
    if unattributed > 0:
        r = UNATTRIBUTED_RANGE
        rows.append({
            "component": "total", "method": "unattributed", "kind": "unattributed",
            "energy_j": unattributed, "share": unattributed / total_j if total_j else None,
            "range": [r.low, r.high], "range_label": r.label, "basis": r.basis, "how": METHOD_WORDS["unattributed"],
        })
    return rows


def _sweeps(df: pd.DataFrame, by_column: Codes) -> list[dict[str, Any]]:
    """One row per sweep, the most energy first, with its development overhead within the frame."""
    swept = df["sweep_key"].notna().to_numpy(bool)
    if not swept.any():
        return []
    all_codes, keys = groups(df, ["project", "sweep_key"], by_column)  # whole-frame codes: no copy of a subset
    codes, n = all_codes[swept], len(keys)
    energy = df["energy_j"].fillna(0.0).to_numpy(float)[swept]
    failed = df["is_failed"].to_numpy(bool)[swept]
    redundant = df["is_redundant"].to_numpy(bool)[swept]
    selected = df["is_selected"].to_numpy(bool)[swept]
    total_j = np.bincount(codes, weights=energy, minlength=n)
    total_g = np.bincount(codes, weights=df["emissions_g"].fillna(0.0).to_numpy(float)[swept], minlength=n)
    selected_j = np.bincount(codes, weights=energy * selected, minlength=n)
    runs = np.bincount(codes, minlength=n)
    failed_runs = np.bincount(codes, weights=failed, minlength=n)
    failed_j = np.bincount(codes, weights=energy * failed, minlength=n)
    redundant_runs = np.bincount(codes, weights=redundant, minlength=n)
    redundant_j = np.bincount(codes, weights=energy * redundant, minlength=n)
    labels = df["sweep_label"].to_numpy(object)[swept]
    present, first = np.unique(codes, return_index=True)
    rows = []
    for i, at in zip(present.tolist(), first.tolist()):
        project, key = keys[i]
        rows.append({
            "project": str(project), "key": str(key), "label": str(labels[at]),
            "explicit": not str(key).startswith("code:"), "runs": int(runs[i]),
            "energy_j": float(total_j[i]), "emissions_g": float(total_g[i]),
            "failed_runs": int(failed_runs[i]), "failed_energy_j": float(failed_j[i]),
            "redundant_runs": int(redundant_runs[i]), "redundant_energy_j": float(redundant_j[i]),
            "overhead_ratio": float(total_j[i] / selected_j[i]) if selected_j[i] else None,
        })  # fmt: skip
    return sorted(rows, key=lambda row: (-row["energy_j"], row["key"]))


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


def _lifetime(embodied_g: float, settings: Settings) -> dict[str, Any] | None:
    if not embodied_g:
        return None
    ext = embodied_maths.lifetime_extension(
        embodied_g, from_years=settings.lifetime_years, to_years=settings.lifetime_years * 1.5
    )
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
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
