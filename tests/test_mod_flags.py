"""op.update_mod_flags against histories written by Continuum's ORM with PropertyModTrackerPlugin."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from alembic_versioning import DELETE, INSERT, UPDATE, VersioningError

from .support.apps import App, snapshot, versioned_app, write_history
from .support.migrate import render_offline, run, run_online

FLAGGED = {"Article": ("name", "content", "score"), "Translation": ("title",)}


def _flags(table: sa.Table, model: str) -> list[sa.Column[Any]]:
    return [table.c[f"{c}_mod"] for c in FLAGGED[model]]


def corrupt_derivable_flags(engine: sa.Engine, app: App) -> None:
    """Invert every flag of UPDATE and DELETE versions (the rows the convention derives)."""
    with engine.begin() as conn:
        for model in FLAGGED:
            table = app.version(model)
            op = table.c.operation_type
            conn.execute(sa.update(table).where(op.in_([UPDATE, DELETE])).values({f: ~f for f in _flags(table, model)}))


def history_with_inverted_flags(engine: sa.Engine, app: App, seed: int) -> list[list[tuple[Any, ...]]]:
    """Return the rows of each version table of :data:`FLAGGED` as Continuum's ORM writes a history
    (``seed``), leaving them with those flags inverted by :func:`corrupt_derivable_flags`."""
    app.metadata.create_all(engine)
    write_history(engine, app, seed=seed)
    truth = [snapshot(engine, app.version(model)) for model in FLAGGED]
    corrupt_derivable_flags(engine, app)
    return truth


def repair_all(op: Any, **kwargs: Any) -> None:
    op.update_mod_flags("article", **kwargs)
    op.update_mod_flags("translation", **kwargs)


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("strategy", ["validity", "subquery"])
def test_repairs_to_what_continuum_wrote(engine: sa.Engine, mode: str, strategy: str) -> None:
    with versioned_app(mod_tracker=True, strategy=strategy) as app:
        tables = [app.version(m) for m in FLAGGED]
        truth = history_with_inverted_flags(engine, app, seed=3)
        assert [snapshot(engine, t) for t in tables] != truth
        run(engine, repair_all, mode, target_metadata=app.metadata)
        assert [snapshot(engine, t) for t in tables] == truth


@pytest.mark.parametrize("seed", range(4))
def test_continuum_histories_are_left_untouched(engine: sa.Engine, caplog: pytest.LogCaptureFixture, seed: int) -> None:
    """The convention agrees with every row Continuum's ORM writes: nothing to rewrite."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=seed)
        with caplog.at_level(logging.INFO, logger="alembic"):
            run_online(engine, repair_all)
        assert "update_mod_flags article_version: 0 rows updated" in caplog.text
        assert "update_mod_flags translation_version: 0 rows updated" in caplog.text


def test_works_on_a_broken_chain(engine: sa.Engine) -> None:
    """The previous version is found by transaction order, not through the end column."""
    with versioned_app(mod_tracker=True) as app:
        table = app.version("Article")
        truth, _ = history_with_inverted_flags(engine, app, seed=5)
        with engine.begin() as conn:
            conn.execute(sa.update(table).values(end_transaction_id=None))

        def repair(op: Any) -> None:
            op.update_mod_flags("article")
            op.update_end_transaction_ids("article")

        run_online(engine, repair)
        assert snapshot(engine, table) == truth


def test_null_transitions_set_and_clear_flags(engine: sa.Engine) -> None:
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        with sa.orm.Session(engine) as session:
            article = app.Article(id=1, name="a", content=None)
            session.add(article)
            session.commit()
            article.name = None  # value -> NULL
            session.commit()
            article.name = None
            article.content = "c"  # NULL -> value
            session.commit()
            session.delete(article)
            session.commit()
        table = app.version("Article")
        cols = [table.c.operation_type, table.c.name_mod, table.c.content_mod, table.c.score_mod]
        with engine.connect() as conn:
            written = conn.execute(sa.select(*cols).order_by(table.c.transaction_id)).all()
        assert [tuple(r) for r in written] == [
            (INSERT, True, True, False),
            (UPDATE, True, False, False),
            (UPDATE, False, True, False),
            (DELETE, True, True, True),
        ]
        with engine.begin() as conn:
            conn.execute(
                sa.update(table).values(
                    name_mod=sa.not_(table.c.name_mod), content_mod=sa.not_(table.c.content_mod), score_mod=True
                )
            )
        run_online(engine, lambda op: op.update_mod_flags("article"))
        with engine.connect() as conn:
            repaired = conn.execute(sa.select(*cols).order_by(table.c.transaction_id)).all()
        # INSERT rows keep whatever they hold (inverted here); the others are derived again
        assert [tuple(r) for r in repaired] == [(INSERT, False, False, True), *written[1:]]


