"""Continuum writers for the concurrency tests (PostgreSQL): threads writing through the ORM or the
native triggers while an operation runs, and the invariants checked afterwards (see
tests/test_backfill_concurrency.py for what they prove), and migrations run again and again meanwhile."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .apps import App, versioned_app

LIVE_ROWS = 2000
WRITERS = 4
MIN_TRANSACTIONS = 20
MAX_TRANSACTIONS = 400
#: Seconds: nothing in a passing run comes near these.
LOCK_TIMEOUT = 15
JOIN_TIMEOUT = 60

COLUMNS = ("name", "content", "score")
Values = tuple[Any, ...]

#: How the application versions: Continuum's ORM (with or without mod flags), or its
#: PostgreSQL triggers (native versioning; the ORM still writes the transaction record).
FLAVOURS: dict[str, dict[str, Any]] = {
    "orm": {},
    "orm-mod-tracker": {"mod_tracker": True},
    "native": {"native_versioning": True, "mod_tracker": True},
}


# --- engines and setup ------------------------------------------------------------------------


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


def _values(rng: random.Random, tag: str) -> dict[str, Any]:
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
        conn.execute(sa.insert(article), [{"id": i, **_values(rng, str(i))} for i in range(1, live_rows + 1)])
    orm_ids = range(live_rows + 1, live_rows + 101)
    with Session(engine) as session:
        session.add_all([app.Article(id=i, **_values(rng, f"orm{i}")) for i in orm_ids])
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
                values = _values(rng, tag)
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
                values = {**_values(rng, tag), "name": tag}
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
    """Lock requests of other sessions in this database that are waiting."""
    return conn.execute(
        sa.text(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> pg_backend_pid()"
        )
    ).scalar_one()


def transaction_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM transaction")).scalar_one()


def check_invariants(engine: sa.Engine, app: App) -> None:
    """Every invariant of a correct validity history that reflects the live table."""
    queries = {
        "entities without exactly one open version": """
            SELECT id, count(*) FILTER (WHERE end_transaction_id IS NULL) FROM article_version
            GROUP BY id HAVING count(*) FILTER (WHERE end_transaction_id IS NULL) <> 1 ORDER BY id""",
        "broken chains (end transaction id is not the next version's transaction id)": """
            SELECT id, transaction_id, end_transaction_id, next_tx FROM (
                SELECT id, transaction_id, end_transaction_id,
                       lead(transaction_id) OVER (PARTITION BY id ORDER BY transaction_id) AS next_tx
                FROM article_version) chain
            WHERE end_transaction_id IS DISTINCT FROM next_tx ORDER BY id, transaction_id""",
        "live rows whose latest version differs or is a DELETE or is missing": f"""
            SELECT a.id, v.transaction_id, v.operation_type FROM article a
            LEFT JOIN (SELECT DISTINCT ON (id) * FROM article_version ORDER BY id, transaction_id DESC) v ON v.id = a.id
            WHERE v.id IS NULL OR v.operation_type = 2
               OR ROW({", ".join(f"a.{c}" for c in COLUMNS)})
                  IS DISTINCT FROM ROW({", ".join(f"v.{c}" for c in COLUMNS)})
            ORDER BY a.id""",
        "entities without a live row whose latest version is not a DELETE": """
            SELECT v.id, v.transaction_id, v.operation_type
            FROM (SELECT DISTINCT ON (id) * FROM article_version ORDER BY id, transaction_id DESC) v
            WHERE v.operation_type <> 2 AND NOT EXISTS (SELECT 1 FROM article a WHERE a.id = v.id)
            ORDER BY v.id""",
        "versions without a transaction record": """
            SELECT v.id, v.transaction_id FROM article_version v
            WHERE NOT EXISTS (SELECT 1 FROM transaction t WHERE t.id = v.transaction_id)""",
    }
    with engine.connect() as conn:
        problems = {name: conn.execute(sa.text(q)).all() for name, q in queries.items()}
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
        records = set(conn.execute(sa.text("SELECT id FROM transaction")).scalars())
    for writer in writers:
        assert len(writer.committed) >= MIN_TRANSACTIONS
        for tx, ids in writer.committed:
            assert tx in records, f"writer {writer.index}: transaction {tx} has no record"
            assert written.get(tx) == set(ids), (
                f"writer {writer.index}: transaction {tx} wrote {written.get(tx)}, not {set(ids)}"
            )


def migrate_while_writing(
    threads: Sequence[threading.Thread],
    stop: threading.Event,
    migrate: Callable[[], None],
    failures: list[str],
    *,
    errors: type[Exception] | tuple[type[Exception], ...],
    seconds: float,
    deadline: float,
    minimum: int = 3,
) -> int:
    """How many times ``migrate`` ran while the writer ``threads`` (started here) wrote: at least
    ``minimum`` times and ``seconds`` long, whatever the machine's load, but no longer than
    ``deadline`` seconds. A migration failing with ``errors`` is recorded in ``failures``; then
    ``stop`` is set and the writers are joined."""
    for thread in threads:
        thread.start()
    migrations, start = 0, time.monotonic()
    try:
        while (migrations < minimum or time.monotonic() < start + seconds) and time.monotonic() < start + deadline:
            try:
                migrate()
                migrations += 1
            except errors as error:
                failures.append(f"migration: {getattr(error, 'orig', error)}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(deadline)
    return migrations
