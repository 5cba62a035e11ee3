"""Autogenerate: drift in the database and repairs implied by the migration, on real databases."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata, render_python_code
from alembic.migration import MigrationContext
from alembic.operations import ops as alembic_ops
from alembic.util import CommandError
from sqlalchemy.orm import Session

from alembic_versioning import (
    BackfillVersionsOp,
    UpdateModFlagsOp,
    VersionedTableOp,
)
from alembic_versioning.autogenerate.options import Options

from .support.apps import (
    CUSTOM_NAMES,
    App,
    article_transactions,
    keyless_links,
    snapshot,
    versioned_app,
    write_history,
)
from .support.autogen import PLUGINS, apply, left_out, ours, produce
from .support.dialects import sql_text
from .support.migrate import run_online


@pytest.mark.parametrize(
    ("mod_tracker", "options"),
    [
        (False, {}),
        (True, {}),
        (True, {"strategy": "subquery"}),
        (False, {"strategy": "subquery"}),
        (True, {"table_name": "%s_history", "transaction_column_name": "tx_id"}),
    ],
    ids=["plain", "mod-tracker", "subquery", "subquery-plain", "custom-names"],
)
def test_continuum_histories_produce_no_diff(engine: sa.Engine, mod_tracker: bool, options: dict[str, Any]) -> None:
    with versioned_app(mod_tracker=mod_tracker, **options) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=3, transactions=40, many_to_many=True)
        script = produce(engine, app.metadata, alembic_versioning={"vacuum": True})
        assert script.upgrade_ops.is_empty(), render_python_code(script.upgrade_ops)


@pytest.mark.parametrize("mod_tracker", [True, False], ids=["mod-tracker", "plain"])
def test_value_changed_and_changed_back_in_one_transaction(engine: sa.Engine, mod_tracker: bool) -> None:
    """Continuum's ORM writes an UPDATE version equal to the previous one. With mod flags its true
    flag shows the application wrote the column: not futile, no diff even with vacuum on, and
    vacuum keeps it (until update_mod_flags clears the flag). Without flags it is futile, as
    documented: the vacuum check (opt-in) reports it."""
    with versioned_app(mod_tracker=mod_tracker) as app:
        app.metadata.create_all(engine)
        article_transactions(engine, app, {"name": "a"}, [{"name": "b"}, {"name": "a"}])
        version = app.version("Article")
        with engine.connect() as conn:
            assert conn.execute(sa.select(version.c.name, version.c.operation_type)).all() == [("a", 0), ("a", 1)]
        found = ours(produce(engine, app.metadata, alembic_versioning={"vacuum": True}))
        if not mod_tracker:
            assert found == [("vacuum_versions", "article", "1 futile version (identical to the previous one)")]
            return
        assert found == []
        run_online(engine, lambda op: op.vacuum_versions("article"))
        run_online(engine, lambda op: op.update_mod_flags("article"))  # clears the flag of the unchanged name
        found = ours(produce(engine, app.metadata, alembic_versioning={"vacuum": True}))
        assert found == [("vacuum_versions", "article", "1 futile version (identical to the previous one)")]
        run_online(engine, lambda op: op.vacuum_versions("article"))
        with engine.connect() as conn:
            assert conn.execute(sa.select(version.c.name, version.c.end_transaction_id)).all() == [("a", None)]


def test_repairing_flags_keeps_the_true_flag_of_a_changed_back_value(engine: sa.Engine) -> None:
    """Drift in one flag, next to Continuum's change-and-change-back version (vacuum on): the
    generated ``update_mod_flags`` sets the missing flag and keeps the true one (clearing it made
    that version futile, so the next autogenerate found a vacuum to do). One round settles it."""
    vacuum = {"alembic_versioning": {"vacuum": True}}
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        article_transactions(
            engine, app, {"name": "a", "content": "x"}, [{"name": "b"}, {"name": "a"}], {"content": "y"}
        )
        assert ours(produce(engine, app.metadata, **vacuum)) == []
        version = app.version("Article")
        before = snapshot(engine, version)
        with engine.begin() as conn:
            conn.execute(sa.update(version).where(version.c.transaction_id == 3).values(content_mod=False))
        script = produce(engine, app.metadata, **vacuum)
        assert [(name, finding) for name, _, finding in ours(script)] == [
            ("update_mod_flags", "1 version missing mod flags its data shows")
        ]
        assert "keep_true=True" in render_python_code(script.upgrade_ops)
        apply(engine, script)
        assert produce(engine, app.metadata, **vacuum).upgrade_ops.is_empty()
        assert snapshot(engine, version) == before


def test_documented_limit_a_collection_change_with_a_same_value_assignment(engine: sa.Engine) -> None:
    """Documented in autogenerate.rst: Continuum writes an article version equal to the previous
    one, every flag false, when ``tags`` changes in the flush that assigns ``name`` its own value
    (each alone writes none). With vacuum on it reads as futile; vacuumed, the history is what
    Continuum writes for the tag change alone."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([app.Article(id=1, name="a"), app.Tag(id=1, label="t")])
            session.commit()
            article = session.get(app.Article, 1)
            article.tags = [session.get(app.Tag, 1)]
            article.name = "a"
            session.commit()
        assert ours(produce(engine, app.metadata)) == []
        found = ours(produce(engine, app.metadata, alembic_versioning={"vacuum": True}))
        assert found == [("vacuum_versions", "article", "1 futile version (identical to the previous one)")]
        run_online(engine, lambda op: op.vacuum_versions("article"))
        version = app.version("Article")
        with engine.connect() as conn:
            assert conn.execute(sa.select(version.c.operation_type, version.c.end_transaction_id)).all() == [(0, None)]


