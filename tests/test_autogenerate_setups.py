"""Autogenerate in less common application set-ups: per-model schemas, custom transaction classes,
versioning switched on for existing tables, strategy and tracker switches, unrelated schema changes."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.util import CommandError
from sqlalchemy.orm import Session
from sqlalchemy_continuum.plugins import TransactionChangesPlugin

from alembic_versioning import LeftOutOp, VersionedTableOp, VersioningError
from alembic_versioning.autogenerate.options import Options
from alembic_versioning.operations import RepairOnDowngradeOp

from .support.apps import joined_app, thing_app, versioned_app, write_history
from .support.autogen import apply, ours, produce
from .support.migrate import run_online


def _drift_then_repair(engine: sa.Engine, metadata: sa.MetaData, thing: Any, **opts: Any) -> str:
    with Session(engine) as session:
        session.add(thing(id=1, name="orm"))
        session.commit()
    with engine.begin() as conn:
        conn.execute(sa.insert(thing.__table__), [{"id": 2, "name": "raw"}])
    script = produce(engine, metadata, **opts)
    code = render_python_code(script.upgrade_ops)
    apply(engine, script)
    assert produce(engine, metadata, **opts).upgrade_ops.is_empty()
    return code


def test_model_schema_with_the_transaction_table_in_the_default_schema(pg_engine: sa.Engine) -> None:
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA app")
    with thing_app(table_args={"schema": "app"}) as (metadata, thing):
        assert metadata.tables["transaction"].schema is None
        metadata.create_all(pg_engine)
        code = _drift_then_repair(pg_engine, metadata, thing, include_schemas=True)
    assert "schema='app'" in code and "transaction_table='public.transaction'" in code


def test_custom_transaction_class_and_sequence(engine: sa.Engine) -> None:
    with thing_app(custom_transaction=True) as (metadata, thing):
        metadata.create_all(engine)
        code = _drift_then_repair(engine, metadata, thing)
    assert "transaction_table='audit_tx'" in code and "transaction_sequence='audit_tx_id_seq'" in code


def test_custom_manager_found_without_the_managers_option(engine: sa.Engine) -> None:
    """Association version tables keep NULL end ids (Continuum never fills them): no false positive
    even when the app's manager is not passed in, as long as its classes are mapped."""
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with Session(engine) as session:
            session.add(app.Article(id=1, name="a", tags=[app.Tag(id=1, label="t")]))
            session.commit()
        assert ours(produce(engine, app.metadata)) == []


def test_versioning_switched_on_for_existing_tables(engine: sa.Engine) -> None:
    """Version tables and the transaction table are all new; the live tables have rows."""
    with versioned_app(mod_tracker=True) as app:
        new = {"transaction", *(t for t in app.metadata.tables if t.endswith("_version"))}
        app.metadata.create_all(engine, tables=[t for k, t in app.metadata.tables.items() if k not in new])
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": i, "name": f"a{i}"} for i in range(3)])
        script = produce(engine, app.metadata)
        assert sorted(f[1] for f in ours(script)) == ["article", "article_tag", "tag", "translation"]
        if engine.dialect.name == "mariadb":
            # Alembic creates no sequences: PostgreSQL's BIGSERIAL id happens to create Continuum's
            # transaction_id_seq, MariaDB's AUTO_INCREMENT does not; the migration must (docs/mariadb.rst)
            with engine.begin() as conn:
                conn.execute(sa.schema.CreateSequence(sa.Sequence("transaction_id_seq")))
        apply(engine, script)
        assert produce(engine, app.metadata).upgrade_ops.is_empty()


def test_strategy_and_tracker_switches_do_not_vacuum(engine: sa.Engine) -> None:
    """Dropping the end column or the flags is no dropped *versioned* column."""
    with versioned_app(mod_tracker=True) as old:
        old.metadata.create_all(engine)
        write_history(engine, old, seed=2)
    with versioned_app(strategy="subquery") as new:
        script = produce(engine, new.metadata, alembic_versioning={"vacuum": True, "managers": [new.manager]})
        assert [f for f in ours(script) if f[0] == "vacuum_versions"] == []