@pytest.mark.parametrize(
    ("insert_flags", "expected"),
    [("keep", (False, False, False)), ("non_null", (True, False, True)), ("all", (True, True, True))],
)
def test_insert_flags(engine: sa.Engine, insert_flags: str, expected: tuple[bool, ...]) -> None:
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        with sa.orm.Session(engine) as session:
            session.add(app.Article(id=1, name="a", content=None, score=3))
            session.commit()
        table = app.version("Article")
        with engine.begin() as conn:  # as after the mod tracker was switched on: flags all false
            conn.execute(sa.update(table).values(name_mod=False, content_mod=False, score_mod=False))
        run_online(engine, lambda op: op.update_mod_flags("article", insert_flags=insert_flags))
        with engine.connect() as conn:
            row = conn.execute(sa.select(table.c.name_mod, table.c.content_mod, table.c.score_mod)).one()
        assert tuple(row) == expected


def test_column_subset_and_idempotence(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    with versioned_app(mod_tracker=True) as app:
        table = app.version("Article")
        truth, _ = history_with_inverted_flags(engine, app, seed=1)
        run_online(engine, lambda op: op.update_mod_flags("article", ["name"]))
        rows = snapshot(engine, table)
        name_mod = list(table.c.keys()).index("name_mod")
        content_mod = list(table.c.keys()).index("content_mod")
        assert [r[name_mod] for r in rows] == [r[name_mod] for r in truth]
        assert [r[content_mod] for r in rows] != [r[content_mod] for r in truth]
        run_online(engine, lambda op: op.update_mod_flags("article"))
        assert snapshot(engine, table) == truth
        with caplog.at_level(logging.INFO, logger="alembic"):
            run_online(engine, lambda op: op.update_mod_flags("article"))
        assert "update_mod_flags article_version: 0 rows updated" in caplog.text


def test_excluded_columns_have_no_flags(engine: sa.Engine) -> None:
    with versioned_app(mod_tracker=True, exclude=("content",)) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=2)
        table = app.version("Article")
        assert "content" not in table.c
        truth = snapshot(engine, table)
        with engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.operation_type == DELETE).values(name_mod=False))
        run_online(engine, lambda op: op.update_mod_flags("article"))
        assert snapshot(engine, table) == truth
        with pytest.raises(VersioningError, match=r"no mod flag column\(s\) \['content_mod'\]"):
            run_online(engine, lambda op: op.update_mod_flags("article", ["content"]))


def test_custom_names_offline_from_explicit_arguments(engine: sa.Engine) -> None:
    options = {
        "table_name": "%s_history",
        "transaction_column_name": "tx_id",
        "end_transaction_column_name": "end_tx_id",
    }
    with versioned_app(mod_tracker=True, **options) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=4)
        table = app.version("Translation")
        truth = snapshot(engine, table)
        with engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.operation_type != INSERT).values(title_mod=~table.c.title_mod))
        script = render_offline(
            engine,
            lambda op: op.update_mod_flags(
                "translation", ["title"], primary_key=["article_id", "lang"], **app.op_kwargs()
            ),
        )
        assert "translation_history" in script and "tx_id" in script
        run(
            engine,
            lambda op: op.update_mod_flags(
                "translation", ["title"], primary_key=["article_id", "lang"], **app.op_kwargs()
            ),
            "offline",
        )
        assert snapshot(engine, table) == truth


