"""``batch_size=``: the same result as one transaction, batch by batch (SQLite and PostgreSQL).

Each operation runs once in the migration's transaction and once in batches (several sizes) on
two databases holding the same broken history; the version tables must then be the same: row for
row for the repairs, and per entity up to the transaction ids for the backfill (each of its batches
is a transaction record of its own). An interrupted batched run leaves only whole batches behind,
and a re-run finishes the work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_versioning import VersioningError, batches
from alembic_versioning.sql.backfill import CURRENT_RECORD
from alembic_versioning.sql.constructs import BATCH_WORK_MEM, BatchSettings, LockForWrite, LockTimeout, StopIf

from .conftest import fresh_database
from .support.apps import (
    App,
    bulk_change,
    joined_app,
    keyless_links,
    native_app,
    snapshot,
    versioned_app,
    write_history,
)
from .support.dialects import sql_text
from .support.migrate import migrate_on, render_offline, run_migration, run_online

OPS = ["update_end_transaction_ids", "update_mod_flags", "vacuum_versions", "backfill_versions"]
#: Each op's options on ``article``: the vacuum ignores ``content``, so that it has futile versions to remove.
OPTIONS: dict[str, dict[str, Any]] = {"vacuum_versions": {"ignore_columns": ["content"]}}


def break_history(engine: sa.Engine, app: App) -> None:
    """A varied Continuum history, then damage every op repairs: raw writes, stale end ids, cleared flags."""
    app.metadata.create_all(engine)
    write_history(engine, app, seed=5, transactions=25)
    bulk_change(engine, app, via="sql")
    with engine.begin() as conn:
        for table in ("article_version", "translation_version"):
            conn.execute(sa.text(f"UPDATE {table} SET end_transaction_id = NULL WHERE transaction_id % 3 = 0"))
        conn.execute(sa.text("UPDATE article_version SET name_mod = false, content_mod = false WHERE id % 2 = 0"))


def entity_histories(engine: sa.Engine, table: sa.Table) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    """Each entity's versions in order, transaction ids left out but the chain kept: each row
    says whether its end id is the next version's transaction id (or NULL for the last)."""
    key = [c for c in table.primary_key.columns if c.name != "transaction_id"]
    rows = snapshot(engine, table)
    names = [c.name for c in table.c]
    histories: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in sorted(rows, key=lambda r: (*(r[names.index(k.name)] for k in key), r[names.index("transaction_id")])):
        values = dict(zip(names, row, strict=True))
        histories.setdefault(tuple(values[k.name] for k in key), []).append(values)
    return {
        entity: [
            (
                *(v for k, v in values.items() if k not in ("transaction_id", "end_transaction_id")),
                values["end_transaction_id"] == (versions[i + 1]["transaction_id"] if i + 1 < len(versions) else None),
            )
            for i, values in enumerate(versions)
        ]
        for entity, versions in histories.items()
    }


def executed_clauses(engine: sa.Engine, *calls: Callable[[Any], None]) -> list[list[Any]]:
    """The clauses each of ``calls``, run as migrations one after the other, sent to ``engine``."""
    runs: list[list[Any]] = []

    def before(conn: Any, clause: Any, *args: Any) -> None:
        runs[-1].append(clause)

    sa.event.listen(engine, "before_execute", before)
    try:
        for call in calls:
            runs.append([])
            run_migration(engine, call)
    finally:
        sa.event.remove(engine, "before_execute", before)
    return runs


@pytest.fixture
def two_databases(engine: sa.Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[sa.Engine]]:
    """``engine`` and a second fresh database of its dialect."""
    with fresh_database(engine.dialect.name, request, tmp_path / "other.db") as other:
        yield [engine, other]


