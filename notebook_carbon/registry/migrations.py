"""Creating a registry, and bringing one of an older schema version up to date, in place.

An older registry is upgraded on open by ``MIGRATIONS`` (``upgrades``), applied in order inside the
same transaction as the version bump, so a failed upgrade leaves the database exactly as it was.
Migrations only add (tables, columns, indexes, values derived from what is recorded) or replace
derived caches; they never drop or rewrite recorded data.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlalchemy import Connection, insert, inspect, select, update

from ..errors import RegistryError
from . import schema, triggers
from .engine import MOVE_ASIDE, USE_EMPTY_DATABASE
from .schema import meta
from .upgrades import MIGRATIONS, Migration, install_triggers


def create(conn: Connection) -> None:
    """A new registry of the newest schema, stamped as ours, in an empty database."""
    schema.metadata.create_all(conn)
    conn.exec_driver_sql(triggers.names_index_statement(conn.dialect.name))
    install_triggers(conn)
    conn.execute(
        insert(meta),
        [
            {"key": "application", "value": schema.APPLICATION},
            {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
            {"key": "created_at", "value": repr(time.time())},
        ],
    )


def upgrade(conn: Connection, where: str, found: int, migrations: Mapping[int, Migration] | None) -> None:
    """Apply the migrations from version ``found`` up to the target, then stamp the target."""
    target = target_version(migrations)
    for version, migrate in migration_plan(found, migrations):
        try:
            migrate(conn)
        except Exception as exc:
            from .engine import describe

            raise RegistryError(
                f"upgrading registry {where} to schema version {version} failed: {describe(exc)}; "
                f"the upgrade was rolled back and the registry is unchanged (version {found}). "
                "Please report this error to the notebook-carbon issue tracker"
            ) from exc
    if found != target:
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value=str(target)))


def target_version(migrations: Mapping[int, Migration] | None = None) -> int:
    """The newest schema version reachable with ``migrations`` (default ``MIGRATIONS``)."""
    migrations = MIGRATIONS if migrations is None else migrations
    return max([schema.SCHEMA_VERSION, *migrations])


def migration_plan(found: int, migrations: Mapping[int, Migration] | None = None) -> list[tuple[int, Migration]]:
    """The ``(version, migration)`` steps from schema version ``found`` up to the target, in order.

    ``migrations`` defaults to ``MIGRATIONS``; passing another mapping lets tests exercise the
    mechanism on a throwaway file without touching this module. A gap in the chain is a bug in
    this package, reported as ``ValueError``.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    steps = []
    for version in range(found + 1, target_version(migrations) + 1):
        if version not in migrations:
            raise ValueError(f"no migration to schema version {version}")
        steps.append((version, migrations[version]))
    return steps


__all__ = [
    "MIGRATIONS", "Migration", "create", "install_triggers", "migration_plan", "stamped_version", "target_version",
    "upgrade",
]  # fmt: skip


def stamped_version(conn: Connection, where: str) -> int | None:
    """The schema version in ``meta``; None for an empty database; error for a foreign one."""
    tables = set(inspect(conn).get_table_names())
    what_to_do = MOVE_ASIDE if conn.dialect.name == "sqlite" else USE_EMPTY_DATABASE
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