def test_unrelated_schema_changes_keep_the_drift_checks(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=2)
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(sa.update(version).values(end_transaction_id=None))
        sa.Index("ix_article_score", app.table("article").c.score)
        script = produce(engine, app.metadata)
        assert [f[0] for f in ours(script)] == ["update_end_transaction_ids"]
        assert any(not isinstance(op, VersionedTableOp) for op in script.upgrade_ops.ops)


def test_managers_only_from_env_py() -> None:
    with pytest.raises(CommandError, match="takes a list"):
        Options.from_settings({"managers": "myapp:versioning_manager"})


def test_a_data_column_named_like_a_mod_flag(engine: sa.Engine) -> None:
    """``price_mod`` (an integer next to ``price``, no mod tracker) is data, not a flag: no diff
    on Continuum's history; a raw change to it is drift the backfill writes."""
    with thing_app(columns={"price": sa.Integer(), "price_mod": sa.Integer()}) as (metadata, thing):
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add(thing(id=1, name="a", price=10, price_mod=2))
            session.commit()
            session.get(thing, 1).price_mod = 5
            session.commit()
        assert produce(engine, metadata).upgrade_ops.is_empty()
        with engine.begin() as conn:
            conn.execute(sa.update(thing.__table__).values(price_mod=9))
        assert [f[:2] for f in ours(produce(engine, metadata))] == [("backfill_versions", "thing")]
        run_online(engine, lambda op: op.backfill_versions("thing"))
        version = metadata.tables["thing_version"]
        with engine.connect() as conn:
            assert conn.execute(sa.select(version.c.price_mod).order_by(version.c.transaction_id)).scalars().all() == [
                2,
                5,
                9,
            ]
        assert produce(engine, metadata).upgrade_ops.is_empty()
        with pytest.raises(VersioningError, match="has no mod flag columns"):
            run_online(engine, lambda op: op.update_mod_flags("thing"))


def test_a_boolean_data_column_named_like_a_mod_flag(engine: sa.Engine) -> None:
    """``price_mod`` a boolean next to ``price`` under a manager without the mod tracker: data, as
    the versioning manager says. The generated backfill names its columns, so online it writes
    ``price_mod``'s live value instead of taking it for a flag (which would leave the drift)."""
    with thing_app(columns={"price": sa.Integer(), "price_mod": sa.Boolean()}) as (metadata, thing):
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add(thing(id=1, name="a", price=10, price_mod=False))
            session.commit()
        assert produce(engine, metadata).upgrade_ops.is_empty()
        with engine.begin() as conn:
            conn.execute(sa.update(thing.__table__).values(price_mod=True))
        script = produce(engine, metadata)
        assert [f[:2] for f in ours(script)] == [("backfill_versions", "thing")]
        apply(engine, script)
        version = metadata.tables["thing_version"]
        with engine.connect() as conn:
            flags = conn.execute(sa.select(version.c.price_mod).order_by(version.c.transaction_id)).scalars().all()
        assert flags == [False, True]
        assert produce(engine, metadata).upgrade_ops.is_empty()


def _left_out(caught: Any) -> list[tuple[str, str]]:
    """The ``(op, table)`` pairs the warnings ``caught`` say autogenerate left out."""
    return sorted(re.findall(r"leaves out (\w+)\('(\w+)'\)", " ".join(str(w.message) for w in caught)))