@pytest.mark.parametrize("op_name", OPS)
def test_batches_give_the_result_of_one_transaction(two_databases: list[sa.Engine], op_name: str) -> None:
    whole, batched = two_databases
    with versioned_app(mod_tracker=True) as app:
        for engine in (whole, batched):
            break_history(engine, app)
        options = {"article": OPTIONS.get(op_name, {}), "translation": {}}
        for table in ("article", "translation"):  # an integer key, a composite one
            run_migration(whole, lambda op, t=table: getattr(op, op_name)(t, **options[t]))
        results = []
        # batches of 3; of 1, 2, 4, 4...; of 62, 124...
        for sizing in ({"batch_size": 3, "batch_seconds": 0}, {"batch_size": 4}, {"batch_size": 1000}):
            for table in ("article", "translation"):
                run_migration(batched, lambda op, t=table, s=sizing: getattr(op, op_name)(t, **s, **options[t]))
            results.append([entity_histories(batched, app.version(m)) for m in ("Article", "Translation")])
        expected = [entity_histories(whole, app.version(m)) for m in ("Article", "Translation")]
        assert results[0] == expected
        assert results[1] == results[2] == expected, "a second batched run changed something"
        if op_name != "backfill_versions":  # the same rows, transaction ids too
            for model in ("Article", "Translation"):
                assert snapshot(batched, app.version(model)) == snapshot(whole, app.version(model))


@pytest.mark.parametrize("op_name", OPS)
def test_the_writers_lock_is_taken_once_per_batch(engine: sa.Engine, op_name: str) -> None:
    """A batch locks once, right after its ``BEGIN``: it read its boundary before, outside its
    transaction, so the lock is held for its statements alone. One transaction locks once too."""
    options = OPTIONS.get(op_name, {})
    with versioned_app(mod_tracker=True) as app:
        break_history(engine, app)
        whole_run, executed = executed_clauses(
            engine,
            lambda op: getattr(op, op_name)("article", **options),
            lambda op: getattr(op, op_name)("article", batch_size=4, **options),
        )
        whole = [c for c in whole_run if isinstance(c, LockForWrite)]
        begins = [i for i, c in enumerate(executed) if isinstance(c, sa.TextClause) and c.text == "BEGIN"]
        locks = [i for i, c in enumerate(executed) if isinstance(c, LockForWrite)]
        assert len(whole) == 1
        assert len(begins) > 2  # several batches
        assert len(locks) == len(begins)
        commits = [i for i, c in enumerate(executed) if isinstance(c, sa.TextClause) and c.text == "COMMIT"]
        for begin, lock in zip(begins, locks, strict=True):
            assert begin < lock and all(isinstance(c, LockTimeout | BatchSettings) for c in executed[begin + 1 : lock])
        for committed, begin in zip(commits, begins[1:], strict=False):  # the next batch's boundary
            assert committed < begin and any(isinstance(c, sa.Select) for c in executed[committed + 1 : begin])


def test_batches_run_with_their_own_settings_and_leave_the_session_alone(pg_engine: sa.Engine) -> None:
    """Each batch switches PostgreSQL's JIT compilation off and raises work_mem for its own
    transaction only; every batch but the last commits without waiting for the disk, and the
    last one, durable, flushes them all."""
    with versioned_app(mod_tracker=True) as app:
        break_history(pg_engine, app)
        seen: list[tuple[str, str, str]] = []
        show = "SELECT current_setting('jit'), current_setting('work_mem'), current_setting('synchronous_commit')"

        def after(conn: Any, clause: Any, *args: Any) -> None:
            if isinstance(clause, LockForWrite):
                seen.append(tuple(conn.exec_driver_sql(show).one()))

        with pg_engine.connect() as conn:
            default = tuple(conn.exec_driver_sql(show).one())
        sa.event.listen(pg_engine, "after_execute", after)
        try:
            run_migration(pg_engine, lambda op: op.update_end_transaction_ids("article", batch_size=4))
        finally:
            sa.event.remove(pg_engine, "after_execute", after)
        with pg_engine.connect() as conn:
            assert tuple(conn.exec_driver_sql(show).one()) == default
        assert default[:2] != ("off", BATCH_WORK_MEM) and default[2] != "off"
        assert len(seen) > 2
        assert set(seen[:-1]) == {("off", BATCH_WORK_MEM, "off")}
        assert seen[-1] == ("off", BATCH_WORK_MEM, default[2])


