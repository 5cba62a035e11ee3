"""The harness of the concurrency tests (PostgreSQL and MariaDB): an article table out of date in
every way ``backfill_versions`` knows, Continuum ORM writers in threads on disjoint ids, and the
checks of a correct history afterwards (every invariant, every committed writer transaction).

The work is bounded and seeded: writers own disjoint sets of ids (so Continuum's own lost-update
behaviour between two writers of one row is not in play), run at most ``MAX_TRANSACTIONS`` each,
every wait has a timeout, and connections have a lock timeout so a hang becomes an error rather
than a stuck test.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.orm import Session

from .apps import App, article_transactions, versioned_app
from .migrate import run_online
from .writers import migrate_while_writing

LIVE_ROWS = 2000
WRITERS = 4
MIN_TRANSACTIONS = 20
MAX_TRANSACTIONS = 400
#: Seconds: nothing in a passing run comes near these.
LOCK_TIMEOUT = 15
JOIN_TIMEOUT = 60
HOLD = 0.2

COLUMNS = ("name", "content", "score")
Values = tuple[Any, ...]


#: How the application versions: Continuum's ORM (with or without mod flags), or its
#: PostgreSQL triggers (native versioning; the ORM still writes the transaction record).
FLAVOURS: dict[str, dict[str, Any]] = {
    "orm": {},
    "orm-mod-tracker": {"mod_tracker": True},
    "native": {"native_versioning": True, "mod_tracker": True},
}


@contextmanager
def writers_engine(pg_engine: sa.Engine) -> Iterator[sa.Engine]:
    """``pg_engine``'s database with a lock timeout and room for the writers and the migration."""
    engine = sa.create_engine(
        pg_engine.url,
        pool_size=WRITERS + 4,
        connect_args={"options": f"-c lock_timeout={LOCK_TIMEOUT * 1000}"},
    )
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def flavoured_app(engine: sa.Engine, flavour: str) -> Iterator[App]:
    options = FLAVOURS[flavour]
    if options.get("native_versioning"):
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS hstore")
    with versioned_app(**options) as app:
        yield app


def random_values(rng: random.Random, tag: str) -> dict[str, Any]:
    return {
        "name": rng.choice([f"n-{tag}", None, "same"]),
        "content": rng.choice([f"c-{tag}", None, "same"]),
        "score": rng.choice([rng.randint(0, 9), None]),
    }


def prepare(engine: sa.Engine, app: App, *, seed: int = 7, live_rows: int = LIVE_ROWS) -> None:
    """Create the tables; live rows behind Continuum's back plus some ORM history.

    Afterwards the version table is out of date in every way ``backfill_versions`` knows:
    live rows without versions (the Core rows), live rows differing from their latest version,
    versions whose live row is gone, live rows whose latest version is a DELETE.
    """
    rng = random.Random(seed)
    app.metadata.create_all(engine)
    article = app.Article.__table__
    with engine.begin() as conn:
        conn.execute(sa.insert(article), [{"id": i, **random_values(rng, str(i))} for i in range(1, live_rows + 1)])
    orm_ids = range(live_rows + 1, live_rows + 101)
    with Session(engine) as session:
        session.add_all([app.Article(id=i, **random_values(rng, f"orm{i}")) for i in orm_ids])
        session.commit()
        for i in orm_ids:
            if i % 3 == 0:
                session.get(app.Article, i).name = f"orm-updated-{i}"
        for i in range(1, 41):  # ORM updates of Core rows: an UPDATE version with no predecessor
            session.get(app.Article, i).content = f"orm-content-{i}"
        session.commit()
        for i in orm_ids:
            if i % 10 == 1:
                session.delete(session.get(app.Article, i))
        session.commit()
    with engine.begin() as conn:
        # Behind Continuum's back: changed, deleted, and re-inserted after an ORM delete.
        conn.execute(sa.update(article).where(article.c.id.in_([i for i in orm_ids if i % 10 == 2])).values(score=-1))
        conn.execute(sa.delete(article).where(article.c.id.in_([i for i in orm_ids if i % 10 == 3])))
        conn.execute(sa.insert(article), [{"id": i, "name": "back"} for i in orm_ids if i % 20 == 1])


def live_rows(conn: sa.Connection, app: App) -> dict[int, Values]:
    article = app.Article.__table__
    return {row[0]: tuple(row[1:]) for row in conn.execute(sa.select(article.c.id, *(article.c[c] for c in COLUMNS)))}


# --- writers ----------------------------------------------------------------------------------