def test_joined_table_inheritance_gets_one_backfill_and_one_vacuum(engine: sa.Engine) -> None:
    """``Doc(Item)``: one version class over ``item_version`` and ``doc_version``, written together.
    The unchanged half Continuum writes is no futile version (no diff, no warning); the drift of
    either table becomes one ``backfill_versions('item', joined=...)``, and a version futile in
    both tables one ``vacuum_versions('item', joined=...)``. Afterwards nothing is left and
    Continuum reads the Docs."""
    with joined_app() as (metadata, manager, _, Doc):
        vacuum = {"alembic_versioning": {"vacuum": True, "managers": [manager]}}
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add(Doc(id=1, name="a", body="b"))
            session.commit()
            session.get(Doc, 1).name = "a2"  # Continuum writes doc_version's unchanged half too
            session.commit()
            session.get(Doc, 1).body = "b2"  # and item_version's here
            session.commit()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert ours(produce(engine, metadata, **vacuum)) == []
        item, item_version = metadata.tables["item"], metadata.tables["item_version"]
        with engine.begin() as conn:
            conn.execute(sa.insert(item), [{"id": 2, "kind": "doc", "name": "raw"}])
            conn.execute(sa.insert(metadata.tables["doc"]), [{"id": 2, "body": "raw"}])
            conn.execute(sa.update(item).where(item.c.id == 1).values(name="a3"))
            # the second version's item half as the first: now futile in both tables, as after a dropped column
            second = sa.select(sa.func.min(item_version.c.transaction_id)).scalar_subquery()
            conn.execute(sa.update(item_version).where(item_version.c.transaction_id > second).values(name="a"))
            conn.execute(sa.update(item_version).values(end_transaction_id=None))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            script = produce(engine, metadata, **vacuum)
        assert ours(script) == [
            ("update_end_transaction_ids", "item", "2 versions whose end id is not the next version's transaction id"),
            ("vacuum_versions", "item", "1 futile version (identical to the previous one)"),
            (
                "backfill_versions",
                "item",
                "item: 1 live row without a current version, 1 stale current version; "
                "doc: 1 live row without a current version",
            ),
        ]
        assert [list(op.joined) for op in script.upgrade_ops.ops[-2:]] == [["doc"], ["doc"]]
        apply(engine, script)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert ours(produce(engine, metadata, **vacuum)) == []
        with Session(engine) as session:
            assert [(v.name, v.body) for v in session.get(Doc, 1).versions] == [("a", "b"), ("a", "b2"), ("a3", "b2")]
            assert [(v.name, v.body, v.operation_type) for v in session.get(Doc, 2).versions] == [("raw", "raw", 0)]


def test_transaction_changes_plugin_gets_its_rows(engine: sa.Engine) -> None:
    """With Continuum's TransactionChangesPlugin the generated backfill names the model classes
    (``entity_names``): one for a table, every class of a joined-table hierarchy on its base."""
    with versioned_app(plugins=(TransactionChangesPlugin(),)) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=2)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 900, "name": "raw"}])
        script = produce(engine, app.metadata, alembic_versioning={"managers": [app.manager]})
        assert "mod_columns=[], entity_names=['Article'], strategy='validity')" in render_python_code(
            script.upgrade_ops
        )
        apply(engine, script)
        assert ours(produce(engine, app.metadata, alembic_versioning={"managers": [app.manager]})) == []
        with Session(engine) as session:
            (version,) = session.get(app.Article, 900).versions.all()
            assert list(version.transaction.changed_entities) == [type(version)]
    with joined_app(plugins=(TransactionChangesPlugin(),)) as (metadata, manager, _, Doc):
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["item"]), [{"id": 2, "kind": "doc", "name": "raw"}])
            conn.execute(sa.insert(metadata.tables["doc"]), [{"id": 2, "body": "raw"}])
        script = produce(engine, metadata, alembic_versioning={"managers": [manager]})
        script.upgrade_ops.ops = [op for op in script.upgrade_ops.ops if isinstance(op, VersionedTableOp)]
        (backfill,) = script.upgrade_ops.ops  # (the first app's tables left out: Alembic would drop them)
        assert (backfill.table_name, backfill.entity_names, list(backfill.joined)) == ("item", ("Doc", "Item"), ["doc"])
        apply(engine, script)
        with Session(engine) as session:
            (version,) = session.get(Doc, 2).versions.all()
            assert type(version) in version.transaction.changed_entities


