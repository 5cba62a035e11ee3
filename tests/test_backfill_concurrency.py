"""op.backfill_versions (and every other operation) while applications keep writing through
Continuum (PostgreSQL).

Behaviour under test: before it reads anything, ``backfill_versions`` takes a ``SHARE ROW
EXCLUSIVE`` table lock (``LOCK TABLE article, article_version ...``), so writers that want to
change the live or the version table wait until the migration's transaction ends, then carry
on against the committed backfill; readers are not blocked. Nothing may be lost or broken by
any interleaving:

* no writer fails (no deadlock, no unique violation, no lock timeout);
* every writer transaction that committed is in the version table with exactly the entities it
  changed, under the transaction id the writer got, and the live table holds what the writers
  last wrote;
* the validity chains stay intact: per entity, in transaction order, each version's
  end transaction id is the next version's transaction id, and exactly one version is open;
* each live row's latest version equals it (NULL-safely, every versioned column) and is not a
  DELETE; each entity without a live row has a DELETE as its latest version;
* a final backfill finds nothing to write (no new transaction record).

The interleaving that matters most: Continuum allocates a writer's transaction id
(``INSERT INTO transaction ... nextval('transaction_id_seq')``) in ``before_flush``, *before* the
flush touches the live table, and orders versions by transaction id (the ORM closes the version
with the highest id below its own; the native triggers close the open version). A writer that
got its id before the backfill got its id, but writes the live table after the backfill
committed, must still end up in a correct chain, so the backfill has to wait for such writers,
not only make later ones wait. ``test_writer_holding_an_older_transaction_id`` forces that
interleaving; the stress test produces it naturally (writers queue on the lock after taking
their ids).

Writers use Continuum's ORM versioning (with and without the mod-tracker plugin) or its native
triggers. The work is bounded and seeded: writers own disjoint sets of ids (so Continuum's own
lost-update behaviour between two writers of one row is not in play), run at most
``MAX_TRANSACTIONS`` each, every wait has a timeout, and connections have a lock timeout so a
hang becomes an error rather than a stuck test.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.orm import Session

from .support.apps import article_transactions
from .support.migrate import run_online
from .support.writers import (
    FLAVOURS,
    JOIN_TIMEOUT,
    WRITERS,
    check_invariants,
    check_writers,
    flavoured_app,
    join_writers,
    live_rows,
    migrate_while_writing,
    prepare,
    start_writers,
    transaction_count,
    waiting_lock_requests,
    writers_engine,
)

HOLD = 0.2


@pytest.fixture
def engine(pg_engine: sa.Engine) -> Iterator[sa.Engine]:
    """``pg_engine``'s database with a lock timeout and room for the writers and the migration."""
    with writers_engine(pg_engine) as engine:
        yield engine


# --- tests ------------------------------------------------------------------------------------