def test_batches_give_mariadb_sessions_their_lock_wait_back(mariadb_engine: sa.Engine) -> None:
    """On MariaDB each batch bounds its lock wait with the session's innodb_lock_wait_timeout
    (InnoDB has no transaction-local one); the run sets the session's own back after its last
    batch, and after a failed one, for the migration's statements after it."""
    with versioned_app(mod_tracker=True) as app:
        break_history(mariadb_engine, app)
        show = "SELECT @@SESSION.innodb_lock_wait_timeout"
        seen: list[int] = []

        def after(conn: Any, clause: Any, *args: Any) -> None:
            if isinstance(clause, LockForWrite):
                seen.append(conn.exec_driver_sql(show).scalar())

        def migrate(conn: sa.Connection, call: Callable[[Any], None]) -> int:
            try:
                migrate_on(conn, call)
            finally:
                after_run = conn.exec_driver_sql(show).scalar()
                conn.commit()
            return after_run

        def fail_late(conn: Any, clause: Any, *args: Any) -> None:
            if isinstance(clause, LockForWrite) and len(seen) == 2:
                raise RuntimeError("injected")

        sa.event.listen(mariadb_engine, "after_execute", after)
        try:
            with mariadb_engine.connect() as conn:
                conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 40")
                conn.commit()
                left = migrate(conn, lambda op: op.update_end_transaction_ids("article", batch_size=4, lock_timeout=2))
                assert len(seen) > 2 and set(seen) == {2}
                seen.clear()
                sa.event.listen(mariadb_engine, "after_execute", fail_late)
                with pytest.raises(VersioningError, match="injected"):
                    migrate(conn, lambda op: op.update_mod_flags("article", batch_size=4, lock_timeout=2))
                assert conn.exec_driver_sql(show).scalar() == 40
        finally:
            sa.event.remove(mariadb_engine, "after_execute", after)
            if sa.event.contains(mariadb_engine, "after_execute", fail_late):
                sa.event.remove(mariadb_engine, "after_execute", fail_late)
        assert left == 40


def test_a_batched_backfill_sets_up_once(engine: sa.Engine) -> None:
    """The checks and set-up that hold for the whole run (the sequence's check, the session's
    table of the current record) run in the first batch only; every batch checks its new id."""
    with versioned_app(mod_tracker=True) as app:
        break_history(engine, app)
        [executed] = executed_clauses(engine, lambda op: op.backfill_versions("article", batch_size=4))
        begins = [i for i, c in enumerate(executed) if isinstance(c, sa.TextClause) and c.text == "BEGIN"]
        created = [
            i
            for i, c in enumerate(executed)
            if isinstance(c, sa.schema.CreateTable) and c.element.name == CURRENT_RECORD
        ]
        assert len(begins) > 2
        assert len(created) == 1 and begins[0] < created[0] < begins[1]
        checks = [c for c in executed if isinstance(c, StopIf)]
        assert len(checks) == len(begins) + 1  # the sequence's, then each batch's new id


def test_a_batched_backfill_writes_a_transaction_record_per_batch(engine: sa.Engine) -> None:
    with versioned_app(plugins=(_meta_plugin(),)) as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": i, "name": f"n{i}"} for i in range(1, 8)])
        run_migration(
            engine,
            lambda op: op.backfill_versions(
                "article",
                batch_size=3,
                batch_seconds=0,
                transaction={"remote_addr": "10.0.0.1"},
                meta={"why": "backfill"},
            ),
        )
        with engine.connect() as conn:
            records = conn.execute(sql_text(conn, 'SELECT id, remote_addr FROM "transaction" ORDER BY id')).all()
            meta = conn.execute(sql_text(conn, 'SELECT transaction_id, "key", value FROM transaction_meta')).all()
            per_record = conn.execute(
                sa.text("SELECT transaction_id, count(*) FROM article_version GROUP BY transaction_id")
            ).all()
        assert [r.remote_addr for r in records] == ["10.0.0.1"] * 3  # 7 entities, 3 per batch
        assert sorted(m.transaction_id for m in meta) == [r.id for r in records]
        assert sorted(n for _, n in per_record) == [1, 3, 3]