def test_by_convention_no_diff_on_association_tables(engine: sa.Engine) -> None:
    """Without the versioning manager, pairs are found by name; the association table's version
    table (end ids never filled by Continuum) must not be taken for a broken chain."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=5, transactions=30, many_to_many=True)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM article_tag_version").scalar_one() > 3
        plain = sa.MetaData()  # a migrations project keeping its own MetaData: no manager to ask
        for table in app.metadata.sorted_tables:
            table.to_metadata(plain)
        by_convention = {"managers": [], "vacuum": True}
        script = produce(engine, plain, alembic_versioning=by_convention)
        assert script.upgrade_ops.is_empty(), render_python_code(script.upgrade_ops)
        with engine.begin() as conn:  # real drift in the association table is still found (raw SQL:
            # Continuum versions Core statements on association tables too)
            assert conn.exec_driver_sql("DELETE FROM article_tag").rowcount > 0
        assert [f[:2] for f in ours(produce(engine, plain, alembic_versioning=by_convention))] == [
            ("backfill_versions", "article_tag")
        ]


def _drift_cases() -> list[Any]:
    def raw_insert(engine: sa.Engine, app: App) -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 900 + i, "name": "raw"} for i in range(3)])

    def broken_chain(engine: sa.Engine, app: App) -> None:
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(
                sa.update(version).where(version.c.end_transaction_id.is_not(None)).values(end_transaction_id=None)
            )

    def wrong_flags(engine: sa.Engine, app: App) -> None:
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(sa.update(version).where(version.c.operation_type == 2).values(name_mod=False))

    def futile_and_flags(engine: sa.Engine, app: App) -> None:
        """The same value everywhere: every UPDATE version becomes futile (its true flag is not
        counted as wrong: Continuum writes such flags too)."""
        version = app.version("Translation")
        with engine.begin() as conn:
            conn.execute(sa.update(version).values(title="same"))
            conn.execute(sa.update(app.table("translation")).values(title="same"))

    def futile(engine: sa.Engine, app: App) -> None:
        """Futile with correct flags: the flags say nothing changed."""
        futile_and_flags(engine, app)
        version = app.version("Translation")
        with engine.begin() as conn:
            conn.execute(sa.update(version).where(version.c.operation_type == 1).values(title_mod=False))

    return [
        pytest.param(
            raw_insert, ("backfill_versions", "article", "3 live rows without a current version"), id="backfill"
        ),
        pytest.param(broken_chain, ("update_end_transaction_ids", "article", None), id="chains"),
        pytest.param(wrong_flags, ("update_mod_flags", "article", None), id="mod-flags"),
        pytest.param(futile, ("vacuum_versions", "translation", None), id="vacuum"),
    ]


@pytest.mark.parametrize(("corrupt", "expected"), _drift_cases())
def test_each_drift_gives_exactly_its_op_and_upgrade_repairs_it(
    engine: sa.Engine, corrupt: Any, expected: tuple[Any, ...]
) -> None:
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=5)
        corrupt(engine, app)
        script = produce(engine, app.metadata, alembic_versioning={"vacuum": True})
        found, *more = ours(script)
        assert found[:2] == expected[:2]
        assert more == []
        assert expected[2] is None or found[2] == expected[2]
        assert script.upgrade_ops.ops == [op for op in script.upgrade_ops.ops if isinstance(op, VersionedTableOp)]
        code = render_python_code(script.upgrade_ops)
        assert f"# {found[2]}\n    versioning.{found[0]}('{found[1]}', primary_key=" in code
        apply(engine, script)
        assert produce(engine, app.metadata, alembic_versioning={"vacuum": True}).upgrade_ops.is_empty()


def test_custom_names_are_rendered_and_the_script_repairs_them(engine: sa.Engine) -> None:
    """Every non-default naming option of the versioning manager (and the mod tracker's flag
    suffix) is rendered into the generated ops, which then repair a drifted history; counts carry
    thousands separators."""
    with versioned_app(mod_tracker=True, mod_suffix="_changed", **CUSTOM_NAMES) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=8)
        version = app.version("Article")
        assert produce(engine, app.metadata).upgrade_ops.is_empty()
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 5000 + i, "name": "raw"} for i in range(1204)])
            conn.execute(sa.update(version).where(version.c.end_tx_id.is_not(None)).values(end_tx_id=None))
            conn.execute(sa.update(version).where(version.c.operation_type == 2).values(name_changed=False))
        script = produce(engine, app.metadata)
        assert [f[:2] for f in ours(script)] == [
            ("update_end_transaction_ids", "article"),
            ("update_mod_flags", "article"),
            ("backfill_versions", "article"),
        ]
        code = render_python_code(script.upgrade_ops)
        assert "# 1,204 live rows without a current version\n" in code
        names = (
            "version_table_format='%s_history', transaction_column_name='tx_id', "
            "end_transaction_column_name='end_tx_id', mod_suffix='_changed'"
        )
        assert code.count(names) == 3, code
        apply(engine, script)
        assert produce(engine, app.metadata).upgrade_ops.is_empty()
        with Session(engine) as session:
            raw = session.get(app.Article, 5000)
            assert raw is not None and [v.operation_type for v in raw.versions] == [0]


def test_a_column_default_or_type_change_leaves_the_drift_checked(engine: sa.Engine) -> None:
    """A migration changing a versioned column's server default (Alembic's ``alter_column``) keeps
    the table's shape: its drift is still found, and repaired after the alter in the same revision."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=5)
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(sa.update(version).values(end_transaction_id=None))
        app.table("article").c.name.server_default = sa.DefaultClause("untitled")
        script = produce(engine, app.metadata, compare_server_default=True)
        altered = [(op.table_name, [c.column_name for c in op.ops]) for op in script.upgrade_ops.ops[:-1]]
        expected = [("article", ["name"])]
        if engine.dialect.name == "mariadb":  # Alembic takes Continuum's flag default false for changed from 0
            expected += [
                (f"{name}_version", [f"{column}_mod" for column in columns])
                for name, columns in [
                    ("article", ["name", "content", "score"]),
                    ("tag", ["label"]),
                    ("translation", ["title"]),
                ]
            ]
        assert sorted(altered) == sorted(expected)
        assert type(script.upgrade_ops.ops[-1]).__name__ == "UpdateEndTransactionIdsOp"
        if engine.dialect.name != "sqlite":  # SQLite cannot alter a column's default in place
            apply(engine, script)
            assert ours(produce(engine, app.metadata)) == []


