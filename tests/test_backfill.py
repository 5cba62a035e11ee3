"""op.backfill_versions: the version table made to reflect the live table, checked against
what Continuum's ORM writes for the same change."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import Session
from sqlalchemy_continuum.plugins import TransactionChangesPlugin, TransactionMetaPlugin

from alembic_versioning import DELETE, INSERT, UPDATE, VersioningError

from .support.apps import (
    CUSTOM_NAMES,
    App,
    article_transactions,
    bulk_change,
    keyless_links,
    snapshot,
    versioned_app,
    write_history,
)
from .support.migrate import assert_refused, render_offline, run, run_online


def state(engine: sa.Engine, app: App) -> list[Any]:
    """Both version tables and the transaction ids: what must match Continuum's own result."""
    transaction = app.table("transaction")
    with engine.connect() as conn:
        ids = conn.scalars(sa.select(transaction.c.id).order_by(transaction.c.id)).all()
    return [snapshot(engine, app.version("Article")), snapshot(engine, app.version("Translation")), ids]


def reset(engine: sa.Engine, app: App) -> None:
    app.metadata.drop_all(engine)
    app.metadata.create_all(engine)


def drift_from_truth(engine: sa.Engine, app: App) -> list[Any]:
    """Return :func:`state` after a history and a bulk change through Continuum's ORM (the truth),
    leaving the tables with the same history and the same change made by raw SQL (which differs)."""
    app.metadata.create_all(engine)
    write_history(engine, app, seed=7)
    bulk_change(engine, app, via="orm")
    truth = state(engine, app)
    reset(engine, app)
    write_history(engine, app, seed=7)
    bulk_change(engine, app, via="sql")
    assert state(engine, app) != truth
    return truth


def backfill_both(op: Any, **kwargs: Any) -> None:
    op.backfill_versions("article", **kwargs)
    op.backfill_versions("translation", **kwargs)


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize(
    ("mod_tracker", "options"),
    [(False, {}), (True, {}), (True, {"strategy": "subquery"}), (False, CUSTOM_NAMES)],
    ids=["plain", "mod-tracker", "subquery", "custom-names"],
)
def test_equals_what_continuum_writes(engine: sa.Engine, mode: str, mod_tracker: bool, options: dict[str, Any]) -> None:
    with versioned_app(mod_tracker=mod_tracker, **options) as app:
        truth = drift_from_truth(engine, app)

        def backfill(op: Any) -> None:
            op.backfill_versions("article", **app.op_kwargs())

        run(engine, backfill, mode, target_metadata=app.metadata)
        # Continuum wrote the translation change in the same transaction; ours gets its own.
        article_truth, _, ids = truth
        article_now, _, ids_now = state(engine, app)
        assert article_now == article_truth
        assert ids_now == ids


def backfill_sql(engine: sa.Engine, call: Any, mode: str, **opts: Any) -> dict[str, Any]:
    """The statements that compute the pending versions (``pending``), analyse them
    (``analyze``, a list: none or one) and close the latest versions (``close``), when ``call`` runs ``mode``."""
    if mode == "offline":
        statements = render_offline(engine, call, **opts).split(";")
    else:
        statements = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            run_online(engine, call, **opts)
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
    (pending,) = (s for s in statements if "_av_backfill_pending AS" in s)
    analyze = [s.strip() for s in statements if s.lstrip().startswith("ANALYZE")]
    (close,) = (s for s in statements if s.lstrip().startswith("UPDATE") and "end_transaction_id=(SELECT" in s)
    return {"pending": pending, "analyze": analyze, "close": close}


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_plans_where_the_database_has_them(engine: sa.Engine, mode: str) -> None:
    """Each entity's latest version is read once (``FULL JOIN``); SQLite, whose ``FULL JOIN``
    of a subquery is quadratic, gets the equivalent ``UNION ALL``. PostgreSQL
    closes the previous versions by address (``ctid``), elsewhere they are found by key; it
    analyses only the pending table's columns that closing by key joins on. MariaDB does not
    analyse (``ANALYZE TABLE`` would commit the migration's transaction)."""
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=3)
        found = backfill_sql(engine, lambda op: op.backfill_versions("article"), mode, target_metadata=app.metadata)
    sql, close = found["pending"], found["close"]
    full_join = engine.dialect.name == "postgresql"
    assert ("FULL OUTER JOIN" in sql, "UNION ALL" in sql) == (full_join, not full_join)
    by_address = engine.dialect.name == "postgresql"
    assert ("ctid = ANY(ARRAY(SELECT" in close, "article_version.id = _av_backfill_pending.id" in close) == (
        by_address,
        not by_address,
    )
    columns = " (id, _av_latest_tx)" if by_address else ""
    analyzed = [] if engine.dialect.name == "mariadb" else [f"ANALYZE _av_backfill_pending{columns}"]
    assert found["analyze"] == analyzed