def test_a_backfill_batch_ends_at_the_lower_boundary_of_the_live_and_version_keys(
    two_databases: list[sa.Engine],
) -> None:
    """Where the live and version tables hold different keys, a batch holds at most ``size`` keys
    of each, and the result is the single transaction's."""
    whole, batched = two_databases
    with versioned_app() as app:
        article = app.table("article")
        for engine in (whole, batched):
            app.metadata.create_all(engine)
            with engine.begin() as conn:
                conn.execute(sa.insert(article), [{"id": i, "name": f"n{i}"} for i in range(1, 31)])
            run_migration(engine, lambda op: op.backfill_versions("article"))
            with engine.begin() as conn:  # versions without a live row, live rows without versions
                conn.execute(sa.delete(article).where(article.c.id % 2 == 1))
                conn.execute(sa.insert(article), [{"id": i, "name": f"n{i}"} for i in range(31, 45)])
        run_migration(whole, lambda op: op.backfill_versions("article"))
        run_migration(batched, lambda op: op.backfill_versions("article", batch_size=4))
        version = app.version("Article")
        assert entity_histories(batched, version) == entity_histories(whole, version)
        with batched.connect() as conn:
            per_record = conn.execute(
                sa.text("SELECT transaction_id, count(*) FROM article_version GROUP BY transaction_id")
            ).all()
        batches = sorted(n for _, n in per_record)[:-1]  # the first, unbatched backfill's 30 left out
        assert sum(batches) == 15 + 14 and max(batches) <= 8 and len(batches) >= 4


def _meta_plugin() -> Any:
    from sqlalchemy_continuum.plugins import TransactionMetaPlugin

    return TransactionMetaPlugin()


@pytest.mark.parametrize("op_name", ["backfill_versions", "vacuum_versions", "update_end_transaction_ids"])
def test_a_joined_hierarchy_is_batched_on_the_base_key(two_databases: list[sa.Engine], op_name: str) -> None:
    whole, batched = two_databases
    with joined_app(mod_tracker=True) as (metadata, _, item, doc):
        from sqlalchemy.orm import Session

        for engine in (whole, batched):
            metadata.create_all(engine)
            with Session(engine) as session:
                session.add_all(
                    [doc(id=i, name="n", body="b") if i % 2 else item(id=i, name="n") for i in range(1, 12)]
                )
                session.commit()
                for i in range(1, 12, 3):
                    session.get(item, i).name = "n"  # no change: no version
                    session.get(item, i).name = f"m{i}"
                session.commit()
            with engine.begin() as conn:
                conn.exec_driver_sql("UPDATE doc SET body = 'raw' WHERE id IN (3, 7)")
                conn.exec_driver_sql("UPDATE item_version SET end_transaction_id = NULL")
                add_futile_version(conn, metadata, 5)
        run_migration(whole, lambda op: getattr(op, op_name)("item", joined=["doc"]))
        run_migration(batched, lambda op: getattr(op, op_name)("item", joined=["doc"], batch_size=2))
        for name in ("item_version", "doc_version"):
            assert entity_histories(batched, metadata.tables[name]) == entity_histories(whole, metadata.tables[name])


def add_futile_version(conn: sa.Connection, metadata: sa.MetaData, entity: int) -> None:
    """A copy of ``entity``'s latest version in each table of the hierarchy, as an UPDATE at a new
    transaction, chained on: futile."""
    transaction = metadata.tables["transaction"]
    conn.execute(sa.insert(transaction).values(id=1000, issued_at=sa.func.current_timestamp()))
    if conn.dialect.name == "postgresql":  # new ids come after it
        conn.execute(sa.text("SELECT setval('transaction_id_seq', 1000)"))
    elif conn.dialect.name == "mariadb":
        conn.execute(sa.text("SELECT SETVAL(transaction_id_seq, 1000)"))
    for name in ("item_version", "doc_version"):
        version = metadata.tables[name]
        latest = (
            conn.execute(
                sa.select(version).where(version.c.id == entity).order_by(version.c.transaction_id.desc()).limit(1)
            )
            .mappings()
            .one()
        )
        conn.execute(
            sa.update(version)
            .where(version.c.id == entity, version.c.transaction_id == latest["transaction_id"])
            .values(end_transaction_id=1000)
        )
        conn.execute(
            sa.insert(version).values(
                {**latest, "transaction_id": 1000, "end_transaction_id": None, "operation_type": 1}
            )
        )


