"""Batched repairs (``batch_size=``) while applications keep writing through Continuum (PostgreSQL).

Four writer threads change, delete and create articles through Continuum's ORM (with and without
the mod tracker) or its native triggers while one migration runs every operation batched, each
batch its own short transaction. Between batches the writers go on; within one they wait for the
batch's lock, and a batch waits for every writer that already took its transaction id. Nothing
may be lost or broken, per entity, by any interleaving (see tests/test_backfill_concurrency.py
for the invariants, checked here too), also for entities a writer creates or changes in a key
range a batch has already done or not yet reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from .support.apps import App
from .support.concurrency import (
    FLAVOURS,
    JOIN_TIMEOUT,
    check_invariants,
    check_writers,
    flavoured_app,
    join_writers,
    live_rows,
    prepare,
    start_writers,
    transaction_count,
    writers_engine,
)
from .support.migrate import run_migration

#: Entities per batch: about 21 batches per operation over the 2,100 entities.
BATCH = 100


@pytest.fixture
def engine(pg_engine: sa.Engine) -> Iterator[sa.Engine]:
    with writers_engine(pg_engine) as engine:
        yield engine


def damage(engine: sa.Engine, app: App, mod_tracker: bool) -> None:
    """What the repairs repair, on top of :func:`prepare`'s drift: a futile version at the tip of
    every 11th versioned entity, stale end ids (extra open versions), cleared mod flags."""
    version = app.version("Article")
    internal = {"transaction_id", "end_transaction_id", "operation_type"}
    copied = [c.name for c in version.c if c.name not in internal and not c.name.endswith("_mod")]
    flags = [c.name for c in version.c if c.name.endswith("_mod")]
    open_tip = sa.and_(version.c.end_transaction_id.is_(None), version.c.operation_type != 2, version.c.id % 11 == 0)
    with engine.begin() as conn:
        tx = conn.execute(
            sa.text(
                "INSERT INTO transaction (id, issued_at) VALUES (nextval('transaction_id_seq'), now()) RETURNING id"
            )
        ).scalar_one()
        tips = sa.select(
            *(version.c[c] for c in copied), sa.literal(tx), sa.literal(1), *(sa.false() for _ in flags)
        ).where(open_tip)
        conn.execute(sa.insert(version).from_select([*copied, "transaction_id", "operation_type", *flags], tips))
        conn.execute(sa.update(version).where(open_tip, version.c.transaction_id < tx).values(end_transaction_id=tx))
        conn.execute(
            sa.update(version)
            .where(version.c.end_transaction_id.is_not(None), version.c.id % 7 == 0)
            .values(end_transaction_id=None)
        )
        if mod_tracker:
            conn.execute(sa.update(version).where(version.c.id % 5 == 0).values(name_mod=False, score_mod=False))


def check_flags(engine: sa.Engine) -> None:
    """Mod flags as Continuum writes them: a DELETE flags every column, an UPDATE with a previous
    version exactly the columns whose value differs from it."""
    differs = " OR ".join(
        f"{c}_mod IS DISTINCT FROM (op = 2 OR {c} IS DISTINCT FROM prev_{c})" for c in ("name", "content", "score")
    )
    query = f"""
        SELECT id, transaction_id FROM (
            SELECT *, operation_type AS op,
                   lag(transaction_id) OVER w AS prev_tx,
                   lag(name) OVER w AS prev_name, lag(content) OVER w AS prev_content, lag(score) OVER w AS prev_score
            FROM article_version WINDOW w AS (PARTITION BY id ORDER BY transaction_id)) v
        WHERE (op = 2 OR (op = 1 AND prev_tx IS NOT NULL)) AND ({differs})"""
    with engine.connect() as conn:
        wrong = conn.execute(sa.text(query)).all()
    assert not wrong, f"{len(wrong)} versions with wrong flags, e.g. {wrong[:5]}"


def every_repair_batched(mod_tracker: bool) -> Any:
    def migration(op: Any) -> None:
        op.update_end_transaction_ids("article", batch_size=BATCH, lock_timeout=5)
        if mod_tracker:
            op.update_mod_flags("article", batch_size=BATCH, lock_timeout=5)
        op.vacuum_versions("article", batch_size=BATCH, lock_timeout=5)
        op.backfill_versions("article", batch_size=BATCH, lock_timeout=5)

    return migration


def futile_tips(engine: sa.Engine) -> int:
    query = """SELECT count(*) FROM (
        SELECT operation_type AS op, lag(operation_type) OVER w AS prev_op,
               ROW(name, content, score) IS NOT DISTINCT FROM lag(ROW(name, content, score)) OVER w AS same
        FROM article_version WINDOW w AS (PARTITION BY id ORDER BY transaction_id)) v
        WHERE op = 1 AND prev_op IS NOT NULL AND prev_op <> 2 AND same"""
    with engine.connect() as conn:
        return conn.execute(sa.text(query)).scalar_one()


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_batched_repairs_while_writers_write(engine: sa.Engine, flavour: str) -> None:
    mod_tracker = bool(FLAVOURS[flavour].get("mod_tracker"))
    with flavoured_app(engine, flavour) as app:
        prepare(engine, app)
        damage(engine, app, mod_tracker)
        assert futile_tips(engine) > 0
        if mod_tracker:
            with pytest.raises(AssertionError, match="wrong flags"):
                check_flags(engine)  # the check sees the damage
        with engine.connect() as conn:
            before = live_rows(conn, app)
        stop = threading.Event()
        writers = start_writers(engine, app, stop)
        try:
            for writer, _ in writers:
                assert writer.started.wait(JOIN_TIMEOUT), f"writer {writer.index} did not start"
            committed = sum(len(w.committed) for w, _ in writers)
            started = time.monotonic()
            run_migration(engine, every_repair_batched(mod_tracker))
            during = sum(len(w.committed) for w, _ in writers) - committed
            # the writers kept committing while the migration ran (between batches)
            assert during >= 4, (during, time.monotonic() - started)
            run_migration(engine, every_repair_batched(mod_tracker))  # again: only the writers' changes since
        finally:
            stop.set()
            join_writers(writers)
        check_writers(engine, app, [w for w, _ in writers], before)
        check_invariants(engine, app)
        if mod_tracker:
            check_flags(engine)
        records = transaction_count(engine, app)
        run_migration(engine, lambda op: op.backfill_versions("article"))
        assert transaction_count(engine, app) == records, "a final backfill wrote a transaction record"
        if flavour != "native":  # the vacuum left nothing futile (Continuum's ORM writes none)
            run_migration(engine, lambda op: op.vacuum_versions("article"))
            assert futile_tips(engine) == 0
