"""The versioned-table model, built from op arguments, the database, and Continuum's manager."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import alembic_versioning
from alembic_versioning import Naming, VersionedTable
from alembic_versioning.autogenerate.discovery import find_versioned_tables, tables_by_convention, tables_from_manager
from alembic_versioning.catalog import reflect_table

from .support.apps import versioned_app


def _by_name(tables: list[VersionedTable]) -> dict[str, VersionedTable]:
    return {t.name: t for t in tables}


def test_from_manager_defaults() -> None:
    with versioned_app(mod_tracker=True) as app:
        tables = _by_name(tables_from_manager(app.manager, app.metadata))
    assert set(tables) == {"article", "tag", "translation", "article_tag"}
    article = tables["article"]
    assert article == VersionedTable(
        name="article",
        primary_key=("id",),
        columns=("name", "content", "score"),
        mod_columns=("name", "content", "score"),
        strategy="validity",
    )
    assert tables["translation"].primary_key == ("article_id", "lang")
    association = tables["article_tag"]
    assert association.association and association.primary_key == ("article_id", "tag_id")
    assert association.mod_columns == () and association.version_name == "article_tag_version"


def test_from_manager_options() -> None:
    options = {
        "table_name": "%s_history",
        "transaction_column_name": "tx_id",
        "end_transaction_column_name": "end_tx_id",
        "strategy": "subquery",
    }
    with versioned_app(schema="app", exclude=("content",), **options) as app:
        tables = _by_name(tables_from_manager(app.manager, app.metadata))
    article = tables["article"]
    assert article.naming == Naming(
        version_table_format="%s_history", transaction_column_name="tx_id", end_transaction_column_name="end_tx_id"
    )
    assert article.strategy == "subquery" and article.schema == "app"
    assert article.columns == ("name", "score") and article.mod_columns == ()
    assert article.qualified_version_name == "app.article_history"


def test_from_manager_ignores_other_metadata() -> None:
    with versioned_app() as app:
        assert tables_from_manager(app.manager, sa.MetaData()) == []
        assert {t.name for t in find_versioned_tables(app.metadata, managers=[app.manager])} == {
            "article",
            "tag",
            "translation",
            "article_tag",
        }


def test_by_convention_without_a_manager() -> None:
    metadata = sa.MetaData()
    sa.Table("doc", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text))
    sa.Table(
        "doc_version",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text),
        sa.Column("transaction_id", sa.BigInteger, primary_key=True),
        sa.Column("operation_type", sa.SmallInteger),
        sa.Column("body_mod", sa.Boolean),
    )
    sa.Table("lonely", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("lonely_version", metadata, sa.Column("id", sa.Integer, primary_key=True))  # not a history table
    (doc,) = tables_by_convention(metadata)
    assert (doc.name, doc.strategy, doc.columns, doc.mod_columns) == ("doc", "subquery", ("body",), ("body",))
    assert find_versioned_tables(metadata, managers=[]) == [doc]


def _convention_pair(metadata: sa.MetaData, name: str) -> None:
    sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text))
    sa.Table(
        f"{name}_version",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text),
        sa.Column("transaction_id", sa.BigInteger, primary_key=True),
        sa.Column("operation_type", sa.SmallInteger),
    )


def test_convention_per_metadata_beside_a_manager() -> None:
    """In a list of MetaData, one no manager knows is read by the convention; in the manager's own
    MetaData, a version table the manager does not build (history kept) is not."""
    with versioned_app() as app:
        plain = sa.MetaData()
        _convention_pair(plain, "note")
        _convention_pair(app.metadata, "retired")
        found = {t.name for t in find_versioned_tables([app.metadata, plain], managers=[app.manager])}
        assert found == {"article", "tag", "translation", "article_tag", "note"}


def test_column_keys_differ_from_names() -> None:
    class Base(DeclarativeBase):
        pass

    class Thing(Base):
        __tablename__ = "thing_version"
        id: Mapped[int] = mapped_column(primary_key=True)
        label: Mapped[str] = mapped_column("Label", sa.String)
        transaction_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
        operation_type: Mapped[int] = mapped_column(sa.SmallInteger)

    table = VersionedTable.from_version_table(Thing.__table__, name="thing", naming=Naming())
    assert table.columns == ("Label",)


def test_reflected_equals_manager_model(engine: sa.Engine) -> None:
    with versioned_app(mod_tracker=True, table_name="%s_history") as app:
        app.metadata.create_all(engine)
        expected = _by_name(tables_from_manager(app.manager, app.metadata))
    naming = Naming(version_table_format="%s_history")
    with engine.connect() as conn:
        for name, table in expected.items():
            reflected = reflect_table(conn, naming.version_table_name(name), None)
            assert reflected is not None
            described = VersionedTable.from_version_table(
                reflected, name=name, naming=naming, association=table.association
            )
            assert described == table
        assert reflect_table(conn, "article_version", None) is None  # named %s_history here


def test_naming_non_default_is_what_ops_render() -> None:
    naming = Naming(transaction_column_name="tx")
    assert naming.non_default() == {"transaction_column_name": "tx"}
    op = alembic_versioning.UpdateEndTransactionIdsOp("a", naming=naming, primary_key=["id"])
    assert op.arguments() == {"primary_key": ["id"], "transaction_column_name": "tx"}
    assert op.reverse().to_diff_tuple() == op.to_diff_tuple() and op.to_diff_tuple() == (
        "update_end_transaction_ids",
        None,
        "a",
    )


def test_importing_does_not_import_continuum() -> None:
    import subprocess
    import sys

    code = "import alembic, alembic_versioning, sys; print('sqlalchemy_continuum' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


def test_registered_as_alembic_plugin() -> None:
    from alembic.runtime.plugins import _all_plugins

    assert "alembic_versioning.drift" in _all_plugins
    from alembic.operations import Operations

    for name in ("update_end_transaction_ids", "update_mod_flags"):
        assert hasattr(Operations, name)


def test_explicit_model_builds_core_tables() -> None:
    table = VersionedTable("a", primary_key=("id",), columns=("x",), mod_columns=("x",))
    version = table.version_table()
    assert list(version.c.keys()) == ["id", "x", "transaction_id", "end_transaction_id", "operation_type", "x_mod"]
    assert [c.name for c in version.primary_key] == ["id", "transaction_id"]
    assert list(table.live_table().c.keys()) == ["id", "x"]
