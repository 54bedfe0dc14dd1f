"""A statement's totals and development overhead, from the ``Totals`` the registry keeps.

The sums are the database's (``Registry.totals`` for a project, notebook or sweep; the same per-run
figures summed over a scope cut by time, status or tags): ``figures`` only applies what is not per
run, the settings for embodied emissions of the runs recorded without them and for water, and the
ratios, into the JSON-ready parts every format prints. Energy in J, emissions in g CO2e, water in L.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from ..impact import embodied as embodied_maths
from ..impact.footprint import J_PER_KWH, format_mass_g
from ..registry.totals import Totals
from ..settings import Settings

__all__ = ["figures"]


def figures(t: Totals, settings: Settings, recorded: Sequence[tuple[Any, float]] = ()) -> dict[str, Any]:
    """What a statement says of the runs of ``t``: ``scope`` (runs, first and last start, statuses),
    ``totals`` (each of energy, facility energy, emissions, embodied and their sum as ``{value,
    low, high}``; water; run time), ``development`` (the overhead; ``results``: the result sweeps
    whose selected runs are its denominator, each ``{sweep, label}``) and ``embodied`` (the method of the embodied
    figure). ``settings`` give embodied emissions for runs recorded without them (from ``t``'s run
    time of those, by GPU count), and water when no run recorded it. ``recorded``: the embodied grams
    recorded under each factor the runs' notes name (``disclosure.Disclosed.embodied_recorded``),
    whose ranges and lower bounds are then those of the factor used, not of today's settings.
    """
    embodied = _embodied(t, settings, recorded)
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


def _embodied(t: Totals, settings: Settings, recorded: Sequence[tuple[Any, float]] = ()) -> dict[str, Any]:
    """Embodied emissions: as recorded with each run, else computed from its run time with the
    settings; each part scaled by its factor's published range (a point value without one). The
    factor of what was recorded is the one its runs' notes name (``recorded``: ``(RecordedEmbodied,
    grams)``), whatever the settings are today; recorded grams no note explains (runs recorded
    before the notes said) take the settings' factor of their GPU count."""
    missing_s, by_gpus = t.unembodied_s_by_gpus, t.embodied_g_by_gpus
    counts = sorted(set(by_gpus) | set(missing_s)) or [0]
    per_gpu_count = {count: _factor(settings, count) for count in counts}
    parts: list[tuple[float, embodied_maths.Embodied]] = []  # (grams, the factor they were computed with)
    noted = 0.0
    for found, grams in recorded:
        factor = _recorded_factor(found)
        if factor is not None and grams:
            parts.append((grams, factor))
            noted += grams
    kept = sum(by_gpus.values())
    # the kept sums are of figures rounded to micro-units (registry.totals): a run's worth of rounding is none
    rounding = 1e-6 * max(t.embodied_runs, 1) + 1e-6 * kept
    unexplained = (kept - noted) / kept if kept and kept - noted > rounding else 0.0
    for count in counts:
        e = per_gpu_count[count]
        parts.append((by_gpus.get(count, 0.0) * unexplained + missing_s.get(count, 0.0) * e.embodied_g, e))
    value = low = high = 0.0
    lower_bound = False
    for grams, e in parts:
        value += grams
        low += grams * (e.low_g / e.embodied_g if e.low_g is not None and e.embodied_g else 1.0)
        high += grams * (e.high_g / e.embodied_g if e.high_g is not None and e.embodied_g else 1.0)
        lower_bound = lower_bound or (e.lower_bound and grams > 0)
    used = [e for grams, e in parts if grams > 0] or [per_gpu_count[counts[0]]]
    main = max(parts, key=lambda p: p[0])[1] if value else used[0]
    recorded_runs, computed_runs = t.embodied_runs, t.unembodied_runs
    return {
        # lower_bound: a per-GPU figure its source calls a lower bound, so ``high`` is no upper end
        "total": {"value": value, "low": low, "high": high, "lower_bound": lower_bound},
        "method": {
            "lower_bound": lower_bound,
            "basis": _basis(used, recorded_runs, computed_runs, noted > 0),
            "source": _sources(used),
            "hardware": main.hardware,
            "lifetime_years": main.lifetime_years,
            "reused": all(e.reused for e in used),
            "recorded_runs": recorded_runs,
            "computed_runs": computed_runs,
        },
    }


def _factor(settings: Settings, count: int) -> embodied_maths.Embodied:
    """The settings' factor for a machine with ``count`` GPUs, per gram-second (``embodied`` of 1 s)."""
    return embodied_maths.embodied(
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


def _recorded_factor(found: Any) -> embodied_maths.Embodied | None:
    """The factor a run's note names (``session.figures.RecordedEmbodied``), as ``embodied`` of 1 s:
    its kind, GPUs, lifespan and use; None for a kind this version does not know."""
    if found.kind == "user-provided":
        kind: dict[str, Any] = {"embodied_kg": found.total_kg}
    elif found.kind in embodied_maths.FACTORS:
        kind = {"hardware": found.kind, "gpu_count": found.gpu_count}
    else:
        return None
    return embodied_maths.embodied(1.0, lifetime_years=found.lifetime_years, use_fraction=found.use_fraction,
                                   reused=found.reused, **kind)  # fmt: skip


def _sources(used: Sequence[embodied_maths.Embodied]) -> str:
    """Where the factors' totals come from, each factor's source once: ``workstation: 249 kg CO2e,
    with 1 GPU 399 kg CO2e; median ...``; a user's own total as it says."""
    by_kind: dict[str, list[embodied_maths.Embodied]] = {}
    for e in used:
        by_kind.setdefault("user" if e.user_total else e.hardware, []).append(e)
    said = []
    for kind, found in by_kind.items():
        if kind == "user":
            said.extend(dict.fromkeys(e.source for e in found))
            continue
        totals = ", ".join(dict.fromkeys(
            (f"with {e.gpu_count} GPU{'' if e.gpu_count == 1 else 's'} " if e.gpu_count and embodied_maths.FACTORS[kind].per_gpu_kg else "")
            + f"{format_mass_g(e.total_kg * 1000)} CO2e" for e in sorted(found, key=lambda e: e.gpu_count)))  # fmt: skip
        reason = next((f" ({e.hardware_reason})" for e in found if e.hardware_reason), "")
        said.append(f"{kind}: {totals}; {embodied_maths.FACTORS[kind].source}{reason}")
    return "; ".join(said)


def _basis(used: Sequence[embodied_maths.Embodied], recorded_runs: int, computed_runs: int, noted: bool) -> str:
    """How the embodied figure was obtained, in one sentence: the SCI time-share, its lifespans,
    and how many runs recorded it or had it computed with the current settings."""
    if all(e.reused for e in used):
        return "none attributed: the hardware is reused (its manufacturing is already amortised)"
    spans = " or ".join(dict.fromkeys(
        f"{e.lifetime_years:g}-year lifetime" + (f" at {e.use_fraction * 100:g} % use" if e.use_fraction < 1 else "")
        for e in used if not e.reused))  # fmt: skip
    runs = f"{recorded_runs} run{'s' if recorded_runs != 1 else ''}"
    basis = (
        f"each run's share of its hardware's manufacturing emissions, TE x run time / {spans} (the SCI "
        f"specification's time-share), recorded with {runs}" + (" as their notes say below" if noted else "")
    )
    if computed_runs:
        basis += f" and computed for {computed_runs} recorded without it, with the current settings"
    return basis


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
