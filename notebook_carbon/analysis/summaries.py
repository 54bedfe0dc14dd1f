"""Totals: a scope's, from the registry (``totals``), and a frame's, by group and in shares.

``totals`` are the registry's own figures of a scope (``Registry.totals``, or the same per-run
figures summed by the database for a scope cut by time, status or tags), development overhead
included: what a statement prints. The rest are pure functions of a frame of runs
(``analysis.runs``), no I/O, for the groupings and splits a frame allows (by day, tag, host; the
measured and estimated shares). Energy in J, emissions in g CO2e, water in L; a missing figure
counts as 0.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..record import ESTIMATED, MEASURED, UNATTRIBUTED, method_kind
from .filters import is_cut, scope_of
from .frame import COMPONENT_NAMES, opened

if TYPE_CHECKING:
    from ..registry.store import Registry
    from ..registry.totals import Totals

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
    "Shares",
    "aggregate",
    "categorise",
    "energy_by_method",
    "shares",
    "totals",
]


def totals(
    registry: Registry | str | os.PathLike[str] | None = None,
    *,
    project: str,
    notebook: str | None = None,
    sweep: str | None = None,
    tags: str | Iterable[str] | None = None,
    since: Any = None,
    until: Any = None,
    status: str | Iterable[str] | None = None,
) -> Totals:
    """The ``Totals`` of ``project``'s runs that pass the filters of ``analysis.runs``: energy with
    its range, emissions, water, embodied emissions, failed and redundant runs, and the development
    overhead (``overhead_ratio``: all the energy over that of each sweep's selected run). What the
    database keeps for a whole project, notebook or sweep; for a scope cut by time, status or tags,
    the same per-run figures summed by the database (a run counts the selected run of its sweep only
    if that run is in the scope)."""
    scope = scope_of(project=project, notebook=notebook, sweep=sweep, tags=tags, since=since, until=until,
                     status=status)  # fmt: skip
    with opened(registry) as reg:
        if not is_cut(scope):
            return reg.totals(project, notebook, sweep)
        del scope["project"]
        return reg.aggregate(project, **scope)


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
    selected run that repeats an earlier one counts as final, as it counts among the results in the
    development overhead."""
    category = np.select(
        [df["is_selected"].to_numpy(bool), df["is_failed"].to_numpy(bool), df["is_redundant"].to_numpy(bool)],
        list(CATEGORIES[:3]),
        default=CATEGORIES[3],
    )
    return pd.Series(pd.Categorical(category, categories=CATEGORIES), index=df.index, name="category")
