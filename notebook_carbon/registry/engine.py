"""Opening a registry's database: SQLite files and PostgreSQL servers, and their errors in words.

SQLite is set up for several writers at once (kernels, scripts, the server): WAL journal, a busy
timeout, and ``BEGIN IMMEDIATE`` for write transactions so two writers queue on the lock instead of
one failing when it upgrades a read lock. PostgreSQL (a lab-wide registry, through psycopg 3) gets
the same guarantee from a transaction-level advisory lock taken by every write transaction: writers
run one at a time, as on SQLite, so a read-then-write in a write transaction is never interleaved
with another writer's, while readers never wait (MVCC).

Errors of the drivers are told apart by their type and code (SQLite's extended result code,
PostgreSQL's SQLSTATE), never by the text of their message, and described with what to do; a
password never appears in them. A file that is not a registry is never written to: not created
over, not migrated, not even switched to WAL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..errors import RegistryError
from . import schema

BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process holding the lock (SQLite's, or PostgreSQL's) before failing."""

CONNECT_TIMEOUT_S = 10
"""How long connecting to a PostgreSQL server may take (unless the URL sets ``connect_timeout``)."""

PG_WRITE_LOCK = int.from_bytes(b"nbcarbon", "big")
"""The PostgreSQL advisory lock (per database) that serialises the registry's write transactions."""

MIN_SQLITE = (3, 38)
"""The oldest SQLite the registry runs on: generated columns (3.31) and JSON functions built in (3.38)."""

WRITE_OPTION = "notebook_carbon_write"  # execution option: this transaction will write
MOVE_ASIDE = "move it aside (or set NOTEBOOK_CARBON_REGISTRY to another file); nothing was overwritten"
USE_EMPTY_DATABASE = (
    "give the registry a database of its own (createdb notebook_carbon) or set NOTEBOOK_CARBON_REGISTRY "
    "to another one; nothing was changed"
)


def open_engine(location: str, *, read_only: bool) -> tuple[Engine, str]:
    """The engine for ``location`` and its printable form (absolute path, or URL without password)."""
    if "://" in location:
        try:
            url = make_url(location)
        except ArgumentError as exc:
            raise RegistryError(
                f"registry location {location!r} is not a file path or a database URL: {exc}; fix the "
                "registry setting (NOTEBOOK_CARBON_REGISTRY)"
            ) from exc
    else:
        url = URL.create("sqlite+pysqlite", database=location)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3, not SQLAlchemy's default psycopg2
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        if url.database.startswith("file:"):
            raise RegistryError(f"give the registry as a plain path, not an SQLite URI: {location!r}")
        path = Path(url.database).expanduser()
        where = str(path.absolute())
        _check_sqlite_file(path, read_only=read_only)
        url = url.set(database=str(path))
    options: dict[str, Any] = {}
    if read_only and url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        # SQLite itself refuses to write, whatever a bug in this package might try
        options["creator"] = _sqlite_reader(Path(url.database).expanduser())
    if url.get_backend_name() == "postgresql":
        # A server restarted overnight leaves a long-lived kernel with dead pooled connections:
        # test each on checkout (one round trip) rather than fail the next run's write.
        options["pool_pre_ping"] = True
        if "connect_timeout" not in url.query:  # an unreachable host fails in seconds, not minutes
            options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(url, **options)
    except (ArgumentError, ImportError) as exc:
        raise RegistryError(
            f"cannot use registry {where}: {exc}; install the database driver "
            "(PostgreSQL: pip install 'psycopg[binary]') or fix the URL"
        ) from exc
    if url.get_backend_name() == "sqlite":
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise RegistryError(
                f"registry {where}: this Python's SQLite is version {sqlite3.sqlite_version}; the registry "
                f"needs {'.'.join(map(str, MIN_SQLITE))} or newer (generated columns, JSON functions); use a "
                "newer Python build, or a PostgreSQL registry (NOTEBOOK_CARBON_REGISTRY=postgresql://...)"
            )
        _configure_sqlite(engine, where, read_only=read_only)
    elif url.get_backend_name() == "postgresql":
        _configure_postgresql(engine, read_only=read_only)
    return engine, where


