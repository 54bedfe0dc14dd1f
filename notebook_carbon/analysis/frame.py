"""``runs()``: a registry's runs as one pandas DataFrame, one row per run, for analysis and charts.

The frame is indexed by the run's database id (``id``) and ordered by start time (then id). It holds
every column of the registry's ``runs`` table (or ``CORE_COLUMNS`` and those asked for, ``columns``;
``cell_source`` only when asked, ``with_source``), JSON columns decoded (``tags`` a list, ``params`` a
dict, ``notes`` a list; a missing value reads as an empty one), and these derived columns:

- ``started``, ``ended``: ``started_at`` / ``ended_at`` as timezone-aware UTC timestamps.
- ``sweep_key``: the run's sweep, as ``registry.sweeps.sweep_key`` (missing for a run in no sweep);
  ``sweep_label``: what ``list_sweeps`` shows for that sweep.
- ``is_failed``: status ``failed``, ``interrupted`` or ``crashed``; ``is_redundant``: ``redundant_of``
  set; ``is_selected``: the selected run of its sweep as ``list_sweeps`` defines it (the run marked
  final, else the latest ``ok`` run), judged over the whole sweep, whatever the filters kept.
- ``measured_energy_j``, ``estimated_energy_j``, ``unattributed_energy_j``: ``energy_j`` split by
  each component's recorded method (see ``analysis.methods``). They add up to ``energy_j``:
  ``unattributed_energy_j`` is whatever the measured and estimated components leave of the total
  (negative when the parts add up to more than the recorded total, as in an imported log whose
  parts disagree with it; 0 when ``energy_j`` itself is missing).

A run with a figure outside ``record.BOUNDS`` (``energy_j = inf``, a start in the year 1) is not a
row: ``attrs["excluded"]`` names it with the reason (``analysis.excluded``, ``plausible``).

Dtypes: floats ``float64`` (missing = NaN), integers ``Int64`` (nullable), booleans ``bool``, text
pandas' default string dtype, ``started``/``ended`` ``datetime64[us, UTC]``; an empty result has the
same columns and dtypes. Units are those of the registry (J, g CO2e, L, s, W).

Reading is built for big registries: one query ordered by the ``(project, started_at)`` index, of
the columns wanted only (never the cell source unless asked), rows fetched as plain tuples (through
the driver's own cursor on SQLite) and turned into columns at once, JSON decoded in one call per
column, the garbage collector paused meanwhile. Filters that keep part of a sweep (time, status,
notebook) add one narrow query for the rest of its runs, so its selected run is still known.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import math
import operator
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..registry.rows import tuples
from . import plausible
from .methods import ESTIMATED, MEASURED, method_kind
from .selection import group_codes, selection, sweep_keys

if TYPE_CHECKING:
    from ..registry.store import Registry

FAILED_STATUSES = ("failed", "interrupted", "crashed")
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
# pandas 3 infers its string dtype for text; pandas 2 keeps text as object. Either way a column of
# text has the same dtype whether the frame is empty or not.
TEXT_DTYPE: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
TIME_DTYPE = "datetime64[us, UTC]"
_JSON_EMPTY = {"tags": list, "params": dict, "notes": list}
_IN_LIMIT = 500  # projects per IN list: far below every database's limit on bound parameters

__all__ = ["COMPONENT_NAMES", "CORE_COLUMNS", "DERIVED_COLUMNS", "FAILED_STATUSES", "opened", "read_runs", "runs"]


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
    from ..registry.schema import runs as table

    statuses = _statuses(status)
    since_s, until_s = _epoch_s(since, "since"), _epoch_s(until, "until")
    wanted_tags = _tags(tags)
    if sweep is not None and (not isinstance(sweep, str) or not sweep):
        raise ConfigError(f"sweep must be a sweep name or a sweep key code:<fingerprint>; got {sweep!r}")
    _columns(table, columns, with_source)  # checked before anything is opened
    conditions = []
    if project is not None:
        conditions.append(table.c.project == project)
    if sweep is not None:
        conditions.append(_sweep_condition(table, sweep))
    # Filters that cut a sweep short; the selected run is then found among all the sweep's runs.
    partial = []
    if notebook is not None:
        partial.append(table.c.notebook == notebook)
    if statuses is not None:
        partial.append(table.c.status.in_(statuses))
    if since_s is not None:
        partial.append(table.c.started_at >= since_s)
    if until_s is not None:
        partial.append(table.c.started_at < until_s)
    frame = read_runs(
        registry, conditions, cut=partial, columns=columns, with_source=with_source, narrow=sweep is not None
    )
    if wanted_tags:
        frame = frame.loc[np.array([wanted_tags.issubset(found) for found in frame["tags"]], dtype=bool)]
        frame.attrs["excluded"] = plausible.keep_only(frame.attrs["excluded"], tags=wanted_tags)
    return frame


def read_runs(
    registry: Registry | str | os.PathLike[str] | None,
    conditions: Sequence[Any],
    *,
    cut: Sequence[Any] = (),
    columns: Iterable[str] | None = None,
    with_source: bool = False,
    narrow: bool = False,
) -> pd.DataFrame:
    """The frame of the runs matching SQL ``conditions`` and ``cut`` (SQLAlchemy expressions on the
    ``runs`` table), with the derived columns: what ``runs`` reads once it has made its filters.

    ``conditions`` keep a sweep whole or not at all (project, sweep); ``cut`` may keep part of a
    sweep (notebook, status, time), so the rest of the sweeps found is read, narrowly, for their
    selected runs. ``columns`` and ``with_source`` as for ``runs``. ``narrow``: the conditions
    pick few runs through another index than ``(project, started_at)`` (a sweep, a range of ids),
    so the rows are put in start order here, not by ORDER BY, with which SQLite's planner (lacking
    statistics) walks the project's whole ``(project, started_at)`` index instead."""
    from ..registry.schema import runs as table

    read = _columns(table, columns, with_source)
    with opened(registry) as reg, reg._transaction("reading runs for analysis") as conn, _gc_paused():
        if narrow:
            rows = tuples(conn, _select(read, [*conditions, *cut], ordered=False))
            at = [column.name for column in read]
            rows.sort(key=operator.itemgetter(at.index("started_at"), at.index("id")))
        else:
            rows = tuples(conn, _select(read, [*conditions, *cut]))
        unreadable: dict[int, str] = {}
        frame = _frame(read, rows, unreadable)
        keys = sweep_keys(frame)
        grouped = group_codes(frame["project"].to_numpy(dtype=object), keys)
        members, member_keys, member_grouped = frame, keys, grouped
        if cut and len(frame) and any(key is not None for key in keys):
            members = _sweep_members(conn, table, frame, list(conditions))
            member_keys, member_grouped = sweep_keys(members), None
        selected, labels = selection(conn, table, members, member_keys, member_grouped)
        # after the selection, as list_sweeps makes it: a selected run left out leaves no result
        keep, left_out = plausible.split(frame, keys, unreadable)
        if left_out:
            frame, keys, grouped = frame.loc[keep], keys[keep], (grouped[0][keep], grouped[1])
        frame.attrs["excluded"] = left_out
        _derive(frame, keys, selected, labels, grouped)
    return frame