def test_vacuum_is_opt_in_and_checks_can_be_switched_off(engine: sa.Engine) -> None:
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=5)
        version = app.version("Translation")
        with engine.begin() as conn:
            conn.execute(sa.update(version).values(title="same", end_transaction_id=None))
            conn.execute(sa.update(version).where(version.c.operation_type == 1).values(title_mod=False))
            conn.execute(sa.update(app.table("translation")).values(title="same"))
        assert [f[0] for f in ours(produce(engine, app.metadata))] == ["update_end_transaction_ids"]
        opted_in = ours(produce(engine, app.metadata, alembic_versioning={"vacuum": "true"}))
        assert [f[0] for f in opted_in] == ["update_end_transaction_ids", "vacuum_versions"]
        assert ours(produce(engine, app.metadata, alembic_versioning={"disable": ["chains"]})) == []
        assert ours(produce(engine, app.metadata, alembic_versioning={"skip_tables": ["translation"]})) == []
        default_schema = sa.inspect(engine).default_schema_name  # qualified by the default (MariaDB: the database)
        skip = {"skip_tables": [f"{default_schema}.translation"]}
        assert ours(produce(engine, app.metadata, alembic_versioning=skip)) == []

        def exclude_translation(obj: Any, name: str, type_: str, reflected: bool, compare_to: Any) -> bool:
            return not name.startswith("translation")

        assert ours(produce(engine, app.metadata, include_object=exclude_translation)) == []
        with pytest.raises(CommandError, match=r"Unknown alembic_versioning option\(s\) \['vacum'\]"):
            produce(engine, app.metadata, alembic_versioning={"vacum": True})