def test_one_transaction_for_all_new_versions_and_idempotent(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=2)
        bulk_change(engine, app, via="sql")
        before = state(engine, app)
        with caplog.at_level(logging.INFO, logger="alembic"):
            run_online(engine, backfill_both)
        after = state(engine, app)
        assert len(after[2]) == len(before[2]) + 1  # one record for the database transaction
        new_tx = after[2][-1]
        changed = set(after[0]) - set(before[0])
        written = {row for row in changed if row[4] == new_tx}  # (id, name, content, score, tx, end, ...)
        assert len(written) == 5
        assert {row[5] for row in changed - written} == {new_tx}  # the rest: previous versions, closed
        assert "backfill_versions article_version: 5 versions written" in caplog.text
        assert "backfill_versions translation_version: 1 versions written" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="alembic"):
            run_online(engine, backfill_both)
        assert state(engine, app) == after
        assert "backfill_versions article_version: 0 versions written" in caplog.text


def test_nothing_to_do_writes_no_transaction_offline_either(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=1)
        before = state(engine, app)
        run(engine, backfill_both, "offline", target_metadata=app.metadata)
        run(engine, backfill_both, "online")
        assert state(engine, app) == before


def test_versioning_an_existing_table(engine: sa.Engine) -> None:
    """Rows that predate versioning get INSERT versions; Continuum's API then works on them."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        article = app.table("article")
        with engine.begin() as conn:
            conn.execute(
                sa.insert(article), [{"id": i, "name": f"a{i}", "content": None, "score": i} for i in range(1, 6)]
            )
        with engine.begin() as conn:  # issued_at is UTC whatever the session's time zone
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL TimeZone = 'Asia/Kolkata'")
            op = Operations(MigrationContext.configure(conn))
            op.backfill_versions("article", transaction={"remote_addr": "10.0.0.1"})
        version = app.version("Article")
        with engine.connect() as conn:
            rows = conn.execute(sa.select(version).order_by(version.c.id)).mappings().all()
            transactions = conn.execute(sa.select(app.table("transaction"))).mappings().all()
        assert [(r["id"], r["operation_type"], r["end_transaction_id"]) for r in rows] == [
            (i, INSERT, None) for i in range(1, 6)
        ]
        assert [(r["name_mod"], r["content_mod"], r["score_mod"]) for r in rows] == [(True, False, True)] * 5
        (record,) = transactions
        assert record["remote_addr"] == "10.0.0.1" and {r["transaction_id"] for r in rows} == {record["id"]}
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        assert abs(record["issued_at"] - now) < dt.timedelta(minutes=1)
        if engine.dialect.name == "sqlite":  # stored as Continuum's records are: text, six fractional digits
            with engine.connect() as conn:
                stored = conn.exec_driver_sql('SELECT issued_at FROM "transaction"').scalar_one()
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", stored), stored

        with Session(engine) as session:
            obj = session.get(app.Article, 2)
            assert obj is not None
            (first,) = obj.versions.all()
            assert first.previous is None and first.next is None
            assert first.changeset == {"id": [None, 2], "name": [None, "a2"], "score": [None, 2]}
            obj.name = "changed"
            obj.content = "text"
            session.commit()
            first, second = obj.versions.all()
            assert first.next is second and second.previous is first
            assert second.changeset == {"name": ["a2", "changed"], "content": [None, "text"]}
            assert second.operation_type == UPDATE
            assert (second.name_mod, second.content_mod, second.score_mod) == (True, True, False)
            version_cls = type(first)
            at = version_cls.version_at(session, {"id": 2}, first.transaction_id)
            assert at is first
            first.revert()
            session.commit()
            assert (obj.name, obj.content) == ("a2", None)
            assert obj.versions.count() == 3
        with engine.connect() as conn:
            open_rows = conn.scalar(
                sa.select(sa.func.count())
                .select_from(version)
                .where(version.c.id == 2, version.c.end_transaction_id.is_(None))
            )
        assert open_rows == 1


def test_repairing_after_a_bulk_update_keeps_chains(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=4)
        article = app.table("article")
        with engine.begin() as conn:
            conn.execute(sa.update(article).values(score=sa.func.coalesce(article.c.score, 0) + 1))
            conn.execute(sa.delete(article).where(article.c.id == 1))
        run_online(engine, lambda op: op.backfill_versions("article"))
        version = app.version("Article")
        tx, end = version.c.transaction_id, version.c.end_transaction_id
        nxt = sa.func.lead(tx).over(partition_by=version.c.id, order_by=tx)
        chain = sa.select(version.c.id, end, nxt.label("nxt")).subquery()
        latest = sa.select(version).where(end.is_(None)).subquery()
        with engine.connect() as conn:
            broken = conn.scalar(
                sa.select(sa.func.count())
                .select_from(chain)
                .where(chain.c.end_transaction_id.is_distinct_from(chain.c.nxt))
            )
            # both sides of a FULL JOIN (which MariaDB lacks): live rows, then versions without one
            live_side = (
                sa.select(sa.func.count())
                .select_from(article.outerjoin(latest, article.c.id == latest.c.id))
                .where(
                    sa.or_(
                        latest.c.id.is_(None),
                        article.c.score.is_distinct_from(latest.c.score),
                        latest.c.operation_type == DELETE,
                    )
                )
            )
            version_side = (
                sa.select(sa.func.count())
                .select_from(latest.outerjoin(article, article.c.id == latest.c.id))
                .where(article.c.id.is_(None), latest.c.operation_type != DELETE)
            )
            mismatched = conn.scalar(live_side) + conn.scalar(version_side)
            deleted = conn.execute(sa.select(latest.c.operation_type, latest.c.name).where(latest.c.id == 1)).one()
            deleted_before = conn.execute(
                sa.select(version.c.name).where(version.c.id == 1).order_by(tx.desc()).offset(1).limit(1)
            ).scalar()
        assert broken == 0 and mismatched == 0
        assert deleted == (DELETE, deleted_before)  # the DELETE carries the last known values


def test_transaction_meta_and_backdating(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.manager.plugins = [TransactionMetaPlugin()]
        app.manager.plugins[0].after_build_tx_class(app.manager)  # type: ignore[attr-defined]
        sa.orm.configure_mappers()
        meta = app.table("transaction_meta")
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "x"}])
        when = dt.datetime(2020, 1, 2, 3, 4, 5)
        aware = dt.datetime(2020, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # the same instant

        def backfill(op: Any) -> None:
            op.backfill_versions(
                "article", transaction={"issued_at": aware}, meta={"comment": "initial versions", "by": "ops"}
            )

        run(engine, backfill, "offline", target_metadata=app.metadata)
        with engine.connect() as conn:
            record = conn.execute(sa.select(app.table("transaction"))).mappings().one()
            rows = conn.execute(sa.select(meta.c.transaction_id, meta.c.key, meta.c.value).order_by(meta.c.key)).all()
        assert record["issued_at"] == when
        assert [tuple(r) for r in rows] == [(record["id"], "by", "ops"), (record["id"], "comment", "initial versions")]


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_transaction_changes_rows(engine: sa.Engine, mode: str) -> None:
    """With Continuum's TransactionChangesPlugin, ``entity_names`` become ``transaction_changes``
    rows of the backfill's transaction, so ``changed_entities`` lists its versions; nothing to
    write, no row."""
    with versioned_app(plugins=(TransactionChangesPlugin(),)) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=3)
        changes = app.table("transaction_changes")
        with engine.connect() as conn:
            before = conn.execute(sa.select(changes).order_by(*changes.c)).all()
        assert before  # Continuum's ORM writes them

        def backfill(op: Any) -> None:
            op.backfill_versions("article", entity_names=["Article"])

        run(engine, backfill, mode, target_metadata=app.metadata)
        with engine.connect() as conn:
            assert conn.execute(sa.select(changes).order_by(*changes.c)).all() == before
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 900, "name": "raw"}])
        run(engine, backfill, mode, target_metadata=app.metadata)
        with engine.connect() as conn:
            new_tx = conn.scalar(sa.select(sa.func.max(app.table("transaction").c.id)))
            added = conn.execute(sa.select(changes).order_by(*changes.c)).all()
        assert sorted(set(added) - set(before)) == [(new_tx, "Article")]
        with Session(engine) as session:
            raw = session.get(app.Article, 900)
            assert raw is not None
            (version,) = raw.versions.all()
            changed = version.transaction.changed_entities
            assert list(changed) == [type(version)] and [v.id for v in changed[type(version)]] == [900]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda op: op.backfill_versions("article", entity_names=["Article"]),
            "Table 'transaction_changes' does not exist.*TransactionChangesPlugin",
        ),
        (
            lambda op: op.backfill_versions("article", entity_names="Article"),
            r"entity_names='Article'.*entity_names=\['Article'\]",
        ),
        (
            lambda op: op.backfill_versions("article", meta={"a": "b"}),
            "Table 'transaction_meta' does not exist.*TransactionMetaPlugin",
        ),
        (
            lambda op: op.backfill_versions("article", transaction={"user": 1}),
            r"'transaction' has no column\(s\) \['user'\]",
        ),
        (lambda op: op.backfill_versions("article", transaction={"id": 1}), "transaction=.*'id'"),
        (
            lambda op: op.backfill_versions("article", transaction_table="tx"),
            "Table 'tx' does not exist.*transaction_table",
        ),
        (lambda op: op.backfill_versions("orphan"), "Table 'orphan' does not exist: backfill_versions compares"),
        (  # would compare the two languages of an entity as one entity's versions
            lambda op: op.backfill_versions("translation", primary_key=["lang"]),
            r"'translation_version' of 'translation' is keyed on .*not primary_key=\['lang'\]; pass primary_key=",
        ),
        (  # would fail on the version table's primary key, half-way
            lambda op: op.backfill_versions("article", primary_key=["name"]),
            r"entities are keyed on \['id'\], not primary_key=\['name'\]; pass primary_key=\['id'\]",
        ),
        (
            lambda op: op.backfill_versions("article", columns=["name", "nope"]),
            r"'article_version' of 'article' has no column\(s\) \['nope'\]; fix columns=",
        ),
        (
            lambda op: op.vacuum_versions("article", columns=["name"], mod_columns=["nope"]),
            r"has no column\(s\) \['nope'\]; fix columns=\[...\] / mod_columns=",
        ),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(engine: sa.Engine, call: Any, message: str) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "x"}])
            conn.exec_driver_sql(
                "CREATE TABLE orphan_version (id INTEGER, transaction_id BIGINT, operation_type SMALLINT,"
                " PRIMARY KEY (id, transaction_id))"
            )
        first = lambda op: op.backfill_versions("translation")  # noqa: E731
        assert_refused(engine, first, call, message, lambda: state(engine, app))


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_permanent_tables_named_like_the_temporary_ones_are_left_alone(engine: sa.Engine, mode: str) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "x"}])
            for name in ("_av_backfill_pending", "_av_backfill_transaction"):
                conn.exec_driver_sql(f"CREATE TABLE {name} (x INTEGER)")
                conn.exec_driver_sql(f"INSERT INTO {name} VALUES (42)")
        run(engine, lambda op: op.backfill_versions("article"), mode, target_metadata=app.metadata)
        with engine.connect() as conn:
            for name in ("_av_backfill_pending", "_av_backfill_transaction"):
                assert conn.exec_driver_sql(f"SELECT x FROM {name}").scalars().all() == [42]
            assert conn.execute(sa.select(sa.func.count()).select_from(app.version("Article"))).scalar() == 1


def test_offline_meta_is_refused_when_target_metadata_lacks_its_table(engine: sa.Engine) -> None:
    with versioned_app() as app:  # no TransactionMetaPlugin: target_metadata has no transaction_meta
        with pytest.raises(VersioningError, match="Table 'transaction_meta' does not exist.*offline"):
            render_offline(
                engine, lambda op: op.backfill_versions("article", meta={"a": "b"}), target_metadata=app.metadata
            )


def test_transaction_columns_the_database_cannot_fill(engine: sa.Engine) -> None:
    """A NOT NULL column without default in the transaction table is named before anything is
    written; given in ``transaction=``, the backfill runs (also over temporary tables a failed run
    left on the connection: SQLite does not roll back their creation)."""
    with versioned_app() as app:
        app.metadata.create_all(engine)
        transaction = app.table("transaction").to_metadata(sa.MetaData())
        transaction.append_column(sa.Column("user_id", sa.Integer, nullable=False))
        transaction.drop(engine)
        transaction.create(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}])
        before = state(engine, app)
        message = r"'transaction', whose column\(s\) \['user_id'\] need a value.*transaction=\{'user_id': ...\}"
        with pytest.raises(VersioningError, match=message):
            run_online(engine, lambda op: op.backfill_versions("article"))
        assert state(engine, app) == before
        with engine.connect() as conn:
            for leftover in ("_av_backfill_pending", "_av_backfill_transaction"):
                conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {leftover} (x INTEGER)")
            conn.commit()
            Operations(MigrationContext.configure(conn)).backfill_versions("article", transaction={"user_id": 7})
            conn.commit()
        with engine.connect() as conn:
            assert conn.execute(sa.select(transaction.c.user_id)).scalars().all() == [7]
            assert conn.execute(sa.select(sa.func.count()).select_from(app.version("Article"))).scalar() == 2


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("mod_tracker", [False, True], ids=["plain", "mod-tracker"])
def test_postgresql_schema_equals_what_continuum_writes(pg_engine: sa.Engine, mode: str, mod_tracker: bool) -> None:
    """In schema ``app`` (the transaction table too; Continuum's ``transaction_id_seq`` stays in the
    search path): the versions Continuum's ORM writes for the same change, and the sequence left at
    the new record's id."""
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA app")
    with versioned_app(schema="app", mod_tracker=mod_tracker) as app:
        truth = drift_from_truth(pg_engine, app)
        run(pg_engine, lambda op: op.backfill_versions("article", schema="app"), mode, target_metadata=app.metadata)
        article_truth, _, ids = truth
        article_now, _, ids_now = state(pg_engine, app)
        assert article_now == article_truth and ids_now == ids
        with pg_engine.connect() as conn:
            sequence_value = conn.exec_driver_sql("SELECT last_value FROM transaction_id_seq").scalar()
        assert sequence_value == ids_now[-1]
        before = state(pg_engine, app)
        run_online(pg_engine, lambda op: op.backfill_versions("article", schema="app"))
        assert state(pg_engine, app) == before