def test_a_table_without_a_key_runs_in_one_transaction_with_a_warning(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with keyless_links() as (metadata, manager):
        metadata.create_all(engine)
        link, link_version = metadata.tables["link"], metadata.tables["link_version"]
        link_version.drop(engine)
        sa.Table("link_version", sa.MetaData(), *(sa.Column(c.name, c.type) for c in link_version.c)).create(engine)
        manager.options["versioning"] = False
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["a"]), [{"id": 1}])
            conn.execute(sa.insert(metadata.tables["b"]), [{"id": 1}, {"id": 2}])
            conn.execute(sa.insert(link), [{"a_id": 1, "b_id": 1}, {"a_id": 1, "b_id": None}])
        with caplog.at_level(logging.INFO, "alembic.runtime.migration"):
            run_migration(engine, lambda op: op.backfill_versions("link", batch_size=1))
        assert "no primary key to batch on" in caplog.text
        assert "link_version: 2 versions written" in caplog.text
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(DISTINCT transaction_id) FROM link_version")).scalar() == 1


# --- interrupted runs -------------------------------------------------------------------------


def prepared_backfill(engine: sa.Engine, app: App, rows: int = 10) -> None:
    """``rows`` live articles without versions: a backfill writes one version each."""
    app.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(app.table("article")), [{"id": i, "name": f"n{i}"} for i in range(1, rows + 1)])


def backfilled(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT id FROM article_version ORDER BY id")).scalars())


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "LOCK_ATTEMPTS", 2)
    monkeypatch.setattr(batches, "BACKOFF", 0.01)


