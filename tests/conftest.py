"""Database fixtures: every behaviour test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from pytest-postgresql's own process fixture; ``support/pg_ctl.sh`` runs
the server as an unprivileged user when the suite runs as root.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor

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


@contextmanager
def fresh_database(dialect: str, request: pytest.FixtureRequest, path: Path) -> Iterator[sa.Engine]:
    """A new empty database: a SQLite file at ``path``, or one on the PostgreSQL server."""
    if dialect == "sqlite":
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with postgresql_database(request.getfixturevalue("postgresql_proc")) as engine:
        yield engine


@pytest.fixture(params=["sqlite", "postgresql"])
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