def test_association_table(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with Session(engine) as session:
            tag = app.Tag(id=1, label="t")
            session.add(app.Article(id=1, name="a", tags=[tag]))
            session.commit()
        app.manager.options["versioning"] = False
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(app.table("tag")), [{"id": 2, "label": "u"}])
                conn.execute(sa.insert(app.table("article_tag")), [{"article_id": 1, "tag_id": 2}])
                conn.execute(sa.delete(app.table("article_tag")).where(sa.text("tag_id = 1")))
        finally:
            app.manager.options["versioning"] = True
        run_online(engine, lambda op: (op.backfill_versions("tag"), op.backfill_versions("article_tag")))
        version = app.table("article_tag_version")
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(version.c.tag_id, version.c.operation_type, version.c.end_transaction_id.is_(None)).order_by(
                    version.c.tag_id, version.c.transaction_id
                )
            ).all()
        assert [tuple(r) for r in rows] == [(1, INSERT, False), (1, DELETE, True), (2, INSERT, True)]
        with Session(engine) as session:
            tag = session.get(app.Tag, 2)
            assert tag is not None and [v.operation_type for v in tag.versions] == [INSERT]


def test_association_table_without_primary_key(engine: sa.Engine) -> None:
    """Continuum keys such a version table on the transaction column alone (one version per
    transaction): refused with the fix named. Without that constraint, entities are keyed
    NULL-safely by all columns."""
    with keyless_links() as (metadata, manager):
        metadata.create_all(engine)
        link, link_version = metadata.tables["link"], metadata.tables["link_version"]
        assert [c.name for c in link_version.primary_key.columns] == ["transaction_id"]
        manager.options["versioning"] = False  # raw writes: Continuum versions Core statements on links too
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["a"]), [{"id": 1}])
            conn.execute(sa.insert(metadata.tables["b"]), [{"id": 1}, {"id": 2}])
            conn.execute(sa.insert(link), [{"a_id": 1, "b_id": 1}, {"a_id": 1, "b_id": None}])
        refused = r"'link_version' \(table 'link'\) has the primary key \(transaction_id\) alone"
        with pytest.raises(VersioningError, match=refused):
            run_online(engine, lambda op: op.backfill_versions("link"))
        link_version.drop(engine)
        unkeyed = sa.Table("link_version", sa.MetaData(), *(sa.Column(c.name, c.type) for c in link_version.c))
        unkeyed.create(engine)
        run_online(engine, lambda op: op.backfill_versions("link"))
        with engine.begin() as conn:
            conn.execute(sa.delete(link).where(link.c.b_id.is_(None)))
            conn.execute(sa.insert(link), [{"a_id": 1, "b_id": 2}])
        run_online(engine, lambda op: op.backfill_versions("link"))
        run_online(engine, lambda op: op.backfill_versions("link"))  # nothing left to do
        order = [unkeyed.c.transaction_id, unkeyed.c.b_id.is_(None), unkeyed.c.b_id]
        with engine.connect() as conn:
            rows = conn.execute(sa.select(unkeyed.c.b_id, unkeyed.c.operation_type).order_by(*order)).all()
            transactions = conn.execute(sa.select(sa.func.count()).select_from(metadata.tables["transaction"])).scalar()
        assert [tuple(r) for r in rows] == [(1, INSERT), (None, INSERT), (2, INSERT), (None, DELETE)]
        assert transactions == 2