@contextlib.contextmanager
def opened(registry: Registry | str | os.PathLike[str] | None) -> Iterator[Registry]:
    """``registry`` if it is a ``Registry``; else the registry at that location (None: the settings'
    registry), opened read-only for the duration of the block."""
    from ..registry.store import Registry

    if isinstance(registry, Registry):
        yield registry
        return
    if registry is None:
        from .. import settings

        location = settings.resolve().registry_location()
    elif isinstance(registry, (str, os.PathLike)):
        location = os.fspath(registry)
    else:
        raise ConfigError(
            f"registry must be a Registry, a file path or a database URL (or None for the configured "
            f"one); got {type(registry).__name__}"
        )
    with Registry.open(location, read_only=True) as reg:
        yield reg


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


def _columns(table: Any, wanted: Iterable[str] | None, with_source: bool) -> list[Any]:
    """The ``runs`` table's columns to read, in table order."""
    if wanted is None:
        names = {c.name for c in table.c} - {"cell_source"}
    else:
        names = {wanted} if isinstance(wanted, str) else set(wanted)
        unknown = names - set(table.c.keys())
        if unknown:
            raise ConfigError(
                f"columns: {', '.join(sorted(unknown))} not in the runs table; its columns: "
                f"{', '.join(table.c.keys())}"
            )
        names |= set(CORE_COLUMNS)
    if with_source:
        names.add("cell_source")
    return [c for c in table.c if c.name in names]


def _statuses(status: str | Iterable[str] | None) -> tuple[str, ...] | None:
    from ..registry.schema import STATUSES

    if status is None:
        return None
    wanted = (status,) if isinstance(status, str) else tuple(status)
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise ConfigError(f"status must be one or several of {', '.join(STATUSES)}; got {unknown!r}")
    return wanted


def _tags(tags: str | Iterable[str] | None) -> frozenset[str]:
    if tags is None:
        return frozenset()
    found = (tags,) if isinstance(tags, str) else tuple(tags)
    if not all(isinstance(tag, str) for tag in found):
        raise ConfigError(f"tags must be a tag or several tags (strings); got {tags!r}")
    return frozenset(found)


