"""Totals: a scope's, from the registry (``totals``), and a frame's, by group and in shares.

``totals`` are the registry's own figures of a scope (``Registry.totals``, or the same per-run
figures summed by the database for a scope cut by time, status or tags), development overhead
included: what a statement prints. The rest are pure functions of a frame of runs
(``analysis.runs``), no I/O, for the groupings and splits a frame allows (by day, tag, host; the
measured and estimated shares). ``figures_of`` makes a frame's runs the figures of a statement, for
a selection no registry filter expresses (the dashboard's runs of this kernel). Energy in J,
emissions in g CO2e, water in L; a missing figure counts as 0.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .filters import is_cut, scope_of
from .frame import COMPONENT_NAMES, opened
from ..record import ESTIMATED, MEASURED, UNATTRIBUTED, method_kind
from .plausible import excluded

if TYPE_CHECKING:
    from ..registry.figures import ScopeFigures
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
    "figures_of",
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


# -- a frame as a statement's figures -----------------------------------------------------------

FIGURE_COLUMNS = ("energy_low_factor", "energy_high_factor", "pue", "duration_s", "gpu_count")
"""What ``figures_of`` needs of a frame besides ``CORE_COLUMNS`` (and ``registry.figures.GROUPED_BY``)."""


def figures_of(df: pd.DataFrame) -> ScopeFigures:
    """The figures of a statement (``registry.figures.ScopeFigures``) of the runs of ``df``, a frame of
    ``analysis.runs`` read with ``statements.COLUMNS``: each run's figures rounded to micro-units
    and summed as the database sums them, so the frame of a whole project gives the very totals the
    registry keeps. For a selection no registry filter expresses (the dashboard's runs of this
    kernel); a statement of a registry's scope reads its figures from the database."""
    from ..registry import totals as kept
    from ..registry.figures import ScopeFigures
    from ..registry.sweeps import SweepSummary

    missing = [c for c in (*FIGURE_COLUMNS, *_GROUPED_BY) if c not in df.columns]
    if missing:
        raise ConfigError(f"a statement of a frame needs its columns {', '.join(missing)}: statements.COLUMNS")
    micro = _micro_figures(df)
    swept = df["sweep_key"].notna().to_numpy(bool)
    codes = np.full(len(df), -1, dtype=np.int64)
    pairs = pd.MultiIndex.from_arrays([df["project"][swept], df["sweep_key"][swept]])
    codes[swept], keys = pd.factorize(pairs)
    selected = df["is_selected"].to_numpy(bool)
    energy = df["energy_j"].to_numpy(np.float64, na_value=np.nan)
    labels, ids = df["sweep_label"].to_numpy(object), df.index.to_numpy()
    by_sweep = [np.bincount(codes[swept], weights=column[swept], minlength=len(keys)) for column in micro]
    sweeps = []
    for i, (_, key) in enumerate(keys):
        chosen = np.flatnonzero(selected & (codes == i))
        run = int(ids[chosen[0]]) if len(chosen) else None
        sweeps.append(SweepSummary(
            key=str(key), label=str(labels[codes == i][0]), explicit=not str(key).startswith("code:"),
            totals=kept.from_sums([column[i] for column in by_sweep], 0), varying_params={},
            selected_run_id=run, selected_is_marked=bool(run is not None and df.at[run, "is_final"]),
            selected_energy_j=None if run is None else float(np.nan_to_num(energy[chosen[0]])),
        ))  # fmt: skip
    gpus = df["gpu_count"].fillna(0).to_numpy(np.int64, na_value=0)
    embodied = _by_gpus(gpus, micro[kept.COLUMNS.index("embodied_ug")])
    unembodied = _by_gpus(gpus, micro[kept.COLUMNS.index("unembodied_us")])
    started = df["started_at"]
    totals = kept.from_sums(
        [column.sum() for column in micro], len(excluded(df)),
        sweeps=len(sweeps),
        selected_runs=int(selected.sum()),
        selected_energy_j=float(np.nan_to_num(energy[selected]).sum()),
        selected_emissions_g=float(df["emissions_g"].fillna(0.0)[selected].sum()),
        unembodied_s_by_gpus=unembodied,
        embodied_g_by_gpus=embodied,
        first_at=float(started.min()) if len(df) else None,
        last_at=float(started.max()) if len(df) else None,
    )  # fmt: skip
    left_out = tuple(e.as_dict() for e in sorted(excluded(df), key=lambda e: e.id))
    sweeps.sort(key=lambda s: (-s.energy_j, s.key))
    return ScopeFigures(totals, tuple(sweeps), _groups_of(df), left_out)