def test_offline_without_metadata_needs_columns(engine: sa.Engine) -> None:
    script = render_offline(engine, lambda op: op.backfill_versions("article", primary_key=["id"], columns=["name"]))
    assert "INSERT INTO article_version (id, name, transaction_id, operation_type)" in script


@pytest.mark.parametrize("pruned", [False, True], ids=["records-kept", "records-pruned"])
@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_sequence_behind_the_transaction_ids_fails_and_writes_nothing(
    pg_engine: sa.Engine, mode: str, pruned: bool
) -> None:
    """A ``transaction_id_seq`` behind the version table's transaction ids (ids inserted explicitly,
    or a restore, without ``setval``) would date the new versions before existing ones, or file them
    under an unrelated transaction: the backfill stops, naming the fix, also where the transaction
    records are pruned (no primary key of theirs to collide with)."""
    with versioned_app() as app:
        app.metadata.create_all(pg_engine)
        write_history(pg_engine, app)
        with pg_engine.begin() as conn:
            conn.execute(sa.update(app.table("article")).values(name="raw"))
            conn.exec_driver_sql("SELECT setval('transaction_id_seq', 1)")
            if pruned:
                conn.execute(sa.delete(app.table("transaction")))
        before = [snapshot(pg_engine, table) for table in (app.version("Article"), app.table("transaction"))]
        message = r"backfill_versions\('article'\): the transaction id 'transaction_id_seq' gives is not above .*"
        with pytest.raises(Exception, match=message + r"Move the sequence past them") as stopped:
            run(pg_engine, lambda op: op.backfill_versions("article"), mode, target_metadata=app.metadata)
        assert [snapshot(pg_engine, table) for table in (app.version("Article"), app.table("transaction"))] == before
        hint = re.search(r"SELECT setval\(.*?\);", str(stopped.value))
        assert hint is not None
        with pg_engine.begin() as conn:  # the fix the message names, as it names it
            conn.connection.driver_connection.execute(hint.group(0))
        run(pg_engine, lambda op: op.backfill_versions("article"), mode, target_metadata=app.metadata)


