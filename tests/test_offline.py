"""Offline (``alembic upgrade --sql``) scripts do what the operations do online, in the set-ups
where the op's arguments or ``target_metadata`` say less than the database would."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.migration import MigrationContext

from alembic_versioning import VersioningError

from .support.apps import keyless_links, thing_app, versioned_app, write_history
from .support.autogen import produce, render_generated
from .support.migrate import execute_script, render_offline

#: A bound parameter in named style (``:name``), not a ``::type`` cast.
BOUND_PARAMETER = re.compile(r"(?<![:\w]):[A-Za-z_]\w*")


def test_scripts_need_no_literal_binds(engine: sa.Engine) -> None:
    """An ``env.py`` without ``literal_binds=True`` still gets scripts without bound parameters
    (SQLite's next transaction id was ``coalesce(max(id), ?) + ?``)."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(sa.update(app.table("article")).values(name="raw"))
            conn.execute(sa.update(version).values(end_transaction_id=None, name_mod=sa.not_(version.c.name_mod)))
        script = produce(engine, app.metadata)
        code = render_python_code(script.upgrade_ops, migration_context=MigrationContext.configure(engine.connect()))
        assert {"update_end_transaction_ids", "update_mod_flags", "backfill_versions"} <= set(
            re.findall(r"versioning\.(\w+)\('article'", code)
        )
        sql = render_generated(engine, code, target_metadata=app.metadata, literal_binds=False)
        assert not BOUND_PARAMETER.search(sql), sql
        execute_script(engine, sql)
        assert produce(engine, app.metadata).upgrade_ops.is_empty()


def test_mod_flags_of_a_subquery_table_without_target_metadata(engine: sa.Engine) -> None:
    """The generated ``update_mod_flags`` names the subquery strategy, so its script needs no
    ``target_metadata`` (it selected the validity strategy's end column, which is not there)."""
    with versioned_app(mod_tracker=True, strategy="subquery") as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(sa.update(version).values(name_mod=sa.false()))
        code = render_python_code(produce(engine, app.metadata).upgrade_ops)
        assert re.search(r"versioning\.update_mod_flags\('article'.*strategy='subquery'", code.replace("\n", " "))
        execute_script(engine, render_generated(engine, code))
        assert produce(engine, app.metadata).upgrade_ops.is_empty()


def test_keyless_association_end_ids_offline(engine: sa.Engine) -> None:
    """``primary_key=[]`` keys entities by all data columns: with ``target_metadata`` the script
    rebuilds each link's chain on its own (it chained all links into one); without, the op
    asks for what it lacks instead of guessing."""
    with keyless_links() as (metadata, manager):
        metadata.create_all(engine)
        link, link_version = metadata.tables["link"], metadata.tables["link_version"]
        manager.options["versioning"] = False
        rows = [
            {"a_id": 1, "b_id": 1, "transaction_id": 1, "end_transaction_id": None, "operation_type": 0},
            {"a_id": 1, "b_id": 2, "transaction_id": 2, "end_transaction_id": 9, "operation_type": 0},
        ]
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["a"]), [{"id": 1}])
            conn.execute(sa.insert(metadata.tables["b"]), [{"id": 1}, {"id": 2}])
            conn.execute(sa.insert(link), [{"a_id": 1, "b_id": 1}, {"a_id": 1, "b_id": 2}])
            conn.execute(sa.insert(link_version), rows)
        call = lambda op: op.update_end_transaction_ids("link", primary_key=[])  # noqa: E731
        with pytest.raises(VersioningError, match=r"needs its versioned data columns \(with primary_key=\[\]"):
            render_offline(engine, call)
        execute_script(engine, render_offline(engine, call, target_metadata=metadata))
        with engine.connect() as conn:
            ends = conn.execute(sa.select(link_version.c.end_transaction_id).order_by(link_version.c.transaction_id))
            assert ends.scalars().all() == [None, None]


def test_the_lock_names_the_transaction_table_it_is_given(pg_engine: sa.Engine) -> None:
    """Models in schema ``app`` with Continuum's transaction table in the default schema: with
    ``transaction_table=`` (autogenerate renders it) the offline lock takes all three tables,
    as online, and the script runs."""
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA app")
    with thing_app(table_args={"schema": "app"}) as (metadata, thing):
        metadata.create_all(pg_engine)
        version = metadata.tables["app.thing_version"]
        with pg_engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["app.thing"]), [{"id": 1, "name": "b"}])
            conn.execute(
                sa.insert(version),
                [
                    {"id": 1, "name": "a", "transaction_id": 1, "end_transaction_id": None, "operation_type": 0},
                    {"id": 1, "name": "b", "transaction_id": 2, "end_transaction_id": None, "operation_type": 1},
                ],
            )

        def repairs(op: Any) -> None:
            op.update_end_transaction_ids("thing", schema="app", transaction_table="public.transaction")
            op.vacuum_versions("thing", schema="app", transaction_table="public.transaction")

        script = render_offline(pg_engine, repairs, target_metadata=metadata)
        assert "LOCK TABLE public.transaction, app.thing, app.thing_version IN SHARE ROW EXCLUSIVE MODE" in script
        execute_script(pg_engine, script)
        with pg_engine.connect() as conn:
            ends = conn.execute(sa.select(version.c.end_transaction_id).order_by(version.c.transaction_id))
            assert ends.scalars().all() == [2, None]