@dataclass
class Writer:
    """One thread writing through Continuum's ORM, on the ids ``id % WRITERS == index`` it owns."""

    engine: sa.Engine
    app: App
    index: int
    owned: dict[int, Values | None]
    stop: threading.Event
    deadline: float
    #: (transaction id, ids changed) of every committed transaction.
    committed: list[tuple[int, frozenset[int]]] = field(default_factory=list)
    error: BaseException | None = None
    started: threading.Event = field(default_factory=threading.Event)
    next_new_id: int = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(1000 + self.index)
        self.next_new_id = 100_000 + self.index * 10_000

    def run(self) -> None:
        try:
            with Session(self.engine) as session:
                uow_of = self.app.manager.unit_of_work
                for n in range(MAX_TRANSACTIONS):
                    if (self.stop.is_set() and n >= MIN_TRANSACTIONS) or time.monotonic() > self.deadline:
                        break
                    changes = self.transaction(session, n)
                    session.flush()
                    tx = uow_of(session).current_transaction.id
                    session.commit()
                    self.owned.update(changes)
                    self.committed.append((tx, frozenset(changes)))
                    if len(self.committed) >= 5:
                        self.started.set()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error
        finally:
            self.started.set()

    def transaction(self, session: Session, n: int) -> dict[int, Values | None]:
        """1-3 changes to distinct owned ids, sometimes flushed in between; returns the new state."""
        rng, Article = self.rng, self.app.Article
        live = sorted(i for i, v in self.owned.items() if v is not None)
        gone = sorted(i for i, v in self.owned.items() if v is None)
        changes: dict[int, Values | None] = {}
        for j in range(rng.randint(1, 3)):
            tag = f"w{self.index}.{n}.{j}"
            action = rng.random()
            if action < 0.6:
                i = rng.choice(live)
                if i in changes:
                    continue
                article = session.get(Article, i)
                values = random_values(rng, tag)
                values["name"] = tag  # always a real change
                for k, v in values.items():
                    setattr(article, k, v)
                changes[i] = tuple(values[c] for c in COLUMNS)
            elif action < 0.8:
                candidates = [i for i in gone if i not in changes]
                if candidates and rng.random() < 0.5:
                    i = rng.choice(candidates)
                else:
                    i = self.next_new_id
                    self.next_new_id += 1
                values = {**random_values(rng, tag), "name": tag}
                session.add(Article(id=i, **values))
                changes[i] = tuple(values[c] for c in COLUMNS)
            else:
                i = rng.choice(live)
                if i in changes:
                    continue
                session.delete(session.get(Article, i))
                changes[i] = None
            if rng.random() < 0.3:
                session.flush()
        return changes  # never empty: the first pick cannot collide


def start_writers(engine: sa.Engine, app: App, stop: threading.Event) -> list[tuple[Writer, threading.Thread]]:
    with engine.connect() as conn:
        live = live_rows(conn, app)
    deadline = time.monotonic() + JOIN_TIMEOUT / 2
    writers = []
    for index in range(WRITERS):
        owned: dict[int, Values | None] = {i: v for i, v in live.items() if i % WRITERS == index}
        writer = Writer(engine, app, index, owned, stop, deadline)
        thread = threading.Thread(target=writer.run, name=f"writer-{index}", daemon=True)
        writers.append((writer, thread))
        thread.start()
    return writers


def join_writers(writers: list[tuple[Writer, threading.Thread]]) -> None:
    for writer, thread in writers:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), f"writer {writer.index} did not finish in {JOIN_TIMEOUT} s"
    for writer, _ in writers:
        if writer.error is not None:
            raise AssertionError(f"writer {writer.index} failed: {writer.error!r}") from writer.error


# --- invariants -------------------------------------------------------------------------------


def waiting_lock_requests(conn: sa.Connection) -> int:
    """Lock requests of other sessions (in this database, on PostgreSQL) that are waiting."""
    if conn.dialect.name in ("mariadb", "mysql"):
        query = "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"
    else:
        query = (
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> pg_backend_pid()"
        )
    return conn.execute(sa.text(query)).scalar_one()


def transaction_count(engine: sa.Engine, app: App) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(app.table("transaction"))).scalar_one()


