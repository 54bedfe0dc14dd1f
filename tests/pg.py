"""The PostgreSQL server of the registry tests: fresh databases on the server an admin URL names.

``.ci/run`` starts a throwaway server on 127.0.0.1 and exports ``NOTEBOOK_CARBON_TEST_POSTGRES``
(``postgresql://postgres@127.0.0.1:PORT/postgres``). Without it the PostgreSQL variants of the
registry tests skip, saying how to run them, except under CI (``CI`` set), where they fail: CI
must test the lab-wide registry, not skip it silently.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

VARIABLE = "NOTEBOOK_CARBON_TEST_POSTGRES"
ADMIN_URL = os.environ.get(VARIABLE) or None
"""Read at import: the autouse ``clean_environ`` fixture removes NOTEBOOK_CARBON_* from each test."""

MISSING = (
    f"no PostgreSQL server for the registry tests: set {VARIABLE}=postgresql://postgres@127.0.0.1:5432/"
    "postgres (a user allowed to create databases) or run .ci/run, which starts a server"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _psycopg(url: str):
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Server:
    """Creates and drops the per-test databases; checks the server answers when it is made."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = _psycopg(admin_url)
        shown = self.admin_url.render_as_string(hide_password=True)
        # AUTOCOMMIT: CREATE/DROP DATABASE cannot run inside a transaction block.
        self._admin: Engine = create_engine(self.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with self._admin.connect() as conn:
                self.version = conn.execute(text("SHOW server_version")).scalar_one()
        except SQLAlchemyError as exc:
            self._admin.dispose()
            raise RuntimeError(
                f"{VARIABLE} names {shown}, but that server cannot be used: {getattr(exc, 'orig', exc)}; "
                f"start it (.ci/run shows how) or unset {VARIABLE} to skip the PostgreSQL tests"
            ) from exc

    def create_database(self) -> str:
        """A new empty database; its URL (psycopg 3 driver, password kept)."""
        name = f"notebook_carbon_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop a database made by ``create_database``, even while a leaked connection holds it."""
        name = make_url(url).database
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self._admin.dispose()
