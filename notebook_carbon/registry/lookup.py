"""The redundancy lookup on the notebook's thread, for SQLite registries, without SQLAlchemy.

It runs before every metered cell, so it must cost well under a millisecond: through the
background writer it waited behind the previous cell's write (~1.7 ms a cell), and SQLAlchemy on
the notebook thread would cost ~300 ms to import on the first cell. The query is one index search
(``ix_runs_redundancy``) over a read-only connection of the standard library's sqlite3, which WAL
lets run beside the writer without waiting. It must return what ``sweeps.find_redundant`` returns;
a test runs both on the same files. PostgreSQL registries use that one, through the writer.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import RegistryError

_QUERY = """
SELECT id, uid, name, started_at, ended_at, energy_j, emissions_g, count(*) OVER () AS repeats
FROM runs
WHERE project = ? AND code_fingerprint = ? AND inputs_fingerprint = ? AND params_fingerprint = ?
  AND status = 'ok'
ORDER BY started_at, id
LIMIT 1
"""


def sqlite_file(location: str) -> Path | None:
    """The file of an SQLite registry location (a path or ``sqlite:///`` URL); None for a server URL."""
    if location.startswith("sqlite:///"):
        return Path(location[len("sqlite:///") :])
    if "://" in location:
        return None
    return Path(location)


class SqliteLookup:
    """A read-only connection to one registry file, opened on first use; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def find_redundant(
        self, *, project: str, code_fingerprint: str, inputs_fingerprint: str, params_fingerprint: str
    ) -> dict[str, Any] | None:
        with self._lock:
            if self._conn is None:
                if not self.path.exists():
                    return None  # nothing recorded yet, so nothing to repeat
                uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
                self._conn.row_factory = sqlite3.Row
            try:
                row = self._conn.execute(
                    _QUERY, (project, code_fingerprint, inputs_fingerprint, params_fingerprint)
                ).fetchone()
            except sqlite3.Error as exc:
                raise RegistryError(f"looking for an identical earlier run in {self.path} failed: {exc}") from exc
        return dict(row) if row is not None else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
