"""``runs()``: a registry's runs as one pandas DataFrame, one row per run, for analysis and charts.

The frame is indexed by the run's database id (``id``) and ordered by start time (then id). It holds
every column of the registry's ``runs`` table (or ``CORE_COLUMNS`` and those asked for, ``columns``;
``ON_REQUEST`` only when asked: ``cell_source`` with ``with_source``, the energy range factors kept
with each run in ``columns``), JSON columns decoded (``tags`` a list, ``params`` a dict, ``notes`` a
list; a missing value reads as an empty one), and these derived columns:

- ``started``, ``ended``: ``started_at`` / ``ended_at`` as timezone-aware UTC timestamps.
- ``sweep_key``: the run's sweep, as ``record.sweep_key`` (missing for a run in no sweep);
  ``sweep_label``: what ``Registry.sweeps`` shows for that sweep.
- ``is_failed``: status ``failed``, ``interrupted`` or ``crashed``; ``is_redundant``: ``redundant_of``
  set; ``is_selected``: the selected run of its sweep as ``Registry.sweeps`` has it (the run marked
  final, else the latest ``ok`` run), judged over the whole sweep, whatever the filters kept.
- ``measured_energy_j``, ``estimated_energy_j``, ``unattributed_energy_j``: ``energy_j`` split by
  each component's recorded method (see ``record.method_kind``). They add up to ``energy_j``:
  ``unattributed_energy_j`` is whatever the measured and estimated components leave of the total
  (negative when the parts add up to more than the recorded total, as in an imported log whose
  parts disagree with it; 0 when ``energy_j`` itself is missing).

A run with a figure outside ``record.BOUNDS`` (``energy_j = inf``, a start in the year 1) is not a
row: ``attrs["excluded"]`` names it with the reason (``analysis.excluded``, ``plausible``).

Dtypes: floats ``float64`` (missing = NaN), integers ``Int64`` (nullable), booleans ``bool``, text
pandas' default string dtype, ``started``/``ended`` ``datetime64[us, UTC]``; an empty result has the
same columns and dtypes. Units are those of the registry (J, g CO2e, L, s, W).

Reading is built for big registries: the registry's one query (``Registry.columns``) of the columns
wanted only (never the cell source unless asked), each run's sweep, label and selection as the
database keeps them, rows as plain tuples turned into columns at once, JSON decoded in one call per
column, the garbage collector paused meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..record import ESTIMATED, FAILED_STATUSES, MEASURED, method_kind
from ..registry.frames import COLUMNS
from . import plausible
from .filters import opened, scope_of

if TYPE_CHECKING:
    from ..registry.store import Registry

COMPONENT_NAMES = ("gpu", "cpu", "ram")
CORE_COLUMNS = (
    "id",
    "project",
    "notebook",
    "name",
    "sweep",
    "tags",
    "code_fingerprint",
    "status",
    "started_at",
    "ended_at",
    "energy_j",
    "gpu_energy_j",
    "cpu_energy_j",
    "ram_energy_j",
    "gpu_method",
    "cpu_method",
    "ram_method",
    "emissions_g",
    "water_l",
    "embodied_g",
    "host",
    "cpu_model",
    "gpu_model",
    "redundant_of",
    "is_final",
)
"""The columns of ``runs`` always read: what the derived columns, the filters and the totals need."""
DERIVED_COLUMNS = (
    "started",
    "ended",
    "sweep_key",
    "sweep_label",
    "is_failed",
    "is_redundant",
    "is_selected",
    "measured_energy_j",
    "estimated_energy_j",
    "unattributed_energy_j",
)
ON_REQUEST = ("cell_source", "energy_low_factor", "energy_high_factor")
"""Columns of ``runs`` read only when asked for: the cell's code (most of a row's bytes) and the
energy range factors the registry keeps with each run (what statements sum)."""
# pandas 3 infers its string dtype for text; pandas 2 keeps text as object. Either way a column of
# text has the same dtype whether the frame is empty or not.
TEXT_DTYPE: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
TIME_DTYPE = "datetime64[us, UTC]"
_JSON_EMPTY = {"tags": list, "params": dict, "notes": list}

__all__ = [
    "COMPONENT_NAMES", "CORE_COLUMNS", "DERIVED_COLUMNS", "FAILED_STATUSES", "opened", "runs", "split_energy",
]  # fmt: skip


def runs(
    registry: Registry | str | os.PathLike[str] | None = None,
    *,
    project: str | None = None,
    notebook: str | None = None,
    sweep: str | None = None,
    tags: str | Iterable[str] | None = None,
    since: Any = None,
    until: Any = None,
    status: str | Iterable[str] | None = None,
    with_source: bool = False,
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The runs of ``registry`` that pass every filter given, one row per run (see the module doc).

    ``registry`` is a ``Registry`` (left open), a file path or database URL (opened read-only and
    closed), or None for the registry of the settings. Filters: ``project``; ``notebook`` (its path
    as recorded); ``sweep``, an explicit sweep name or an automatic sweep's key ``code:<fingerprint>``;
    ``tags``, one tag or several, all of which a run must have; ``since`` <= start < ``until``
    (half-open, so consecutive windows never share a run), each a datetime, a date (its midnight
    UTC), an ISO 8601 string or epoch seconds, a timezone-naive time taken as UTC; ``status``, one
    of the registry's statuses or several. ``with_source`` also reads ``cell_source``, most of a
    row's bytes. ``columns`` reads only these columns of the ``runs`` table besides
    ``CORE_COLUMNS``, which the derived columns, the filters and ``aggregate`` need: ``columns=()``
    is the quickest read, without params, fingerprints or intensity details.
    """
    scope = scope_of(project=project, notebook=notebook, sweep=sweep, tags=tags, since=since, until=until,
                     status=status)  # fmt: skip
    read = _columns(columns, with_source)  # checked before anything is opened
    with opened(registry) as reg, _gc_paused():
        names, rows = reg.columns(read, **scope)
        unreadable: dict[int, str] = {}
        frame = _frame(names, rows, unreadable)
        keys = frame.pop("sweep_key").to_numpy(dtype=object)
        labels = frame.pop("sweep_label").to_numpy(dtype=object)
        selected = frame.pop("is_selected").to_numpy(dtype=bool)
        keep, left_out = plausible.split(frame, keys, unreadable)
        if left_out:
            frame, keys, labels, selected = frame.loc[keep], keys[keep], labels[keep], selected[keep]
        frame.attrs["excluded"] = left_out
        _derive(frame, keys, labels, selected)
    return frame


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block: building a frame of 100,000 runs allocates
    millions of tuples, lists and dicts, none of them garbage, and the collections this triggers
    cost as much as the rest of the work. Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- arguments --------------------------------------------------------------------------------