def test_a_sequence_behind_another_tables_transactions_stops(pg_engine: sa.Engine) -> None:
    """The ids above the article versions' newest may belong to other tables' transactions: the
    backfill stops there too, rather than filing its versions under one of them."""
    with versioned_app() as app:
        app.metadata.create_all(pg_engine)
        with Session(pg_engine) as session:
            session.add(app.Article(id=1, name="a"))
            session.commit()
            session.add(app.Tag(id=1, label="t"))  # the newest transaction versions a tag only
            session.commit()
        with pg_engine.begin() as conn:
            conn.execute(sa.update(app.table("article")).values(name="raw"))
            newest_article = conn.execute(sa.select(sa.func.max(app.version("Article").c.transaction_id))).scalar_one()
            conn.exec_driver_sql(f"SELECT setval('transaction_id_seq', {newest_article})")
        with pytest.raises(Exception, match=r"Move the sequence past them"):
            run_online(pg_engine, lambda op: op.backfill_versions("article"))


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_sqlite_transaction_id_above_every_version_after_the_records_are_pruned(
    sqlite_engine: sa.Engine, mode: str
) -> None:
    """Without a sequence (SQLite) the new id follows the transaction table's largest; with that
    table emptied (old records pruned) it still follows every version's transaction id, so the
    backfill's versions come after all others and share no transaction with them. (PostgreSQL
    takes ids from ``transaction_id_seq``; a sequence behind: see above.)"""
    engine = sqlite_engine
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([app.Article(id=1, name="a"), app.Article(id=2, name="b")])
            session.commit()
            for name in ("b2", "b3"):
                session.get(app.Article, 2).name = name
                session.commit()
        version = app.version("Article")
        with engine.begin() as conn:
            newest = conn.execute(sa.select(sa.func.max(version.c.transaction_id))).scalar_one()
            conn.execute(sa.delete(app.table("transaction")))
            conn.execute(sa.update(app.table("article")).where(sa.text("id = 1")).values(name="bulk"))
        run(engine, lambda op: op.backfill_versions("article"), mode, target_metadata=app.metadata)
        with engine.connect() as conn:
            new_tx = conn.execute(sa.select(app.table("transaction").c.id)).scalar_one()
            written = conn.execute(sa.select(version.c.id).where(version.c.transaction_id == new_tx)).scalars()
            assert new_tx > newest and written.all() == [1]


