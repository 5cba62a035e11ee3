"""Run operations through Alembic's ``Operations``, online or as an offline (``--sql``) script."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

import alembic_versioning  # noqa: F401  (registers the operations)

OpCall = Callable[[Operations], Any]


def run_online(engine: sa.Engine, call: OpCall, **opts: Any) -> None:
    """Run ``call(op)`` in one transaction on ``engine``; ``op`` is also the current migration's
    ``alembic.op``, as during ``alembic upgrade``, for the typed functions (``alembic_versioning.op``)."""
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn, opts=opts)) as op:
        call(op)


def render_offline(engine: sa.Engine, call: OpCall, **opts: Any) -> str:
    """The SQL script ``call(op)`` emits in offline mode for ``engine``'s dialect."""
    buffer = io.StringIO()
    context = MigrationContext.configure(  # as Alembic's generic env.py configures offline runs
        dialect_name=engine.dialect.name,
        dialect_opts={"paramstyle": "named"},
        opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True, **opts},
    )
    with Operations.context(context) as op:
        call(op)
    return buffer.getvalue()


def execute_script(engine: sa.Engine, script: str) -> None:
    """Execute an offline script the way ``psql -f`` / ``sqlite3`` would, in one transaction; on
    MariaDB with the ``mariadb`` client itself (its ``DELIMITER`` lines are the client's)."""
    if engine.dialect.name in ("mariadb", "mysql"):
        run_mariadb_client(engine, script)
        return
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        if engine.dialect.name == "sqlite":
            raw.executescript(script)
        else:  # psycopg without parameters: the text as psql reads it (a % is a %)
            raw.execute(script)


def run(engine: sa.Engine, call: OpCall, mode: str, **opts: Any) -> None:
    """Run ``call`` online, or render it offline and execute the script (``mode``)."""
    if mode == "online":
        run_online(engine, call, **opts)
    else:
        execute_script(engine, render_offline(engine, call, **opts))


def run_migration(engine: sa.Engine, call: OpCall, **opts: Any) -> None:
    """Run ``call(op)`` as ``alembic upgrade`` runs a migration with Alembic's generic env.py: on a
    connection whose transactions the migration context begins, the env's and the migration's own
    (what ``autocommit_block``, and so ``batch_size``, needs)."""
    with engine.connect() as conn:
        migrate_on(conn, call, **opts)


def migrate_on(conn: sa.Connection, call: OpCall, **opts: Any) -> None:
    """:func:`run_migration` on ``conn``, whose session a test keeps across migrations."""
    context = MigrationContext.configure(conn, opts=opts)
    with context.begin_transaction(), context.begin_transaction(_per_migration=True):
        with Operations.context(context) as op:  # as alembic upgrade installs alembic.op
            call(op)


def assert_refused(engine: sa.Engine, first: OpCall, call: OpCall, message: str, state: Callable[[], Any]) -> None:
    """``call`` raises a VersioningError matching ``message`` after ``first`` ran in the same
    migration, and ``state()`` is as before: the error rolls back what ``first`` wrote, and ``call``
    wrote nothing."""
    import pytest

    from alembic_versioning import VersioningError

    before = state()

    def both(op: Operations) -> None:
        first(op)
        call(op)

    with pytest.raises(VersioningError, match=message):
        run_online(engine, both)
    assert state() == before


def run_mariadb_client(engine: sa.Engine, script: str) -> str:
    """Feed ``script`` to the ``mariadb`` client connected to ``engine``'s database, as a user
    applies an offline script; its output. Raises ``RuntimeError`` with the client's error."""
    url = engine.url
    command = ["mariadb", "--batch", f"--host={url.host}", f"--port={url.port}", f"--user={url.username}"]
    if url.password:
        command.append(f"--password={url.password}")
    result = subprocess.run([*command, str(url.database)], input=script, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return result.stdout