def _epoch_s(value: Any, name: str) -> float | None:
    """``value`` (datetime, date, ISO string, epoch seconds) as UTC epoch seconds; naive means UTC."""
    if value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number of epoch seconds; got {value!r}")
        return float(value)
    if not isinstance(value, (str, datetime.date, np.datetime64)):
        raise ConfigError(
            f"{name} must be a datetime, a date, an ISO 8601 string or epoch seconds; "
            f"got {type(value).__name__}"
        )
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name}: {value!r} is not a date or time (ISO 8601: 2025-03-01T12:00)") from exc
    if stamp is pd.NaT:
        raise ConfigError(f"{name}: {value!r} is not a date or time (ISO 8601: 2025-03-01T12:00)")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.timestamp()


# -- reading ----------------------------------------------------------------------------------


def _sweep_condition(table: Any, sweep: str) -> Any:
    """Rows whose ``sweep_key`` is ``sweep``: an explicit name wins over the code fingerprint."""
    from sqlalchemy import and_, or_

    if not sweep.startswith("code:"):
        return table.c.sweep == sweep
    unnamed = or_(table.c.sweep.is_(None), table.c.sweep == "")
    return or_(table.c.sweep == sweep, and_(unnamed, table.c.code_fingerprint == sweep[len("code:") :]))


def _select(columns: Sequence[Any], conditions: Sequence[Any], ordered: bool = True) -> Any:
    from sqlalchemy import select

    table = columns[0].table
    query = select(*columns)
    if ordered:
        query = query.order_by(table.c.started_at, table.c.id)
    return query.where(*conditions) if conditions else query


def _frame(columns: Sequence[Any], rows: list[tuple], unreadable: dict[int, str] | None = None) -> pd.DataFrame:
    """The frame of ``rows`` (tuples of the table ``columns``, ``id`` first), built column by column,
    indexed by ``id``. A value a column cannot hold (text in a number's column, broken JSON: SQLite
    keeps what a hand edit writes) is missing, and why is put in ``unreadable`` by run id."""
    from sqlalchemy import Boolean, Float, Integer

    values = list(zip(*rows)) if rows else [()] * len(columns)
    unreadable = {} if unreadable is None else unreadable
    data: dict[str, Any] = {}
    index = None
    for column, found in zip(columns, values):
        name = column.name
        if name == "id":
            index = pd.Index(np.array(found, dtype=np.int64), name="id")
        elif name in _JSON_EMPTY:
            decoded = plausible.json_values(name, found, index, unreadable, missing=_JSON_EMPTY[name])
            data[name] = pd.Series(decoded, dtype=object)
        elif isinstance(column.type, Boolean):
            data[name] = np.array(found, dtype=bool)
        elif isinstance(column.type, Float):  # Double is a Float
            data[name] = plausible.numbers(name, found, np.float64, index, unreadable)
        elif isinstance(column.type, Integer):
            data[name] = plausible.numbers(name, found, "Int64", index, unreadable)
        else:
            data[name] = pd.array(found, dtype=TEXT_DTYPE)
    frame = pd.DataFrame({k: v.array if isinstance(v, pd.Series) else v for k, v in data.items()})
    frame.index = index
    return frame


def _sweep_members(conn: Any, table: Any, frame: pd.DataFrame, conditions: list[Any]) -> pd.DataFrame:
    """Every run of the sweeps in ``frame`` (of its projects), as much as selection and labels need."""
    projects = frame["project"].unique().tolist()
    if len(projects) <= _IN_LIMIT:
        conditions = [*conditions, table.c.project.in_(projects)]
    columns = [table.c[name] for name in ("id", "project", "sweep", "code_fingerprint", "started_at")]
    columns += [table.c[name] for name in ("status", "is_final", "name")]
    return _frame(columns, tuples(conn, _select(columns, conditions)))


# -- derived columns --------------------------------------------------------------------------


def _derive(frame: pd.DataFrame, keys: np.ndarray, selected: np.ndarray, labels: dict, grouped: tuple) -> None:
    """Add ``DERIVED_COLUMNS`` to ``frame``, in place, given its rows' sweep keys, the selected runs'
    ids, the sweeps' labels by ``(project, sweep_key)`` and the rows' ``group_codes``."""
    # one resolution whatever the data (pandas picks ns or us by version and by emptiness)
    frame["started"] = pd.to_datetime(frame["started_at"], unit="s", utc=True).astype(TIME_DTYPE)
    frame["ended"] = pd.to_datetime(frame["ended_at"], unit="s", utc=True).astype(TIME_DTYPE)
    frame["sweep_key"] = pd.array(keys, dtype=TEXT_DTYPE)
    codes, pairs = grouped
    by_code = np.array([labels.get(pair) for pair in pairs] + [None], dtype=object)
    frame["sweep_label"] = pd.array(by_code[codes], dtype=TEXT_DTYPE)  # code -1 (no sweep): the None
    frame["is_failed"] = frame["status"].isin(FAILED_STATUSES).to_numpy(dtype=bool)
    frame["is_redundant"] = frame["redundant_of"].notna().to_numpy(dtype=bool)
    frame["is_selected"] = frame.index.isin(selected)
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