def test_broken_chain_compares_with_the_highest_transaction(engine: sa.Engine) -> None:
    """With every end id lost (several open versions), the live row is compared with the version of
    the highest transaction id, and only that one is closed; older versions stay as they are (the
    chain is ``update_end_transaction_ids``'s to repair)."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        article_transactions(engine, app, {"name": "a", "score": 1}, {"name": "b"}, {"score": 2})
        version = app.version("Article")
        live = app.table("article")
        with engine.begin() as conn:
            conn.execute(sa.update(version).values(end_transaction_id=None))
        older = snapshot(engine, version)
        run_online(engine, lambda op: op.backfill_versions("article"))
        assert snapshot(engine, version) == older  # the live row equals the highest version: nothing
        with engine.begin() as conn:
            conn.execute(sa.update(live).values(name="a"))  # back to the first version's value
        run_online(engine, lambda op: op.backfill_versions("article"))
        with engine.connect() as conn:
            rows = conn.execute(sa.select(version).order_by(version.c.transaction_id)).mappings().all()
        *old, previous, new = rows
        assert [dict(r) for r in old] == [dict(zip(version.c.keys(), r, strict=True)) for r in older[:-1]]
        assert previous["end_transaction_id"] == new["transaction_id"] and new["end_transaction_id"] is None
        assert (new["operation_type"], new["name"], new["score"]) == (UPDATE, "a", 2)
        assert (new["name_mod"], new["content_mod"], new["score_mod"]) == (True, False, False)


def test_aware_issued_at_into_a_column_with_time_zone(pg_engine: sa.Engine) -> None:
    """A transaction table whose ``issued_at`` has a time zone keeps an aware value's instant,
    whatever the session's time zone (only naive columns get naive UTC)."""
    with versioned_app() as app:
        app.metadata.create_all(pg_engine)
        with pg_engine.begin() as conn:
            conn.exec_driver_sql('ALTER TABLE "transaction" ALTER COLUMN issued_at TYPE timestamptz')
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "x"}])
        aware = dt.datetime(2020, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        with pg_engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL TimeZone = 'Europe/Helsinki'")
            Operations(MigrationContext.configure(conn)).backfill_versions("article", transaction={"issued_at": aware})
        with pg_engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT issued_at AT TIME ZONE 'UTC' FROM \"transaction\"").scalar_one()
        assert stored == dt.datetime(2020, 1, 2, 3, 4, 5)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_excluded_columns_stay_out(engine: sa.Engine, mode: str) -> None:
    """``content`` excluded from versioning: changing it behind Continuum's back needs no version,
    changing a versioned column does, and the version table never gets ``content``."""
    with versioned_app(exclude=("content",), mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=3)
        article, version = app.table("article"), app.version("Article")
        assert "content" not in version.c and "content_mod" not in version.c
        before = state(engine, app)
        with engine.begin() as conn:
            conn.execute(sa.update(article).values(content="raw"))
        run(engine, lambda op: op.backfill_versions("article"), mode, target_metadata=app.metadata)
        assert state(engine, app) == before
        with engine.begin() as conn:
            first = conn.execute(sa.select(sa.func.min(article.c.id))).scalar_one()
            conn.execute(sa.update(article).where(article.c.id == first).values(name="raw", content="again"))
        run(engine, lambda op: op.backfill_versions("article"), mode, target_metadata=app.metadata)
        with engine.connect() as conn:
            newest = conn.execute(sa.select(version).order_by(version.c.transaction_id.desc()).limit(1)).one()
        assert (newest.id, newest.name, newest.operation_type, newest.name_mod) == (first, "raw", 1, True)
        assert len(state(engine, app)[0]) == len(before[0]) + 1
