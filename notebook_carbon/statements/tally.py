"""A statement's totals and development overhead, from the ``Totals`` the registry keeps.

The sums are the database's (``Registry.totals`` for a project, notebook or sweep; the same per-run
figures summed over a scope cut by time, status or tags): ``figures`` only applies what is not per
run, the settings for embodied emissions of the runs recorded without them and for water, and the
ratios, into the JSON-ready parts every format prints. Energy in J, emissions in g CO2e, water in L.
"""

from __future__ import annotations

import datetime
from typing import Any

from ..impact import embodied as embodied_maths
from ..impact.footprint import J_PER_KWH
from ..registry.totals import Totals
from ..settings import Settings

__all__ = ["figures"]


def figures(t: Totals, settings: Settings) -> dict[str, Any]:
    """What a statement says of the runs of ``t``: ``scope`` (runs, first and last start, statuses),
    ``totals`` (each of energy, facility energy, emissions, embodied and their sum as ``{value,
    low, high}``; water; run time), ``development`` (the overhead; ``results``: the result sweeps
    whose selected runs are its denominator, each ``{sweep, label}``) and ``embodied`` (the method of the embodied
    figure). ``settings`` give embodied emissions for runs recorded without them (from ``t``'s run
    time of those, by GPU count), and water when no run recorded it.
    """
    embodied = _embodied(t, settings)
    energy, selected_j = t.energy_j, t.selected_energy_j
    totals = {
        "runs": t.runs,
        "energy_j": {"value": energy, "low": t.energy_low_j, "high": t.energy_high_j},
        "facility_energy_j": {
            "value": t.facility_energy_j, "low": t.facility_energy_low_j, "high": t.facility_energy_high_j,
        },
        "emissions_g": {"value": t.emissions_g, "low": t.emissions_low_g, "high": t.emissions_high_g},
        "embodied_g": embodied["total"],
        "total_g": {
            "value": t.emissions_g + embodied["total"]["value"],
            "low": t.emissions_low_g + embodied["total"]["low"],
            "high": t.emissions_high_g + embodied["total"]["high"],
            "lower_bound": embodied["method"]["lower_bound"],
        },
        "water_l": _water(t, settings),
        "duration_s": t.duration_s,
    }  # fmt: skip
    development = {
        "selected_runs": t.selected_runs,
        "selected_energy_j": selected_j,
        "selected_emissions_g": t.selected_emissions_g,
        "all_energy_j": energy,
        "all_emissions_g": t.emissions_g,
        "ratio": t.overhead_ratio,
        "sweeps": t.sweeps,
        "results": [{"sweep": key, "label": label} for key, label in t.results],
        "failed_runs": t.failed_runs,
        "failed_energy_j": t.failed_energy_j,
        "failed_share": t.failed_share,
        "redundant_runs": t.redundant_runs,
        "redundant_energy_j": t.redundant_energy_j,
        "redundant_share": t.redundant_share,
    }
    scope = {
        "runs": t.runs,
        "first_run_at": _iso(t.first_at),
        "last_run_at": _iso(t.last_at),
        "statuses": {status: int(t.statuses[status]) for status in sorted(t.statuses)},
    }
    return {"scope": scope, "totals": totals, "development": development, "embodied": embodied["method"]}


def _embodied(t: Totals, settings: Settings) -> dict[str, Any]:
    """Embodied emissions: as recorded with each run, else computed from its run time with the
    settings; each GPU count's part scaled by its factor's published range (a point value without one)."""
    missing_s, recorded_by_gpus = t.unembodied_s_by_gpus, t.embodied_g_by_gpus
    counts = sorted(set(recorded_by_gpus) | set(missing_s)) or [0]
    per_gpu_count = {
        count: embodied_maths.embodied(
            1.0,
            hardware=settings.hardware,
            gpu_count=count,
            embodied_kg=settings.embodied_kg,
            # left at its default, each factor keeps its source's lifespan (as a run's own is computed)
            lifetime_years=None if settings.lifetime_years == embodied_maths.DEFAULT_LIFETIME_YEARS
            else settings.lifetime_years,
            reused=settings.reused_hardware,
            # the share of the machine reserved (SCI's RR/ToR): only the setting is known for runs
            # recorded without their embodied emissions
            resource_share=1.0 if settings.resource_share is None else settings.resource_share,
        )
        for count in counts
    }
    value = low = high = 0.0
    lower_bound = False
    for count in counts:
        e = per_gpu_count[count]
        part = recorded_by_gpus.get(count, 0.0) + missing_s.get(count, 0.0) * e.embodied_g
        value += part
        low += part * (e.low_g / e.embodied_g if e.low_g is not None and e.embodied_g else 1.0)
        high += part * (e.high_g / e.embodied_g if e.high_g is not None and e.embodied_g else 1.0)
        lower_bound = lower_bound or (e.lower_bound and part > 0)
    example = per_gpu_count[counts[0]]
    recorded_runs, computed_runs = t.embodied_runs, t.unembodied_runs
    if example.reused:
        basis = "none attributed: the hardware is reused (its manufacturing is already amortised)"
    else:
        basis = (
            f"each run's share of its hardware's manufacturing emissions, TE x run time / "
            f"{example.lifetime_years:g}-year lifetime"
            + (f" at {example.use_fraction * 100:g} % use" if example.use_fraction < 1 else "")
            + " (the SCI specification's time-share), "
            f"recorded with {recorded_runs} run{'s' if recorded_runs != 1 else ''}"
        )
        if computed_runs:
            basis += f" and computed for {computed_runs} recorded without it, with the current settings"
    return {
        # lower_bound: a per-GPU figure its source calls a lower bound, so ``high`` is no upper end
        "total": {"value": value, "low": low, "high": high, "lower_bound": lower_bound},
        "method": {
            "lower_bound": lower_bound,
            "basis": basis,
            "source": example.source,
            "hardware": example.hardware,
            "lifetime_years": example.lifetime_years,
            "reused": example.reused,
            "recorded_runs": recorded_runs,
            "computed_runs": computed_runs,
        },
    }


def _water(t: Totals, settings: Settings) -> dict[str, Any] | None:
    if t.water_runs:
        return {"value": t.water_l, "runs": t.water_runs,
                "basis": "recorded with each run: IT energy (kWh) x the WUE set when it ran"}  # fmt: skip
    if settings.wue_l_per_kwh is None:
        return None
    return {"value": t.energy_j / J_PER_KWH * settings.wue_l_per_kwh, "runs": t.runs,
            "basis": f"IT energy (kWh) x WUE {settings.wue_l_per_kwh:g} L/kWh (the current setting)"}  # fmt: skip


def _iso(at: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC time, to the microsecond."""
    if at is None:
        return None
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat()
