"""``ProjectTallies``: a project's statement figures, kept current by recounting only what changed.

A summary gives the statement's totals with ranges, embodied emissions, water and the development
overhead, which come from every run of the project: about 1.7 s at 100,000 runs. They are sums
(``statements.tally``), so they are kept here in parts, each with what it was counted at:

- per sweep, the generation the registry's triggers move on whenever one of its runs is
  inserted, deleted or changes a figure (the runs in no sweep: their count, last id and last
  ``updated_at``, from ``queries.change_token``);
- within a sweep, per block of ``queries.BLOCK`` consecutive ids, the block's statistics: its
  number of runs, last ``updated_at`` (set by every start, checkpoint, finish and reaping), first
  and last start, exact sums of energy and emissions, statuses and repeats, so a sweep of
  thousands of runs that gained one is recounted in the block of its newest ids only, and an edit
  of one of the figures the sweep generations follow is seen even without ``updated_at``;
- the sweep's selected run (the run marked final, else the latest ``ok`` one), found again from
  the sweep's runs whenever its generation moves: it is the one figure that depends on the whole
  sweep, so block tallies leave it out and it is added on its own.

Each part holds a tally per notebook, so a notebook's summary is a merge too. The first summary,
or one after more than ``FULL_READ_ABOVE`` sweeps changed, reads the project once. Tokens are
read before the runs: a run recorded in between makes a part newer than its token, so at worst it
is counted once more. What no token sees is a hand-made edit in SQL, without ``updated_at``, of a
run in no sweep or of a column the sweep generations do not follow (``schema.SWEEP_SUMMARY_
COLUMNS``: not water, embodied emissions, run time or the component figures): a restart shows it.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..analysis.plausible import Excluded, excluded
from ..statements import COLUMNS
from ..statements.tally import SUMS, Tally, merge, python, tally_groups
from . import queries

FULL_READ_ABOVE = 16
"""More changed sweeps than this (a first summary, many sweeps changed at once) are counted from
one read of the project rather than one read per sweep."""

ALL = object()
"""``ProjectTallies.tally``'s notebook for every run of the project (None is the runs recorded
without a notebook, from scripts)."""

_READ = (*COLUMNS, "updated_at")
_SELECTED = (SUMS.index("selected_runs"), SUMS.index("selected_energy_j"), SUMS.index("selected_emissions_g"))

Notebook = Any  # a notebook's path as recorded, or None
# (its statistics, its tallies by notebook, its runs left out for implausible figures)
Block = tuple[Any, dict[Notebook, Tally], tuple[Excluded, ...]]


@dataclasses.dataclass(frozen=True)
class _Sweep:
    """One sweep's (or the runs in no sweep's) tallies, as counted at ``token``."""

    token: Any
    blocks: dict[int, Block]
    by_notebook: dict[Notebook, Tally]
    """Over all blocks, with the selected run."""
    all: Tally
    excluded: tuple[Excluded, ...]
    """The runs its blocks left out (``analysis.plausible``), by id."""


class ProjectTallies:
    """The tallies of ``project``'s sweeps. Not thread-safe: its owner serialises the calls."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.sweeps: dict[str | None, _Sweep] = {}  # by sweep key; None: the runs in no sweep
        self.recounted_blocks = 0
        """How many blocks the last ``update`` counted from their runs (tests, the benchmark)."""
        self.read_all = False
        """Whether the last ``update`` read the whole project."""
        self._whole: Tally | None = None  # the project's merged tally, until a sweep changes

    def update(self, registry: Any, token: tuple) -> None:
        """Recount what moved, given ``queries.change_token`` read just before."""
        generations, loose = token
        wanted: dict[str | None, Any] = {**dict(generations), None: loose}
        gone = [key for key in self.sweeps if key not in wanted]
        for key in gone:
            del self.sweeps[key]
        stale = [key for key, t in wanted.items() if key not in self.sweeps or self.sweeps[key].token != t]
        if stale or gone:
            self._whole = None
        self.recounted_blocks, self.read_all = 0, len(stale) > FULL_READ_ABOVE
        if self.read_all:
            self._count_all(registry, wanted)
        else:
            for key in stale:
                self._recount(registry, key, wanted[key])

    def tally(self, notebook: Any = ALL) -> Tally:
        """The tally of the project, or of the runs of one notebook (its path as recorded)."""
        if notebook is ALL:
            if self._whole is None:
                self._whole = merge(s.all for s in self.sweeps.values())
            return self._whole
        return merge(s.by_notebook[notebook] for s in self.sweeps.values() if notebook in s.by_notebook)

    def excluded(self, notebook: Any = ALL) -> list[Excluded]:
        """The runs of the project (or of one notebook) left out of the tallies, by id."""
        found = (e for s in self.sweeps.values() for e in s.excluded if notebook is ALL or e.notebook == notebook)
        return sorted(found, key=lambda e: e.id)

    # -- counting -----------------------------------------------------------------------------

    def _recount(self, registry: Any, key: str | None, token: Any) -> None:
        """One sweep again: its runs' few columns, then the blocks whose statistics moved from
        their runs, and its selected run."""
        with registry._transaction(f"reading sweep {key!r} of project {self.project!r}") as conn:
            members = queries.members(conn, self.project, key)
        # (block, started_at, status, updated_at, energy_j, emissions_g, redundant_of)
        stats = _stats((run[0] // queries.BLOCK, run[1], run[2], run[4], run[6], run[7], run[8]) for run in members)
        chosen = _selection(members) if key is not None else None
        before = self.sweeps[key].blocks if key in self.sweeps else {}
        blocks = {}
        for block, stat in stats.items():
            if block in before and before[block][0] == stat:
                blocks[block] = before[block]
            else:
                blocks[block] = (stat, *self._count_block(registry, key, block))
                self.recounted_blocks += 1
        self.sweeps[key] = _assemble(token, blocks, [chosen] if chosen else [])

    def _count_block(
        self, registry: Any, key: str | None, block: int
    ) -> tuple[dict[Notebook, Tally], tuple[Excluded, ...]]:
        from ..analysis import read_runs
        from ..registry.schema import runs

        where = [
            runs.c.project == self.project,
            queries.unswept() if key is None else queries.in_sweep(key),
            runs.c.id >= block * queries.BLOCK,
            runs.c.id < (block + 1) * queries.BLOCK,
        ]
        df = read_runs(registry, where, columns=COLUMNS, narrow=True)
        return {k[0]: t for k, t in tally_groups(df, ["notebook"], selected=False).items()}, excluded(df)

    def _count_all(self, registry: Any, wanted: dict[str | None, Any]) -> None:
        """Every sweep from one read of the project."""
        from ..analysis import read_runs
        from ..registry.schema import runs

        df = read_runs(registry, [runs.c.project == self.project], columns=_READ)
        df = df.assign(block=df.index.to_numpy() // queries.BLOCK)
        counted: dict[str | None, dict[int, dict[Notebook, Tally]]] = {}
        for (key, block, notebook), t in tally_groups(df, ["sweep_key", "block", "notebook"], selected=False).items():
            counted.setdefault(key, {}).setdefault(block, {})[notebook] = t
        left_out: dict[tuple, list[Excluded]] = {}
        for e in excluded(df):
            left_out.setdefault((e.sweep_key, e.id // queries.BLOCK), []).append(e)
            counted.setdefault(e.sweep_key, {}).setdefault(e.id // queries.BLOCK, {})
        keys = [python(key) for key in df["sweep_key"].to_numpy(object).tolist()]
        stats = _stats(zip(
            zip(keys, df["block"].tolist()), df["started_at"].to_numpy(float).tolist(),
            df["status"].to_numpy(object).tolist(), df["updated_at"].to_numpy(float).tolist(),
            df["energy_j"].to_numpy(float).tolist(), df["emissions_g"].to_numpy(float).tolist(),
            df["is_redundant"].to_numpy(bool).tolist(),
        ))  # fmt: skip
        chosen: dict[str | None, list[tuple]] = {}
        picked = df[df["is_selected"].to_numpy(bool)]
        for run_id, key, notebook, energy, emissions in zip(
            picked.index.tolist(), picked["sweep_key"].to_numpy(object).tolist(),
            picked["notebook"].to_numpy(object).tolist(), picked["energy_j"].to_numpy(float).tolist(),
            picked["emissions_g"].to_numpy(float).tolist(),
        ):  # fmt: skip
            chosen.setdefault(python(key), []).append((run_id, python(notebook), energy, emissions))
        self.sweeps = {}
        for key, token in wanted.items():
            # a block with runs left out has statistics of its other runs only: None, recounted
            # when its sweep next changes, as its statistics from all its runs cannot equal None
            blocks = {
                block: (None, tallies, tuple(left_out[(key, block)])) if (key, block) in left_out
                else (stats[(key, block)], tallies, ())
                for block, tallies in counted.get(key, {}).items()
            }  # fmt: skip
            self.sweeps[key] = _assemble(token, blocks, chosen.get(key, []))
        self.recounted_blocks = sum(len(s.blocks) for s in self.sweeps.values())


def _selection(members: list[tuple]) -> tuple | None:
    """The selected run's (id, notebook, energy, emissions) among a sweep's runs (``queries.
    MEMBER_COLUMNS`` tuples), as ``list_sweeps`` picks it: the last marked final in start order,
    else the last ``ok``; None without either."""
    marked = ok = None
    for run in members:
        run_id, started_at, status, is_final = run[:4]
        if is_final and (marked is None or (started_at, run_id) > marked[:2]):
            marked = (started_at, run_id, run)
        if status == "ok" and (ok is None or (started_at, run_id) > ok[:2]):
            ok = (started_at, run_id, run)
    chosen = (marked or ok or (None, None, None))[2]
    return None if chosen is None else (chosen[0], chosen[5], chosen[6], chosen[7])


def _stats(rows: Iterable[tuple]) -> dict[Any, tuple]:
    """Each block's statistics from its runs' ``(block, started_at, status, updated_at, energy_j,
    emissions_g, redundant_of or is_redundant)``: number of runs, last ``updated_at``, first and
    last start, energy and emissions summed exactly (``math.fsum``: the same whatever order the
    runs come in), the runs by status, the repeats. Equal statistics: an unchanged block."""
    found: dict[Any, list] = {}
    for block, started_at, status, updated_at, energy, emissions, redundant in rows:
        stat = found.get(block)
        if stat is None:
            stat = found[block] = [0, None, started_at, started_at, [], [], collections.Counter(), 0]
        stat[0] += 1
        if updated_at is not None and updated_at == updated_at and (stat[1] is None or updated_at > stat[1]):
            stat[1] = updated_at  # (not NaN: a frame's missing value)
        stat[2], stat[3] = min(stat[2], started_at), max(stat[3], started_at)
        if energy is not None and energy == energy:
            stat[4].append(energy)
        if emissions is not None and emissions == emissions:
            stat[5].append(emissions)
        stat[6][status] += 1
        stat[7] += redundant is not None and redundant is not False
    return {
        block: (n, last, first_start, last_start, _exact_sum(energy), _exact_sum(emissions),
                tuple(sorted(statuses.items())), repeats)
        for block, (n, last, first_start, last_start, energy, emissions, statuses, repeats) in found.items()
    }  # fmt: skip


def _exact_sum(values: list[float]) -> Any:
    """``math.fsum`` of ``values``; of figures no sum can hold (an overflow, inf and -inf: rows the
    tallies leave out), something as independent of their order: the values sorted."""
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return tuple(sorted(values))


def _assemble(token: Any, blocks: dict[int, Block], chosen: Iterable[tuple]) -> _Sweep:
    """A sweep's tallies from its blocks' and its selected run (id, notebook, energy J, emissions g),
    unless its figures left it out: then the sweep has no result counted."""
    by_notebook: dict[Notebook, list[Tally]] = {}
    left_out = tuple(sorted((e for _, _, found in blocks.values() for e in found), key=lambda e: e.id))
    for _, tallies, _ in blocks.values():
        for notebook, t in tallies.items():
            by_notebook.setdefault(notebook, []).append(t)
    for run_id, notebook, energy, emissions in chosen:
        if any(e.id == run_id for e in left_out):
            continue
        sums = np.zeros(len(SUMS))
        sums[list(_SELECTED)] = (1.0, _number(energy), _number(emissions))
        by_notebook.setdefault(notebook, []).append(Tally(sums, {}, frozenset(), {}, None, None))
    merged = {notebook: merge(found) for notebook, found in by_notebook.items()}
    return _Sweep(token, blocks, merged, merge(merged.values()), left_out)


def _number(value: Any) -> float:
    return 0.0 if value is None or value != value else float(value)  # missing or NaN: nothing


__all__ = ["ALL", "FULL_READ_ABOVE", "ProjectTallies"]
