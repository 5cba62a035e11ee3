"""op.backfill_versions on an install using Continuum's native (PostgreSQL trigger) versioning.

With ``native_versioning=True`` Continuum attaches, through ``after_create`` events of
``metadata.create_all``, an ``<table>_trigger`` to every versioned table and a
``transaction_trigger`` to the transaction table. The latter copies each new transaction id
into the session's ``temporary_transaction`` table (ON COMMIT DELETE ROWS); the table
triggers version a change only when that table holds exactly one id, so:

* writes made in a database transaction without a transaction record (bulk loads, psql,
  other services) and writes with triggers off (``session_replication_role = replica``, as
  logical-replication apply workers and some load tools run) leave no versions. These are what
  the backfill is for;
* a second transaction record in one database transaction silently switches the triggers off
  for the rest of it. The backfill must therefore reuse the id already in
  ``temporary_transaction`` and, when it creates the record itself, leave it as the one the
  triggers use for the rest of the migration.

Checked here, online and through an offline (``--sql``) script: every kind of missing version is
written, under one transaction record whose id comes from ``transaction_id_seq``; two backfills
plus a live UPDATE and INSERT in the same migration share that one record, and the triggers still
version the UPDATE and INSERT into it; the history is correct afterwards; a second run writes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy_continuum.plugins import TransactionChangesPlugin, TransactionMetaPlugin

from alembic_versioning.sql.constructs import refuse_native_versioning

from .conftest import postgresql_database
from .support.apps import App, native_app, snapshot
from .support.dialects import sql_text
from .support.migrate import execute_script, render_offline, run, run_online

MODELS = ("Article", "Translation")


def triggers(engine: sa.Engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'"
        ).all()
    return {(table, name) for table, name in rows}


def write_history(engine: sa.Engine, app: App) -> None:
    """History written by the triggers, then changes they never saw.

    Ends with articles 1-3 and translations (1, en), (2, en) correctly versioned, and every case
    the backfill handles: rows without versions, rows that changed, rows that are gone, a row
    re-inserted after a versioned delete.
    """
    Article, Translation = app.Article, app.Translation
    with Session(engine) as session:
        session.add_all([Article(id=i, name=f"a{i}", score=i) for i in range(1, 9)])
        session.add_all(
            [Translation(article_id=i, lang=lang, title=f"t{i}{lang}") for i in (1, 2) for lang in ("en", "fi")]
        )
        session.commit()
        session.get(Article, 2).name = "a2 edited"
        session.get(Article, 3).content = "body"
        session.delete(session.get(Article, 8))
        session.get(Translation, (1, "en")).title = "edited"
        session.commit()
    before = {model: snapshot(engine, app.version(model)) for model in MODELS}
    article, translation = app.Article.__table__, app.Translation.__table__
    # Outside Continuum (a bulk load, psql, another service): no transaction record in this
    # database transaction, so the triggers fire but find no id and write nothing.
    with engine.begin() as conn:
        conn.execute(sa.insert(article), [{"id": i, "name": f"bulk{i}"} for i in range(9, 13)])
        conn.execute(sa.insert(article), [{"id": 8, "name": "back", "content": "again"}])
        conn.execute(sa.update(article).where(article.c.id == 4).values(score=None, content="bulk"))
        conn.execute(sa.delete(article).where(article.c.id == 5))
        conn.execute(sa.insert(translation), [{"article_id": 3, "lang": "en", "title": "bulk"}])
        conn.execute(
            sa.update(translation).where(translation.c.article_id == 2, translation.c.lang == "fi").values(title=None)
        )
        conn.execute(sa.delete(translation).where(translation.c.article_id == 1, translation.c.lang == "fi"))
    # Triggers off (session_replication_role = replica, as a logical-replication apply worker
    # runs): even Continuum's own ORM flush, which still writes a transaction record, leaves no
    # versions.
    with Session(engine) as session:
        session.execute(sa.text("SET LOCAL session_replication_role = replica"))
        session.get(Article, 6).name = "replica"
        session.add(Article(id=13, name="replica", score=13))
        session.delete(session.get(Article, 7))
        session.commit()
    # Rolled back: it took an id from transaction_id_seq and left no record, so the next id is not
    # one more than the largest record's.
    with Session(engine) as session:
        session.get(Article, 1).name = "never"
        session.flush()
        session.rollback()
    assert {model: snapshot(engine, app.version(model)) for model in MODELS} == before


#: What the backfill of write_history's result writes: (key, operation type).
EXPECTED_BACKFILL = {
    "Article": {
        **{(i,): 0 for i in (8, 9, 10, 11, 12, 13)},
        (4,): 1,
        (6,): 1,
        (5,): 2,
        (7,): 2,
    },
    "Translation": {(3, "en"): 0, (2, "fi"): 1, (1, "fi"): 2},
}


def history_problems(engine: sa.Engine, app: App, model: str) -> dict[str, list[Any]]:
    """Violations of the validity invariants and of 'the latest version reflects the live row'."""
    live = app.models[model].__table__
    version = app.version(model)
    key = [c.name for c in live.primary_key.columns]
    data = [c.name for c in live.c if c.name not in key]
    k = ", ".join(key)
    on = " AND ".join(f"v.{c} = l.{c}" for c in key)
    latest = f"(SELECT DISTINCT ON ({k}) * FROM {version.name} ORDER BY {k}, transaction_id DESC)"
    row = lambda alias: "ROW(" + ", ".join(f"{alias}.{c}" for c in data) + ")"  # noqa: E731
    queries = {
        "not exactly one open version": f"""
            SELECT {k} FROM {version.name} GROUP BY {k}
            HAVING count(*) FILTER (WHERE end_transaction_id IS NULL) <> 1""",
        "end id is not the next version's id": f"""
            SELECT {k}, transaction_id, end_transaction_id, next_tx FROM (
                SELECT *, lead(transaction_id) OVER (PARTITION BY {k} ORDER BY transaction_id) AS next_tx
                FROM {version.name}) chain
            WHERE end_transaction_id IS DISTINCT FROM next_tx""",
        "live row's latest version missing, a DELETE or different": f"""
            SELECT l.* FROM {live.name} l LEFT JOIN {latest} v ON {on}
            WHERE v.transaction_id IS NULL OR v.operation_type = 2 OR {row("l")} IS DISTINCT FROM {row("v")}""",
        "no live row but the latest version is not a DELETE": f"""
            SELECT v.* FROM {latest} v
            WHERE v.operation_type <> 2 AND NOT EXISTS (SELECT 1 FROM {live.name} l WHERE {on})""",
    }
    with engine.connect() as conn:
        found = {name: conn.execute(sa.text(q)).all() for name, q in queries.items()}
    return {name: rows for name, rows in found.items() if rows}


def assert_history_correct(engine: sa.Engine, app: App) -> None:
    problems = {model: history_problems(engine, app, model) for model in MODELS}
    assert problems == {model: {} for model in MODELS}


def versions_in(engine: sa.Engine, app: App, model: str, tx: int) -> dict[tuple[Any, ...], int]:
    """(key) -> operation type of ``model``'s versions in transaction ``tx``."""
    live = app.models[model].__table__
    version = app.version(model)
    key = [version.c[c.name] for c in live.primary_key.columns]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*key, version.c.operation_type).where(version.c.transaction_id == tx)).all()
    return {tuple(r[:-1]): r[-1] for r in rows}


