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

from ..record import BOUNDS, check_figure, implausible
from ..registry.rows import decode_many

__all__ = ["Excluded", "excluded", "implausible_mask", "json_values", "numbers", "split"]


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


def implausible_mask(frame: pd.DataFrame) -> np.ndarray:
    """Per row of ``frame``, whether one of its ``record.BOUNDS`` columns holds a value outside its
    bounds (an infinity included); a missing value (NaN) is allowed, as None is by the bounds."""
    bad = np.zeros(len(frame), dtype=bool)
    for column, (low, high, _) in BOUNDS.items():
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad |= ~np.isnan(values) & ~((values >= low) & (values <= high))
    return bad


def split(
    frame: pd.DataFrame, sweep_keys: np.ndarray | None = None, unreadable: dict[int, str] | None = None
) -> tuple[np.ndarray, tuple[Excluded, ...]]:
    """Which rows of ``frame`` (read from the ``runs`` table, indexed by id) to keep, and an
    ``Excluded`` for each of the others, in the frame's order. ``sweep_keys``: each row's sweep key;
    ``unreadable``: why some runs' values could not be read (``numbers``, ``json_values``), by id."""
    bad = implausible_mask(frame)
    if unreadable:
        bad |= frame.index.isin(list(unreadable))
    if not bad.any():
        return ~bad, ()
    found = []
    columns = [column for column in BOUNDS if column in frame.columns]
    for at in np.flatnonzero(bad).tolist():
        row = {column: _value(frame[column].iat[at]) for column in columns}
        found.append(Excluded(
            id=int(frame.index[at]),
            project=_text(frame, "project", at),
            notebook=_text(frame, "notebook", at),
            name=_text(frame, "name", at),
            sweep_key=None if sweep_keys is None else sweep_keys[at],
            tags=tuple(frame["tags"].iat[at]) if "tags" in frame.columns else (),
            reason=(unreadable or {}).get(int(frame.index[at])) or implausible(row) or "implausible figures",
        ))  # fmt: skip
    return ~bad, tuple(found)


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


def keep_only(found: Iterable[Excluded], **where: Any) -> tuple[Excluded, ...]:
    """Those of ``found`` whose fields equal ``where``'s values (``tags``: include all of them)."""
    wanted_tags = frozenset(where.pop("tags", ()))
    return tuple(
        e for e in found
        if wanted_tags.issubset(e.tags) and all(getattr(e, name) == value for name, value in where.items())
    )  # fmt: skip


def _value(value: Any) -> Any:
    """A frame's value as the bounds take it: NaN or NA (missing) as None, numpy numbers as Python's."""
    if value is None or pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _text(frame: pd.DataFrame, column: str, at: int) -> str | None:
    if column not in frame.columns:
        return None
    value = frame[column].iat[at]
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