def hold_lock_from_batch(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, batch: int
) -> tuple[threading.Event, list[sa.Connection]]:
    """From batch ``batch`` on, another connection holds a lock that keeps every batch off the
    article table until the returned event is set."""
    release, held = threading.Event(), []
    original, calls = batches._batch, [0]

    def batch_then_lock(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == batch:
            conn = engine.connect()
            held.append(conn)
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("LOCK TABLE article IN ROW EXCLUSIVE MODE")  # what a writer holds
            elif engine.dialect.name == "mariadb":  # a writer's uncommitted transaction record
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("INSERT INTO transaction (id) VALUES (NEXTVAL(transaction_id_seq))")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite: another writer
        return original(*args, **kwargs)

    monkeypatch.setattr(batches, "_batch", batch_then_lock)
    return release, held


@pytest.mark.usefixtures("quick_retries")
def test_a_lock_held_beyond_the_retries_stops_the_run_and_a_rerun_finishes(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if engine.dialect.name == "sqlite":  # the busy timeout bounds SQLite's wait
        engine = sa.create_engine(engine.url, connect_args={"timeout": 0.1})
    with versioned_app() as app:
        prepared_backfill(engine, app)
        _, held = hold_lock_from_batch(engine, monkeypatch, batch=3)
        call: Callable[[Any], None] = lambda op: op.backfill_versions(  # noqa: E731
            "article", batch_size=4, batch_seconds=0, lock_timeout=0.1
        )
        with caplog.at_level(logging.INFO, "alembic.runtime.migration"):
            with pytest.raises(VersioningError) as stopped:
                run_migration(engine, call)
        message = str(stopped.value)
        assert "stopped in batch 3" in message and "was not granted within 0.1 s, 2 times" in message, message
        assert "2 batches (8 entities, the keys up to (8,))" in message and "run the migration again" in message
        assert "retrying in 0.01 s (attempt 2 of 2)" in caplog.text
        assert backfilled(engine) == list(range(1, 9))  # whole batches only
        held[0].rollback()
        held[0].close()
        monkeypatch.undo()
        run_migration(engine, call)
        assert backfilled(engine) == list(range(1, 11))
        with engine.connect() as conn:
            assert conn.execute(sql_text(conn, 'SELECT count(*) FROM "transaction"')).scalar() == 3


def test_an_error_in_a_batch_keeps_the_committed_ones_and_a_rerun_finishes(sqlite_engine: sa.Engine) -> None:
    engine = sqlite_engine
    with versioned_app(mod_tracker=True) as app:
        prepared_backfill(engine, app)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER fail BEFORE INSERT ON article_version WHEN NEW.id = 6 "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        call: Callable[[Any], None] = lambda op: op.backfill_versions("article", batch_size=2, batch_seconds=0)  # noqa: E731
        with pytest.raises(VersioningError, match=r"stopped in batch 3: injected failure\. 2 batches") as stopped:
            run_migration(engine, call)
        assert isinstance(stopped.value.__cause__, sa.exc.DBAPIError)
        assert backfilled(engine) == [1, 2, 3, 4]
        with engine.connect() as conn:  # the failed batch left nothing behind (but the session's record table)
            assert conn.execute(sql_text(conn, 'SELECT count(*) FROM "transaction"')).scalar() == 2
            left = "SELECT count(*) FROM sqlite_temp_master WHERE name LIKE '_av%' AND name <> :record"
            assert conn.execute(sa.text(left), {"record": CURRENT_RECORD}).scalar() == 0
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER fail")
        run_migration(engine, call)
        assert backfilled(engine) == list(range(1, 11))


def test_ddl_before_the_batches_is_committed_first(engine: sa.Engine) -> None:
    """The revision's DDL commits when the batches start: it stays when a batch fails."""
    with versioned_app() as app:
        prepared_backfill(engine, app)

        def migration(op: Any) -> None:
            op.create_table("before_batches", sa.Column("id", sa.Integer, primary_key=True))
            op.backfill_versions("article", batch_size=3, transaction={"no_such_column": 1})

        with pytest.raises(VersioningError, match="no_such_column"):
            run_migration(engine, migration)  # refused before any batch: the DDL rolls back with it
        if engine.dialect.name == "postgresql":  # (SQLite's DDL never does)
            assert not sa.inspect(engine).has_table("before_batches")
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE before_batches")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE blocker (id INTEGER)")
        version = app.version("Article")

        def failing(op: Any) -> None:
            op.create_table("before_batches", sa.Column("id", sa.Integer, primary_key=True))
            op.execute(sa.text("DROP TABLE blocker"))
            op.update_end_transaction_ids("article", batch_size=3)
            raise RuntimeError("after the batches")

        with pytest.raises(RuntimeError):
            run_migration(engine, failing)
        inspector = sa.inspect(engine)
        assert inspector.has_table("before_batches") and not inspector.has_table("blocker")
        assert inspector.has_table(version.name)


# --- progress, arguments, refusals -----------------------------------------------------------


def test_progress_lines_and_a_summary(engine: sa.Engine, caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> None:
    monkeypatch.setattr(batches, "PROGRESS_INTERVAL", 0.0)
    with versioned_app() as app:
        prepared_backfill(engine, app, rows=9)
        with caplog.at_level(logging.INFO, "alembic.runtime.migration"):
            run_migration(engine, lambda op: op.backfill_versions("article", batch_size=4, batch_seconds=0))
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("backfill_versions")]
        assert len(lines) == 4, lines
        assert lines[0].startswith("backfill_versions article_version: 4 entities of about 9 (44%), 4 versions written")
        assert "entities/s, about" in lines[0] and "left" in lines[0]
        assert lines[-1].startswith("backfill_versions article_version: 9 versions written (9 entities in 3 batches")


@pytest.mark.parametrize(
    ("batch_seconds", "batches"),
    [
        # each holds the lock longer than 1 ns, but no batch takes fewer than the first (64 / 16):
        # 4, 4, then 4 that finds 1 and is the last
        (1e-9, "3 batches of up to 4"),
        # each is quicker than a minute: 4 (64 / 16), then 8, which finds 5 and is the last
        (60, "2 batches of 4 to 5"),
    ],
)
def test_batches_are_sized_by_the_time_they_held_the_lock(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture, batch_seconds: float, batches: str
) -> None:
    with versioned_app() as app:
        prepared_backfill(engine, app, rows=9)
        with caplog.at_level(logging.INFO, "alembic.runtime.migration"):
            run_migration(
                engine, lambda op: op.backfill_versions("article", batch_size=64, batch_seconds=batch_seconds)
            )
        summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("backfill_versions")][-1]
        assert summary.startswith(f"backfill_versions article_version: 9 versions written (9 entities in {batches},")
        assert backfilled(engine) == list(range(1, 10))