def transaction_ids(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT id FROM transaction ORDER BY id")).scalars())


def sequence_last_value(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT last_value FROM transaction_id_seq")).scalar_one()


def backfill_both(native_versioning: bool | None = None) -> Any:
    def call(op: Operations) -> None:
        op.backfill_versions("article", native_versioning=native_versioning)
        op.backfill_versions("translation", native_versioning=native_versioning)

    return call


def migration(app: App, native_versioning: bool | None = None) -> Any:
    """Two backfills, then live changes the triggers must version, all in one transaction.

    Article 1 is one the backfill leaves alone (its trigger-written history is correct) and 20 is
    new. A migration writing a row the backfill has just versioned in the same transaction would
    meet Continuum's own trigger defect (a second change to one row in one transaction leaves
    ``end_transaction_id == transaction_id``, and a DELETE stays an INSERT), not the backfill's.
    """
    article = app.Article.__table__

    def call(op: Operations) -> None:
        backfill_both(native_versioning)(op)
        op.execute(sa.update(article).where(article.c.id == 1).values(name="migrated"))
        op.execute(sa.insert(article).values(id=20, name="added by the migration"))

    return call


def test_triggers_are_installed_and_write_versions(pg_engine: sa.Engine) -> None:
    """The setup the other tests rely on: create_all attached the triggers, and they version ORM writes."""
    with native_app(pg_engine) as app:
        assert {
            ("article", "article_trigger"),
            ("translation", "translation_trigger"),
            ("transaction", "transaction_trigger"),
        } <= triggers(pg_engine)
        with Session(pg_engine) as session:
            session.add(app.Article(id=1, name="a"))
            session.commit()
        assert versions_in(pg_engine, app, "Article", transaction_ids(pg_engine)[-1]) == {(1,): 0}


def test_backfills_what_the_triggers_missed(pg_engine: sa.Engine) -> None:
    """(a) Versions for rows written without the triggers, in one record numbered by the sequence."""
    engine = pg_engine
    with native_app(engine) as app:
        write_history(engine, app)
        records = transaction_ids(engine)
        last = sequence_last_value(engine)
        assert last > max(records)  # the rolled-back flush left a gap
        run_online(engine, backfill_both())
        new = [tx for tx in transaction_ids(engine) if tx not in records]
        assert new == [last + 1] and sequence_last_value(engine) == last + 1
        for model in MODELS:
            assert versions_in(engine, app, model, new[0]) == EXPECTED_BACKFILL[model]
        assert_history_correct(engine, app)


@pytest.mark.parametrize("native_versioning", [None, True], ids=["detected", "explicit"])
def test_one_migration_one_transaction_record_triggers_still_on(pg_engine: sa.Engine, native_versioning: Any) -> None:
    """(b) Two backfills and live writes in one migration: one record, triggers still versioning.

    (c) A second run writes nothing.
    """
    engine = pg_engine
    with native_app(engine) as app:
        write_history(engine, app)
        records = transaction_ids(engine)
        with engine.connect() as conn:
            article_1 = conn.execute(sa.text("SELECT transaction_id FROM article_version WHERE id = 1")).scalars().all()
        run_online(engine, migration(app, native_versioning))
        new = [tx for tx in transaction_ids(engine) if tx not in records]
        assert len(new) == 1, f"one migration transaction wrote transaction records {new}"
        tx = new[0]
        # The backfilled versions, plus the triggers' versions of the migration's own writes.
        assert versions_in(engine, app, "Article", tx) == {**EXPECTED_BACKFILL["Article"], (1,): 1, (20,): 0}
        assert versions_in(engine, app, "Translation", tx) == EXPECTED_BACKFILL["Translation"]
        with engine.connect() as conn:
            chain = conn.execute(
                sa.text("SELECT transaction_id, end_transaction_id, name FROM article_version WHERE id = 1 ORDER BY 1")
            ).all()
        assert chain == [(article_1[0], tx, "a1"), (tx, None, "migrated")]
        assert_history_correct(engine, app)

        # (c) Nothing left to write: no record, no version.
        versions = {model: snapshot(engine, app.version(model)) for model in MODELS}
        run_online(engine, backfill_both(native_versioning))
        assert transaction_ids(engine) == records + new
        assert {model: snapshot(engine, app.version(model)) for model in MODELS} == versions


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_backfills_sharing_the_record_write_its_meta_once(pg_engine: sa.Engine, mode: str) -> None:
    """Two backfills in one migration share native versioning's record: a ``meta`` key (and an
    entity name) both give is written to it once, the first backfill's value kept."""
    engine = pg_engine
    with native_app(engine, plugins=(TransactionMetaPlugin(), TransactionChangesPlugin())) as app:
        write_history(engine, app)
        records = transaction_ids(engine)

        def call(op: Operations) -> None:
            native = {"native_versioning": True}  # offline, nothing is detected
            op.backfill_versions("article", meta={"comment": "import", "by": "a"}, entity_names=["Article"], **native)
            op.backfill_versions(
                "translation", meta={"comment": "again"}, entity_names=["Article", "Translation"], **native
            )

        run(engine, call, mode, target_metadata=app.metadata)
        (tx,) = [tx for tx in transaction_ids(engine) if tx not in records]
        with engine.connect() as conn:
            meta = conn.execute(
                sql_text(conn, 'SELECT "key", value FROM transaction_meta WHERE transaction_id = :tx'), {"tx": tx}
            )
            changes = conn.execute(
                sa.text("SELECT entity_name FROM transaction_changes WHERE transaction_id = :tx"), {"tx": tx}
            )
            assert sorted(meta.all()) == [("by", "a"), ("comment", "import")]
            assert sorted(changes.scalars()) == ["Article", "Translation"]
        assert_history_correct(engine, app)


def _result(engine: sa.Engine, app: App) -> tuple[Any, ...]:
    """Everything the migration writes, issued_at aside (it is the clock)."""
    return (transaction_ids(engine), *(snapshot(engine, app.version(model)) for model in MODELS))


def test_offline_script_matches_online(postgresql_proc: Any) -> None:
    """(d) The ``--sql`` script of the same migration, run as one transaction, gives the same result."""
    with (
        postgresql_database(postgresql_proc) as online,
        postgresql_database(postgresql_proc) as offline,
        native_app(online) as app,
    ):
        with offline.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS hstore")
        app.metadata.create_all(offline)
        for engine in (online, offline):
            write_history(engine, app)
        assert _result(online, app) == _result(offline, app)

        run(online, migration(app), "online")
        script = render_offline(offline, migration(app, native_versioning=True), target_metadata=app.metadata)
        assert "temporary_transaction" in script and "nextval('transaction_id_seq')" in script
        execute_script(offline, script)
        assert _result(offline, app) == _result(online, app)
        assert_history_correct(offline, app)

        # A second run of the script writes nothing.
        before = _result(offline, app)
        execute_script(offline, render_offline(offline, backfill_both(True), target_metadata=app.metadata))
        assert _result(offline, app) == before


def test_offline_script_not_told_of_native_versioning_stops(pg_engine: sa.Engine) -> None:
    """Rendered without ``native_versioning=True``, the script would write a second transaction
    record, after which the triggers version nothing more: it stops instead, naming the fix, and
    leaves the database as it was."""
    engine = pg_engine
    with native_app(engine) as app:
        write_history(engine, app)
        before = _result(engine, app)
        script = render_offline(engine, migration(app), target_metadata=app.metadata)
        with pytest.raises(Exception, match=r"native_versioning=True"):
            execute_script(engine, script)
        assert _result(engine, app) == before


def _update_then_delete(op: Operations) -> None:
    op.execute("UPDATE article SET name = 'x' WHERE id = 1")  # the triggers: UPDATE version, then
    op.execute("DELETE FROM article WHERE id = 1")  # still an UPDATE, closed on its own id


def _triggers_off_for_a_bulk_change(op: Operations) -> None:
    op.execute("UPDATE article SET name = 'touched' WHERE id = 2")  # a version under the record
    op.execute("ALTER TABLE article DISABLE TRIGGER article_trigger")
    op.execute("UPDATE article SET name = 'bulk' WHERE id = 2")
    op.execute("ALTER TABLE article ENABLE TRIGGER article_trigger")


@pytest.mark.parametrize("writes", [_update_then_delete, _triggers_off_for_a_bulk_change], ids=["defect", "bulk"])
@pytest.mark.parametrize("mode", ["online", "offline"])
def test_backfill_after_the_migrations_own_writes(pg_engine: sa.Engine, writes: Any, mode: str) -> None:
    """A first backfill creates the migration's record, the migration writes rows the triggers
    version under it (wrongly: Continuum's update-then-delete defect; or not at all: triggers
    off), then a second backfill: the entity's version under the record is brought up to date in
    place (one version per entity and transaction), and the history is correct."""
    engine = pg_engine
    with native_app(engine) as app:
        with Session(engine) as session:
            session.add_all([app.Article(id=i, name=f"a{i}") for i in (1, 2)])
            session.commit()
        with engine.begin() as conn:  # a translation without a version: the first backfill's work
            conn.execute(sa.insert(app.Translation.__table__).values(article_id=1, lang="en", title="t"))
        records = transaction_ids(engine)

        def migration(op: Operations) -> None:
            op.backfill_versions("translation", native_versioning=True)
            writes(op)
            op.backfill_versions("article", native_versioning=True)

        run(engine, migration, mode, target_metadata=app.metadata)
        assert len(transaction_ids(engine)) == len(records) + 1
        assert_history_correct(engine, app)
        run_online(engine, backfill_both())  # nothing left to do
        assert len(transaction_ids(engine)) == len(records) + 1


@pytest.mark.parametrize("name", ["tx", "a$$b", "tx%n", 'q"x'])
def test_the_offline_guard_reads_any_table_name(pg_engine: sa.Engine, name: str) -> None:
    """The guard an offline script starts with raises its message (quotes and percent signs kept)
    exactly where the table of that name has Continuum's ``transaction_trigger``."""
    table = sa.Table(name, sa.MetaData(), sa.Column("id", sa.Integer))
    guard = refuse_native_versioning(table, "it's 100% native: pass native_versioning=True")
    with pg_engine.begin() as conn:
        table.create(conn)
        conn.execute(guard)  # no trigger: nothing happens
        conn.exec_driver_sql("CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'")
        quoted = conn.dialect.identifier_preparer.quote(name).replace("%%", "%")
        conn.exec_driver_sql(
            f"CREATE TRIGGER transaction_trigger AFTER INSERT ON {quoted} FOR EACH ROW EXECUTE FUNCTION noop()".replace(
                "%", "%%"
            )
        )
    for paramstyle in ("named", "pyformat"):  # as rendered offline, executed as a script or through the driver
        sql = str(guard.compile(dialect=postgresql.dialect(paramstyle=paramstyle)))
        with pg_engine.begin() as conn, pytest.raises(Exception, match="it.s 100% native"):
            if paramstyle == "named":
                conn.connection.driver_connection.execute(sql)
            else:
                conn.exec_driver_sql(sql)


@pytest.mark.parametrize("own_record", [False, True], ids=["fresh-id", "migrations-own-record"])
@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_sequence_one_behind_stops_the_backfill(pg_engine: sa.Engine, mode: str, own_record: bool) -> None:
    """A sequence behind the newest transaction (a restore without ``setval``) gives a fresh id, or
    the migration's own record (native versioning reuses it), an id below existing versions: the
    backfill stops instead of filing its versions under, or before, another transaction and
    rewriting that transaction's version in place."""
    engine = pg_engine
    with native_app(engine) as app:
        with Session(engine) as session:
            session.add_all([app.Article(id=1, name="a1"), app.Article(id=2, name="a2")])
            session.commit()
            session.get(app.Article, 1).name = "a1 v2"
            session.commit()
            session.get(app.Article, 2).name = "a2 v2"
            session.commit()
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE article DISABLE TRIGGER article_trigger")
            conn.exec_driver_sql("UPDATE article SET name = 'bulk'")
            conn.exec_driver_sql("ALTER TABLE article ENABLE TRIGGER article_trigger")
            newest = conn.exec_driver_sql("SELECT max(id) FROM transaction").scalar_one()
            conn.exec_driver_sql(f"SELECT setval('transaction_id_seq', {newest - 2})")  # next: newest - 1
            if own_record:  # the newest records pruned: the migration's own record takes a free, old id
                conn.exec_driver_sql(f"DELETE FROM transaction WHERE id >= {newest - 1}")
        before = _result(engine, app)

        def backfill(op: Operations) -> None:
            if own_record:  # as Continuum's unit of work writes it (the trigger notes it for the transaction)
                op.execute("INSERT INTO transaction (id, issued_at) VALUES (nextval('transaction_id_seq'), now())")
            op.backfill_versions("article", native_versioning=True)

        with pytest.raises(Exception, match=r"Move the sequence past them"):
            run(engine, backfill, mode, target_metadata=app.metadata)
        assert _result(engine, app) == before
