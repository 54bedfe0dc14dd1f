"""Each run's sweep, each sweep's label and selected run, exactly as ``registry.sweeps.list_sweeps``.

``list_sweeps`` decides these one sweep at a time over decoded rows; here they are decided for every
sweep at once over the columns of a frame (``analysis.frame``), with numpy, and a test checks that
both agree. A sweep belongs to one project: one sweep name in two projects is two sweeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_IN_LIMIT = 500  # ids per IN list: far below every database's limit on bound parameters

__all__ = ["group_codes", "selection", "sweep_keys"]


def sweep_keys(frame: pd.DataFrame) -> np.ndarray:
    """``sweep_key`` of every row (None for a run in no sweep), exactly as ``sweeps.sweep_key``: the
    sweep name unless empty, else ``code:`` + the code fingerprint unless empty."""
    names = frame["sweep"].to_numpy(dtype=object).tolist()
    codes = frame["code_fingerprint"].to_numpy(dtype=object).tolist()
    # one pass in Python over plain objects: cheaper than four comparisons of pandas' string arrays
    return np.array([_sweep_key(name, code) for name, code in zip(names, codes)], dtype=object)


def _sweep_key(name: Any, code: Any) -> str | None:
    if isinstance(name, str) and name:
        return name
    if isinstance(code, str) and code:
        return "code:" + code
    return None


def group_codes(projects: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Each row's sweep as a number (-1: in no sweep), and the ``(project, sweep_key)`` of each
    number: a sweep belongs to one project, so one key in two projects is two sweeps."""
    project_codes, project_names = pd.factorize(projects)
    key_codes, key_names = pd.factorize(keys)  # None is -1
    sweep = key_codes >= 0
    combined = project_codes[sweep].astype(np.int64) * max(len(key_names), 1) + key_codes[sweep]
    found_codes, found = pd.factorize(combined)
    codes = np.full(len(keys), -1, dtype=np.int64)
    codes[sweep] = found_codes
    pairs = [(project_names[c // len(key_names)], key_names[c % len(key_names)]) for c in found.tolist()]
    return codes, pairs


def selection(
    conn: Any, table: Any, members: pd.DataFrame, keys: np.ndarray, grouped: tuple | None = None
) -> tuple[np.ndarray, dict[tuple[str, str], str]]:
    """The ids of the selected runs, and each sweep's label by ``(project, sweep_key)``, from
    ``members``: every run of those sweeps in start order, as ``registry.sweeps.list_sweeps``.
    ``grouped``: ``group_codes`` of the members, if the caller has it already."""
    codes, pairs = grouped or group_codes(members["project"].to_numpy(dtype=object), keys)
    ids = members.index.to_numpy()

    def last(where: np.ndarray) -> dict[int, int]:
        """For each sweep with a row in ``where`` (a mask), the id of its last such row."""
        positions = np.flatnonzero(where & (codes >= 0))[::-1]
        found, first = np.unique(codes[positions], return_index=True)
        return dict(zip(found.tolist(), ids[positions[first]].tolist()))

    chosen = last(members["status"].to_numpy(dtype=object) == "ok")
    chosen.update(last(members["is_final"].to_numpy(dtype=bool)))  # a run marked final wins
    firsts = _firsts(codes, ids)
    # an automatic sweep is labelled by its first run's cell, read for that run alone
    sources = _sources(
        conn, table, [firsts[c] for c, (_, key) in enumerate(pairs) if key.startswith("code:")], members
    )
    labels = {}
    for code, (project, key) in enumerate(pairs):
        named = not key.startswith("code:")
        labels[(project, key)] = key if named else _label(key, *sources.get(firsts[code], (None, None)))
    return np.array(list(chosen.values()), dtype=np.int64), labels


def _firsts(codes: np.ndarray, ids: np.ndarray) -> dict[int, int]:
    """For each sweep number in ``codes``, the id of its first row."""
    positions = np.flatnonzero(codes >= 0)
    found, first = np.unique(codes[positions], return_index=True)
    return dict(zip(found.tolist(), ids[positions[first]].tolist()))


def _sources(conn: Any, table: Any, ids: list[int], members: pd.DataFrame) -> dict[int, tuple]:
    """``(cell_source, name)`` of the runs ``ids``: from ``members`` if it holds the source."""
    if "cell_source" in members:
        found = members.loc[ids, ["cell_source", "name"]]
        return {i: (_text(s), _text(n)) for i, s, n in zip(found.index, found["cell_source"], found["name"])}
    from sqlalchemy import select

    sources: dict[int, tuple] = {}
    for start in range(0, len(ids), _IN_LIMIT):
        query = select(table.c.id, table.c.cell_source, table.c.name).where(
            table.c.id.in_(ids[start : start + _IN_LIMIT])
        )
        sources.update((row[0], (row[1], row[2])) for row in conn.execute(query))
    return sources


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _label(key: str, cell_source: str | None, name: str | None) -> str:
    """An automatic sweep's label as ``list_sweeps`` shows it: the first non-blank line of its first
    run's cell, else that run's name, else the key; at most 60 characters."""
    lines = [line for line in (cell_source or "").splitlines() if line.strip()]
    return (lines[0].strip() if lines else name or key)[:60]
