"""A scope of runs, and its runs' columns for a frame: what ``analysis.runs`` reads.

A ``Scope`` is a project's runs (every project's, for a frame) narrowed by notebook, sweep, status,
start time and tags, as SQL over ``runs`` (``Scope.where``; ``figures`` sums the same scopes for a
statement). ``columns`` gives its runs as plain tuples in start order, each with its sweep
(``runs.sweep_key``), its sweep's label and whether it is its sweep's selected run (the one marked
final, else the latest ``ok`` run, decided over the whole sweep), as the ``sweeps`` table keeps
them, so no reader decides them again. No pandas object is made here: ``analysis.runs`` makes the
frame, with the garbage collector paused while it reads.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from ..errors import RegistryError
from .rows import tuples
from .schema import runs as table

if TYPE_CHECKING:
    from .store import Registry

__all__ = ["COLUMNS", "SWEEP_COLUMNS", "Scope", "columns"]


def _kind(column: Any) -> str:
    from sqlalchemy import Boolean, Float, Integer

    from .schema import JSON_COLUMNS

    if column.name in JSON_COLUMNS:
        return "json"
    if isinstance(column.type, Boolean):
        return "bool"
    if isinstance(column.type, Float):  # Double is a Float
        return "float"
    return "int" if isinstance(column.type, Integer) else "text"


COLUMNS: Mapping[str, str] = {c.name: _kind(c) for c in table.c if c.name not in ("sweep_key", "sweep_label")}
"""The columns of ``runs`` that ``columns`` reads, in table order, each with its kind: ``int``,
``float``, ``bool``, ``text`` or ``json`` (text holding a JSON list or object). The run's own sweep key
and label are not among them: ``SWEEP_COLUMNS`` gives its sweep's."""

SWEEP_COLUMNS = ("sweep_key", "sweep_label", "is_selected")
"""What ``columns`` adds after the columns asked for: the run's sweep key (None: in no sweep), its
sweep's label as the database keeps it (the sweep name, else what its runs' names share, else its
first run's notebook and cell) and whether it is its sweep's
selected run."""

_LABEL = (
    "CASE WHEN substr(runs.sweep_key, 1, 5) = 'code:' THEN COALESCE(sweeps.label, runs.sweep_key) "
    "ELSE runs.sweep_key END"
)
"""A run's sweep's label: an explicit sweep's name, whatever label a hand edit of ``sweep`` left."""
_AROUND = (("[", "]"), ("[", ","), (", ", "]"), (", ", ","))
"""Where a tag's JSON text sits in a run's ``tags`` (``json.dumps`` of a list): first or not, last or not."""


@dataclasses.dataclass(frozen=True)
class Scope:
    """Which runs: those of ``project`` (None: every project) in ``notebook`` and ``sweep`` (a sweep
    key; ``''``: runs of no notebook, of no sweep), with one of ``statuses``, started in
    [``since``, ``until``) (epoch s) and holding every one of ``tags``; None is no condition."""

    project: str | None = None
    notebook: str | None = None
    sweep: str | None = None
    statuses: tuple[str, ...] | None = None
    since: float | None = None
    until: float | None = None
    tags: tuple[str, ...] = ()
    pid: int | None = None
    host: str | None = None
    """The process that recorded the runs (a kernel's own runs: with ``since``, its start)."""

    @property
    def cut(self) -> bool:
        """Whether the scope may keep part of a notebook's or sweep's runs (by status, time or tags):
        its figures are then summed over its runs, not read from the totals the database keeps."""
        cuts = (self.statuses, self.since, self.until, self.pid, self.host)
        return any(value is not None for value in cuts) or bool(self.tags)

    def where(self, dialect: str, row: str = "runs") -> tuple[str, dict[str, Any]]:
        """SQL true for the runs of the scope (the ``runs`` row named ``row``), and its parameters."""
        sql: list[str] = []
        params: dict[str, Any] = {}

        def bind(name: str, value: Any) -> str:
            params[name] = value
            return ":" + name

        if self.project is not None:
            sql.append(f"{row}.project = {bind('project', self.project)}")
        for column, value in (("notebook", self.notebook), ("sweep_key", self.sweep)):
            if value == "":
                sql.append(f"{row}.{column} IS NULL")
            elif value is not None:
                sql.append(f"{row}.{column} = {bind(column, value)}")
        if self.statuses is not None:
            names = [bind(f"status_{i}", status) for i, status in enumerate(self.statuses)]
            sql.append(f"{row}.status IN ({', '.join(names)})" if names else "1 = 0")
        if self.since is not None:
            sql.append(f"{row}.started_at >= {bind('since', self.since)}")
        if self.pid is not None:
            sql.append(f"{row}.pid = {bind('pid', self.pid)}")
        if self.host is not None:
            sql.append(f"{row}.host = {bind('host', self.host)}")
        if self.until is not None:
            sql.append(f"{row}.started_at < {bind('until', self.until)}")
        find = "strpos" if dialect == "postgresql" else "instr"
        for i, tag in enumerate(self.tags):
            # tags are stored as json.dumps of a list: a tag is in it as its own JSON text, between
            # "[" or ", " and "]" or "," (inside a JSON string every quote is escaped)
            needles = [bind(f"tag_{i}_{j}", f"{a}{json.dumps(tag)}{b}") for j, (a, b) in enumerate(_AROUND)]
            sql.append("(" + " OR ".join(f"{find}({row}.tags, {n}) > 0" for n in needles) + ")")
        return " AND ".join(sql) or "1 = 1", params


# -- a frame's columns --------------------------------------------------------------------------


def columns(registry: Registry, names: Sequence[str], scope: Scope) -> tuple[list[str], list[tuple]]:
    """The runs of ``scope`` in start order (then id): their ``names`` columns of the ``runs`` table
    and ``SWEEP_COLUMNS``, as the names and the rows (plain tuples, values as the driver gives them)."""
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise RegistryError(f"columns: {', '.join(unknown)} not among those read ({', '.join(COLUMNS)})")
    where, params = scope.where(registry.dialect)
    sql = (
        f"SELECT {''.join(f'runs.{name}, ' for name in names)}runs.sweep_key, {_LABEL}, "
        "COALESCE(sweeps.selected_run_id = runs.id, false) FROM runs LEFT JOIN sweeps "
        f"ON sweeps.project = runs.project AND sweeps.sweep_key = runs.sweep_key WHERE {where}"
    )
    # One sweep's runs come through ix_runs_sweep_key: sorted here, for an ORDER BY makes SQLite's
    # planner (lacking statistics) walk the project's whole (project, started_at) index instead.
    narrow = scope.sweep is not None and "started_at" in names and "id" in names
    if not narrow:
        sql += " ORDER BY runs.started_at, runs.id"
    with registry.read("reading runs for analysis") as conn:
        rows = tuples(conn, text(sql).bindparams(**params))
    if narrow:
        rows.sort(key=operator.itemgetter(names.index("started_at"), names.index("id")))
    return [*names, *SWEEP_COLUMNS], rows