def check_invariants(engine: sa.Engine, app: App) -> None:
    """Every invariant of a correct validity history that reflects the live table (in Core, so
    each database compiles it in its own SQL)."""
    version, article, transaction = app.version("Article"), app.table("article"), app.table("transaction")
    v = version.c
    open_versions = sa.func.sum(sa.case((v.end_transaction_id.is_(None), 1), else_=0))
    next_tx = sa.func.lead(v.transaction_id).over(partition_by=v.id, order_by=v.transaction_id)
    chain = sa.select(v.id, v.transaction_id, v.end_transaction_id, next_tx.label("next_tx")).subquery("chain")
    newest = sa.select(v.id, sa.func.max(v.transaction_id).label("tx")).group_by(v.id).subquery("newest")
    latest = (
        sa.select(version)
        .join(newest, sa.and_(newest.c.id == v.id, newest.c.tx == v.transaction_id))
        .subquery("latest")
    )
    differs = [article.c[c].is_distinct_from(latest.c[c]) for c in COLUMNS]
    queries = {
        "entities without exactly one open version": sa.select(v.id, open_versions)
        .group_by(v.id)
        .having(open_versions != 1)
        .order_by(v.id),
        "broken chains (end transaction id is not the next version's transaction id)": sa.select(chain)
        .where(chain.c.end_transaction_id.is_distinct_from(chain.c.next_tx))
        .order_by(chain.c.id, chain.c.transaction_id),
        "live rows whose latest version differs or is a DELETE or is missing": sa.select(
            article.c.id, latest.c.transaction_id, latest.c.operation_type
        )
        .select_from(article.outerjoin(latest, latest.c.id == article.c.id))
        .where(sa.or_(latest.c.id.is_(None), latest.c.operation_type == 2, *differs))
        .order_by(article.c.id),
        "entities without a live row whose latest version is not a DELETE": sa.select(
            latest.c.id, latest.c.transaction_id, latest.c.operation_type
        )
        .where(latest.c.operation_type != 2, ~sa.exists().where(article.c.id == latest.c.id))
        .order_by(latest.c.id),
        "versions without a transaction record": sa.select(v.id, v.transaction_id).where(
            ~sa.exists().where(transaction.c.id == v.transaction_id)
        ),
    }
    with engine.connect() as conn:
        problems = {name: conn.execute(q).all() for name, q in queries.items()}
    problems = {name: rows for name, rows in problems.items() if rows}
    assert not problems, "\n".join(f"{name}: {len(rows)}, e.g. {rows[:5]}" for name, rows in problems.items())


def check_writers(engine: sa.Engine, app: App, writers: list[Writer], before: dict[int, Values]) -> None:
    """Every committed writer transaction is in the history, and its values are live."""
    expected = dict(before)
    for writer in writers:
        for i, values in writer.owned.items():
            if values is None:
                expected.pop(i, None)
            else:
                expected[i] = values
    version = app.version("Article")
    with engine.connect() as conn:
        assert live_rows(conn, app) == expected
        written: dict[int, set[int]] = {}
        for tx, i in conn.execute(sa.select(version.c.transaction_id, version.c.id)):
            written.setdefault(tx, set()).add(i)
        records = set(conn.execute(sa.select(app.table("transaction").c.id)).scalars())
    for writer in writers:
        assert len(writer.committed) >= MIN_TRANSACTIONS
        for tx, ids in writer.committed:
            assert tx in records, f"writer {writer.index}: transaction {tx} has no record"
            assert written.get(tx) == set(ids), (
                f"writer {writer.index}: transaction {tx} wrote {written.get(tx)}, not {set(ids)}"
            )