def _columns(wanted: Iterable[str] | None, with_source: bool) -> list[str]:
    """The ``runs`` table's columns to read, in table order."""
    if wanted is None:
        names = set(COLUMNS) - set(ON_REQUEST)
    else:
        names = {wanted} if isinstance(wanted, str) else set(wanted)
        unknown = names - set(COLUMNS)
        if unknown:
            raise ConfigError(
                f"columns: {', '.join(sorted(unknown))} not in the runs table; its columns: {', '.join(COLUMNS)}"
            )
        names |= set(CORE_COLUMNS)
    if with_source:
        names.add("cell_source")
    return [name for name in COLUMNS if name in names]


# -- reading ----------------------------------------------------------------------------------


def _frame(names: Sequence[str], rows: list[tuple], unreadable: dict[int, str]) -> pd.DataFrame:
    """The frame of ``rows`` (tuples of the columns ``names``, ``id`` first, then
    ``SWEEP_COLUMNS``), built column by column, indexed by ``id``. A value a column cannot hold
    (text in a number's column, broken JSON: SQLite keeps what a hand edit writes) is missing, and
    why is put in ``unreadable`` by run id."""
    values = list(zip(*rows)) if rows else [()] * len(names)
    kinds = {**COLUMNS, "sweep_key": "text", "sweep_label": "text", "is_selected": "bool"}
    data: dict[str, Any] = {}
    index = None
    for name, found in zip(names, values):
        kind = kinds[name]
        if name == "id":
            index = pd.Index(np.array(found, dtype=np.int64), name="id")
        elif kind == "json":
            decoded = plausible.json_values(name, found, index, unreadable, missing=_JSON_EMPTY[name])
            data[name] = pd.Series(decoded, dtype=object)
        elif kind == "bool":
            data[name] = np.array(found, dtype=bool)
        elif kind == "float":
            data[name] = plausible.numbers(name, found, np.float64, index, unreadable)
        elif kind == "int":
            data[name] = plausible.numbers(name, found, "Int64", index, unreadable)
        else:
            data[name] = pd.array(found, dtype=TEXT_DTYPE)
    frame = pd.DataFrame({k: v.array if isinstance(v, pd.Series) else v for k, v in data.items()})
    frame.index = index
    return frame


# -- derived columns --------------------------------------------------------------------------


def _derive(frame: pd.DataFrame, keys: np.ndarray, labels: np.ndarray, selected: np.ndarray) -> None:
    """Add ``DERIVED_COLUMNS`` to ``frame``, in place, given its rows' sweep keys, their sweeps'
    labels and whether each is its sweep's selected run."""
    # one resolution whatever the data (pandas picks ns or us by version and by emptiness)
    frame["started"] = pd.to_datetime(frame["started_at"], unit="s", utc=True).astype(TIME_DTYPE)
    frame["ended"] = pd.to_datetime(frame["ended_at"], unit="s", utc=True).astype(TIME_DTYPE)
    frame["sweep_key"] = pd.array(keys, dtype=TEXT_DTYPE)
    frame["sweep_label"] = pd.array(labels, dtype=TEXT_DTYPE)
    frame["is_failed"] = frame["status"].isin(FAILED_STATUSES).to_numpy(dtype=bool)
    frame["is_redundant"] = frame["redundant_of"].notna().to_numpy(dtype=bool)
    frame["is_selected"] = selected
    measured, estimated = split_energy(frame)
    total = frame["energy_j"].to_numpy(dtype=np.float64)
    unattributed = np.where(np.isnan(total), 0.0, total - measured - estimated)
    # the total and its parts summed in another order differ in the last bits: that is not energy
    unattributed[np.abs(unattributed) <= 1e-9 * np.abs(total)] = 0.0
    frame["measured_energy_j"] = measured
    frame["estimated_energy_j"] = estimated
    frame["unattributed_energy_j"] = unattributed


def split_energy(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per run, the energy (J) of its measured and of its estimated components."""
    measured = np.zeros(len(frame))
    estimated = np.zeros(len(frame))
    for component in COMPONENT_NAMES:
        energy = np.nan_to_num(frame[f"{component}_energy_j"].to_numpy(dtype=np.float64))
        # a handful of distinct methods among many runs: classify each once (code -1 is a missing one)
        codes, methods = pd.factorize(frame[f"{component}_method"])
        kinds = [method_kind(method) for method in methods] + [method_kind(None)]
        measured += np.where(np.array([kind == MEASURED for kind in kinds])[codes], energy, 0.0)
        estimated += np.where(np.array([kind == ESTIMATED for kind in kinds])[codes], energy, 0.0)
    return measured, estimated