def test_batches_shrink_after_one_held_the_lock_too_long(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batches report holding the lock 0.01 s twice, then 2 s each (``batch_seconds=0.5``): they
    grow from 4 (64 / 16) to 16, then the next ones take a quarter of that, 4."""
    held, sizes, original = iter([0.01, 0.01] + [2.0] * 10), [], batches._batch

    def scripted(*args: Any) -> Any:
        sizes.append(args[3])
        upto, found, rows, _ = original(*args)
        return upto, found, rows, next(held)

    monkeypatch.setattr(batches, "_batch", scripted)
    with versioned_app() as app:
        prepared_backfill(engine, app, rows=40)
        run_migration(engine, lambda op: op.backfill_versions("article", batch_size=64))
        assert sizes == [4, 8, 16, 4, 4, 4, 4]  # 28 entities, three batches of 4, then none left
        assert backfilled(engine) == list(range(1, 41))


@pytest.mark.parametrize(
    ("size", "held", "expected"),
    [
        (400, 1.0, 200),  # twice the target: half the entities
        (400, 0.25, 800),  # half the target: twice, the most a batch may grow
        (400, 0.4, 500),
        (1000, 0.1, 1600),  # no more than batch_size
        (400, 0.0, 800),
        (400, 1000.0, 100),  # no fewer than the first batch, a sixteenth of batch_size
    ],
)
def test_the_next_batch_is_sized_by_the_last_ones_rate(size: int, held: float, expected: int) -> None:
    assert batches.Sizing(limit=1600, target=0.5).next(size, held) == expected


def test_a_batch_held_for_almost_no_time_makes_the_next_twice_as_large() -> None:
    assert batches.Sizing(limit=100, target=86_400).next(10, 1e-300) == 20  # no overflow


def test_the_first_batch_takes_a_sixteenth_of_batch_size() -> None:
    assert [batches.Sizing(limit=n, target=0.5).first() for n in (20_000, 100, 15)] == [1250, 6, 1]


def test_batch_seconds_0_keeps_every_batch_at_batch_size() -> None:
    sizing = batches.Sizing(limit=1000, target=0)
    assert (sizing.first(), sizing.next(10, 100.0)) == (1000, 1000)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"batch_size": 0}, r"batch_size=0 .* positive integer"),
        ({"batch_size": -5}, r"batch_size=-5 .* positive integer"),
        ({"batch_size": True}, r"batch_size=True .* positive integer"),
        ({"batch_size": 2.5}, r"batch_size=2.5 .* positive integer"),
        ({"batch_size": "100"}, r"batch_size='100' .* positive integer"),
        ({"batch_size": 10, "lock_timeout": 0}, r"lock_timeout=0 .* positive number"),
        ({"batch_size": 10, "lock_timeout": -1.5}, r"lock_timeout=-1.5 .* positive number"),
        ({"batch_size": 10, "lock_timeout": "3"}, r"lock_timeout='3' .* positive number"),
        ({"batch_size": 10, "lock_timeout": float("inf")}, r"lock_timeout=inf .* positive number"),
        ({"lock_timeout": 3}, r"lock_timeout=3 .* pass batch_size=\.\.\. too"),
        ({"batch_size": 10, "batch_seconds": -0.5}, r"batch_seconds=-0.5 .* positive number .* or 0"),
        ({"batch_size": 10, "batch_seconds": "1"}, r"batch_seconds='1' .* positive number"),
        ({"batch_size": 10, "batch_seconds": True}, r"batch_seconds=True .* positive number"),
        ({"batch_size": 10, "batch_seconds": float("inf")}, r"batch_seconds=inf .* positive number"),
        ({"batch_size": 10, "batch_seconds": float("nan")}, r"batch_seconds=nan .* positive number"),
        ({"batch_size": 10, "batch_seconds": 1e308}, r"batch_seconds=1e\+308 .* positive number up to 86400"),
        ({"batch_size": 10, "lock_timeout": 10**400}, r"lock_timeout=1000.* positive number up to 86400"),
        ({"batch_seconds": 0.5}, r"batch_seconds=0.5 .* pass batch_size=\.\.\. too"),
    ],
)
@pytest.mark.parametrize("op_name", OPS)
def test_bad_batching_arguments(
    sqlite_engine: sa.Engine, op_name: str, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(VersioningError, match=message):
        run_migration(sqlite_engine, lambda op: getattr(op, op_name)("article", **arguments))


@pytest.mark.parametrize("op_name", OPS)
def test_offline_refuses_batches(sqlite_engine: sa.Engine, op_name: str) -> None:
    with versioned_app(mod_tracker=True) as app:
        refused = rf"{op_name}\('article', batch_size=5\) cannot run offline \(--sql\).*Run this migration online"
        with pytest.raises(VersioningError, match=refused):
            render_offline(
                sqlite_engine,
                lambda op: getattr(op, op_name)("article", batch_size=5),
                target_metadata=app.metadata,
            )


def test_a_transaction_alembic_does_not_own_is_refused(engine: sa.Engine) -> None:
    with versioned_app() as app:
        prepared_backfill(engine, app)
        with pytest.raises(VersioningError, match=r"context\.begin_transaction\(\)"):
            run_online(engine, lambda op: op.backfill_versions("article", batch_size=3))
        assert backfilled(engine) == []


def test_the_arguments_are_rendered() -> None:
    from alembic_versioning.operations import VacuumVersionsOp

    op = VacuumVersionsOp("article", batch_size=500, lock_timeout=2.5, batch_seconds=0)
    assert op.arguments() == {"batch_size": 500, "lock_timeout": 2.5, "batch_seconds": 0}
    assert VacuumVersionsOp("article").arguments() == {}


# --- through alembic upgrade ------------------------------------------------------------------

ENV_PY = """\
from alembic import context
import sqlalchemy as sa

config = context.config
engine = sa.create_engine(config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:  # Alembic's generic env.py
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

REVISION = """\
from alembic import op
import sqlalchemy as sa
import alembic_versioning  # noqa: F401

revision = "{revision}"
down_revision = {down}


def upgrade():
    {body}
"""


def test_alembic_upgrade_runs_batches_and_stamps(engine: sa.Engine, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    with versioned_app() as app:
        prepared_backfill(engine, app)
        versions = tmp_path / "migrations" / "versions"
        versions.mkdir(parents=True)
        (tmp_path / "migrations" / "env.py").write_text(ENV_PY)
        bodies = [
            "op.create_table('first', sa.Column('id', sa.Integer, primary_key=True))",
            "op.backfill_versions('article', batch_size=3)\n    op.update_end_transaction_ids('article', batch_size=3)",
            "op.create_table('last', sa.Column('id', sa.Integer, primary_key=True))",
        ]
        for i, body in enumerate(bodies):
            down = repr(f"r{i - 1}") if i else None
            (versions / f"r{i}.py").write_text(REVISION.format(revision=f"r{i}", down=down, body=body))
        config = Config()
        config.set_main_option("script_location", str(tmp_path / "migrations"))
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
        command.upgrade(config, "head")
        inspector = sa.inspect(engine)
        assert inspector.has_table("first") and inspector.has_table("last")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "r2"
        assert backfilled(engine) == list(range(1, 11))


def test_a_batched_backfill_after_another_takes_its_own_transaction_values(engine: sa.Engine) -> None:
    """A batched backfill does not join the record of the backfill before it: its batches are
    records of their own, so ``transaction=`` values other than the earlier ones are no conflict."""
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": i, "name": f"n{i}"} for i in range(1, 5)])
            conn.execute(sa.insert(app.table("translation")), [{"article_id": 1, "lang": "en", "title": "t"}])

        def migrate(op: Any) -> None:
            op.backfill_versions("translation", transaction={"remote_addr": "10.0.0.1"})
            op.backfill_versions("article", batch_size=2, batch_seconds=0, transaction={"remote_addr": "10.0.0.2"})

        run_migration(engine, migrate)
        with engine.connect() as conn:
            records = conn.execute(sql_text(conn, 'SELECT remote_addr FROM "transaction" ORDER BY id')).scalars().all()
        assert records == ["10.0.0.1", "10.0.0.2", "10.0.0.2"]


def test_a_batched_backfill_under_native_versioning_leaves_its_record_table_alone(pg_engine: sa.Engine) -> None:
    """Under native versioning the record table is Continuum's own: batches never empty it."""
    statements: list[str] = []
    with native_app(pg_engine) as app:
        with pg_engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # no triggers: unversioned rows
            conn.execute(sa.insert(app.table("article")), [{"id": i, "name": f"n{i}"} for i in range(1, 5)])

        def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        sa.event.listen(pg_engine, "before_cursor_execute", note)
        run_migration(pg_engine, lambda op: op.backfill_versions("article", batch_size=2))
        sa.event.remove(pg_engine, "before_cursor_execute", note)
        with pg_engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT count(*) FROM article_version")).scalar()
    assert versions == 4
    assert not [s for s in statements if s.lstrip().upper().startswith("DELETE FROM TEMPORARY_TRANSACTION")]
