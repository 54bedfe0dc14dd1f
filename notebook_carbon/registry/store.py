"""``Registry``: the experiment registry over an SQLAlchemy engine (SQLite file or any database URL).

Rows go in and come out as plain dicts keyed by column name (see ``schema``); JSON columns (tags,
params, notes) are encoded on write and decoded on read. Units are in the names: ``*_at`` are UTC
epoch seconds, ``*_s`` seconds, ``*_j`` joules, ``*_g`` grams CO2e, ``water_l`` litres.

SQLite is set up for several writers at once (kernels, scripts, the server): WAL journal, a busy
timeout, and ``BEGIN IMMEDIATE`` for write transactions so two writers queue on the lock instead of
one failing when it upgrades a read lock. PostgreSQL (a lab-wide registry, through psycopg 3) gets
the same guarantee from a transaction-level advisory lock taken by every write transaction: writers
run one at a time, as on SQLite, so a read-then-write in a write transaction is never interleaved
with another writer's, while readers never wait (MVCC).

Errors of SQLAlchemy and the driver are translated here, once, into ``RegistryError`` with what to
do, and chained; a password never appears in them. A file that is not a registry is never written
to: not created over, not migrated, not even switched to WAL. A PostgreSQL database that holds
tables but no registry metadata is refused in the same way.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, literal, select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..errors import RegistryError
from . import schema
from .schema import Migration, is_uid, meta, runs

BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process holding the lock (SQLite's, or PostgreSQL's) before failing."""

CONNECT_TIMEOUT_S = 10
"""How long connecting to a PostgreSQL server may take (unless the URL sets ``connect_timeout``)."""

PG_WRITE_LOCK = int.from_bytes(b"nbcarbon", "big")
"""The PostgreSQL advisory lock (per database) that serialises the registry's write transactions."""

_WRITE_OPTION = "notebook_carbon_write"  # execution option: this transaction will write
_MOVE_ASIDE = "move it aside (or set NOTEBOOK_CARBON_REGISTRY to another file); nothing was overwritten"
_USE_EMPTY_DATABASE = (
    "give the registry a database of its own (createdb notebook_carbon) or set NOTEBOOK_CARBON_REGISTRY "
    "to another one; nothing was changed"
)


