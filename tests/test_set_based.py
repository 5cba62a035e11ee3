"""Set-based: the operations and autogenerate's drift checks run the same statements whatever
the number of rows, and bring no row of the live, version or transaction tables to the client
(besides the catalog, read for reflection, only the checks' one-row aggregates)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from .support.apps import App, bulk_change, versioned_app, write_history
from .support.autogen import ours, produce
from .support.migrate import run_online

#: Statements that return rows and read only the database's catalog (MariaDB's reflection reads
#: ``SHOW CREATE TABLE``, ``DESCRIBE`` and ``information_schema``), or nothing (native versioning's
#: trigger looked for where there are none: ``0``, ``false``), or the row estimate that decides on
#: ``batch_size`` (statistics; SQLite's largest rowid, one b-tree step).
CATALOG = re.compile(
    r"^(PRAGMA |SHOW |DESCRIBE |SELECT (0|false) AS |SELECT NULL AS anon_1$|SELECT \(SELECT max\(rowid\) AS "
    r"|SELECT .*\b(pg_catalog|sqlite_master|pg_trigger|pg_class|(?i:information_schema))\b)",
    re.S,
)


@contextmanager
def drifted_history(engine: sa.Engine, transactions: int) -> Iterator[App]:
    """A history of ``transactions`` transactions written by Continuum's ORM, then changed behind
    its back: live rows, and every article version's end id and ``name`` flag."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.drop_all(engine)
        app.metadata.create_all(engine)
        write_history(engine, app, seed=7, transactions=transactions)
        bulk_change(engine, app, via="sql")
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(sa.update(version).values(end_transaction_id=None, name_mod=False))
        yield app
        app.metadata.drop_all(engine)


def traced(engine: sa.Engine, run: Callable[[], Any]) -> tuple[Any, list[str], list[str]]:
    """What ``run`` returns, the statements it executes besides catalog reads (digits masked), and
    those of them returning rows."""
    seen: list[str] = []
    fetched: list[str] = []

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if CATALOG.match(statement.strip()):  # reflection: varies with SQLAlchemy's caches
            return
        seen.append(re.sub(r"\d+", "N", statement))
        if cursor.description is not None:
            fetched.append(statement)

    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        result = run()
    finally:
        sa.event.remove(engine, "after_cursor_execute", after)
    return result, seen, fetched


def repair_all(op: Any) -> None:
    op.backfill_versions("article")
    op.update_end_transaction_ids("article")
    op.update_mod_flags("article")
    op.vacuum_versions("article")


def versions(engine: sa.Engine, app: App) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(app.version("Article"))).scalar_one()


def test_operations_run_the_same_statements_at_any_size_and_fetch_nothing(engine: sa.Engine) -> None:
    runs = []
    for transactions in (4, 60):
        with drifted_history(engine, transactions) as app:
            _, seen, fetched = traced(engine, lambda: run_online(engine, repair_all))
            runs.append((seen, fetched, versions(engine, app)))
    (small, small_fetched, small_versions), (large, large_fetched, large_versions) = runs
    assert large_versions > 5 * small_versions  # the repairs had many more rows to look at
    assert len(small) > 10 and large == small
    assert small_fetched == [] and large_fetched == []


def test_checks_run_the_same_statements_at_any_size_and_fetch_one_row_each(engine: sa.Engine) -> None:
    runs = []
    for transactions in (4, 60):
        with drifted_history(engine, transactions) as app:
            script, seen, fetched = traced(
                engine, lambda: produce(engine, app.metadata, alembic_versioning={"vacuum": True})
            )
            assert {name for name, table, _ in ours(script) if table == "article"} == {
                "update_end_transaction_ids",
                "update_mod_flags",
                "backfill_versions",
            }
            runs.append((seen, fetched))
    (small, small_fetched), (large, large_fetched) = runs
    assert len(small) > 5 and large == small
    # one aggregate per check, read with .one(): the history check and the backfill check of
    # article, tag and translation, the backfill check of article_tag (an association table)
    assert len(small_fetched) == len(large_fetched) == 7
    assert all(re.match(r"SELECT coalesce\(sum\(", s, re.I) for s in small_fetched + large_fetched), small_fetched