def test_mod_flag_and_vacuum_checks_can_be_switched_off(engine: sa.Engine) -> None:
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=5)
        articles, translations = app.version("Article"), app.version("Translation")
        with engine.begin() as conn:  # DELETE versions without flags; translations as after a dropped column
            conn.execute(sa.update(articles).where(articles.c.operation_type == 2).values(name_mod=False))
            conn.execute(sa.update(translations).values(title="same", title_mod=False))
            conn.execute(sa.update(app.table("translation")).values(title="same"))

        def found(**options: Any) -> list[tuple[str, str]]:
            return [f[:2] for f in ours(produce(engine, app.metadata, alembic_versioning=options))]

        mod_flags, vacuum = ("update_mod_flags", "article"), ("vacuum_versions", "translation")
        assert found() == [mod_flags]
        assert found(vacuum=True) == [mod_flags, vacuum]
        assert found(vacuum=True, disable=["mod_flags"]) == [vacuum]
        assert found(vacuum=True, disable=["vacuum"]) == [mod_flags]


def test_check_fails_on_drift_through_compare_metadata(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "raw"}])
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"autogenerate_plugins": PLUGINS, "target_metadata": app.metadata}
            )
            diffs = compare_metadata(context, app.metadata)
        assert diffs == [("backfill_versions", None, "article")]


def test_new_version_table_for_an_existing_table(engine: sa.Engine) -> None:
    with versioned_app(mod_tracker=True) as app:
        version = app.version("Article")
        app.metadata.create_all(engine, tables=[t for t in app.metadata.sorted_tables if t is not version])
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": i, "name": f"a{i}"} for i in range(4)])
        script = produce(engine, app.metadata)
        kinds = [type(op) for op in script.upgrade_ops.ops]
        assert kinds[0] is alembic_ops.CreateTableOp and kinds[-1] is BackfillVersionsOp
        assert kinds.count(BackfillVersionsOp) == 1
        assert ours(script)[0][2] == "article_version is new: versions for the existing rows of article"
        apply(engine, script)
        assert produce(engine, app.metadata).upgrade_ops.is_empty()
        with engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(version)) == 4


