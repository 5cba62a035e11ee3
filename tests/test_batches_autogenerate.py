"""Autogenerate gives the repairs of tables with many versions ``batch_size=`` (by estimate, without
a count: PostgreSQL's ``reltuples``, SQLite's largest ``rowid``, MariaDB's ``table_rows``)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.util import CommandError

from alembic_versioning import VersionedTableOp
from alembic_versioning.autogenerate.options import Options

from .support.apps import App, versioned_app, write_history
from .support.autogen import apply, namespace, produce, render, script_body


def drifted(engine: sa.Engine, app: App) -> None:
    """A Continuum history, a live row behind its back, a stale end id; statistics gathered."""
    app.metadata.create_all(engine)
    write_history(engine, app, seed=2)
    with engine.begin() as conn:
        conn.execute(sa.insert(app.table("article")), [{"id": 500, "name": "raw"}])
        conn.exec_driver_sql("UPDATE article_version SET end_transaction_id = NULL WHERE id = 1")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "mariadb":
            conn.exec_driver_sql("ANALYZE TABLE article, article_version")
        else:
            conn.exec_driver_sql("ANALYZE")


def batch_sizes(script: Any) -> dict[tuple[str, str], int | None]:
    return {
        (op.op_name, op.table_name): op.batch_size for op in script.upgrade_ops.ops if isinstance(op, VersionedTableOp)
    }


def test_repairs_of_large_tables_are_batched(engine: sa.Engine) -> None:
    with versioned_app() as app:
        drifted(engine, app)
        options = {"batch_threshold": 10, "batch_size": 500}
        script = produce(engine, app.metadata, alembic_versioning=options)
        found = batch_sizes(script)
        assert set(found) == {("update_end_transaction_ids", "article"), ("backfill_versions", "article")}
        assert set(found.values()) == {500}
        assert "batch_size=500" in render(engine, script)
        smaller = produce(engine, app.metadata, alembic_versioning={"batch_threshold": 10_000})
        assert set(batch_sizes(smaller).values()) == {None}  # below the threshold
        off = produce(engine, app.metadata, alembic_versioning={"batch_threshold": 10, "batch_size": 0})
        assert set(batch_sizes(off).values()) == {None}


def test_a_revision_with_schema_changes_says_so_instead(pg_engine: sa.Engine) -> None:
    with versioned_app() as app:
        drifted(pg_engine, app)
        sa.Table("new_table", app.metadata, sa.Column("id", sa.Integer, primary_key=True))
        script = produce(pg_engine, app.metadata, alembic_versioning={"batch_threshold": 10})
        ops = [op for op in script.upgrade_ops.ops if isinstance(op, VersionedTableOp)]
        assert ops and all(op.batch_size is None for op in ops)
        assert all("in a revision without schema changes this repair would run in batches" in op.finding for op in ops)


def test_generated_batched_repairs_run(pg_engine: sa.Engine) -> None:
    from .support.migrate import run_migration

    with versioned_app() as app:
        drifted(pg_engine, app)
        script = produce(pg_engine, app.metadata, alembic_versioning={"batch_threshold": 10, "batch_size": 3})
        code = render(pg_engine, script)
        assert "batch_size=3" in code
        run_migration(pg_engine, lambda op: exec(script_body(code), namespace(op)))
        assert produce(pg_engine, app.metadata).upgrade_ops.is_empty()
        with pytest.raises(Exception, match="begin_transaction"):
            apply(pg_engine, script)  # inside a transaction Alembic does not own: refused


def test_batch_options() -> None:
    assert (Options().batch_threshold, Options().batch_size) == (1_000_000, 10_000)
    options = Options.from_settings({"batch_threshold": "2_000_000", "batch_size": "5000"})
    assert (options.batch_threshold, options.batch_size) == (2_000_000, 5000)
    for wrong in ({"batch_size": "many"}, {"batch_threshold": -1}, {"batch_size": True}):
        with pytest.raises(CommandError, match="pass a whole number"):
            Options.from_settings(wrong)


def test_the_row_estimate_reads_no_rows(engine: sa.Engine) -> None:
    """The estimate follows the table's size without counting it (SQLite: none for a table
    without rowid); it is NULL for a table the database has no figure for."""
    from alembic_versioning.sql.constructs import RowEstimate

    metadata = sa.MetaData()
    table = sa.Table("estimated", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer))
    keyless = sa.Table(
        "estimated_no_rowid", metadata, sa.Column("id", sa.Integer, primary_key=True), sqlite_with_rowid=False
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [{"id": i, "n": i} for i in range(1, 3001)])
        conn.execute(sa.insert(keyless), [{"id": i} for i in range(1, 11)])
    analyze = {"mariadb": "ANALYZE TABLE estimated", "postgresql": "ANALYZE estimated"}.get(engine.dialect.name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if analyze:
            conn.exec_driver_sql(analyze)
        estimate = conn.execute(sa.select(RowEstimate(table))).scalar()
        unknown = conn.execute(sa.select(RowEstimate(keyless))).scalar()
    assert estimate is not None and 2000 <= estimate <= 4000
    if engine.dialect.name == "sqlite":
        assert unknown is None
    metadata.drop_all(engine)
