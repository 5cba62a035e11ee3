"""op.backfill_versions(base, joined=[...]): joined-table inheritance, checked against Continuum.

``Doc(Item)`` keeps one version class over ``item_version`` and ``doc_version``: each version of a
``Doc`` is a row in both, at one transaction, of one operation type, even when only one table's
columns changed. The same changes are made once through Continuum's ORM (the ground truth) and
once by raw SQL followed by the op; the version tables must then be the same, up to the
transaction ids, and Continuum's API must read the backfilled versions as its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy_continuum import VersioningManager, make_versioned
from sqlalchemy_continuum.plugins import PropertyModTrackerPlugin

from alembic_versioning import VersioningError

from .support.apps import VARIANTS, joined_app, mapped, ranked, versions
from .support.autogen import apply, ours, produce
from .support.dialects import quoted_sql
from .support.migrate import render_offline, run, run_online

#: The raw SQL making the same changes as :func:`change_through_orm`, bypassing Continuum.
RAW_CHANGES = [
    "UPDATE item SET name = 'a2' WHERE id = 1",  # only the base table's half changes
    "UPDATE doc SET body = 'd2' WHERE id = 3",  # only the joined table's half changes
    "INSERT INTO item (id, kind, name) VALUES (4, 'doc', 'n')",  # a new Doc
    "INSERT INTO doc (id, body) VALUES (4, 'm')",
    "DELETE FROM doc WHERE id = 5",  # a Doc deleted
    "DELETE FROM item WHERE id IN (2, 5)",  # an Item deleted
]


@pytest.fixture(params=list(VARIANTS))
def app(request: pytest.FixtureRequest) -> Iterator[tuple[sa.MetaData, type, type]]:
    with joined_app(**VARIANTS[request.param]) as (metadata, _, item, doc):
        yield metadata, item, doc


def create_history(engine: sa.Engine, metadata: sa.MetaData, item: type, doc: type) -> None:
    """Fresh tables and a first transaction written by Continuum: Docs 1, 3, 5, 7, Items 2, 6."""
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([doc(id=i, name=n, body=b) for i, n, b in [(1, "a", "b"), (3, "c", "d"), (5, "e", "f")]])
        session.add_all([item(id=2, name="i"), item(id=6, name="g"), doc(id=7, name="h", body="k")])
        session.commit()


def change_through_orm(engine: sa.Engine, item: type, doc: type) -> None:
    """:data:`RAW_CHANGES`, in one transaction through Continuum."""
    with Session(engine) as session:
        session.get(doc, 1).name = "a2"
        session.get(doc, 3).body = "d2"
        session.add(doc(id=4, name="n", body="m"))
        session.delete(session.get(doc, 5))
        session.delete(session.get(item, 2))
        session.commit()


def change_raw(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for statement in RAW_CHANGES:
            conn.exec_driver_sql(statement)


def backfill(**kw: Any) -> Callable[[Any], None]:
    return lambda op: op.backfill_versions("item", joined=["doc"], **kw)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_backfill_writes_what_continuum_writes(
    engine: sa.Engine, app: tuple[sa.MetaData, type, type], mode: str
) -> None:
    metadata, item, doc = app
    create_history(engine, metadata, item, doc)
    change_through_orm(engine, item, doc)
    expected = versions(engine, metadata)
    assert len(expected["doc_version"]) == 4 + 4  # every Doc changed has both halves at the new transaction

    create_history(engine, metadata, item, doc)
    change_raw(engine)
    run(engine, backfill(), mode, target_metadata=metadata)
    assert versions(engine, metadata) == expected

    with engine.connect() as conn:
        records = conn.exec_driver_sql(quoted_sql(conn, 'SELECT count(*) FROM "transaction"')).scalar_one()
    run(engine, backfill(), mode, target_metadata=metadata)  # nothing left: nothing written, no record
    assert versions(engine, metadata) == expected
    with engine.connect() as conn:
        assert conn.exec_driver_sql(quoted_sql(conn, 'SELECT count(*) FROM "transaction"')).scalar_one() == records == 2


def test_continuum_reads_the_backfilled_versions(engine: sa.Engine, app: tuple[sa.MetaData, type, type]) -> None:
    """``versions``, ``previous``, ``changeset``, ``revert()`` and a further ORM change on top."""
    metadata, item, doc = app
    create_history(engine, metadata, item, doc)
    change_raw(engine)
    run_online(engine, backfill())
    with Session(engine) as session:
        first, second = session.get(doc, 1).versions
        assert (first.name, first.body, second.name, second.body) == ("a", "b", "a2", "b")
        assert second.previous == first and first.next == second
        assert second.changeset == {"name": ["a", "a2"]}
        assert session.get(doc, 3).versions.all()[-1].changeset == {"body": ["d", "d2"]}
        (new,) = session.get(doc, 4).versions
        assert (new.name, new.body, new.operation_type) == ("n", "m", 0)
        first.revert()
        session.commit()
    with Session(engine) as session:
        reverted = session.get(doc, 1)
        assert (reverted.name, reverted.body) == ("a", "b")
        assert [v.name for v in reverted.versions] == ["a", "a2", "a"]
        assert reverted.versions.all()[-1].previous.name == "a2"


def _pair(metadata: sa.MetaData, name: str, *key: str) -> None:
    """``name`` keyed by ``key`` and its validity version table."""
    sa.Table(name, metadata, *(sa.Column(k, sa.Integer, primary_key=True) for k in key), sa.Column("v", sa.String(9)))
    sa.Table(
        f"{name}_version",
        metadata,
        *(sa.Column(k, sa.Integer, primary_key=True) for k in key),
        sa.Column("v", sa.String(9)),
        sa.Column("transaction_id", sa.BigInteger, primary_key=True),
        sa.Column("end_transaction_id", sa.BigInteger),
        sa.Column("operation_type", sa.SmallInteger, nullable=False),
    )


def test_a_joined_table_keyed_otherwise_is_refused(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    _pair(metadata, "base", "id")
    _pair(metadata, "part", "id", "n")
    sa.Table(
        "transaction", metadata, sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("issued_at", sa.DateTime)
    )
    metadata.create_all(engine)
    with pytest.raises(VersioningError, match=r"'part' has the primary key \['id', 'n'\] and 'base' \['id'\]"):
        run_online(engine, lambda op: op.backfill_versions("base", joined=["part"]))


def test_joined_names_other_tables() -> None:
    from alembic_versioning.operations import BackfillVersionsOp

    with pytest.raises(VersioningError, match="without 'item' itself"):
        BackfillVersionsOp("item", joined=["item", "doc"])
    with pytest.raises(VersioningError, match="joined='doc'"):
        BackfillVersionsOp("item", joined="doc")


def test_a_table_versioned_later_gets_its_halves_of_the_base_operation(
    engine: sa.Engine, app: tuple[sa.MetaData, type, type]
) -> None:
    """``doc_version`` empty while ``item_version`` has history (the joined table versioned
    later): every Doc gets both halves at one new transaction, UPDATE versions like the base
    table's (the entities exist), and Continuum reads them as the Docs' latest versions."""
    metadata, item, doc = app
    create_history(engine, metadata, item, doc)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM doc_version")
    run_online(engine, backfill())
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT i.id, i.operation_type, d.operation_type FROM item_version i "
            "JOIN doc_version d ON d.id = i.id AND d.transaction_id = i.transaction_id ORDER BY i.id"
        ).all()
    assert rows == [(1, 1, 1), (3, 1, 1), (5, 1, 1), (7, 1, 1)]
    with Session(engine) as session:
        latest = session.get(doc, 3).versions.all()[-1]
        assert (latest.name, latest.body, latest.operation_type) == ("c", "d", 1)


def test_offline_without_target_metadata_needs_the_joined_tables_described(
    engine: sa.Engine, app: tuple[sa.MetaData, type, type]
) -> None:
    """Offline, with no ``target_metadata``: ``joined=['doc']`` is refused, naming the fix; the
    mapping form (as autogenerate renders it) writes what Continuum writes."""
    metadata, item, doc = app
    with pytest.raises(VersioningError, match=r"joined table 'doc' of table 'item'.*describe it, joined=\{'doc'"):
        render_offline(
            engine,
            lambda op: op.backfill_versions("item", primary_key=["id"], columns=["kind", "name"], joined=["doc"]),
        )
    create_history(engine, metadata, item, doc)
    change_through_orm(engine, item, doc)
    expected = versions(engine, metadata)
    create_history(engine, metadata, item, doc)
    change_raw(engine)
    flagged = "body_mod" in metadata.tables["doc_version"].c
    described = {
        "primary_key": ["id"],
        "columns": ["kind", "name"],
        "mod_columns": ["kind", "name"] if flagged else [],
        "strategy": "subquery" if "end_transaction_id" not in metadata.tables["item_version"].c else "validity",
        "joined": {"doc": {"primary_key": ["id"], "columns": ["body"], "mod_columns": ["body"] if flagged else []}},
    }
    run(engine, lambda op: op.backfill_versions("item", **described), "offline")
    assert versions(engine, metadata) == expected


@contextmanager
def tree_app() -> Iterator[tuple[sa.MetaData, VersioningManager, dict[str, type]]]:
    """``Memo(Doc(Item))`` and ``Pic(Item)``: two levels and a sibling, with the mod tracker."""
    manager = VersioningManager()
    make_versioned(manager=manager, user_cls=None, plugins=[PropertyModTrackerPlugin()])

    class Base(DeclarativeBase):
        pass

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]

    def model(name: str, parent: type, table: str, **columns: Any) -> type:
        key = sa.Column(sa.Integer, sa.ForeignKey(f"{parent.__tablename__}.id"), primary_key=True)  # type: ignore[attr-defined]
        attributes = {"__tablename__": table, "__versioned__": {}, "__mapper_args__": {"polymorphic_identity": table}}
        return type(name, (parent,), {**attributes, "id": key, **columns})

    item = type(
        "Item",
        (Base,),
        {
            "__tablename__": "item",
            "__versioned__": {},
            "__mapper_args__": {"polymorphic_on": "kind", "polymorphic_identity": "item"},
            "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False),
            "kind": sa.Column(sa.String(20)),
            "name": sa.Column(sa.String(50)),
        },
    )
    doc = model("Doc", item, "doc", body=sa.Column(sa.String(50)))
    memo = model("Memo", doc, "memo", text=sa.Column(sa.String(50)))
    pic = model("Pic", item, "pic", url=sa.Column(sa.String(50)))
    with mapped(manager, Base):
        yield Base.metadata, manager, {"Item": item, "Doc": doc, "Memo": memo, "Pic": pic}


TREE_CHANGES = [
    "UPDATE item SET name = 'a2' WHERE id = 1",  # the base table's third only
    "UPDATE doc SET body = 'b2' WHERE id = 2",  # the middle one
    "UPDATE memo SET text = 't2' WHERE id = 3",  # the leaf
    "UPDATE pic SET url = 'u2' WHERE id = 5",  # the sibling
    "DELETE FROM memo WHERE id = 4",
    "DELETE FROM doc WHERE id = 4",
    "DELETE FROM item WHERE id = 4",
    "INSERT INTO item (id, kind, name) VALUES (6, 'memo', 'n')",
    "INSERT INTO doc (id, body) VALUES (6, 'nb')",
    "INSERT INTO memo (id, text) VALUES (6, 'nt')",
]


def test_a_deeper_hierarchy_through_autogenerate(engine: sa.Engine) -> None:
    """``Memo(Doc(Item))`` and ``Pic(Item)``: the drift of any table becomes one backfill naming the
    three others; after it, the version tables are those Continuum's ORM writes for the same changes,
    and autogenerate finds nothing."""
    with tree_app() as (metadata, manager, m):
        names = ["item_version", "doc_version", "memo_version", "pic_version"]

        def written(change: Callable[[], None]) -> dict[str, list[tuple[Any, ...]]]:
            metadata.drop_all(engine)
            metadata.create_all(engine)
            with Session(engine) as session:
                session.add_all([m["Memo"](id=i, name="a", body="b", text="t") for i in (1, 2, 3, 4)])
                session.add(m["Pic"](id=5, name="p", url="u"))
                session.commit()
            change()
            return {name: ranked(engine, metadata.tables[name]) for name in names}

        def through_orm() -> None:
            with Session(engine) as session:
                session.get(m["Memo"], 1).name = "a2"
                session.get(m["Memo"], 2).body = "b2"
                session.get(m["Memo"], 3).text = "t2"
                session.get(m["Pic"], 5).url = "u2"
                session.delete(session.get(m["Memo"], 4))
                session.add(m["Memo"](id=6, name="n", body="nb", text="nt"))
                session.commit()

        def raw_then_autogenerate() -> None:
            with engine.begin() as conn:
                for statement in TREE_CHANGES:
                    conn.exec_driver_sql(statement)
            script = produce(engine, metadata, alembic_versioning={"managers": [manager]})
            assert [(name, table) for name, table, _ in ours(script)] == [("backfill_versions", "item")]
            assert sorted(script.upgrade_ops.ops[-1].joined) == ["doc", "memo", "pic"]
            apply(engine, script)
            assert ours(produce(engine, metadata, alembic_versioning={"managers": [manager]})) == []

        assert written(raw_then_autogenerate) == written(through_orm)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_backfills_of_a_hierarchy_share_the_record_until_a_half_needs_merging(
    engine: sa.Engine, app: tuple[sa.MetaData, type, type], mode: str
) -> None:
    """A second backfill of the hierarchy in the same transaction joins the first one's record; one
    that finds an entity already versioned under it (changed since) takes a record of its own, as
    the halves are not brought up to date in place."""
    metadata, item, doc = app
    create_history(engine, metadata, item, doc)
    change_raw(engine)
    with engine.connect() as conn:
        before = conn.exec_driver_sql(quoted_sql(conn, 'SELECT count(*) FROM "transaction"')).scalar_one()

    def migration(op: Any) -> None:
        backfill()(op)
        op.execute("INSERT INTO item (id, kind, name) VALUES (8, 'doc', 'x')")
        op.execute("INSERT INTO doc (id, body) VALUES (8, 'y')")
        backfill()(op)  # doc 8 is new: the record is joined
        op.execute("UPDATE doc SET body = 'd3' WHERE id = 3")
        backfill()(op)  # doc 3 has a version under the record: a record of its own

    run(engine, migration, mode, target_metadata=metadata)
    with engine.connect() as conn:
        assert conn.exec_driver_sql(quoted_sql(conn, 'SELECT count(*) FROM "transaction"')).scalar_one() == before + 2
    with Session(engine) as session:
        third, eighth = session.get(doc, 3), session.get(doc, 8)
        assert [v.body for v in third.versions] == ["d", "d2", "d3"]
        first, shared, own = (v.transaction_id for v in third.versions)
        assert [v.transaction_id for v in eighth.versions] == [shared] and first < shared < own
        assert third.versions.all()[-1].changeset == {"body": ["d2", "d3"]}