def test_no_backfill_where_the_version_table_has_no_room(engine: sa.Engine) -> None:
    """An association table without a primary key gets a version table keyed on the transaction
    column alone, where a backfill cannot write its versions (one transaction): rather than a
    migration that fails, autogenerate leaves it out (comments and ``pass`` in the script, a diff
    for ``alembic check``) and warns, naming the fix, for a new version table and for drift alike,
    and still repairs the other tables."""
    with keyless_links() as (metadata, manager):
        link_version = metadata.tables["link_version"]
        metadata.create_all(engine, tables=[t for t in metadata.sorted_tables if t is not link_version])
        manager.options["versioning"] = False  # raw writes: Continuum versions Core statements on links too
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["a"]), [{"id": 1}])
            conn.execute(sa.insert(metadata.tables["b"]), [{"id": 1}, {"id": 2}])
            conn.execute(sa.insert(metadata.tables["link"]), [{"a_id": 1, "b_id": 1}, {"a_id": 1, "b_id": 2}])
        fix = r": 'link_version' \(table 'link'\) has the primary key \(transaction_id\) alone.* Give 'link' a"
        with pytest.warns(UserWarning, match=r"leaves out backfill_versions\('link'\) \(link_version is new: .*" + fix):
            script = produce(engine, metadata)
        assert sorted(table for _, table, _ in ours(script)) == ["a", "b"]
        assert [op.table_name for op in script.upgrade_ops.ops if isinstance(op, alembic_ops.CreateTableOp)] == [
            "link_version"
        ]
        assert [found[:2] for found in left_out(script)] == [("backfill_versions", "link")]
        link_version.create(engine)
        drift = r"\(2 live rows without a current version\)"
        with pytest.warns(UserWarning, match=r"leaves out backfill_versions\('link'\) " + drift + fix):
            script = produce(engine, metadata)
        assert sorted(table for _, table, _ in ours(script)) == ["a", "b"]
        [(_, _, why)] = left_out(script)
        assert "has the primary key (transaction_id) alone" in why
        code = render_python_code(script.upgrade_ops)
        assert "# 2 live rows without a current version: left out by alembic-versioning, as 'link_version'" in code
        assert re.search(r"\n    # versioning\.backfill_versions\('link', [^\n]*\)\n    pass\n", code)
        apply(engine, script)  # the left-out repair runs nothing; the others repair their tables
        assert sorted(op.to_diff_tuple()[0:4] for op in produce(engine, metadata).upgrade_ops.ops) == [
            ("left_out", "backfill_versions", None, "link")  # the drift is still there: check still fails
        ]
        link_version.drop(engine)  # the fix the warning names: no primary key on link_version
        sa.Table(
            "link_version", sa.MetaData(), *(sa.Column(c.name, c.type, nullable=c.nullable) for c in link_version.c)
        ).create(engine)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            found = ours(produce(engine, metadata))
        assert sorted(table for _, table, _ in found) == ["link"]  # a and b: repaired above


