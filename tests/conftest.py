"""Database fixtures: every behaviour test runs on each of :data:`ENGINE_DIALECTS` (SQLite, and
real PostgreSQL and MariaDB servers), and dialect-specific tests on their own database.

PostgreSQL comes from pytest-postgresql's own process fixture; ``support/pg_ctl.sh`` runs
the server as an unprivileged user when the suite runs as root. MariaDB comes from
``support/mariadb.py`` (one server per session, started when a test first needs it).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor

from .support.mariadb import MariaDBServer, find_server

#: The dialects the ``engine`` fixture runs every dialect-parametrised test on; the environment
#: variable ``ALEMBIC_VERSIONING_TEST_DIALECTS`` (comma-separated) overrides it.
ENGINE_DIALECTS = ("sqlite", "postgresql", "mariadb")

postgresql_proc = factories.postgresql_proc(executable=str(Path(__file__).parent / "support" / "pg_ctl.sh"))

_database_numbers = itertools.count()


@contextmanager
def postgresql_database(proc: Any) -> Iterator[sa.Engine]:
    """A fresh database on the pytest-postgresql server ``proc``, dropped afterwards."""
    dbname = f"test_{next(_database_numbers)}"
    with DatabaseJanitor(user=proc.user, host=proc.host, port=proc.port, dbname=dbname, password=proc.password):
        url = sa.URL.create(
            "postgresql+psycopg",
            username=proc.user,
            password=proc.password,
            host=proc.host,
            port=proc.port,
            database=dbname,
        )
        engine = sa.create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A MariaDB server for the session (skipped where ``mariadbd`` is not installed:
    ``scripts/test`` installs it)."""
    executable = find_server()
    if executable is None:
        pytest.skip("MariaDB is not installed (mariadbd not found): scripts/test installs it")
    server = MariaDBServer.start(tmp_path_factory.mktemp("mariadb"), executable)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def mariadb_database(server: MariaDBServer) -> Iterator[sa.Engine]:
    """A fresh database on the MariaDB ``server``, dropped afterwards with every database the test
    created besides (a "schema" on MariaDB is a database: ``CREATE SCHEMA app`` makes one)."""
    dbname = f"test_{next(_database_numbers)}"
    admin = sa.create_engine(server.url(None), poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        before = set(conn.exec_driver_sql("SHOW DATABASES").scalars())
        conn.exec_driver_sql(f"CREATE DATABASE {dbname}")
    engine = sa.create_engine(server.url(dbname))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            created = set(conn.exec_driver_sql("SHOW DATABASES").scalars()) - before
            # a connection a failed test left open would keep DROP DATABASE waiting for its locks
            left_open = sa.text(
                "SELECT id FROM information_schema.processlist WHERE db IN :names AND id <> CONNECTION_ID()"
            ).bindparams(sa.bindparam("names", expanding=True))
            for session in conn.execute(left_open, {"names": sorted(created | {dbname})}).scalars():
                try:
                    conn.exec_driver_sql(f"KILL {int(session)}")
                except sa.exc.DBAPIError:  # it ended meanwhile
                    pass
            for name in sorted(created | {dbname}):
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {conn.dialect.identifier_preparer.quote(name)}")
        admin.dispose()


@contextmanager
def fresh_database(dialect: str, request: pytest.FixtureRequest, path: Path) -> Iterator[sa.Engine]:
    """A new empty database: a SQLite file at ``path``, or one on the PostgreSQL or MariaDB server."""
    if dialect == "mariadb":
        with mariadb_database(request.getfixturevalue("mariadb_server")) as engine:
            yield engine
        return
    if dialect == "sqlite":
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with postgresql_database(request.getfixturevalue("postgresql_proc")) as engine:
        yield engine


def engine_dialects() -> list[str]:
    """:data:`ENGINE_DIALECTS`, or the environment's override."""
    override = os.environ.get("ALEMBIC_VERSIONING_TEST_DIALECTS")
    return [d.strip() for d in override.split(",") if d.strip()] if override else list(ENGINE_DIALECTS)


@pytest.fixture(params=engine_dialects())
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh, empty database of each dialect."""
    with fresh_database(request.param, request, tmp_path / "test.db") as engine:
        yield engine


@pytest.fixture
def sqlite_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh, empty SQLite database, for SQLite-only behaviour."""
    with fresh_database("sqlite", request, tmp_path / "test.db") as engine:
        yield engine


@pytest.fixture
def pg_engine(postgresql_proc: Any) -> Iterator[sa.Engine]:
    """A fresh, empty PostgreSQL database, for PostgreSQL-only behaviour."""
    with postgresql_database(postgresql_proc) as engine:
        yield engine


@pytest.fixture
def mariadb_engine(mariadb_server: MariaDBServer) -> Iterator[sa.Engine]:
    """A fresh, empty MariaDB database (PyMySQL), for MariaDB-only behaviour."""
    with mariadb_database(mariadb_server) as engine:
        yield engine