def test_no_flags_at_all_is_refused(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with pytest.raises(VersioningError, match="has no mod flag columns ending in '_mod'; pass mod_suffix"):
            run_online(engine, lambda op: op.update_mod_flags("article"))
        with pytest.raises(VersioningError, match="insert_flags='some'"):
            run_online(engine, lambda op: op.update_mod_flags("article", insert_flags="some"))


def test_null_flags_count_as_unset(engine: sa.Engine) -> None:
    """Flags written NULL (a hand-made or migrated flag column without NOT NULL): the drift check
    counts a NULL flag on a changed value as missing, vacuum takes an unchanged version with NULL
    flags for futile, and update_mod_flags sets them."""
    from alembic_versioning.catalog import reflect_table
    from alembic_versioning.model import Naming, VersionedTable
    from alembic_versioning.sql.checks import history_check

    metadata = sa.MetaData()
    sa.Table("note", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text))
    version = sa.Table(
        "note_version",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", sa.Text),
        sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("end_transaction_id", sa.BigInteger),
        sa.Column("operation_type", sa.SmallInteger, nullable=False),
        sa.Column("body_mod", sa.Boolean, nullable=True),
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(version),
            [
                {"id": 1, "body": "a", "transaction_id": 1, "end_transaction_id": 2, "operation_type": INSERT},
                {"id": 1, "body": "b", "transaction_id": 2, "end_transaction_id": 3, "operation_type": UPDATE},
                {"id": 1, "body": "b", "transaction_id": 3, "end_transaction_id": None, "operation_type": UPDATE},
            ],
        )  # every body_mod NULL

    def check() -> Any:
        with engine.connect() as conn:
            reflected = reflect_table(conn, "note_version", None)
            assert reflected is not None
            table = VersionedTable.from_version_table(reflected, name="note", naming=Naming())
            assert table.mod_columns == ("body",)
            return conn.execute(history_check(table, chains=True, mod_flags=True, futile=True)).one()

    assert (check().missing_flags, check().futile) == (1, 1)
    run_online(engine, lambda op: op.vacuum_versions("note"))
    with engine.connect() as conn:
        assert conn.execute(sa.select(version.c.transaction_id, version.c.end_transaction_id)).all() == [
            (1, 2),
            (2, None),
        ]
    run_online(engine, lambda op: op.update_mod_flags("note"))
    assert tuple(check()) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_keep_true_only_sets_flags(engine: sa.Engine, mode: str) -> None:
    """``keep_true=True`` sets the flags the data shows missing and clears none: a true flag on
    an unchanged value (all of them here, set by hand) stays, false ones are derived."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=2)
        table = app.version("Article")
        truth = snapshot(engine, table)
        flags = _flags(table, "Article")
        with engine.begin() as conn:  # UPDATE versions: every flag true, but the first one false
            conn.execute(sa.update(table).where(table.c.operation_type == UPDATE).values({f: True for f in flags}))
            conn.execute(sa.update(table).where(table.c.operation_type == UPDATE).values({flags[0]: False}))
        run(engine, lambda op: op.update_mod_flags("article", keep_true=True), mode, target_metadata=app.metadata)
        kept = snapshot(engine, table)
        name_mod = [c.name for c in table.c].index("name_mod")
        for repaired, written in zip(kept, truth, strict=True):
            if written[[c.name for c in table.c].index("operation_type")] == UPDATE:
                assert repaired[:name_mod] == written[:name_mod]  # data untouched
                assert repaired[name_mod] == written[name_mod]  # false: derived (true or false)
                assert all(repaired[name_mod + 1 :])  # true flags kept
            else:
                assert repaired == written
        run(engine, lambda op: op.update_mod_flags("article"), mode, target_metadata=app.metadata)
        assert snapshot(engine, table) == truth  # without keep_true the unchanged values' flags clear


def test_documented_a_row_deleted_and_inserted_again_with_the_same_values(engine: sa.Engine) -> None:
    """Documented in conventions.rst: Continuum writes the delete and re-insert of a row with the
    same values in one transaction as an UPDATE version equal to the previous one, its flags true;
    ``update_mod_flags`` clears them (``keep_true=True`` keeps them), and the version is then futile."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        with Session(engine) as session:
            session.add(app.Article(id=1, name="a", content="x"))
            session.commit()
            session.delete(session.get(app.Article, 1))
            session.flush()
            session.add(app.Article(id=1, name="a", content="x"))
            session.commit()
        version = app.version("Article")
        flags = sa.select(version.c.operation_type, version.c.name_mod, version.c.content_mod).order_by(
            version.c.transaction_id
        )
        with engine.connect() as conn:
            assert conn.execute(flags).all() == [(INSERT, True, True), (UPDATE, True, True)]
        run_online(engine, lambda op: op.update_mod_flags("article", keep_true=True))
        run_online(engine, lambda op: op.vacuum_versions("article"))
        with engine.connect() as conn:
            assert conn.execute(flags).all() == [(INSERT, True, True), (UPDATE, True, True)]
        run_online(engine, lambda op: op.update_mod_flags("article"))
        with engine.connect() as conn:
            assert conn.execute(flags).all() == [(INSERT, True, True), (UPDATE, False, False)]
        run_online(engine, lambda op: op.vacuum_versions("article"))
        with engine.connect() as conn:
            assert conn.execute(flags).all() == [(INSERT, True, True)]