def test_columns_added_dropped_and_flags_predicted(engine: sa.Engine) -> None:
    """The database has the old schema; the new models switch to the validity strategy and the
    mod tracker, version ``score`` and stop versioning ``content``."""
    with versioned_app(strategy="subquery", exclude=("score",)) as old:
        old.metadata.create_all(engine)
        write_history(engine, old, seed=1)
    with versioned_app(mod_tracker=True, exclude=("content",)) as new:
        opted_out = produce(engine, new.metadata, alembic_versioning={"managers": [new.manager]})
        assert "vacuum_versions" not in [name for name, _, _ in ours(opted_out)]  # it deletes history: opt-in
        script = produce(engine, new.metadata, alembic_versioning={"vacuum": True, "managers": [new.manager]})
        found = [(name, table) for name, table, _ in ours(script) if table == "article"]
        assert found == [
            ("update_end_transaction_ids", "article"),
            ("vacuum_versions", "article"),
            ("update_mod_flags", "article"),
            ("backfill_versions", "article"),
        ]
        # Continuum leaves an association version table's end ids NULL: no chain to rebuild
        assert [name for name, table, _ in ours(script) if table == "article_tag"] == []
        flags = next(
            op for op in script.upgrade_ops.ops if isinstance(op, UpdateModFlagsOp) and op.table_name == "article"
        )
        assert flags.columns == ("name", "score")
        first_ours = next(i for i, op in enumerate(script.upgrade_ops.ops) if isinstance(op, VersionedTableOp))
        assert all(not isinstance(op, VersionedTableOp) for op in script.upgrade_ops.ops[:first_ours])
        assert all(isinstance(op, VersionedTableOp) for op in script.upgrade_ops.ops[first_ours:])
        apply(engine, script)
        assert produce(
            engine, new.metadata, alembic_versioning={"vacuum": True, "managers": [new.manager]}
        ).upgrade_ops.is_empty()


def test_options_from_settings() -> None:
    options = Options.from_settings({"skip_tables": "a, b", "vacuum": "true"}, {"disable": ["chains"]})
    assert options.skip_tables == {"a", "b"} and options.vacuum and not options.enabled("chains")
    assert options.enabled("backfill") and options.enabled("vacuum")
    assert not Options().enabled("vacuum")
    with pytest.raises(CommandError, match="the checks are"):
        Options.from_settings({"disable": ["everything"]})


def test_native_trigger_histories_produce_no_diff_and_backfill_renders_native(pg_engine: sa.Engine) -> None:
    from .support.apps import native_app

    with native_app(pg_engine) as app:
        write_history(pg_engine, app, seed=9)
        script = produce(pg_engine, app.metadata, alembic_versioning={"vacuum": True})
        assert script.upgrade_ops.is_empty(), render_python_code(script.upgrade_ops)
        with pg_engine.begin() as conn:  # bypass the triggers: no transaction record in this transaction
            conn.execute(sa.update(app.table("article")).values(score=42))
        (backfill,) = [
            op for op in produce(pg_engine, app.metadata).upgrade_ops.ops if isinstance(op, VersionedTableOp)
        ]
        assert isinstance(backfill, BackfillVersionsOp) and backfill.native_versioning is True
        assert "native_versioning=True" in render_python_code(produce(pg_engine, app.metadata).upgrade_ops)


def test_legacy_registration_for_alembic_without_plugins(engine: sa.Engine) -> None:
    """``register_legacy()`` hooks the comparator into Alembic's global registry instead of a plugin."""
    from alembic.autogenerate import comparators

    from alembic_versioning.plugin import register_legacy

    saved = {key: list(fns) for key, fns in comparators._registry.items()}
    try:
        register_legacy()
        with versioned_app() as app:
            app.metadata.create_all(engine)
            with engine.begin() as conn:
                conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "raw"}])
            script = produce(engine, app.metadata, autogenerate_plugins=["alembic.autogenerate.*"])
            assert [f[:2] for f in ours(script)] == [("backfill_versions", "article")]
    finally:
        comparators._registry.clear()
        comparators._registry.update(saved)
    with versioned_app() as app:  # and without it, the plugin alone is what finds drift
        script = produce(engine, app.metadata, autogenerate_plugins=["alembic.autogenerate.*"])
        assert ours(script) == []


