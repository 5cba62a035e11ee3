"""Every operation while applications keep writing through Continuum, on SQLite.

SQLite has one writer at a time. Before it reads anything, each operation takes the database's
write lock (as ``BEGIN IMMEDIATE`` would), waiting up to the connection's busy timeout: a writer
that is half-way through its transaction finishes first, and the operation then works on what it
committed; writers that come later wait for the migration. Nothing may be lost or broken:

* the migration and every writer succeed (no "database is locked" within the busy timeout);
* every committed writer transaction is in the version table under its transaction id;
* per entity, one open version, intact chains, the latest version equals the live row.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.orm import Session

from .support.apps import App, versioned_app
from .support.migrate import render_offline, run_online
from .support.writers import migrate_while_writing

WRITERS = 8
ENTITIES = 120
#: Seconds: the busy timeout of every connection (nothing in a passing run comes near it).
BUSY_TIMEOUT = 30
JOIN_TIMEOUT = 90
COLUMNS = ("name", "content", "score")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """A SQLite file database whose connections wait ``BUSY_TIMEOUT`` seconds for a lock."""
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'concurrent.db'}", connect_args={"timeout": BUSY_TIMEOUT}, pool_size=WRITERS + 4
    )
    yield engine
    engine.dispose()


@pytest.fixture
def app(engine: sa.Engine) -> Iterator[App]:
    """Continuum's models with the mod tracker; live rows written behind its back (drift)."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.Article.__table__), [{"id": i, "name": f"core {i}"} for i in range(1, ENTITIES)])
        yield app


def check_invariants(engine: sa.Engine, app: App) -> None:
    """One open version per entity, intact chains, latest version = live row (or a DELETE)."""
    version, article = app.version("Article"), app.Article.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(version.c.id, version.c.transaction_id, version.c.end_transaction_id, version.c.operation_type)
            .add_columns(*(version.c[c] for c in COLUMNS))
            .order_by(version.c.id, version.c.transaction_id)
        ).all()
        live = {r[0]: tuple(r[1:]) for r in conn.execute(sa.select(article.c.id, *(article.c[c] for c in COLUMNS)))}
    histories: dict[int, list[Any]] = {}
    for row in rows:
        histories.setdefault(row.id, []).append(row)
    problems = []
    for entity, history in histories.items():
        ends = [r.end_transaction_id for r in history]
        if ends != [r.transaction_id for r in history[1:]] + [None]:
            problems.append(f"{entity}: chain {[(r.transaction_id, r.end_transaction_id) for r in history]}")
        latest = history[-1]
        if entity in live and (latest.operation_type == 2 or tuple(latest[4:]) != live[entity]):
            problems.append(f"{entity}: latest version {tuple(latest)} is not the live row {live[entity]}")
        if entity not in live and latest.operation_type != 2:
            problems.append(f"{entity}: no live row, latest version {tuple(latest)} is no DELETE")
    problems += [f"{entity}: live row without versions" for entity in live.keys() - histories.keys()]
    assert not problems, problems[:5]


def every_repair(op: Operations) -> None:
    """Every operation on ``article``, the backfill last."""
    op.update_end_transaction_ids("article")
    op.update_mod_flags("article")
    op.vacuum_versions("article", ignore_columns=["content"])
    op.backfill_versions("article")


def in_background(call: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    """``call`` running in a thread, and the errors it raised (filled in when it ends)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


@pytest.mark.parametrize("repair", ["backfill_versions", "every_repair"])
def test_an_operation_waits_for_a_writer_in_flight(engine: sa.Engine, app: App, repair: str) -> None:
    """A writer has flushed (holding the write lock) when the migration starts: the migration
    waits for its commit and works on the committed rows, so no version of stale values is
    written beside the writer's and no entity ends up with two open versions."""
    run_online(engine, lambda op: op.backfill_versions("article"))
    with Session(engine) as writer:
        for i in range(1, 40):
            writer.get(app.Article, i).name = "changed by the writer"
        writer.flush()
        call = every_repair if repair == "every_repair" else (lambda op: op.backfill_versions("article"))
        migration, errors = in_background(lambda: run_online(engine, call))
        time.sleep(0.5)
        assert migration.is_alive(), "the migration did not wait for the writer"
        writer.commit()
    migration.join(JOIN_TIMEOUT)
    assert not migration.is_alive() and not errors, errors
    check_invariants(engine, app)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_writers_and_migrations_interleave_without_failures(engine: sa.Engine, app: App, mode: str) -> None:
    """Eight Continuum writers commit small changes while migrations run every operation again
    and again (online, or the offline script applied through the driver): nothing fails, every
    writer's transaction is kept, every invariant holds, and a last backfill writes nothing."""
    stop, failures = threading.Event(), []
    committed: list[tuple[int, frozenset[int]]] = []
    script = render_offline(engine, every_repair, target_metadata=app.metadata)

    def write(index: int) -> None:
        rng = random.Random(index)
        owned = list(range(index + 1, ENTITIES, WRITERS))
        with Session(engine) as session:
            for n in range(1_000_000):
                if stop.is_set():
                    break
                ids = frozenset(rng.sample(owned, 2))
                for i in ids:
                    article = session.get(app.Article, i)
                    article.name = f"w{index}-{n}"  # always a change: vacuum keeps its version
                    article.content = rng.choice([None, "c"])
                try:
                    session.flush()
                    tx = app.manager.unit_of_work(session).current_transaction.id
                    session.commit()
                    committed.append((tx, ids))
                except sa.exc.OperationalError as error:
                    failures.append(f"writer {index}: {error.orig}")
                    session.rollback()

    def migrate() -> None:
        if mode == "online":
            run_online(engine, every_repair)
        else:
            with engine.begin() as conn:
                conn.connection.driver_connection.executescript(script)

    threads = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(WRITERS)]
    migrations = migrate_while_writing(
        threads, stop, migrate, failures, errors=sa.exc.OperationalError, seconds=2, deadline=JOIN_TIMEOUT
    )
    assert not failures, failures[:5]
    assert migrations >= 3 and len(committed) >= WRITERS, (migrations, len(committed))
    version = app.version("Article")
    with engine.connect() as conn:
        written: dict[int, set[int]] = {}
        for tx, i in conn.execute(sa.select(version.c.transaction_id, version.c.id)):
            written.setdefault(tx, set()).add(i)
    lost = [(tx, ids, written.get(tx)) for tx, ids in committed if written.get(tx) != set(ids)]
    assert not lost, lost[:5]
    check_invariants(engine, app)
    records = sa.select(sa.func.count()).select_from(sa.table("transaction"))
    with engine.connect() as conn:
        before = conn.execute(records).scalar_one()
    run_online(engine, lambda op: op.backfill_versions("article"))
    with engine.connect() as conn:
        assert conn.execute(records).scalar_one() == before, "a last backfill wrote a transaction record"