def migrate_in_background(
    engine: sa.Engine, migration: Callable[[Operations], None]
) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``migration`` in a thread; return once it has finished or waits for a lock. The
    thread and the errors it raised (filled in when it ends)."""
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            run_online(engine, migration)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    thread = threading.Thread(target=migrate, name="migration", daemon=True)
    thread.start()
    with engine.connect() as watcher:
        end = time.monotonic() + JOIN_TIMEOUT
        while thread.is_alive() and not waiting_lock_requests(watcher) and time.monotonic() < end:
            time.sleep(0.01)
    return thread, errors


def backfill(op: Operations) -> None:
    op.backfill_versions("article")


def backfill_and_hold(observed: list[int]) -> Callable[[Operations], None]:
    """The backfill, then the migration's transaction stays open ``HOLD`` seconds.

    Meanwhile another connection reads both tables (readers are not blocked) and counts the
    writers' waiting lock requests into ``observed``.
    """

    def call(op: Operations) -> None:
        op.backfill_versions("article")
        end = time.monotonic() + HOLD
        with op.get_bind().engine.connect() as watcher:
            watcher.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            for table in ("article", "article_version", "transaction"):
                watcher.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
            seen = 0
            while time.monotonic() < end:
                seen = max(seen, waiting_lock_requests(watcher))
                time.sleep(0.01)
        observed.append(seen)

    return call


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_concurrent_writers_wait_and_nothing_is_lost(engine: sa.Engine, flavour: str) -> None:
    with flavoured_app(engine, flavour) as app:
        prepare(engine, app)
        with engine.connect() as conn:
            before = live_rows(conn, app)
        stop = threading.Event()
        writers = start_writers(engine, app, stop)
        try:
            for writer, _ in writers:
                assert writer.started.wait(JOIN_TIMEOUT), f"writer {writer.index} did not start"
            observed: list[int] = []
            run_online(engine, backfill)
            run_online(engine, backfill_and_hold(observed))
            time.sleep(0.05)
            run_online(engine, backfill_and_hold(observed))
            run_online(engine, backfill)
        finally:
            stop.set()
            join_writers(writers)
        # While the migration held its transaction open, writers were queued on its lock.
        assert max(observed) >= 1, observed
        check_writers(engine, app, [w for w, _ in writers], before)
        check_invariants(engine, app)
        records = transaction_count(engine)
        run_online(engine, backfill)
        assert transaction_count(engine) == records, "a final backfill wrote a transaction record"
        check_invariants(engine, app)


@pytest.mark.parametrize("flavour", ["orm", "native"])
def test_writer_holding_an_older_transaction_id(engine: sa.Engine, flavour: str) -> None:
    """A writer got its transaction id before the backfill ran and changes a row after it.

    The writer first flushes a change to another versioned table (Continuum inserts its
    transaction record, taking the id), then the backfill of ``article`` runs, then the writer
    updates an article the backfill wrote a version for. Whatever the order the database lets
    them finish in, the result must be a correct history holding both.
    """
    with flavoured_app(engine, flavour) as app:
        prepare(engine, app, live_rows=50)
        entity = 45  # a Core row: the backfill writes its first version
        with Session(engine) as session:
            session.add(app.Translation(article_id=1, lang="en", title="first"))
            session.flush()
            writer_tx = app.manager.unit_of_work(session).current_transaction.id
            # Let the migration finish, or get as far as waiting for a lock.
            migration, errors = migrate_in_background(engine, backfill)
            session.get(app.Article, entity).name = "changed by the writer"
            session.commit()
        migration.join(JOIN_TIMEOUT)
        assert not migration.is_alive(), "the migration did not finish"
        assert not errors, errors
        with engine.connect() as conn:
            versions = conn.execute(
                sa.text(
                    "SELECT transaction_id, operation_type, name FROM article_version"
                    " WHERE id = :id ORDER BY transaction_id"
                ),
                {"id": entity},
            ).all()
        # The writer's change is recorded under the id it got; where the backfill's work on
        # the row lands depends on who waited for whom, but the chain must be correct.
        assert (writer_tx, 1, "changed by the writer") in versions, versions
        check_invariants(engine, app)
        records = transaction_count(engine)
        run_online(engine, backfill)
        assert transaction_count(engine) == records


def every_repair(op: Operations) -> None:
    """A migration running every operation on ``article``, the backfill last."""
    op.update_end_transaction_ids("article")
    op.update_mod_flags("article")
    op.vacuum_versions("article", ignore_columns=["content"])
    op.backfill_versions("article")


def test_every_operation_in_one_migration_while_writers_write(engine: sa.Engine) -> None:
    """Each operation takes the writers' lock (transaction, live, version tables, in Continuum's
    order) before its first write: no deadlock between the operations' row locks and writers
    queued on the backfill's lock, no writer transaction lost, every invariant afterwards.

    The writers mostly change ``content`` alone, so each migration's vacuum (ignoring
    ``content``) has versions to delete and relink while they write."""
    entities, seconds = 200, 4.0
    with flavoured_app(engine, "orm-mod-tracker") as app:
        app.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([app.Article(id=i, name="n", content="c") for i in range(1, entities + 1)])
            session.commit()
        stop, failures, commits = threading.Event(), [], [0] * WRITERS

        def write(index: int) -> None:
            rng = random.Random(index)
            with Session(engine) as session:
                while not stop.is_set():
                    try:
                        for i in rng.sample(range(index + 1, entities + 1, WRITERS), 3):
                            article = session.get(app.Article, i)
                            article.content = f"c{rng.randint(0, 99)}"
                            if rng.random() < 0.2:
                                article.name = f"n{rng.randint(0, 3)}"
                        session.commit()
                        commits[index] += 1
                    except sa.exc.DBAPIError as error:
                        failures.append(f"writer: {error.orig}")
                        session.rollback()

        threads = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(WRITERS)]
        migrations = migrate_while_writing(
            threads,
            stop,
            lambda: run_online(engine, every_repair),
            failures,
            errors=sa.exc.DBAPIError,
            seconds=seconds,
            deadline=JOIN_TIMEOUT,
        )
        assert not failures, failures[:5]
        assert migrations >= 3 and min(commits) >= 3, (migrations, commits)
        check_invariants(engine, app)


@pytest.mark.parametrize("repair", ["update_end_transaction_ids", "vacuum_versions"])
def test_a_repair_waits_for_a_writer_in_flight(engine: sa.Engine, repair: str) -> None:
    """A writer has flushed (its new version chained onto the latest one, uncommitted) when the
    repair starts: the repair waits for it and then works on the committed history, instead of
    undoing the writer's end id (the chain repair) or deleting the version it chained onto
    (vacuum: that version is futile once ``content`` is ignored)."""
    with flavoured_app(engine, "orm") as app:
        app.metadata.create_all(engine)
        article_transactions(engine, app, {"name": "a", "content": "x"}, {"content": "y"})
        if repair == "update_end_transaction_ids":  # a stale end id on the open version
            with engine.begin() as conn:
                conn.exec_driver_sql("UPDATE article_version SET end_transaction_id = transaction_id")
        with Session(engine) as writer:
            writer.get(app.Article, 1).name = "b"
            writer.flush()
            options = {"ignore_columns": ["content"]} if repair == "vacuum_versions" else {}
            migration, errors = migrate_in_background(engine, lambda op: getattr(op, repair)("article", **options))
            assert migration.is_alive(), "the repair did not wait for the writer"
            writer.commit()
        migration.join(JOIN_TIMEOUT)
        assert not migration.is_alive() and not errors, errors
        check_invariants(engine, app)
