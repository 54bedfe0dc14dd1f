"""The inserts on the path of every metered cell: a run, its components and its samples.

A metered cell waits until its run is committed (nothing is lost if the kernel dies next), so the
time these inserts take is time added to the cell. They are sent as driver SQL, one statement
string per set of columns, kept: SQLAlchemy's compiling, cache lookup and parameter processing
cost more than SQLite's own work for a one-row insert. Errors still pass through SQLAlchemy
(``exec_driver_sql``), so ``engine.transaction`` reports them as every other registry error.

Values of other types than the plain ones a driver binds as they are (text, numbers, booleans,
None) go the general way, ``insert(table)``, with SQLAlchemy's own checks and conversions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert

from .schema import components, runs, samples
from .values import COMPONENT_COLUMNS, SAMPLE_COLUMNS, child_row

__all__ = ["insert_children", "insert_run"]

_PLAIN = frozenset((str, int, float, bool, type(None)))
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_statements: dict[tuple[str, str, tuple[str, ...], bool], str] = {}


def insert_run(conn: Connection, values: Mapping[str, Any]) -> int:
    """Insert one run (``values``: its columns, checked by ``schema``); its database id."""
    columns = tuple(values)
    sql = _statement(conn, runs, columns, returning=True)
    if sql is None or not _plain(values.values()):
        return int(conn.execute(insert(runs), dict(values)).inserted_primary_key[0])
    return int(conn.exec_driver_sql(sql, tuple(values.values())).scalar_one())


def insert_children(
    conn: Connection, uid: str, found: Sequence[Mapping[str, Any]], sampled: Sequence[Mapping[str, Any]]
) -> None:
    """Store a run's components and samples, checked, in the transaction of ``conn``."""
    for table, allowed, what, given in ((components, COMPONENT_COLUMNS, "component", found),
                                        (samples, SAMPLE_COLUMNS, "sample", sampled)):  # fmt: skip
        rows = [child_row(row, allowed, uid, what) for row in given]
        if not rows:
            continue
        columns = tuple(rows[0])  # every row has every column, in the same order (``child_row``)
        sql = _statement(conn, table, columns, returning=False)
        tuples = [tuple(row[column] for column in columns) for row in rows]
        if sql is None or not all(_plain(values) for values in tuples):
            conn.execute(insert(table), rows)
        else:
            conn.exec_driver_sql(sql, tuples)


def _plain(values: Any) -> bool:
    return all(type(value) in _PLAIN for value in values)


def _statement(conn: Connection, table: Table, columns: tuple[str, ...], *, returning: bool) -> str | None:
    """The driver SQL inserting ``columns`` into ``table`` (None for a driver whose parameter style
    is not positional); made once per set of columns."""
    dialect = conn.dialect
    key = (dialect.name, table.name, columns, returning)
    sql = _statements.get(key)
    if sql is None:
        mark = _MARKS.get(dialect.paramstyle)
        if mark is None or any(column not in table.c for column in columns):
            return None  # an unknown column: the general way says which
        quote = dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)})" + (" RETURNING id" if returning else "")
        )
        _statements[key] = sql
    return sql
