"""Property-based tests: random histories written through Continuum's ORM, broken at random,
repaired by the operations, must equal what Continuum wrote (SQLite, one database per example)."""

from __future__ import annotations

from itertools import groupby
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from alembic_versioning.autogenerate.discovery import tables_from_manager
from alembic_versioning.sql.checks import history_check

from .support.apps import App, snapshot, versioned_app
from .support.migrate import run_online

VALUES = st.sampled_from(["a", "b", None])
# one step: (entity id 1..4, action, name, content); actions: 0 set, 1 delete, 2 flush
STEP = st.tuples(st.integers(1, 4), st.integers(0, 4), VALUES, VALUES)
HISTORY = st.lists(st.lists(STEP, min_size=1, max_size=5), min_size=1, max_size=8)


def memory_engine() -> sa.Engine:
    return sa.create_engine("sqlite://", poolclass=StaticPool)


COLUMNS = {"name": 1, "content": 2, "score": 3}  # snapshot positions; flags follow at 7, 8, 9


def unprovable_flags(rows: list[tuple[Any, ...]]) -> set[tuple[Any, Any, int]]:
    """(id, tx, flag position) of true flags on unchanged values of UPDATE versions.

    Continuum's ORM writes them when an attribute is changed and changed back, or a row deleted
    and re-inserted, within one transaction; the data cannot show them, so ``update_mod_flags``
    clears them (the documented exception to "restores what Continuum wrote").
    """
    found = set()
    for _, versions in groupby(rows, key=lambda r: r[0]):
        previous = None
        for row in versions:  # (id, name, content, score, tx, end, op, name_mod, content_mod, score_mod)
            if previous is not None and row[6] == 1:
                for position in COLUMNS.values():
                    if row[position] == previous[position] and row[position + 6]:
                        found.add((row[0], row[4], position + 6))
            previous = row
    return found


def masked(rows: list[tuple[Any, ...]], unprovable: set[tuple[Any, Any, int]]) -> list[tuple[Any, ...]]:
    return [tuple(None if (row[0], row[4], i) in unprovable else v for i, v in enumerate(row)) for row in rows]


def replay(engine: sa.Engine, app: App, transactions: list[list[tuple[int, int, Any, Any]]]) -> None:
    """Apply ``transactions`` through the ORM: 0 updates an existing row, 1 deletes it (and
    flushes), 2 flushes, 3 and 4 update or create it."""
    with Session(engine) as session:
        for steps in transactions:
            for key, action, name, content in steps:
                article = session.get(app.Article, key)
                if action == 1 and article is not None:
                    session.delete(article)
                    session.flush()
                elif action == 2:
                    session.flush()
                elif action >= 3 or article is not None:
                    if article is None:
                        session.add(app.Article(id=key, name=name, content=content))
                        session.flush()
                    else:
                        article.name, article.content = name, content
            session.commit()


def breakage(table: sa.Table, choice: int) -> sa.Executable:
    """One way real databases break: NULL, self-referencing or stale end ids, inverted or wrong
    flags (on versions whose flags the data derives: not an entity's first, not an INSERT)."""
    tx, end = table.c.transaction_id, table.c.end_transaction_id
    first = sa.alias(table)
    derivable = sa.and_(
        table.c.operation_type != 0,
        tx > sa.select(sa.func.min(first.c.transaction_id)).where(first.c.id == table.c.id).scalar_subquery(),
    )
    return [
        sa.update(table).values(end_transaction_id=None),
        sa.update(table).values(end_transaction_id=tx),
        sa.update(table).where(tx % 2 == 0).values(end_transaction_id=tx + 7),
        sa.update(table).where(derivable).values(name_mod=sa.not_(table.c.name_mod)),
        sa.update(table).where(derivable).values(content_mod=end.is_(None)),
    ][choice]


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(history=HISTORY, breaks=st.lists(st.integers(0, 4), min_size=1, max_size=3))
def test_repairs_restore_what_continuum_wrote(history: list[Any], breaks: list[int]) -> None:
    engine = memory_engine()
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        replay(engine, app, history)
        table = app.version("Article")
        truth = snapshot(engine, table)
        (described,) = [t for t in tables_from_manager(app.manager, app.metadata) if t.name == "article"]
        with engine.connect() as conn:  # no false positives on what Continuum wrote
            counts = conn.execute(history_check(described, chains=True, mod_flags=True, futile=False)).one()
        assert (counts.broken_links, counts.missing_flags) == (0, 0)
        with engine.begin() as conn:
            for choice in breaks:
                conn.execute(breakage(table, choice))
        run_online(engine, lambda op: (op.update_end_transaction_ids("article"), op.update_mod_flags("article")))
        unprovable = unprovable_flags(truth)
        assert masked(snapshot(engine, table), unprovable) == masked(truth, unprovable)


@SETTINGS
@given(history=HISTORY, bypassed=HISTORY)
def test_backfill_makes_history_reflect_live_rows(history: list[Any], bypassed: list[Any]) -> None:
    """Changes made behind Continuum's back, then backfilled: the invariants hold and a second run is a no-op."""
    engine = memory_engine()
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        replay(engine, app, history)
        table, live = app.version("Article"), app.table("article")
        written = snapshot(engine, table)
        app.manager.options["versioning"] = False
        try:
            replay(engine, app, bypassed)
        finally:
            app.manager.options["versioning"] = True
        assert snapshot(engine, table) == written  # the bypassed changes left no versions
        run_online(engine, lambda op: op.backfill_versions("article"))
        latest = sa.select(table).where(table.c.end_transaction_id.is_(None)).subquery()
        with engine.connect() as conn:
            open_counts = conn.execute(
                sa.select(table.c.id, sa.func.count()).where(table.c.end_transaction_id.is_(None)).group_by(table.c.id)
            ).all()
            live_rows = {r.id: (r.name, r.content) for r in conn.execute(sa.select(live))}
            current = {r.id: (r.name, r.content, r.operation_type) for r in conn.execute(sa.select(latest))}
        assert all(n == 1 for _, n in open_counts)
        assert {k: v[:2] for k, v in current.items() if v[2] != 2} == live_rows
        before = snapshot(engine, table)
        run_online(engine, lambda op: (op.backfill_versions("article"), op.update_end_transaction_ids("article")))
        assert snapshot(engine, table) == before