def _check_sqlite_file(path: Path, *, read_only: bool) -> None:
    """Refuse a path that cannot be a registry file before SQLite opens it; create its directory.

    Only SQLite itself ever opens the file: closing any descriptor of a database file drops every
    POSIX lock this process holds on it (SQLite's "How To Corrupt An SQLite Database File", 2.2),
    so a plain ``open()``/``close()`` here, in a process that already has a connection (the
    redundancy lookup, a second ``Registry``), would let another process delete the WAL under
    it. Whether the file is an SQLite database, and ours, is asked of SQLite on connect.
    """
    if path.is_dir():
        raise RegistryError(f"the registry path {path} is a directory; point the registry setting at a file")
    if read_only:
        if not path.is_file():
            raise RegistryError(
                f"there is no registry at {path}; check the path (or NOTEBOOK_CARBON_REGISTRY), or run "
                "a metered cell to create one"
            )
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(
            f"cannot create the registry directory {path.parent}: {exc.strerror or exc}; set "
            "NOTEBOOK_CARBON_REGISTRY (or the registry setting) to a writable location"
        ) from exc


def _sqlite_reader(path: Path) -> Callable[[], sqlite3.Connection]:
    """Connections that only read ``path``, also where the file's directory is read-only.

    ``mode=ro`` still needs the WAL's shared-memory file, which SQLite cannot create in a
    read-only directory (a registry on a read-only mount, or a colleague's directory) when no
    writer has the registry open: there, ``immutable=1`` reads the file as it is, which is exact
    because nothing can change a file on a read-only file system.
    """
    base = f"file:{quote(str(path.absolute()))}?mode=ro"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(base, uri=True, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if kind(exc) != "unwritable" or os.access(path.parent, os.W_OK):
                raise
            wal = Path(f"{path}-wal")
            if wal.is_file() and wal.stat().st_size > 0:  # runs not yet folded into the file: unreadable here
                raise RegistryError(
                    f"registry {path} has runs in its write-ahead log ({wal.name}) that cannot be read "
                    "from a read-only directory; open it once from a session that may write there "
                    "(any metered cell), which folds them into the file"
                ) from exc
        return sqlite3.connect(base + "&immutable=1", uri=True, check_same_thread=False)

    return connect


def _configure_sqlite(engine: Engine, where: str, *, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling skips BEGIN for DDL and SELECT; we emit BEGIN
        # ourselves (below) so migrations are atomic and writers take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # REPLACE deletes the row it replaces: with this, that delete fires the triggers that
            # keep the totals, which would otherwise count the replaced row twice
            cursor.execute("PRAGMA recursive_triggers = ON")
            # Checked before the journal mode is set: switching to WAL rewrites the file header,
            # which must never happen to another program's database.
            _check_ours(cursor, where)
            if not read_only:
                _enable_wal(cursor)  # readers and writers do not block each other
                cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock at once; a deferred transaction that later writes can
        # fail with "database is locked" without waiting the busy timeout.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _check_ours(cursor: Any, where: str) -> None:
    """Refuse, through SQLite, a file that is not SQLite's or holds another program's tables.

    An empty database (a new file) is ours to create; any other must carry our ``meta`` stamp.
    """
    try:
        found = {name for (name,) in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not found:
            return
        stamped = None
        shape = {column for (_, column, *_) in cursor.execute("PRAGMA table_info(meta)")}
        if {"key", "value"} <= shape:  # (another program's 'meta' table may have other columns)
            row = cursor.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
            stamped = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        if kind(exc) == "damaged":
            raise RegistryError(
                f"{where} is not an SQLite database, or is damaged ({exc}); {MOVE_ASIDE}"
            ) from exc
        raise RegistryError(f"opening registry {where} failed: {describe(exc)}", where=where,
                            cause=describe(exc)) from exc
    if stamped != schema.APPLICATION:
        has = "has a 'meta' table but" if "meta" in found else "is an SQLite database but"
        raise RegistryError(f"{where} {has} is not a notebook-carbon registry; {MOVE_ASIDE}")


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (it stays so), waiting up to the busy timeout for the lock that needs.

    SQLite does not call its busy handler for this lock: when several processes open a new
    registry at once, all but one get "database is locked" at once, whatever the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if kind(exc) != "locked" or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _configure_postgresql(engine: Engine, *, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            # Like SQLite's busy timeout: wait this long for another writer's lock, then fail.
            cursor.execute(f"SET lock_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if read_only:  # the server itself refuses to write, whatever a bug here might try
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_connection.commit()  # a SET rolled back with its transaction would be undone

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # One writer at a time, as SQLite's BEGIN IMMEDIATE: held until commit or rollback, taken
        # before anything is read, so writers never deadlock and a read-then-write (creating the
        # schema, marking a run final) sees no other writer's work half done. Readers never wait.
        if conn.get_execution_options().get(WRITE_OPTION, False):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


def cannot_connect(url: URL, doing: str, exc: SQLAlchemyError) -> str:
    """Why connecting to a database server failed, what to check; never the password."""
    detail = " ".join(describe(exc).split())  # libpq's messages span lines
    if url.password:
        detail = detail.replace(str(url.password), "***")
    if not detail.endswith((".", "?", "!")):
        detail += "."
    where = url.render_as_string(hide_password=True)
    host = f"{url.host or 'the local socket'}{f':{url.port}' if url.port else ''}"
    user = url.username or "(default)"
    database = url.database or url.username or "(default)"
    return (
        f"{doing}: cannot connect to the registry database {where}: {detail} Check that the server is "
        f"running and reachable at {host}, that the database {database!r} exists (createdb {database}), "
        f"and that user {user!r} may connect to it (password, pg_hba.conf); or set "
        "NOTEBOOK_CARBON_REGISTRY to another registry"
    )


_ADVICE = {
    "locked": " (another process held the lock for more than {timeout:.0f} s; retry later)",
    "damaged": "; the file is damaged: " + MOVE_ASIDE,
    "full": "; the disk holding the registry may be full: free some space, or set NOTEBOOK_CARBON_REGISTRY",
    "unwritable": "; check that the file and its directory are writable, or set NOTEBOOK_CARBON_REGISTRY",
    "read-only": "; the registry was opened read-only",
    "forbidden": "; the database user needs the rights to create tables in and write to this database",
    "duplicate": " (a run with this uid is already recorded; nothing was overwritten)",
}

_SQLITE_KINDS = {
    "SQLITE_BUSY": "locked", "SQLITE_LOCKED": "locked",
    "SQLITE_CORRUPT": "damaged", "SQLITE_NOTADB": "damaged",
    "SQLITE_FULL": "full", "SQLITE_IOERR": "full",
    "SQLITE_READONLY": "unwritable", "SQLITE_CANTOPEN": "unwritable", "SQLITE_PERM": "unwritable",
    "SQLITE_CONSTRAINT_UNIQUE": "duplicate", "SQLITE_CONSTRAINT_PRIMARYKEY": "duplicate",
}  # fmt: skip
"""SQLite's (extended) result code names, as ``sqlite3.Error.sqlite_errorname`` gives them, by kind."""

_POSTGRES_KINDS = {
    "55P03": "locked", "40P01": "locked",  # lock_not_available, deadlock_detected
    "53100": "full",  # disk_full
    "25006": "read-only",  # read_only_sql_transaction
    "42501": "forbidden",  # insufficient_privilege
    "23505": "duplicate",  # unique_violation
}  # fmt: skip
"""PostgreSQL's SQLSTATE codes, as psycopg's errors carry them, by kind."""


def kind(error: BaseException | None) -> str | None:
    """What went wrong, from a driver error's type and code: a key of ``_ADVICE``, or None."""
    if isinstance(error, sqlite3.Error):
        name = getattr(error, "sqlite_errorname", None) or ""  # e.g. SQLITE_IOERR_WRITE
        return _SQLITE_KINDS.get(name) or _SQLITE_KINDS.get("_".join(name.split("_")[:2]))
    state = getattr(error, "sqlstate", None)
    return _POSTGRES_KINDS.get(state) if isinstance(state, str) else None


def describe(exc: BaseException) -> str:
    """A driver's message (without SQLAlchemy's statement dump and help link) and what to do."""
    original = getattr(exc, "orig", None) or (exc if not isinstance(exc, SQLAlchemyError) else None)
    text = str(original) if original is not None else str(exc).split("\n")[0]
    return text + _ADVICE.get(kind(original) or "", "").format(timeout=BUSY_TIMEOUT_S)


@contextlib.contextmanager
def transaction(engine: Engine, where: str, doing: str, *, write: bool, read_only: bool) -> Iterator[Connection]:
    """One transaction on ``engine`` (registry ``where``); every database error becomes a
    ``RegistryError`` that names the registry, what was being done, and what to do."""
    if write and read_only:
        raise RegistryError(f"{doing}: registry {where} was opened read-only")
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        if engine.dialect.name == "sqlite":
            raise _failed(where, doing, exc) from exc
        message = cannot_connect(engine.url, doing, exc)
        raise RegistryError(message, where=where, cause=message.split(": ", 1)[-1]) from exc
    try:
        with conn:
            if write:
                conn.execution_options(**{WRITE_OPTION: True})
            elif engine.dialect.name == "postgresql":
                # one snapshot for all of a read's statements, as SQLite's read transaction gives
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
    except SQLAlchemyError as exc:
        raise _failed(where, doing, exc) from exc


def _failed(where: str, doing: str, exc: SQLAlchemyError) -> RegistryError:
    detail = describe(exc)
    return RegistryError(f"{doing} in registry {where} failed: {detail}", where=where, cause=detail)