# --- migrations -------------------------------------------------------------------------------


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

    Meanwhile another connection reads the three tables (readers are not blocked) and counts the
    writers' waiting lock requests into ``observed``.
    """

    def call(op: Operations) -> None:
        op.backfill_versions("article")
        end = time.monotonic() + HOLD
        with op.get_bind().engine.connect() as watcher:
            if watcher.dialect.name == "postgresql":
                watcher.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            else:
                watcher.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 2")
            quote = watcher.dialect.identifier_preparer.quote
            for table in ("article", "article_version", "transaction"):
                watcher.exec_driver_sql(f"SELECT count(*) FROM {quote(table)}").scalar_one()
            seen = 0
            while time.monotonic() < end:
                seen = max(seen, waiting_lock_requests(watcher))
                time.sleep(0.01)
        observed.append(seen)

    return call


# --- scenarios (``writers``: the application's engine; ``migrator``: the migration's) -----------


def writers_wait_and_nothing_is_lost(writers: sa.Engine, migrator: sa.Engine, app: App) -> None:
    """Backfills, one holding its transaction open, while the writers write: writers queue on the
    lock, and afterwards every writer transaction and every invariant holds; a final backfill
    writes nothing."""
    prepare(migrator, app)
    with writers.connect() as conn:
        before = live_rows(conn, app)
    stop = threading.Event()
    started = start_writers(writers, app, stop)
    try:
        for writer, _ in started:
            assert writer.started.wait(JOIN_TIMEOUT), f"writer {writer.index} did not start"
        observed: list[int] = []
        run_online(migrator, backfill)
        run_online(migrator, backfill_and_hold(observed))
        time.sleep(0.05)
        run_online(migrator, backfill_and_hold(observed))
        run_online(migrator, backfill)
    finally:
        stop.set()
        join_writers(started)
    # While the migration held its transaction open, writers were queued on its lock.
    assert max(observed) >= 1, observed
    check_writers(writers, app, [w for w, _ in started], before)
    check_invariants(writers, app)
    records = transaction_count(writers, app)
    run_online(migrator, backfill)
    assert transaction_count(writers, app) == records, "a final backfill wrote a transaction record"
    check_invariants(writers, app)


def writer_holding_an_older_transaction_id(writers: sa.Engine, migrator: sa.Engine, app: App) -> None:
    """A writer got its transaction id before the backfill ran and changes a row after it.

    The writer first flushes a change to another versioned table (Continuum inserts its
    transaction record, taking the id), then the backfill of ``article`` runs, then the writer
    updates an article the backfill wrote a version for. Whatever the order the database lets
    them finish in, the result must be a correct history holding both.
    """
    prepare(migrator, app, live_rows=50)
    entity = 45  # a Core row: the backfill writes its first version
    with Session(writers) as session:
        session.add(app.Translation(article_id=1, lang="en", title="first"))
        session.flush()
        writer_tx = app.manager.unit_of_work(session).current_transaction.id
        # Let the migration finish, or get as far as waiting for a lock.
        migration, errors = migrate_in_background(migrator, backfill)
        session.get(app.Article, entity).name = "changed by the writer"
        session.commit()
    migration.join(JOIN_TIMEOUT)
    assert not migration.is_alive(), "the migration did not finish"
    assert not errors, errors
    version = app.version("Article")
    with writers.connect() as conn:
        versions = conn.execute(
            sa.select(version.c.transaction_id, version.c.operation_type, version.c.name)
            .where(version.c.id == entity)
            .order_by(version.c.transaction_id)
        ).all()
    # The writer's change is recorded under the id it got; where the backfill's work on
    # the row lands depends on who waited for whom, but the chain must be correct.
    assert (writer_tx, 1, "changed by the writer") in versions, versions
    check_invariants(writers, app)
    records = transaction_count(writers, app)
    run_online(migrator, backfill)
    assert transaction_count(writers, app) == records


def every_repair(op: Operations) -> None:
    """A migration running every operation on ``article``, the backfill last."""
    op.update_end_transaction_ids("article")
    op.update_mod_flags("article")
    op.vacuum_versions("article", ignore_columns=["content"])
    op.backfill_versions("article")


def every_operation_while_writers_write(writers: sa.Engine, migrator: sa.Engine, app: App) -> None:
    """Each operation takes the writers' lock before its first write: no deadlock between the
    operations' row locks and writers queued on the backfill's lock, no writer transaction lost,
    every invariant afterwards (``app`` with the mod tracker).

    The writers mostly change ``content`` alone, so each migration's vacuum (ignoring
    ``content``) has versions to delete and relink while they write."""
    entities, seconds = 200, 4.0
    app.metadata.create_all(migrator)
    with Session(writers) as session:
        session.add_all([app.Article(id=i, name="n", content="c") for i in range(1, entities + 1)])
        session.commit()
    stop, failures, commits = threading.Event(), [], [0] * WRITERS

    def write(index: int) -> None:
        rng = random.Random(index)
        with Session(writers) as session:
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
        lambda: run_online(migrator, every_repair),
        failures,
        errors=sa.exc.DBAPIError,
        seconds=seconds,
        deadline=JOIN_TIMEOUT,
    )
    assert not failures, failures[:5]
    assert migrations >= 3 and min(commits) >= 3, (migrations, commits)
    check_invariants(writers, app)


def repair_waits_for_a_writer_in_flight(writers: sa.Engine, migrator: sa.Engine, app: App, repair: str) -> None:
    """A writer has flushed (its new version chained onto the latest one, uncommitted) when the
    repair starts: the repair waits for it and then works on the committed history, instead of
    undoing the writer's end id (the chain repair) or deleting the version it chained onto
    (vacuum: that version is futile once ``content`` is ignored)."""
    app.metadata.create_all(migrator)
    article_transactions(writers, app, {"name": "a", "content": "x"}, {"content": "y"})
    if repair == "update_end_transaction_ids":  # a stale end id on the open version
        version = app.version("Article")
        with writers.begin() as conn:
            conn.execute(sa.update(version).values(end_transaction_id=version.c.transaction_id))
    with Session(writers) as writer:
        writer.get(app.Article, 1).name = "b"
        writer.flush()
        options = {"ignore_columns": ["content"]} if repair == "vacuum_versions" else {}
        migration, errors = migrate_in_background(migrator, lambda op: getattr(op, repair)("article", **options))
        assert migration.is_alive(), "the repair did not wait for the writer"
        writer.commit()
    migration.join(JOIN_TIMEOUT)
    assert not migration.is_alive() and not errors, errors
    check_invariants(writers, app)