def test_joined_table_inheritance_downgrade_vacuums_the_hierarchy(engine: sa.Engine) -> None:
    """Versioning ``doc.note`` predicts a backfill of the hierarchy and, vacuum opted in, a
    downgrade vacuum of it (``doc_version`` alone would delete the half of a version Continuum
    wrote with ``item_version``'s): both on ``item``, joined with ``doc``."""
    with joined_app() as (metadata, _, _, Doc):
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add(Doc(id=1, name="a", body="b"))
            session.commit()
    with joined_app(note=True) as (metadata, manager, _, _):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            script = produce(engine, metadata, alembic_versioning={"vacuum": True, "managers": [manager]})
        found = [op for op in script.upgrade_ops.ops if isinstance(op, (VersionedTableOp, RepairOnDowngradeOp))]
        repairs = [op.repair if isinstance(op, RepairOnDowngradeOp) else op for op in found]
        assert [(op.op_name, op.table_name, list(op.joined)) for op in repairs] == [
            ("vacuum_versions", "item", ["doc"]),
            ("backfill_versions", "item", ["doc"]),
        ]
        assert isinstance(found[0], RepairOnDowngradeOp)


def test_a_hierarchy_with_a_table_left_out_gets_no_backfill(engine: sa.Engine) -> None:
    """``skip_tables`` holding one table of a hierarchy: no backfill of the rest, which would
    write half versions; a warning names the fix."""
    with joined_app() as (metadata, manager, _, _):
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["item"]), [{"id": 2, "kind": "doc", "name": "raw"}])
            conn.execute(sa.insert(metadata.tables["doc"]), [{"id": 2, "body": "raw"}])
        with pytest.warns(UserWarning, match=r"leaves out backfill_versions of \['item'\].*\['doc'\] are not among"):
            script = produce(engine, metadata, alembic_versioning={"managers": [manager], "skip_tables": ["doc"]})
        assert ours(script) == []
        [left_out] = [op for op in script.upgrade_ops.ops if isinstance(op, LeftOutOp)]  # alembic check fails
        assert left_out.to_diff_tuple()[:4] == ("left_out", "backfill_versions", None, "item")
        assert left_out.repair.finding == "item: 1 live row without a current version"
        assert "the tables of the hierarchy of 'item' together" in left_out.why
        code = render_python_code(script.upgrade_ops)
        assert "# item: 1 live row without a current version: left out by alembic-versioning" in code
        assert "add them to skip_tables.\n    pass" in code.replace("\n    # ", " ")
        assert "versioning.backfill_versions('item'" not in code  # of item alone, it would write half versions


def test_an_unversioned_parent_is_no_joined_versioning(engine: sa.Engine) -> None:
    """``Doc(Item)`` with only ``Doc`` versioned: one version table, ``doc_version``, written alone,
    so its backfill is emitted as for any table (no inheritance warning)."""
    with joined_app(versioned_parent=False) as (metadata, manager, _, _):
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["item"]), [{"id": 1, "kind": "doc"}])
            conn.execute(sa.insert(metadata.tables["doc"]), [{"id": 1, "body": "raw"}])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            found = ours(produce(engine, metadata, alembic_versioning={"managers": [manager]}))
        assert [(name, table) for name, table, _ in found] == [("backfill_versions", "doc")]


def test_a_same_named_table_in_another_schema_is_no_joined_versioning(pg_engine: sa.Engine) -> None:
    """``a.doc`` joins ``a.item``; ``b.doc``, versioned under the same manager, stands alone."""
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA a")
        conn.exec_driver_sql("CREATE SCHEMA b")
    with joined_app(schema="a", plain_doc="b") as (metadata, manager, _, _):
        metadata.create_all(pg_engine)
        with pg_engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["b.doc"]), [{"id": 1}])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            found = ours(produce(pg_engine, metadata, alembic_versioning={"managers": [manager]}, include_schemas=True))
        assert [(name, table) for name, table, _ in found] == [("backfill_versions", "doc")]
