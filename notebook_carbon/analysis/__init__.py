"""The registry as pandas: one frame of runs, totals by group, development overhead, energy shares.

::

    from notebook_carbon import analysis

    df = analysis.runs(project="vision", since="2025-01-01")   # one row per run, indexed by id
    analysis.aggregate(df, "sweep")                              # totals per sweep
    analysis.overhead(df).ratio                                  # all runs' energy / the results'
    analysis.shares(df).estimated                                # fraction of the energy estimated
    analysis.energy_by_method(df)                                # {"nvml-counter": J, "rapl": J, ...}
    analysis.excluded(df)                                        # runs left out: implausible figures

``runs`` reads the registry (``frame``; each sweep's selected run and label as ``list_sweeps``
decides them, in ``selection``); everything else is a pure function of its frame (``summaries``),
so a dashboard or a statement can filter the frame and total it again without reading the database
twice. Which methods count as measured and which as estimates is in ``methods``. Charts are in
``notebook_carbon.charts``: importing this package does not import altair. Energy in J, emissions
in g CO2e, water in L.
"""

from __future__ import annotations

from .frame import COMPONENT_NAMES, CORE_COLUMNS, DERIVED_COLUMNS, FAILED_STATUSES, read_runs, runs
from .plausible import Excluded, excluded
from .methods import ESTIMATED_METHODS, MEASURED_METHODS, UNATTRIBUTED, method_kind
from .summaries import (
    AGGREGATE_COLUMNS,
    BY,
    CATEGORIES,
    Overhead,
    Shares,
    aggregate,
    categorise,
    energy_by_method,
    overhead,
    shares,
)

__all__ = [
    "AGGREGATE_COLUMNS",
    "BY",
    "CATEGORIES",
    "COMPONENT_NAMES",
    "CORE_COLUMNS",
    "DERIVED_COLUMNS",
    "Excluded",
    "ESTIMATED_METHODS",
    "FAILED_STATUSES",
    "MEASURED_METHODS",
    "UNATTRIBUTED",
    "Overhead",
    "Shares",
    "aggregate",
    "categorise",
    "energy_by_method",
    "excluded",
    "method_kind",
    "overhead",
    "read_runs",
    "runs",
    "shares",
]