class Registry:
    """Runs, their per-component energy and their power samples, in one database.

    Create with ``Registry.open(location)``. Methods are safe to call from several threads (each
    takes its own pooled connection); the notebook itself goes through ``BackgroundWriter``.
    """

    def __init__(self, engine: Engine, where: str, *, read_only: bool = False) -> None:
        self._engine = engine
        self.where = where
        """The location, for messages: an absolute path, or the URL with its password hidden."""
        self.read_only = read_only

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        location: str | Path,
        *,
        read_only: bool = False,
        migrations: Mapping[int, Migration] | None = None,
    ) -> Registry:
        """Open (creating or upgrading as needed) the registry at a file path or SQLAlchemy URL.

        A plain path or ``sqlite:///`` URL is an SQLite file whose parent directories are created.
        A ``postgresql://`` (or ``postgres://``) URL is a PostgreSQL database, reached with psycopg 3
        (``postgresql+psycopg://``); it must be empty or a registry already.
        ``read_only`` opens an existing registry without ever writing to it (for the server).
        ``migrations`` replaces ``schema.MIGRATIONS`` (tests of the upgrade mechanism).
        """
        engine, where = _create_engine(str(location), read_only=read_only)
        registry = cls(engine, where, read_only=read_only)
        try:
            registry._prepare(migrations)
        except BaseException:
            engine.dispose()
            raise
        return registry

    def _prepare(self, migrations: Mapping[int, Migration] | None) -> None:
        target = schema.target_version(migrations)
        # Most opens find an up-to-date registry; check that under a read lock so a reader never
        # queues behind writers, and take the write lock only to create or upgrade.
        with self._transaction("opening") as conn:
            found = _stamped_version(conn, self.where)
        if found == target:
            return
        if found is not None and found > target:
            raise self._newer(found, target)
        if self.read_only:
            state = "does not exist yet" if found is None else f"has the older schema version {found}"
            raise RegistryError(
                f"registry {self.where} {state}; open it once for writing (run a metered cell, "
                "or any track() block, with this registry) to create or upgrade it, then retry"
            )
        with self._transaction("creating or upgrading", write=True) as conn:
            found = _stamped_version(conn, self.where)  # another process may have done it meanwhile
            if found is None:
                schema.metadata.create_all(conn)
                schema.install_sweep_triggers(conn)
                conn.execute(
                    insert(meta),
                    [
                        {"key": "application", "value": schema.APPLICATION},
                        {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                        {"key": "created_at", "value": repr(time.time())},
                    ],
                )
                found = schema.SCHEMA_VERSION
            if found > target:
                raise self._newer(found, target)
            for version, migrate in schema.migration_plan(found, migrations):
                try:
                    migrate(conn)
                except Exception as exc:
                    detail = _describe(exc) if isinstance(exc, SQLAlchemyError) else exc
                    raise RegistryError(
                        f"upgrading registry {self.where} to schema version {version} failed: {detail}; "
                        f"the upgrade was rolled back and the registry is unchanged (version {found}). "
                        "Please report this error to the notebook-carbon issue tracker"
                    ) from exc
            if found != target:
                conn.execute(update(meta).where(meta.c.key == "schema_version").values(value=str(target)))

    def _newer(self, found: int, target: int) -> RegistryError:
        return RegistryError(
            f"registry {self.where} has schema version {found}, newer than this notebook-carbon "
            f"understands (version {target}); upgrade notebook-carbon (pip install -U notebook-carbon). "
            "The registry was not changed"
        )

    def close(self, *, after_fork: bool = False) -> None:
        """Release every pooled connection (SQLite then folds the WAL back into the file).

        ``after_fork=True`` in a forked child drops the parent's connections without closing them,
        which would disturb the parent's use of them.
        """
        self._engine.dispose(close=not after_fork)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.where!r})"

    # -- writing -----------------------------------------------------------------------------

    def start_run(self, row: Mapping[str, Any]) -> int:
        """Record a new run with status ``running``; returns its database id.

        ``row`` must hold ``uid`` (``uuid.uuid4().hex``, made by the caller); ``project`` defaults
        to ``default`` and ``started_at`` (epoch s) to now.
        """
        values = schema.start_values(row, "start_run")
        with self._transaction(f"recording run {values['uid']}", write=True) as conn:
            # Values go as execution parameters, not into the statement: the statement then
            # stays the same from run to run and SQLAlchemy's compiled cache serves it.
            result = conn.execute(insert(runs), values)
            return int(result.inserted_primary_key[0])

    def finish_run(
        self,
        uid: str,
        row: Mapping[str, Any],
        components: Sequence[Mapping[str, Any]] = (),
        samples: Sequence[Mapping[str, Any]] = (),
        start: Mapping[str, Any] | None = None,
    ) -> None:
        """Store a run's final status and figures with its components and samples, in one transaction.

        ``row["status"]`` is one of ``ok``, ``failed``, ``interrupted``, ``crashed``; ``ended_at``
        defaults to now and ``duration_s`` to ``ended_at - started_at``. Only a run still
        ``running`` (or marked ``crashed`` by a guess that its kernel died) can be finished: a
        finished run is never rewritten. ``start``: the run's start row, recorded with its end when
        its start never reached the registry (``start_run`` failed), rather than losing the run.
        """
        if start is not None and self._missing(uid):
            self.record_run(start, row, components, samples)
            return
        values = schema.final_values(row, "finish_run")
        computed = {}
        if "duration_s" not in values:
            computed["duration_s"] = literal(values["ended_at"]) - runs.c.started_at
        with self._transaction(f"finishing run {uid}", write=True) as conn:
            # A run wrongly marked crashed (its kernel only looked dead) may still bring its real result.
            self._update_run(conn, uid, values, allowed=("running", "crashed"), computed=computed)
            _insert_children(conn, uid, components, samples)

    def record_run(
        self,
        row: Mapping[str, Any],
        final: Mapping[str, Any],
        components: Sequence[Mapping[str, Any]] = (),
        samples: Sequence[Mapping[str, Any]] = (),
    ) -> int:
        """``start_run(row)`` and ``finish_run(row["uid"], final, ...)`` as one insert in one transaction.

        For a run that finished before its start could be written (a quick cell whose two writes
        are both still queued): same checks and result as the two calls, half the database work.
        """
        values = schema.start_values(row, "record_run")
        values.update(schema.final_values(final, "record_run"))
        values.setdefault("duration_s", values["ended_at"] - values["started_at"])
        with self._transaction(f"recording run {values['uid']}", write=True) as conn:
            result = conn.execute(insert(runs), values)
            _insert_children(conn, values["uid"], components, samples)
            return int(result.inserted_primary_key[0])

    def _missing(self, uid: str) -> bool:
        with self._transaction(f"looking for run {uid}") as conn:
            return conn.execute(select(runs.c.id).where(runs.c.uid == uid)).first() is None

    def checkpoint_run(self, uid: str, row: Mapping[str, Any]) -> bool:
        """Store the figures so far of a ``running`` run, so a killed kernel still leaves its energy.

        Returns False, changing nothing, when the run is no longer running (finished meanwhile).
        """
        values = schema.encode_run(row, schema.UPDATE_COLUMNS - {"status"}, "checkpoint_run")
        values["updated_at"] = time.time()
        with self._transaction(f"checkpointing run {uid}", write=True) as conn:
            return self._update_run(conn, uid, values, allowed=("running",), strict=False)

    def _update_run(
        self,
        conn: Connection,
        uid: str,
        values: dict[str, Any],
        *,
        allowed: tuple[str, ...],
        strict: bool = True,
        computed: Mapping[str, Any] | None = None,
    ) -> bool:
        statement = update(runs).where(runs.c.uid == uid, runs.c.status.in_(allowed))
        if computed:
            statement = statement.values(computed)
        if conn.execute(statement, values).rowcount == 1:
            return True
        status = conn.execute(select(runs.c.status).where(runs.c.uid == uid)).scalar()
        if status is None:
            raise RegistryError(
                f"no run with uid {uid!r} in registry {self.where}; start_run must be recorded before it is "
                "finished (was the registry location changed in between?)"
            )
        if strict:
            raise RegistryError(
                f"run {uid} in registry {self.where} is already finished with status {status!r}; "
                "a finished run is never rewritten"
            )
        return False

    # -- reading -----------------------------------------------------------------------------

    def get_run(self, id_or_uid: int | str) -> dict[str, Any] | None:
        """The run with this database id (int or digits) or uid (32 hex digits); None if absent."""
        as_digits = isinstance(id_or_uid, str) and id_or_uid.isdigit() and len(id_or_uid) != 32
        if isinstance(id_or_uid, int) or as_digits:
            where = runs.c.id == int(id_or_uid)
        elif is_uid(id_or_uid):
            where = runs.c.uid == id_or_uid
        else:
            raise RegistryError(f"{id_or_uid!r} is neither a run id (a number) nor a run uid (32 hex digits)")
        found = self._select(select(runs).where(where), "reading a run")
        return found[0] if found else None

    def last_run(self, project: str | None = None) -> dict[str, Any] | None:
        """The most recently started run, of ``project`` if given; None when there is none."""
        found = self.runs(project=project, limit=1)
        return found[0] if found else None

    def runs(
        self, project: str | None = None, limit: int | None = None, status: str | Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Runs newest first (by ``started_at``, then id), optionally of one project and status(es)."""
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc())
        if project is not None:
            query = query.where(runs.c.project == project)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            for value in wanted:
                schema.check_status(value)
            query = query.where(runs.c.status.in_(wanted))
        if limit is not None:
            query = query.limit(int(limit))
        return self._select(query, "listing runs")

    def components(self, uid: str) -> list[dict[str, Any]]:
        """Per-component energy (J) of a run, with method, reason and degradation, in stored order."""
        table = schema.components
        query = select(table).where(table.c.run_uid == uid).order_by(table.c.id)
        return self._select(query, "reading components")

    def samples(self, uid: str) -> list[dict[str, Any]]:
        """Power samples (W) of a run, by time since its start (s)."""
        table = schema.samples
        query = select(table).where(table.c.run_uid == uid).order_by(table.c.t_s, table.c.id)
        return self._select(query, "reading samples")

    def schema_version(self) -> int:
        """The schema version stamped in the registry."""
        with self._transaction("reading the schema version") as conn:
            found = _stamped_version(conn, self.where)
        if found is None:
            raise RegistryError(f"registry {self.where} has no schema version; it was not created by open()")
        return found

    # -- plumbing ----------------------------------------------------------------------------

    def _select(self, query: Any, doing: str) -> list[dict[str, Any]]:
        with self._transaction(doing) as conn:
            return [schema.decode_row(dict(row._mapping)) for row in conn.execute(query)]

    @contextlib.contextmanager
    def _transaction(self, doing: str, *, write: bool = False) -> Iterator[Connection]:
        """One transaction; database errors become ``RegistryError`` naming the registry."""
        if write and self.read_only:
            raise RegistryError(f"{doing}: registry {self.where} was opened read-only")
        try:
            conn = self._engine.connect()
        except SQLAlchemyError as exc:
            if self._engine.dialect.name == "sqlite":
                raise self._failed(doing, exc) from exc
            message = _cannot_connect(self._engine.url, doing, exc)
            raise RegistryError(message, where=self.where, cause=message.split(": ", 1)[-1]) from exc
        try:
            with conn:
                if write:
                    conn.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise self._failed(doing, exc) from exc

    def _failed(self, doing: str, exc: SQLAlchemyError) -> RegistryError:
        detail = _describe(exc)
        return RegistryError(f"{doing} in registry {self.where} failed: {detail}", where=self.where, cause=detail)

    # -- beside the store: parts and redundancy ----------------------------------------------

    def record_part(self, part: Mapping[str, Any]) -> int:
        """Store a finished part of an enclosing run (see ``registry.parts.record_part``); its id."""
        from .parts import record_part

        return record_part(self, part)

    def find_redundant(
        self,
        project: str,
        *,
        code_fingerprint: str,
        inputs_fingerprint: str | None,
        params_fingerprint: str | None,
    ) -> dict[str, Any] | None:
        """The first ``ok`` run of ``project`` identical to these fingerprints, or None (see
        ``registry.sweeps.find_redundant``)."""
        from .sweeps import find_redundant

        return find_redundant(
            self,
            project=project,
            code_fingerprint=code_fingerprint,
            inputs_fingerprint=inputs_fingerprint,
            params_fingerprint=params_fingerprint,
        )


# -- helpers ---------------------------------------------------------------------------------


def _insert_children(
    conn: Connection, uid: str, components: Sequence[Mapping[str, Any]], samples: Sequence[Mapping[str, Any]]
) -> None:
    component_rows = [schema.child_row(c, schema.COMPONENT_COLUMNS, uid, "component") for c in components]
    sample_rows = [schema.child_row(x, schema.SAMPLE_COLUMNS, uid, "sample") for x in samples]
    if component_rows:
        conn.execute(insert(schema.components), component_rows)
    if sample_rows:
        conn.execute(insert(schema.samples), sample_rows)


def _create_engine(location: str, *, read_only: bool) -> tuple[Engine, str]:
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
            if "unable to open" not in str(exc) or os.access(path.parent, os.W_OK):
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
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
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
        if "meta" in found:
            row = cursor.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
            stamped = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise RegistryError(
                f"{where} is not an SQLite database, or is damaged ({exc}); {_MOVE_ASIDE}"
            ) from exc
        if "no such column" in str(exc):  # a 'meta' table of another shape
            stamped = None
        else:
            raise RegistryError(f"opening registry {where} failed: {_describe_sqlite(exc)}", where=where,
                                cause=_describe_sqlite(exc)) from exc
    if stamped != schema.APPLICATION:
        has = "has a 'meta' table but" if "meta" in found else "is an SQLite database but"
        raise RegistryError(f"{where} {has} is not a notebook-carbon registry; {_MOVE_ASIDE}")


def _describe_sqlite(exc: sqlite3.Error) -> str:
    """The driver's message with what to do, as ``_describe`` gives it for SQLAlchemy's errors."""
    return _describe(SQLAlchemyError(str(exc)))


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
            if "locked" not in str(exc) or time.monotonic() > deadline:
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
        if conn.get_execution_options().get(_WRITE_OPTION, False):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


def _stamped_version(conn: Connection, where: str) -> int | None:
    """The schema version in ``meta``; None for an empty database; error for a foreign one."""
    tables = set(inspect(conn).get_table_names())
    what_to_do = _MOVE_ASIDE if conn.dialect.name == "sqlite" else _USE_EMPTY_DATABASE
    if "meta" not in tables:
        ours = {table.name for table in schema.metadata.sorted_tables}
        if tables & ours:
            raise RegistryError(
                f"{where} holds tables named like ours but no registry metadata; {what_to_do}"
            )
        if tables:
            # (SQLite files are checked on connect already, before WAL mode touches them.)
            raise RegistryError(
                f"{where} holds other tables ({', '.join(sorted(tables)[:5])}) and is not a notebook-carbon "
                f"registry; {what_to_do}"
            )
        return None
    stamped = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
    if stamped.get("application") != schema.APPLICATION or "schema_version" not in stamped:
        raise RegistryError(f"{where} has a 'meta' table but is not a notebook-carbon registry; {what_to_do}")
    try:
        return int(stamped["schema_version"])
    except ValueError as exc:
        raise RegistryError(
            f"registry {where} has an unreadable schema version {stamped['schema_version']!r}; {what_to_do}"
        ) from exc


def _cannot_connect(url: URL, doing: str, exc: SQLAlchemyError) -> str:
    """Why connecting to a database server failed, what to check; never the password."""
    detail = " ".join(_describe(exc).split())  # libpq's messages span lines
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


def _describe(exc: SQLAlchemyError) -> str:
    """The driver's message without SQLAlchemy's statement dump and help link."""
    original = getattr(exc, "orig", None)
    text = str(original) if original is not None else str(exc).split("\n")[0]
    if "locked" in text or "busy" in text or "lock timeout" in text:
        text += f" (another process held the lock for more than {BUSY_TIMEOUT_S:.0f} s; retry later)"
    elif "not a database" in text or "malformed" in text:
        text += f"; the file is damaged: {_MOVE_ASIDE}"
    elif "disk is full" in text or "disk I/O error" in text:
        text += "; the disk holding the registry may be full: free some space, or set NOTEBOOK_CARBON_REGISTRY"
    elif "readonly" in text or "unable to open" in text:
        text += "; check that the file and its directory are writable, or set NOTEBOOK_CARBON_REGISTRY"
    elif "read-only transaction" in text:
        text += "; the registry was opened read-only"
    elif "permission denied" in text:
        text += "; the database user needs the rights to create tables in and write to this database"
    elif "UNIQUE" in text.upper():
        text += " (a run with this uid is already recorded; nothing was overwritten)"
    return text