@pytest.mark.parametrize("name", ["backfill_versions", "vacuum_versions"])
def test_data_ops_need_their_columns_without_target_metadata(engine: sa.Engine, name: str) -> None:
    """Offline with ``primary_key`` alone, no ``columns`` and no ``target_metadata``, the data
    columns are unknown: the vacuum took every UPDATE for futile and deleted it, the backfill
    wrote NULLs. Refused instead, naming the fix, with nothing emitted."""
    with pytest.raises(VersioningError, match=rf"op\.{name}\(\) needs its versioned data columns\. Pass them"):
        render_offline(engine, lambda op: getattr(op, name)("article", primary_key=["id"]))
    script = render_offline(engine, lambda op: getattr(op, name)("article", primary_key=["id"], columns=["name"]))
    assert "article_version" in script


def test_repairs_need_no_column_a_later_revision_adds(engine: sa.Engine) -> None:
    """A whole-history ``upgrade --sql`` describes each table as ``target_metadata`` does, at the
    head: the chain repair reads no data column, and the mod-flag repair of named columns no other,
    so their scripts run on the schema before a later revision adds ``summary``."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(sa.update(version).values(end_transaction_id=None, name_mod=sa.false()))
        head = _with_summary(app.metadata)

        def repairs(op: Any) -> None:
            op.update_end_transaction_ids("article")
            op.update_mod_flags("article", columns=["name"])

        execute_script(engine, render_offline(engine, repairs, target_metadata=head))
        assert produce(engine, app.metadata).upgrade_ops.is_empty()


def _with_summary(metadata: sa.MetaData) -> sa.MetaData:
    """``metadata`` as a later revision has it: ``summary`` added to ``article``, flagged."""
    head = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(head)
    for name in ("article", "article_version"):
        head.tables[name].append_column(sa.Column("summary", sa.Text))
    head.tables["article_version"].append_column(sa.Column("summary_mod", sa.Boolean))
    return head


@pytest.mark.parametrize("described", [{"primary_key": ["id"]}, {}], ids=["key-and-columns", "columns-only"])
def test_hand_written_backfill_names_its_revisions_columns(engine: sa.Engine, described: dict[str, Any]) -> None:
    """``columns=[...]`` is the op's revision's column list, with or without ``primary_key``; the
    flags of those columns come from ``target_metadata`` when ``mod_columns`` is not given, so the
    new versions get them as online (they were left at their default)."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        with engine.begin() as conn:
            conn.execute(sa.update(app.table("article")).values(name="raw"))
            conn.execute(sa.insert(app.table("article")).values(id=99, name="new", content="c", score=1))
        call = lambda op: op.backfill_versions("article", columns=["name", "content", "score"], **described)  # noqa: E731
        execute_script(engine, render_offline(engine, call, target_metadata=_with_summary(app.metadata)))
        assert produce(engine, app.metadata).upgrade_ops.is_empty()
        version = app.version("Article")
        with engine.connect() as conn:
            flags = conn.execute(
                sa.select(version.c.name_mod, version.c.content_mod, version.c.score_mod).where(version.c.id == 99)
            )
            assert [tuple(row) for row in flags] == [(True, True, True)]


def test_a_data_column_named_like_a_flag_stays_data(engine: sa.Engine) -> None:
    """``columns=[...]`` naming ``price_mod`` (an integer, the application's own) keeps it a data
    column, also where the flags come from ``target_metadata`` (no ``mod_columns`` given)."""
    metadata = sa.MetaData()
    data = [sa.Column("price", sa.Integer), sa.Column("price_mod", sa.Integer)]
    sa.Table(  # Continuum's shape: ids from transaction_id_seq (PostgreSQL, MariaDB)
        "transaction",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Sequence("transaction_id_seq"), primary_key=True),
        sa.Column("issued_at", sa.DateTime),
    )
    live = sa.Table("item", metadata, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False), *data)
    version = sa.Table(
        "item_version",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        *(sa.Column(c.name, c.type) for c in data),
        sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("end_transaction_id", sa.BigInteger),
        sa.Column("operation_type", sa.SmallInteger, nullable=False),
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(live).values(id=1, price=10, price_mod=42))
    call = lambda op: op.backfill_versions("item", primary_key=["id"], columns=["price", "price_mod"])  # noqa: E731
    execute_script(engine, render_offline(engine, call, target_metadata=metadata))
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(sa.select(version.c.id, version.c.price, version.c.price_mod))] == [
            (1, 10, 42)
        ]


def test_offline_columns_without_a_key_are_the_revisions(engine: sa.Engine) -> None:
    """Offline, ``columns=[...]`` without ``primary_key`` names the revision's columns: one the head
    (``target_metadata``) no longer has is still compared and copied; and ``update_mod_flags`` of a
    column without a flag is refused, as online."""
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        with engine.begin() as conn:
            conn.execute(sa.update(app.table("article")).where(sa.text("id = 1")).values(content="NEW"))
        head = sa.MetaData()
        for table in app.metadata.tables.values():
            table.to_metadata(head)
        for name in ("article", "article_version"):  # dropped by a later revision
            head.tables[name]._columns.remove(head.tables[name].c.content)  # type: ignore[attr-defined]
        call = lambda op: op.backfill_versions("article", columns=["name", "content", "score"])  # noqa: E731
        execute_script(engine, render_offline(engine, call, target_metadata=head))
        assert produce(engine, app.metadata).upgrade_ops.is_empty()
    unflagged = lambda op: op.update_mod_flags("article", columns=["name"])  # noqa: E731
    with versioned_app(mod_tracker=False) as app, pytest.raises(VersioningError, match=r"has no mod flag column"):
        render_offline(engine, unflagged, target_metadata=app.metadata)
