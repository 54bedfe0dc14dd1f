"""Totals over a frame of runs (``analysis.runs``): by group, the development overhead, the shares.

Pure functions of the frame, no I/O, so they serve any selection of runs (a project, a time window,
one notebook). Energy in J, emissions in g CO2e, water in L; a missing figure counts as 0.

Overhead and shares describe the runs in the frame only: a frame cut by time or status may hold a
sweep without its selected run, whose energy then is not in ``selected_energy_j``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .frame import COMPONENT_NAMES
from .methods import ESTIMATED, MEASURED, UNATTRIBUTED, method_kind

BY = ("project", "notebook", "sweep", "tag", "day", "status", "host", "cpu_model", "gpu_model")
"""What ``aggregate`` groups by; ``host``, ``cpu_model`` and ``gpu_model`` are the device groupings."""

AGGREGATE_COLUMNS = (
    "runs",
    "energy_j",
    "emissions_g",
    "water_l",
    "embodied_g",
    "failed_runs",
    "failed_energy_j",
    "redundant_runs",
    "redundant_energy_j",
    "measured_energy_j",
    "estimated_energy_j",
    "unattributed_energy_j",
)

CATEGORIES = ("final", "failed", "redundant", "other")
"""The energy categories of ``categorise``, in order of precedence."""

__all__ = [
    "AGGREGATE_COLUMNS",
    "BY",
    "CATEGORIES",
    "Overhead",
    "Shares",
    "aggregate",
    "categorise",
    "energy_by_method",
    "overhead",
    "shares",
]


def aggregate(df: pd.DataFrame, by: str) -> pd.DataFrame:
    """Totals of the runs in ``df`` per group, one row per group, columns ``AGGREGATE_COLUMNS``.

    ``by`` is one of ``BY``: ``project``; ``notebook``; ``sweep`` (indexed by ``project`` and
    ``sweep_key``, with a ``sweep_label`` column: a sweep belongs to one project); ``tag`` (a run
    with several tags counts under each of them, so the groups then add up to more than the runs);
    ``day`` (the UTC calendar day a run started, a UTC timestamp at midnight); ``status``; or a
    device: ``host``, ``cpu_model``, ``gpu_model`` (as recorded). Runs without a value (in no sweep,
    without tags or GPU) form one group whose key is missing (NaN), so apart from ``tag`` the groups
    add up to the whole frame. Rows are in order of day for ``day``, else of energy, most first.
    """
    if by not in BY:
        raise ConfigError(f"aggregate by one of {', '.join(BY)}; got {by!r}")
    work = _figures(df)
    if by == "sweep":
        keys: list = [df["project"], df["sweep_key"]]
    elif by == "tag":
        tags = df["tags"].explode()  # one row per (run, tag); a run without tags once, tag NaN
        work = work.loc[tags.index]
        keys = [tags.rename("tag").to_numpy(dtype=object)]
    elif by == "day":
        keys = [df["started"].dt.floor("D").rename("day")]
    else:
        keys = [df[by]]
    totals = work.groupby(keys, dropna=False, sort=True).sum()
    if by == "tag":
        totals.index.name = "tag"
    if by == "sweep":
        labels = df.groupby([df["project"], df["sweep_key"]], dropna=False, sort=True)["sweep_label"].first()
        totals.insert(0, "sweep_label", labels.reindex(totals.index))
    if by != "day":
        totals = totals.sort_values("energy_j", ascending=False, kind="stable")
    return totals


def _figures(df: pd.DataFrame) -> pd.DataFrame:
    """Per run, the figures that ``aggregate`` sums (``AGGREGATE_COLUMNS``), missing ones as 0."""
    energy = df["energy_j"].fillna(0.0)
    failed, redundant = df["is_failed"].to_numpy(dtype=bool), df["is_redundant"].to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "runs": np.ones(len(df), dtype=np.int64),
            "energy_j": energy,
            "emissions_g": df["emissions_g"].fillna(0.0),
            "water_l": df["water_l"].fillna(0.0),
            "embodied_g": df["embodied_g"].fillna(0.0),
            "failed_runs": failed.astype(np.int64),
            "failed_energy_j": energy.where(failed, 0.0),
            "redundant_runs": redundant.astype(np.int64),
            "redundant_energy_j": energy.where(redundant, 0.0),
            "measured_energy_j": df["measured_energy_j"],
            "estimated_energy_j": df["estimated_energy_j"],
            "unattributed_energy_j": df["unattributed_energy_j"],
        },
        index=df.index,
    )


@dataclasses.dataclass(frozen=True)
class Overhead:
    """The development overhead of the runs in a frame: all of them against the sweeps' selected
    runs (``is_selected``), "the results took this much, getting there took that much".
    Energy in J, emissions in g CO2e."""

    runs: int
    sweeps: int
    """Distinct sweeps among the runs (a sweep belongs to one project)."""
    energy_j: float
    emissions_g: float
    selected_runs: int
    selected_energy_j: float
    selected_emissions_g: float
    ratio: float | None
    """``energy_j / selected_energy_j``; None without selected energy."""
    emissions_ratio: float | None
    """``emissions_g / selected_emissions_g``; None without selected emissions."""
    failed_runs: int
    failed_energy_j: float
    redundant_runs: int
    redundant_energy_j: float


def overhead(df: pd.DataFrame) -> Overhead:
    """The ``Overhead`` of the runs in ``df`` (every run counts, including those in no sweep)."""
    energy, emissions = df["energy_j"].fillna(0.0), df["emissions_g"].fillna(0.0)
    selected, failed, redundant = df["is_selected"], df["is_failed"], df["is_redundant"]
    total_j, total_g = float(energy.sum()), float(emissions.sum())
    selected_j, selected_g = float(energy[selected].sum()), float(emissions[selected].sum())
    sweeps = df.loc[df["sweep_key"].notna(), ["project", "sweep_key"]].drop_duplicates()
    return Overhead(
        runs=len(df),
        sweeps=len(sweeps),
        energy_j=total_j,
        emissions_g=total_g,
        selected_runs=int(selected.sum()),
        selected_energy_j=selected_j,
        selected_emissions_g=selected_g,
        ratio=total_j / selected_j if selected_j else None,
        emissions_ratio=total_g / selected_g if selected_g else None,
        failed_runs=int(failed.sum()),
        failed_energy_j=float(energy[failed].sum()),
        redundant_runs=int(redundant.sum()),
        redundant_energy_j=float(energy[redundant].sum()),
    )


@dataclasses.dataclass(frozen=True)
class Shares:
    """Fractions (0 to 1) of the total energy ``energy_j`` (J) of the runs in a frame; None when that
    total is 0. ``failed`` and ``redundant`` may overlap (a repeated run that failed); ``measured``,
    ``estimated`` and ``unattributed`` add up to 1."""

    energy_j: float
    failed: float | None
    redundant: float | None
    measured: float | None
    estimated: float | None
    unattributed: float | None


def shares(df: pd.DataFrame) -> Shares:
    """The ``Shares`` of the energy of the runs in ``df`` that is failed, redundant, measured, estimated."""
    energy = df["energy_j"].fillna(0.0)
    total = float(energy.sum())

    def share(part: float) -> float | None:
        return part / total if total else None

    return Shares(
        energy_j=total,
        failed=share(float(energy[df["is_failed"]].sum())),
        redundant=share(float(energy[df["is_redundant"]].sum())),
        measured=share(float(df["measured_energy_j"].sum())),
        estimated=share(float(df["estimated_energy_j"].sum())),
        unattributed=share(float(df["unattributed_energy_j"].sum())),
    )


def energy_by_method(df: pd.DataFrame) -> dict[str, float]:
    """Joules per recorded method over the runs in ``df``, summing each component's energy under its
    method (a ``+``-joined method stays one key), the most energy first.

    Only measured and estimated methods are keys; whatever else is in the runs' totals (unknown or
    missing methods, totals that differ from their parts) is under ``"unattributed"``, present when
    not 0. The values then add up to the frame's total ``energy_j``; ``none`` has no key.
    """
    found: dict[str, float] = {}
    for component in COMPONENT_NAMES:
        energy = df[f"{component}_energy_j"]
        methods = df[f"{component}_method"]
        has = energy.notna() & methods.notna()
        for method, joules in energy[has].groupby(methods[has], sort=False).sum().items():
            if method_kind(method) in (MEASURED, ESTIMATED):
                found[method] = found.get(method, 0.0) + float(joules)
    unattributed = float(df["unattributed_energy_j"].sum())
    if unattributed:
        found[UNATTRIBUTED] = unattributed
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def categorise(df: pd.DataFrame) -> pd.Series:
    """Each run's energy category, exactly one of ``CATEGORIES``, the first that applies:
    ``final`` (the selected run of its sweep, ``is_selected``), ``failed`` (failed, interrupted or
    crashed), ``redundant`` (a repeat of an earlier identical run), ``other`` (everything else:
    the sweep's other runs, running runs, runs in no sweep). A selected run is never failed; a
    selected run that repeats an earlier one counts as final, as it does in ``overhead``."""
    category = np.select(
        [df["is_selected"].to_numpy(bool), df["is_failed"].to_numpy(bool), df["is_redundant"].to_numpy(bool)],
        list(CATEGORIES[:3]),
        default=CATEGORIES[3],
    )
    return pd.Series(pd.Categorical(category, categories=CATEGORIES), index=df.index, name="category")
