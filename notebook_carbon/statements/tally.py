"""Tallies: what a statement's totals and development overhead are computed from, in parts that add up.

Every total of a statement is a sum over runs (energy with its low and high bounds, emissions,
water, embodied emissions by GPU count, the selected, failed and redundant runs' energy), a count
by status, a set of sweeps or a first and last start. So the tally of a set of runs is the
``merge`` of the tallies of its parts, and the figures of a project need not be computed from
every run each time one changes: the server keeps a tally per sweep and notebook and, when a run
is recorded, recounts that run's sweep alone. ``figures`` then applies what is not per run (the
settings for embodied emissions of runs recorded without them and for water; the ratios).

A run's selected flag depends on its whole sweep (``analysis.runs`` decides it over the sweep), so
a tally of part of a sweep is only right if its frame was read with the sweep's selection, as
every frame of ``analysis.runs`` is.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import COMPONENT_NAMES, method_kind
from ..impact import embodied as embodied_maths
from ..impact.footprint import J_PER_KWH
from ..impact.uncertainty import UNATTRIBUTED_RANGE, method_range
from ..settings import Settings

SUMS = (
    "runs", "duration_s",
    "energy_j", "energy_low_j", "energy_high_j",
    "facility_energy_j", "facility_energy_low_j", "facility_energy_high_j",
    "emissions_g", "emissions_low_g", "emissions_high_g",
    "water_l", "water_runs",
    "selected_runs", "selected_energy_j", "selected_emissions_g",
    "failed_runs", "failed_energy_j",
    "redundant_runs", "redundant_energy_j", "redundant_emissions_g",
    "embodied_recorded_runs", "embodied_computed_runs",
)  # fmt: skip
"""The additive figures of a tally, in the order of ``Tally.sums``. Units: J, g CO2e, L, s; the
``*_runs`` are counts; ``water_l`` and ``water_runs`` cover the runs that recorded water."""
_AT = {name: i for i, name in enumerate(SUMS)}


@dataclasses.dataclass(frozen=True)
class Tally:
    """The additive figures of a set of runs (``SUMS``), their statuses, sweeps and first and last start."""

    sums: np.ndarray
    """``SUMS``, in that order, as float64."""
    statuses: Mapping[str, int]
    sweeps: frozenset[tuple[str, str]]
    """The ``(project, sweep_key)`` of every sweep with a run in the set."""
    embodied: Mapping[int, tuple[float, float]]
    """By GPU count: the embodied emissions recorded with the runs (g), and the run time (s) of
    those recorded without them (computed from the settings when the figures are made)."""
    first: pd.Timestamp | None
    last: pd.Timestamp | None

    def __getitem__(self, name: str) -> float:
        return float(self.sums[_AT[name]])


EMPTY = Tally(np.zeros(len(SUMS)), {}, frozenset(), {}, None, None)


def merge(tallies: Iterable[Tally]) -> Tally:
    """One tally of the union of the (disjoint) sets of runs of ``tallies``."""
    found = list(tallies)
    if not found:
        return EMPTY
    if len(found) == 1:
        return found[0]
    statuses: Counter[str] = Counter()
    embodied: dict[int, list[float]] = {}
    sweeps: set[tuple[str, str]] = set()
    for t in found:
        statuses.update(t.statuses)
        sweeps.update(t.sweeps)
        for count, (recorded, missing_s) in t.embodied.items():
            both = embodied.setdefault(count, [0.0, 0.0])
            both[0] += recorded
            both[1] += missing_s
    firsts = [t.first for t in found if t.first is not None]
    lasts = [t.last for t in found if t.last is not None]
    return Tally(
        sums=np.sum([t.sums for t in found], axis=0),
        statuses=dict(statuses),
        sweeps=frozenset(sweeps),
        embodied={count: (both[0], both[1]) for count, both in embodied.items()},
        first=min(firsts) if firsts else None,
        last=max(lasts) if lasts else None,
    )


def tally(df: pd.DataFrame, codes: Codes | None = None) -> Tally:
    """The tally of every run in ``df`` (a frame of ``analysis.runs``)."""
    return tally_groups(df, [], codes=codes)[()] if len(df) else EMPTY


def tally_groups(
    df: pd.DataFrame, columns: Sequence[str], *, selected: bool = True, codes: Codes | None = None
) -> dict[tuple, Tally]:
    """A tally per distinct combination of ``columns`` of ``df`` (a missing value is None), keyed
    by those values; none for a combination without runs. Vectorised: one pass of numpy per figure,
    whatever the number of groups. ``selected=False`` leaves the selected runs out (their figures
    0), for a caller that adds them itself: whether a run is selected depends on its whole sweep."""
    if df.empty:
        return {}
    by_column = codes or Codes(df)
    group, keys = groups(df, list(columns), by_column)
    n = len(keys)
    per_run = _per_run(df, by_column)
    if not selected:
        for name in ("selected_runs", "selected_energy_j", "selected_emissions_g"):
            per_run[_AT[name]] = np.zeros(len(df))
    sums = np.stack([np.bincount(group, weights=column, minlength=n) for column in per_run], axis=1)
    statuses = _counts_by(group, n, by_column("status"))
    embodied = _embodied_by(group, n, df)
    sweeps = _sweeps_by(group, n, by_column)
    # as UTC datetime64, not the Timestamp objects a timezone-aware column gives (100 ms at 100,000 runs)
    started = pd.Series(df["started"].dt.tz_convert(None).to_numpy(), index=group)
    by_group = started.groupby(level=0)
    firsts, lasts = by_group.min(), by_group.max()
    return {
        key: Tally(
            sums=sums[i],
            statuses=statuses[i],
            sweeps=sweeps[i],
            embodied=embodied[i],
            first=_stamp(firsts.get(i)),
            last=_stamp(lasts.get(i)),
        )
        for i, key in enumerate(keys)
    }


def figures(t: Tally, settings: Settings) -> dict[str, Any]:
    """What a statement says of the runs of ``t``: ``scope`` (runs, first and last start, statuses),
    ``totals`` (each of energy, facility energy, emissions, embodied and their sum as ``{value,
    low, high}``; water; run time), ``development`` and ``embodied`` (the method of the embodied
    figure). ``settings`` give embodied emissions for runs recorded without them, and water when no
    run recorded it. JSON-ready, but numbers may be numpy's (``build.plain`` makes them plain)."""
    embodied = _embodied(t, settings)
    energy, selected_j = t["energy_j"], t["selected_energy_j"]
    totals = {
        "runs": int(t["runs"]),
        "energy_j": _ranged(t, "energy_j", "energy_low_j", "energy_high_j"),
        "facility_energy_j": _ranged(t, "facility_energy_j", "facility_energy_low_j", "facility_energy_high_j"),
        "emissions_g": _ranged(t, "emissions_g", "emissions_low_g", "emissions_high_g"),
        "embodied_g": embodied["total"],
        "total_g": {
            "value": t["emissions_g"] + embodied["total"]["value"],
            "low": t["emissions_low_g"] + embodied["total"]["low"],
            "high": t["emissions_high_g"] + embodied["total"]["high"],
        },
        "water_l": _water(t, settings),
        "duration_s": t["duration_s"],
    }
    development = {
        "selected_runs": int(t["selected_runs"]),
        "selected_energy_j": selected_j,
        "selected_emissions_g": t["selected_emissions_g"],
        "all_energy_j": energy,
        "all_emissions_g": t["emissions_g"],
        "ratio": energy / selected_j if selected_j else None,
        "sweeps": len(t.sweeps),
        "failed_runs": int(t["failed_runs"]),
        "failed_energy_j": t["failed_energy_j"],
        "failed_share": t["failed_energy_j"] / energy if energy else None,
        "redundant_runs": int(t["redundant_runs"]),
        "redundant_energy_j": t["redundant_energy_j"],
        "redundant_share": t["redundant_energy_j"] / energy if energy else None,
    }
    scope = {
        "runs": int(t["runs"]),
        "first_run_at": None if t.first is None else t.first.isoformat(),
        "last_run_at": None if t.last is None else t.last.isoformat(),
        "statuses": {status: int(t.statuses[status]) for status in sorted(t.statuses)},
    }
    return {"scope": scope, "totals": totals, "development": development, "embodied": embodied["method"]}


