"""Reading many runs fast: plain tuples from the driver, JSON columns decoded in one call.

For the readers that go through a whole project (``analysis.runs``, the statement's grouped runs): at
100,000 runs, building SQLAlchemy rows costs about as much again as reading them, and one
``json.loads`` per value about twice one call for them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["decode_many", "tuples"]


def tuples(conn: Any, query: Any) -> list[tuple]:
    """The rows of ``query`` as plain tuples: on SQLite through the driver's own cursor (IN lists
    expanded into parameters, as SQLAlchemy does when it executes), elsewhere through SQLAlchemy."""
    if conn.dialect.name != "sqlite":
        return [tuple(row) for row in conn.execute(query)]
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        return cursor.execute(str(compiled), params).fetchall()
    finally:
        cursor.close()


def decode_many(
    texts: Sequence[Any],
    *,
    missing: Callable[[], Any] = lambda: None,
    on_error: Callable[[str, ValueError], Any] | None = None,
) -> list[Any]:
    """The JSON ``texts`` decoded in order; a value that is not text becomes ``missing()``.

    One ``json.loads`` of them all as an array; if that fails or the count does not come out right
    (a value that is not exactly one JSON document), each is decoded on its own, so the broken one
    raises (``on_error(text, exc)`` may raise something clearer).
    """
    strings = [text for text in texts if isinstance(text, str)]
    try:
        decoded = json.loads("[" + ",".join(strings) + "]")
    except ValueError:
        decoded = None
    if decoded is None or len(decoded) != len(strings):
        decoded = []
        for text in strings:
            try:
                decoded.append(json.loads(text))
            except ValueError as exc:
                if on_error is not None:
                    on_error(text, exc)
                raise
    if len(strings) == len(texts):
        return decoded
    found = iter(decoded)
    return [next(found) if isinstance(text, str) else missing() for text in texts]
