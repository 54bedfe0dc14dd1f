"""Shared fixtures. Every test runs with a clean ``NOTEBOOK_CARBON_*`` environment and its own
config and data directories, so nothing a developer has configured leaks in or gets written to."""

from __future__ import annotations

import os

import pg  # tests/pg.py; imported now, before clean_environ hides NOTEBOOK_CARBON_TEST_POSTGRES
import pytest


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch, tmp_path_factory):
    for key in list(os.environ):
        if key.startswith("NOTEBOOK_CARBON_") or key == "JPY_SESSION_NAME":
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    return home


# -- registry backends: every registry test that takes ``registry_url`` runs on SQLite and PostgreSQL --


@pytest.fixture(scope="session")
def postgres_server():
    """The server of ``NOTEBOOK_CARBON_TEST_POSTGRES`` (see ``pg.py``): skip without one, fail under CI."""
    if pg.ADMIN_URL is None:
        if pg.in_ci():
            pytest.fail(f"{pg.MISSING}. CI is set, so the PostgreSQL tests must run, not skip", pytrace=False)
        pytest.skip(pg.MISSING)
    try:
        server = pg.Server(pg.ADMIN_URL)
    except RuntimeError as exc:  # set but unusable: a configuration error, never a silent skip
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def registry_backend(request) -> str:
    """``sqlite`` or ``postgresql``: the test runs once with each."""
    return request.param


@pytest.fixture
def registry_url(request, registry_backend: str, tmp_path):
    """A location for a new registry: a file in ``tmp_path``, or the URL of a fresh PostgreSQL database."""
    if registry_backend == "sqlite":
        yield str(tmp_path / "registry.sqlite")
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def registry_engine(registry_url: str):
    """A plain SQLAlchemy engine on the test's registry database, to look inside it or to prepare it
    (another program's tables, an edited ``meta``) behind the ``Registry``'s back."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    url = registry_url if "://" in registry_url else f"sqlite:///{registry_url}"
    engine = create_engine(url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def fresh_reports():
    """Registry problems are reported once per cause and process; each test starts with none told."""
    import notebook_carbon.session as session

    session._reported.clear()
    yield
    session._reported.clear()


@pytest.fixture
def shell(session):
    """A real IPython shell with the extension loaded on the test's ``session`` (each test module
    makes its own, with the meters and settings it needs); unloaded after the test."""
    from IPython.core.interactiveshell import InteractiveShell

    from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension

    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    assert load_ipython_extension(shell, session=session) is not None
    yield shell
    unload_ipython_extension(shell)