# -- per run ----------------------------------------------------------------------------------


def _per_run(df: pd.DataFrame, codes: Codes) -> list[np.ndarray]:
    """Each of ``SUMS`` per run of ``df``, in that order."""
    energy = df["energy_j"].fillna(0.0).to_numpy(float)
    emissions = df["emissions_g"].fillna(0.0).to_numpy(float)
    facility = energy * df["pue"].fillna(1.0).to_numpy(float)
    low, high = relative_ranges(df, codes)
    water = df["water_l"].to_numpy(float)
    embodied = df["embodied_g"].to_numpy(float)
    duration = df["duration_s"].to_numpy(float)
    selected = df["is_selected"].to_numpy(bool)
    failed = df["is_failed"].to_numpy(bool)
    redundant = df["is_redundant"].to_numpy(bool)
    return [
        np.ones(len(df)), np.nan_to_num(duration),
        energy, energy * low, energy * high,
        facility, facility * low, facility * high,
        emissions, emissions * low, emissions * high,
        np.nan_to_num(water), ~np.isnan(water) * 1.0,
        selected * 1.0, energy * selected, emissions * selected,
        failed * 1.0, energy * failed,
        redundant * 1.0, energy * redundant, emissions * redundant,
        ~np.isnan(embodied) * 1.0, (np.isnan(embodied) & ~np.isnan(duration)) * 1.0,
    ]  # fmt: skip