def _by_gpus(gpus: np.ndarray, micro: np.ndarray) -> dict[int, float]:
    """``micro`` (a figure per run, in micro-units) summed by GPU count, in its unit, as the registry
    sums it: of the GPU counts where it is not 0."""
    from ..registry.totals import MICRO

    found = {int(count): int(micro[gpus == count].sum()) for count in np.unique(gpus)}
    return {count: value / MICRO for count, value in found.items() if value}


_GROUPED_BY = (
    "gpu_model", "gpu_count", "cpu_model", "host", "gpu_method", "cpu_method", "ram_method", "attribution",
    "pue", "intensity_region", "intensity_g_per_kwh", "intensity_source",
)  # fmt: skip


def _micro_figures(df: pd.DataFrame) -> list[np.ndarray]:
    """Per run, each of the registry's summed figures (``registry.totals.FIGURES``), in its order:
    counts, and amounts in micro-units rounded as the database rounds them (half up)."""
    from ..registry.totals import FIGURES

    def value(column: str) -> np.ndarray:
        return df[column].to_numpy(np.float64, na_value=np.nan)

    def factor(column: str) -> np.ndarray:
        return np.nan_to_num(value(column), nan=1.0)

    energy, emissions, pue = value("energy_j"), value("emissions_g"), factor("pue")
    low, high = factor("energy_low_factor"), factor("energy_high_factor")
    failed, redundant = df["is_failed"].to_numpy(bool), df["is_redundant"].to_numpy(bool)
    status = df["status"].to_numpy(object)
    embodied, duration, water = value("embodied_g"), value("duration_s"), value("water_l")
    counts = {
        "runs": np.ones(len(df)), "water_runs": ~np.isnan(water), "embodied_runs": ~np.isnan(embodied),
        "unembodied_runs": np.isnan(embodied) & ~np.isnan(duration), "failed_runs": failed,
        "redundant_runs": redundant, **{f"n_{s}": status == s for s in set(status.tolist())},
    }  # fmt: skip
    amounts = {
        "duration_us": duration, "energy_uj": energy,
        "energy_low_uj": energy * low, "energy_high_uj": energy * high,
        "gpu_energy_uj": value("gpu_energy_j"), "cpu_energy_uj": value("cpu_energy_j"),
        "ram_energy_uj": value("ram_energy_j"), "facility_energy_uj": energy * pue,
        "facility_energy_low_uj": energy * pue * low, "facility_energy_high_uj": energy * pue * high,
        "emissions_ug": emissions, "emissions_low_ug": emissions * low, "emissions_high_ug": emissions * high,
        "water_ul": water, "embodied_ug": embodied,
        "unembodied_us": np.where(np.isnan(embodied), duration, np.nan),
        "failed_energy_uj": np.where(failed, energy, np.nan),
        "redundant_energy_uj": np.where(redundant, energy, np.nan),
        "redundant_emissions_ug": np.where(redundant, emissions, np.nan),
    }  # fmt: skip
    found = []
    for name, _, scale in FIGURES:
        if scale is None:
            known = name in counts or name.startswith("n_")
            found.append(np.asarray(counts.get(name, np.zeros(len(df))), dtype=np.float64))
        else:  # SQLite's ROUND: floor(x + 0.5) for x >= 0, and every figure is >= 0 (record.BOUNDS)
            known = name in amounts
            found.append(np.floor(np.nan_to_num(amounts.get(name, np.zeros(len(df)))) * scale + 0.5))
        if not known:  # a figure the registry sums that this one does not: they would differ
            raise NotImplementedError(f"figures_of has no per-run {name!r} (registry.totals.FIGURES)")
    return found


def _groups_of(df: pd.DataFrame) -> tuple:
    """The runs of ``df`` grouped as ``registry.figures.Group``s, with the same sums."""
    from ..registry.figures import Group

    if df.empty:
        return ()
    energy = df["energy_j"].fillna(0.0)
    unattributed = df["unattributed_energy_j"]
    work = pd.DataFrame({
        "runs": np.ones(len(df), dtype=np.int64), "energy_j": energy,
        **{f"{c}_energy_j": df[f"{c}_energy_j"].fillna(0.0) for c in COMPONENT_NAMES},
        "facility_energy_j": energy * df["pue"].fillna(1.0),
        "unattributed_j": unattributed, "unattributed_positive_j": unattributed.clip(lower=0.0),
    }, index=df.index)  # fmt: skip
    keys = [df[column].astype(object) for column in _GROUPED_BY]
    summed = work.groupby(keys, dropna=False, sort=False).sum()
    return tuple(
        Group(*(_plain(v) for v in key), int(row[0]), *(float(v) for v in row[1:]))
        for key, row in zip(summed.index, summed.to_numpy(dtype=object))
    )


def _plain(value: Any) -> Any:
    """``value`` as a plain Python value, None for any kind of missing value."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value
