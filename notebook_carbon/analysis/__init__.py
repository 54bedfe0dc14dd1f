"""The registry as pandas: one frame of runs, totals by group, energy shares.

::

    from notebook_carbon import analysis

    df = analysis.runs(project="vision", since="2025-01-01")   # one row per run, indexed by id
    analysis.aggregate(df, "sweep")                              # totals per sweep
    analysis.totals(project="vision", since="2025-01-01")        # Totals: energy, overhead_ratio, ...
    analysis.shares(df).estimated                                # fraction of the energy estimated
    analysis.energy_by_method(df)                                # {"nvml-counter": J, "rapl": J, ...}
    analysis.excluded(df)                                        # runs left out: implausible figures

``runs`` reads the registry (``frame``; each run's sweep, label and selection as the registry keeps
them); ``totals`` are the registry's own (``Registry.totals``, or its per-run figures summed by the
database for a scope cut by time, status or tags), the development overhead among them. Everything
else is a pure function of a frame (``summaries``): groupings and splits by day, tag or device. Which methods count as measured and which as estimates is
in ``record.method_kind``. Charts are in ``notebook_carbon.charts``: importing this package imports neither
altair nor pandas, which load with the first name that needs them. Energy in J, emissions in g
CO2e, water in L.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..record import ESTIMATED_METHODS, MEASURED_METHODS, UNATTRIBUTED, method_kind

if TYPE_CHECKING:
    from .frame import COMPONENT_NAMES, CORE_COLUMNS, DERIVED_COLUMNS, FAILED_STATUSES, runs
    from .plausible import Excluded, excluded
    from .summaries import (
        AGGREGATE_COLUMNS,
        BY,
        CATEGORIES,
        Shares,
        aggregate,
        categorise,
        energy_by_method,
        shares,
        totals,
    )

_LAZY = {
    **dict.fromkeys(("COMPONENT_NAMES", "CORE_COLUMNS", "DERIVED_COLUMNS", "FAILED_STATUSES", "runs"), "frame"),
    **dict.fromkeys(("Excluded", "excluded"), "plausible"),
    **dict.fromkeys(
        ("AGGREGATE_COLUMNS", "BY", "CATEGORIES", "Shares", "aggregate", "categorise", "energy_by_method",
         "shares", "totals"),
        "summaries",
    ),
}  # fmt: skip

__all__ = [
    "AGGREGATE_COLUMNS",
    "BY",
    "CATEGORIES",
    "COMPONENT_NAMES",
    "CORE_COLUMNS",
    "DERIVED_COLUMNS",
    "ESTIMATED_METHODS",
    "FAILED_STATUSES",
    "MEASURED_METHODS",
    "UNATTRIBUTED",
    "Excluded",
    "Shares",
    "aggregate",
    "categorise",
    "energy_by_method",
    "excluded",
    "method_kind",
    "runs",
    "shares",
    "totals",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # resolve once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