def relative_ranges(df: pd.DataFrame, codes: Codes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per run, the low and high factors of its energy from its components' methods: each
    component's energy times its method's range, unattributed energy as an estimate, over the sum."""
    by_column = codes or Codes(df)
    central = np.zeros(len(df))
    low = np.zeros(len(df))
    high = np.zeros(len(df))
    for component in COMPONENT_NAMES:
        part = df[f"{component}_energy_j"].fillna(0.0).to_numpy(float)
        codes, methods = by_column(f"{component}_method")
        # one factor per distinct method (a handful), then looked up by code; 0 for none/unknown
        lows = np.zeros(len(methods) + 1)
        highs = np.zeros(len(methods) + 1)
        for i, method in enumerate(methods):
            if method_kind(method) in ("measured", "estimated"):
                lows[i], highs[i] = method_range(method).low, method_range(method).high
        counted = np.where(lows[codes] > 0, part, 0.0)
        central += counted
        low += counted * lows[codes]
        high += counted * highs[codes]
    unattributed = np.clip(df["unattributed_energy_j"].fillna(0.0).to_numpy(float), 0.0, None)
    central += unattributed
    low += unattributed * UNATTRIBUTED_RANGE.low
    high += unattributed * UNATTRIBUTED_RANGE.high
    with np.errstate(divide="ignore", invalid="ignore"):
        low_factor = np.where(central > 0, low / central, 1.0)
        high_factor = np.where(central > 0, high / central, 1.0)
    return low_factor, high_factor


# -- by group ---------------------------------------------------------------------------------


class Codes:
    """``factorize`` of the columns of one frame, each done once: a statement groups runs by some
    columns more than once, and factorising a text column of 100,000 runs takes 10 to 20 ms."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df
        self._found: dict[str, tuple[np.ndarray, list]] = {}

    def __call__(self, column: str) -> tuple[np.ndarray, list]:
        if column not in self._found:
            self._found[column] = factorize(self._df[column])
        return self._found[column]


def factorize(column: pd.Series) -> tuple[np.ndarray, list]:
    """Codes of ``column``'s values and the distinct values; a missing value gets the code
    ``len(values)`` (one past the end), so arrays indexed by code can hold a slot for it."""
    codes, uniques = pd.factorize(column.to_numpy(object), use_na_sentinel=True)  # faster than on text dtypes
    codes = np.where(codes < 0, len(uniques), codes)
    return codes, list(uniques)


def groups(df: pd.DataFrame, columns: list[str], codes: Codes | None = None) -> tuple[np.ndarray, list[tuple]]:
    """A group number per run for its combination of ``columns`` (a missing value is a value of
    its own), numbered in order of first appearance, and each group's values (None for missing).

    One factorisation per column and integer arithmetic, not a pandas groupby: with text columns of
    100,000 runs, each groupby re-hashes its keys, and a statement needs several."""
    if df.empty:
        return np.zeros(0, dtype=np.int64), []
    codes = codes or Codes(df)
    combined = np.zeros(len(df), dtype=np.int64)
    for column in columns:
        found, uniques = codes(column)
        combined = combined * (len(uniques) + 1) + found
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first)  # groups in order of first appearance
    number = np.empty_like(order)
    number[order] = np.arange(len(order))
    arrays = [df[column].to_numpy(object) for column in columns]
    values = [tuple(python(array[i]) for array in arrays) for i in first[order]]
    return number[inverse.ravel()], values


