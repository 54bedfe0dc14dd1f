"""``Registry``: the experiment registry's typed public interface, over SQLite or PostgreSQL.

Rows go in and come out as plain dicts keyed by column name (see ``schema``); JSON columns (tags,
params, notes) are encoded on write and decoded on read. Units are in the names: ``*_at`` are UTC
epoch seconds, ``*_s`` seconds, ``*_j`` joules, ``*_g`` grams CO2e, ``water_l`` litres.

Writing: ``start_run``, ``checkpoint_run``, ``finish_run``, ``record_run`` (start and finish in
one), ``record_part``, ``set_final``, ``reap_crashed``. Reading: ``get_run``, ``runs``, ``page``,
``totals``, ``sweeps``, ``find_redundant``. ``read()`` and ``write()`` are transactions for the
registry's own modules; every database error comes out of them as ``RegistryError`` naming the
registry and what to do (``engine``). No module outside this package writes SQL against its tables.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, literal, select, update

from ..errors import RegistryError
from . import engine as engines
from . import migrations, pages, schema
from . import values as run_values
from .inserts import insert_children, insert_run
from .migrations import Migration
from .schema import runs
from .values import is_uid
from .totals import Totals

if TYPE_CHECKING:
    from .sweeps import SweepSummary


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
        ``migrations`` replaces ``migrations.MIGRATIONS`` (tests of the upgrade mechanism).
        """
        engine, where = engines.open_engine(str(location), read_only=read_only)
        registry = cls(engine, where, read_only=read_only)
        try:
            registry._prepare(migrations)
        except BaseException:
            engine.dispose()
            raise
        return registry

    def _prepare(self, plan: Mapping[int, Migration] | None) -> None:
        target = migrations.target_version(plan)
        # Most opens find an up-to-date registry; check that under a read lock so a reader never
        # queues behind writers, and take the write lock only to create or upgrade.
        with self.read("opening") as conn:
            found = migrations.stamped_version(conn, self.where)
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
        with self.write("creating or upgrading") as conn:
            found = migrations.stamped_version(conn, self.where)  # another process may have done it meanwhile
            if found is None:
                migrations.create(conn)
                found = schema.SCHEMA_VERSION
            if found > target:
                raise self._newer(found, target)
            migrations.upgrade(conn, self.where, found, plan)

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
        values = run_values.start_values(row, "start_run")
        with self.write(f"recording run {values['uid']}") as conn:
            # Values go as execution parameters, not into the statement: the statement then
            # stays the same from run to run and SQLAlchemy's compiled cache serves it.
            return insert_run(conn, values)

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
        values = run_values.final_values(row, "finish_run")
        computed = {}
        if "duration_s" not in values:
            computed["duration_s"] = literal(values["ended_at"]) - runs.c.started_at
        with self.write(f"finishing run {uid}") as conn:
            # A run wrongly marked crashed (its kernel only looked dead) may still bring its real result.
            self._update_run(conn, uid, values, allowed=("running", "crashed"), computed=computed)
            insert_children(conn, uid, components, samples)

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
        values = run_values.start_values(row, "record_run")
        values.update(run_values.final_values(final, "record_run"))
        values.setdefault("duration_s", values["ended_at"] - values["started_at"])
        with self.write(f"recording run {values['uid']}") as conn:
            run_id = insert_run(conn, values)
            insert_children(conn, values["uid"], components, samples)
            return run_id

    def _missing(self, uid: str) -> bool:
        with self.read(f"looking for run {uid}") as conn:
            return conn.execute(select(runs.c.id).where(runs.c.uid == uid)).first() is None

    def checkpoint_run(self, uid: str, row: Mapping[str, Any]) -> bool:
        """Store the figures so far of a ``running`` run, so a killed kernel still leaves its energy.

        Returns False, changing nothing, when the run is no longer running (finished meanwhile).
        """
        values = run_values.derive(run_values.encode_run(row, run_values.UPDATE_COLUMNS - {"status"}, "checkpoint_run"))
        values["updated_at"] = time.time()
        with self.write(f"checkpointing run {uid}") as conn:
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
                run_values.check_status(value)
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
        with self.read("reading the schema version") as conn:
            found = migrations.stamped_version(conn, self.where)
        if found is None:
            raise RegistryError(f"registry {self.where} has no schema version; it was not created by open()")
        return found

    def page(
        self, project: str, *, status: str | None = None, sweep: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of ``project``'s runs, newest first, optionally of one status or sweep key, and
        how many runs match in all (the cell's source left out: the biggest part of a row)."""
        return pages.runs_page(self, project, status=status, sweep=sweep, limit=limit, offset=offset)

    # -- totals and sweeps, kept by the database ---------------------------------------------------

    def totals(self, project: str, notebook: str | None = None, sweep: str | None = None) -> Totals:
        """The figures of ``project``, or of one of its notebooks or sweeps (``''``: runs of none),
        as the database keeps them: a few indexed reads, whatever the number of runs."""
        from .sweeps import read_totals

        with self.read(f"reading the totals of project {project!r}") as conn:
            return read_totals(conn, project, notebook, sweep)

    def sweeps(self, project: str, *, params: bool | int | Collection[str] = True) -> list[SweepSummary]:
        """The sweeps of ``project``, the most energy first, with their overhead and selected run,
        and the varying parameters of all of them, of none (False), of the first ``params`` listed
        (a number) or of the sweeps keyed in ``params``."""
        from .sweeps import list_sweeps

        with self.read(f"listing the sweeps of project {project!r}") as conn:
            return list_sweeps(conn, project, params=params)

    def find_redundant(
        self, project: str, *, code_fingerprint: str, inputs_fingerprint: str | None, params_fingerprint: str | None
    ) -> dict[str, Any] | None:
        """The first ``ok`` run identical to these fingerprints, with ``repeats``; None if none."""
        from .sweeps import find_redundant

        with self.read("looking for an identical earlier run") as conn:
            return find_redundant(
                conn, project=project, code_fingerprint=code_fingerprint,
                inputs_fingerprint=inputs_fingerprint, params_fingerprint=params_fingerprint,
            )  # fmt: skip

    def set_final(self, run_id: int | str) -> dict[str, Any]:
        """Mark a run (id or uid) its sweep's selected result; returns its id, project, sweep, name."""
        from .sweeps import set_final

        with self.write(f"marking run {run_id} final") as conn:
            return set_final(conn, self.where, run_id)

    def record_part(self, part: Mapping[str, Any]) -> int:
        """Store a finished part of a run (a block metered inside it); returns the part's id."""
        from .parts import record_part

        return record_part(self, part)

    def reap_crashed(self, **options: Any) -> list[int]:
        """Mark the ``running`` runs whose process is gone as ``crashed``, and the ranks of jobs whose
        process is gone (``jobs.reap_parts``); the ids of the runs marked and of the jobs changed."""
        from .jobs import reap_parts
        from .liveness import reap_crashed

        return reap_crashed(self, **options) + reap_parts(self, **options)

    # -- plumbing ----------------------------------------------------------------------------

    def select(self, query: Any, doing: str) -> list[dict[str, Any]]:
        """The rows of a query of this package's tables, decoded (for the registry's own modules)."""
        return self._select(query, doing)

    def _select(self, query: Any, doing: str) -> list[dict[str, Any]]:
        with self.read(doing) as conn:
            return [run_values.decode_row(dict(row._mapping)) for row in conn.execute(query)]

    def read(self, doing: str) -> contextlib.AbstractContextManager[Connection]:
        """A read transaction (a consistent snapshot); ``doing`` names it in errors."""
        return self._transaction(doing)

    def write(self, doing: str) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction, one writer at a time (SQLite's lock, PostgreSQL's advisory lock)."""
        return self._transaction(doing, write=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def _transaction(self, doing: str, *, write: bool = False) -> contextlib.AbstractContextManager[Connection]:
        return engines.transaction(self._engine, self.where, doing, write=write, read_only=self.read_only)

    def redundant_page(self, project: str, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """A page of ``project``'s redundant runs, newest first, each with the run it ``repeats``."""
        return pages.redundant_page(self, project, limit=limit, offset=offset)

    def excluded(self, project: str, notebook: str | None = None) -> list[dict[str, Any]]:
        """The runs ``totals`` leaves out (figures outside ``record.BOUNDS``): id, name, reason."""
        return pages.excluded(self, project, notebook)

    # -- scopes, for analysis and statements (``frames``, ``figures``; keyword arguments: ``frames.Scope``)

    def columns(self, names: Sequence[str], **scope: Any) -> tuple[list[str], list[tuple]]:
        """The runs of a scope in start order: ``names`` of ``runs`` and ``frames.SWEEP_COLUMNS``."""
        from .frames import Scope, columns

        return columns(self, names, Scope(**scope))

    def aggregate(self, project: str, **scope: Any) -> Totals:
        """The ``Totals`` of a scope of ``project``'s runs (cut by status, time, tags), summed by the database."""
        from .figures import aggregate
        from .frames import Scope

        return aggregate(self, Scope(project, **scope))

    def figures(self, project: str, **scope: Any) -> Any:
        """``figures.ScopeFigures``: what a statement says of a scope of ``project``'s runs, in one read."""
        from .figures import figures
        from .frames import Scope

        return figures(self, Scope(project, **scope))
