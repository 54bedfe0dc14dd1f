"""Runs whose figures no real run can have, left out of a frame visibly, not silently.

One row written by an older version, a bad import or a hand edit in SQL (``energy_j = inf``,
emissions of ``1e300`` g, a negative run time, a start in the year 1) would make every total of its
project infinite or absurd, or stop the frame from being built at all (a start no timestamp can
hold). Such a row breaks ``record.BOUNDS``: ``split`` takes it out of the frame and keeps, in the
frame's ``attrs["excluded"]``, an ``Excluded`` naming it and giving ``record.check_figure``'s reason,
so every reader can say which runs its figures leave out and why.

The test is vectorised (one comparison per bounded column, whatever the number of runs); only the
rows that fail it, normally none, are looked at one by one for their reason. A value no column can
hold (text where a number belongs, broken JSON: SQLite keeps whatever a hand edit writes) leaves
its run out too: ``numbers`` and ``json_values`` read a column without failing on one value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..record import BOUNDS, check_figure
from ..registry.rows import decode_many

__all__ = ["Excluded", "Left", "excluded", "implausible_mask", "json_values", "keep_only", "numbers", "split"]


@dataclasses.dataclass(frozen=True)
class Excluded:
    """A run left out of a frame: its id, what names it, and why (``record.check_figure``)."""

    id: int
    project: str | None
    notebook: str | None
    name: str | None
    sweep_key: str | None
    tags: tuple[str, ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """What a statement or the server says of it: id, name and reason."""
        return {"id": self.id, "name": self.name, "reason": self.reason}


class Left(tuple):
    """The ``Excluded`` runs of a frame: a tuple that pandas need not copy (it copies a frame's
    ``attrs`` deeply with every operation, and a bad import may leave thousands of runs out)."""

    def __deepcopy__(self, memo: dict) -> Left:
        return self


def implausible_mask(frame: pd.DataFrame) -> np.ndarray:
    """Per row of ``frame``, whether one of its ``record.BOUNDS`` columns holds a value outside its
    bounds (an infinity included); a missing value (NaN) is allowed, as None is by the bounds."""
    return _first_bad(frame) >= 0


def _first_bad(frame: pd.DataFrame) -> np.ndarray:
    """Per row, the position in ``BOUNDS`` of its first column out of bounds, or -1."""
    first = np.full(len(frame), -1, dtype=np.int64)
    for at, (column, (low, high, _)) in enumerate(BOUNDS.items()):
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(values) & ~((values >= low) & (values <= high))
        first[bad & (first < 0)] = at
    return first


def split(
    frame: pd.DataFrame, sweep_keys: np.ndarray | None = None, unreadable: dict[int, str] | None = None
) -> tuple[np.ndarray, Left]:
    """Which rows of ``frame`` (read from the ``runs`` table, indexed by id) to keep, and an
    ``Excluded`` for each of the others, in the frame's order. ``sweep_keys``: each row's sweep key;
    ``unreadable``: why some runs' values could not be read (``numbers``, ``json_values``), by id."""
    first = _first_bad(frame)
    bad = first >= 0
    if unreadable:
        bad |= frame.index.isin(list(unreadable))
    if not bad.any():
        return ~bad, Left()
    at = np.flatnonzero(bad)
    ids = frame.index.to_numpy()[at].tolist()
    columns = list(BOUNDS)
    texts = {name: _texts(frame, name, at) for name in ("project", "notebook", "name")}
    tags = frame["tags"].to_numpy(object)[at].tolist() if "tags" in frame.columns else [()] * len(at)
    keys = [None] * len(at) if sweep_keys is None else list(sweep_keys[at])
    # the value that failed, each column read once: a bad import may leave out every run it wrote
    failed = {i: frame[columns[i]].to_numpy(object)[at] for i in set(first[at].tolist()) if i >= 0}
    found = []
    for j, run_id in enumerate(ids):
        i = int(first[at[j]])
        reason = (unreadable or {}).get(run_id) or check_figure(columns[i], _value(failed[i][j]))
        found.append(Excluded(
            id=run_id, project=texts["project"][j], notebook=texts["notebook"][j], name=texts["name"][j],
            sweep_key=keys[j], tags=tuple(tags[j]), reason=reason or "implausible figures",
        ))  # fmt: skip
    return ~bad, Left(found)


def numbers(name: str, found: Sequence[Any], dtype: Any, ids: Any, unreadable: dict[int, str]) -> Any:
    """Column ``name``'s values ``found`` as an array of ``dtype`` (``np.float64`` or ``"Int64"``);
    a value that is not a number is missing, and why is put in ``unreadable`` under its run's id."""
    make: Callable[[Any], Any] = (lambda v: np.array(v, dtype=dtype)) if dtype is np.float64 else (
        lambda v: pd.array(v, dtype=dtype))  # fmt: skip
    try:
        return make(found)
    except (ValueError, TypeError, OverflowError):
        pass
    kept = []
    for run_id, value in zip(ids, found):
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 2**63):
            kept.append(value)
        else:
            unreadable.setdefault(int(run_id), check_figure(name, value) or f"{name} must be a number, got {value!r}")
            kept.append(None)
    return make([np.nan if v is None and dtype is np.float64 else v for v in kept])


def json_values(name: str, texts: Sequence[Any], ids: Any, unreadable: dict[int, str], missing: Callable) -> list:
    """Column ``name``'s JSON ``texts`` decoded, a missing value as ``missing()``; a text that is
    not valid JSON too, and why is put in ``unreadable`` under its run's id."""
    try:
        return decode_many(texts, missing=missing)
    except ValueError:
        pass
    found = []
    for run_id, text in zip(ids, texts):
        try:
            found.append(decode_many([text], missing=missing)[0])
        except ValueError:
            unreadable.setdefault(int(run_id), f"{name} is not valid JSON: {str(text)[:80]!r}")
            found.append(missing())
    return found


def excluded(df: pd.DataFrame) -> tuple[Excluded, ...]:
    """The runs ``analysis.runs`` left out of ``df`` for implausible figures (``split``)."""
    return df.attrs.get("excluded", ())


def keep_only(found: Iterable[Excluded], **where: Any) -> Left:
    """Those of ``found`` whose fields equal ``where``'s values (``tags``: include all of them)."""
    wanted_tags = frozenset(where.pop("tags", ()))
    return Left(
        e for e in found
        if wanted_tags.issubset(e.tags) and all(getattr(e, name) == value for name, value in where.items())
    )  # fmt: skip


def _value(value: Any) -> Any:
    """A frame's value as the bounds take it: NaN or NA (missing) as None, numpy numbers as Python's."""
    if value is None or pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _texts(frame: pd.DataFrame, column: str, at: np.ndarray) -> list[str | None]:
    if column not in frame.columns:
        return [None] * len(at)
    return [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
            for v in frame[column].to_numpy(object)[at].tolist()]  # fmt: skip