def python(value: Any) -> Any:
    """``value`` as a plain Python value, None for any kind of missing value."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _counts_by(codes: np.ndarray, n: int, factorized: tuple[np.ndarray, list]) -> list[dict[Any, int]]:
    """For each group, how many of its runs have each (non-missing) value of a ``factorize``d column."""
    values, names = factorized
    width = len(names) + 1
    counts = np.bincount(codes * width + values, minlength=n * width).reshape(n, width)
    return [{names[j]: int(row[j]) for j in np.flatnonzero(row[:-1])} for row in counts]


def _embodied_by(codes: np.ndarray, n: int, df: pd.DataFrame) -> list[dict[int, tuple[float, float]]]:
    """For each group, by GPU count (missing: 0): recorded embodied emissions, and the run time of
    the runs recorded without them."""
    gpu_counts = df["gpu_count"].fillna(0).astype(int).to_numpy()
    values, names = pd.factorize(gpu_counts)
    width = len(names)
    combined = codes * width + values
    recorded = df["embodied_g"].to_numpy(float)
    duration = df["duration_s"].to_numpy(float)
    # a run that ended before it started (a clock set back) reserved the hardware for no time
    missing_s = np.where(np.isnan(recorded) & ~np.isnan(duration), np.clip(duration, 0.0, None), 0.0)
    present = np.bincount(combined, minlength=n * width).reshape(n, width)
    recorded_g = np.bincount(combined, weights=np.nan_to_num(recorded), minlength=n * width).reshape(n, width)
    seconds = np.bincount(combined, weights=np.nan_to_num(missing_s), minlength=n * width).reshape(n, width)
    return [
        {int(names[j]): (float(recorded_g[i, j]), float(seconds[i, j])) for j in np.flatnonzero(present[i])}
        for i in range(n)
    ]


def _sweeps_by(codes: np.ndarray, n: int, by_column: Codes) -> list[frozenset[tuple[str, str]]]:
    """For each group, the ``(project, sweep_key)`` of the sweeps its runs belong to."""
    projects, project_names = by_column("project")
    keys, key_names = by_column("sweep_key")
    swept = keys < len(key_names)  # the code one past the end: in no sweep
    width_p, width_k = len(project_names) + 1, len(key_names) + 1
    combined = np.unique((codes[swept] * width_p + projects[swept]) * width_k + keys[swept])
    found: list[set[tuple[str, str]]] = [set() for _ in range(n)]
    for value in combined.tolist():
        rest, key = divmod(value, width_k)
        group, project = divmod(rest, width_p)
        found[group].add((python(project_names[project]), python(key_names[key])))
    return [frozenset(f) for f in found]


# -- figures ----------------------------------------------------------------------------------


def _ranged(t: Tally, value: str, low: str, high: str) -> dict[str, float]:
    return {"value": t[value], "low": t[low], "high": t[high]}


def _embodied(t: Tally, settings: Settings) -> dict[str, Any]:
    """Embodied emissions: as recorded with each run, else computed from its run time with the
    settings; the range from the factor's published range, if it has one."""
    per_gpu_count = {
        count: embodied_maths.embodied(
            1.0,
            hardware=settings.hardware,
            gpu_count=count,
            embodied_kg=settings.embodied_kg,
            lifetime_years=settings.lifetime_years,
            reused=settings.reused_hardware,
        )
        for count in sorted(t.embodied) or [0]
    }
    value = low = high = 0.0
    for count, (recorded_g, missing_s) in sorted(t.embodied.items()):
        e = per_gpu_count[count]
        part = recorded_g + missing_s * e.embodied_g
        value += part
        # each run's value scaled by its factor's published range (a point value without one)
        low += part * (e.low_g / e.embodied_g if e.low_g is not None and e.embodied_g else 1.0)
        high += part * (e.high_g / e.embodied_g if e.high_g is not None and e.embodied_g else 1.0)
    example = next(iter(per_gpu_count.values()))
    recorded_runs, computed_runs = int(t["embodied_recorded_runs"]), int(t["embodied_computed_runs"])
    if example.reused:
        basis = "none attributed: the hardware is reused (its manufacturing is already amortised)"
    else:
        basis = (
            f"each run's share of its hardware's manufacturing emissions, TE x run time / "
            f"{example.lifetime_years:g}-year lifetime (the SCI specification's time-share), "
            f"recorded with {recorded_runs} run{'s' if recorded_runs != 1 else ''}"
        )
        if computed_runs:
            basis += f" and computed for {computed_runs} recorded without it, with the current settings"
    return {
        "total": {"value": value, "low": low, "high": high},
        "method": {
            "basis": basis,
            "source": example.source,
            "hardware": example.hardware,
            "lifetime_years": example.lifetime_years,
            "reused": example.reused,
            "recorded_runs": recorded_runs,
            "computed_runs": computed_runs,
        },
    }


def _water(t: Tally, settings: Settings) -> dict[str, Any] | None:
    if t["water_runs"]:
        return {"value": t["water_l"], "runs": int(t["water_runs"]),
                "basis": "recorded with each run: IT energy (kWh) x the WUE set when it ran"}  # fmt: skip
    if settings.wue_l_per_kwh is None:
        return None
    return {"value": t["energy_j"] / J_PER_KWH * settings.wue_l_per_kwh, "runs": int(t["runs"]),
            "basis": f"IT energy (kWh) x WUE {settings.wue_l_per_kwh:g} L/kWh (the current setting)"}  # fmt: skip


def _stamp(value: Any) -> pd.Timestamp | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).tz_localize("UTC")