def test_schemas_and_include_name(pg_engine: sa.Engine) -> None:
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA app")
    with versioned_app(schema="app") as app:
        app.metadata.create_all(pg_engine)
        with pg_engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "raw"}])
        script = produce(pg_engine, app.metadata, include_schemas=True)
        (backfill,) = [op for op in script.upgrade_ops.ops if isinstance(op, VersionedTableOp)]
        assert (backfill.op_name, backfill.schema, backfill.table_name) == ("backfill_versions", "app", "article")
        assert "schema='app'" in render_python_code(script.upgrade_ops)

        def not_article_version(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
            return name != "article_version"

        assert ours(produce(pg_engine, app.metadata, include_schemas=True, include_name=not_article_version)) == []
        assert ours(produce(pg_engine, app.metadata, include_schemas=False)) == []


def test_backfill_left_out_without_a_transaction_table(engine: sa.Engine) -> None:
    """A backfill needs the transaction table: where neither the database nor the migration has
    one (the models' is excluded), autogenerate warns instead of writing a migration that fails;
    where the migration creates it, the backfill runs after it."""
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        with engine.begin() as conn:
            conn.execute(sa.update(app.table("article")).values(name="raw"))
            conn.execute(sql_text(conn, 'DROP TABLE "transaction"'))

        def no_transaction_table(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
            return not (kind == "table" and name == "transaction")

        fix = r"its transaction table 'transaction' does not exist; create Continuum's transaction table"
        with pytest.warns(UserWarning, match=r"leaves out backfill_versions\('article'\) \(\d+ stale .*" + fix):
            script = produce(engine, app.metadata, include_object=no_transaction_table)
        assert "article" not in [table for name, table, _ in ours(script) if name == "backfill_versions"]
        assert [found[:2] for found in left_out(script)] == [("backfill_versions", "article")]
        with engine.connect() as conn, pytest.warns(UserWarning, match="leaves out"):
            opts = {"autogenerate_plugins": PLUGINS, "include_object": no_transaction_table}
            diffs = compare_metadata(MigrationContext.configure(conn, opts=opts), app.metadata)
        assert [diff[:4] for diff in diffs if diff[0] == "left_out"] == [
            ("left_out", "backfill_versions", None, "article")
        ]

        script = produce(engine, app.metadata)
        created = [op.table_name for op in script.upgrade_ops.ops if isinstance(op, alembic_ops.CreateTableOp)]
        assert created == ["transaction"] and ("backfill_versions", "article") in [f[:2] for f in ours(script)]
        version = app.version("Article")
        newest = sa.select(sa.func.max(version.c.transaction_id))
        with engine.connect() as conn:
            before = conn.execute(newest).scalar_one()
        apply(engine, script)  # the new record dates the versions after the old ones, its table empty or not
        with engine.connect() as conn:
            new_tx = conn.execute(sa.select(app.table("transaction").c.id)).scalar_one()
            assert new_tx > before and conn.execute(newest).scalar_one() == new_tx
        assert produce(engine, app.metadata).upgrade_ops.is_empty()


def test_reflected_tables_read_once_per_schema(engine: sa.Engine) -> None:
    """The drift checks' view of the database: the tables of the pairs (present or not) and their
    column types, read in one go per schema."""
    from alembic_versioning.catalog import ReflectedTables
    from alembic_versioning.model import VersionedTable

    with versioned_app() as app:
        app.metadata.create_all(engine)
        with engine.connect() as conn:
            queries: list[str] = []
            sa.event.listen(conn, "before_cursor_execute", lambda *args: queries.append(args[2]))
            tables = [VersionedTable("article", primary_key=("id",)), VersionedTable("gone", primary_key=("id",))]
            reflected = ReflectedTables(sa.inspect(conn), tables)
            if engine.dialect.name == "postgresql":  # SQLite reflects table by table (PRAGMA)
                assert len(queries) == 1
            assert [reflected.has_table(n, None) for n in ("article", "article_version", "gone", "gone_version")] == [
                True,
                True,
                False,
                False,
            ]
            assert isinstance(reflected.types("article_version", None)["name"], sa.String)
            assert reflected.types("gone", None) == {}
