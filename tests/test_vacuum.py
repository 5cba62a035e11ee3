"""op.vacuum_versions on histories written by Continuum's ORM, made futile by a dropped column
(through an Alembic migration) or by ignored columns."""

from __future__ import annotations

import logging
import sqlite3
from itertools import groupby
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from alembic_versioning import DELETE, UPDATE, VersioningError

from .support.apps import App, article_transactions, versioned_app, write_history
from .support.autogen import ours, produce
from .support.migrate import execute_script, render_offline, run, run_online

Row = dict[str, Any]


def rows(engine: sa.Engine, table: sa.Table) -> list[Row]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns)).mappings()]


def reference_vacuum(
    history: list[Row], key: list[str], compared: list[str], flagged: list[str], validity: bool, ignored: Any = ()
) -> list[Row]:
    """The expected result, row by row in Python: what the set-based op must produce (``ignored``:
    the data columns ``ignore_columns`` leaves out, in which an entity's latest version that differs
    from the last one kept is kept)."""
    result: list[Row] = []
    for _, group in groupby(
        sorted(history, key=lambda r: (*[r[k] for k in key], r["transaction_id"])), key=lambda r: [r[k] for k in key]
    ):
        versions = [dict(r) for r in group]
        survivors: list[Row] = []
        for i, row in enumerate(versions):
            previous = versions[i - 1] if i else None
            futile = (
                previous is not None
                and row["operation_type"] == UPDATE
                and previous["operation_type"] != DELETE
                and all(row[c] == previous[c] for c in compared)
                and not any(row[f"{c}_mod"] for c in compared if c in flagged)
                and not (i == len(versions) - 1 and any(row[c] != survivors[-1][c] for c in ignored))
            )
            if futile:
                if validity:
                    survivors[-1]["end_transaction_id"] = row["end_transaction_id"]
                continue
            if survivors and previous is not None and previous is not survivors[-1] and row["operation_type"] == UPDATE:
                for c in flagged:
                    if c not in compared:
                        row[f"{c}_mod"] = row[c] != survivors[-1][c]
            survivors.append(row)
        result += survivors
    return result


def drop_content(engine: sa.Engine, mod_tracker: bool) -> None:
    """Drop the ``content`` column from ``article`` and its version table, as a migration would."""

    def migration(op: Any) -> None:
        with op.batch_alter_table("article") as batch:
            batch.drop_column("content")
        with op.batch_alter_table("article_version") as batch:
            batch.drop_column("content")
            if mod_tracker:
                batch.drop_column("content_mod")

    run_online(engine, migration)


def content_only_history(engine: sa.Engine, app: App) -> None:
    """Updates that change only ``content``: futile once it is gone. Includes p -> q -> p on
    ``name`` and a run of content-only updates at the end of a chain."""
    with Session(engine) as session:
        a, b = app.Article(id=501, name="p", content="x"), app.Article(id=502, name="n", content="x")
        session.add_all([a, b])
        session.commit()
        for name, content in [("p", "y"), ("q", "y"), ("q", "z"), ("p", "z"), ("p", None)]:
            a.name, a.content = name, content
            session.commit()
        for content in ["1", "2", "3"]:  # a futile run at the end of b's chain
            b.content = content
            session.commit()


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize(("mod_tracker", "strategy"), [(False, "validity"), (True, "validity"), (True, "subquery")])
def test_dropped_column(engine: sa.Engine, mode: str, mod_tracker: bool, strategy: str) -> None:
    with versioned_app(mod_tracker=mod_tracker, strategy=strategy) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=11)
        content_only_history(engine, app)
    drop_content(engine, mod_tracker)
    version = sa.Table("article_version", sa.MetaData(), autoload_with=engine)
    before = rows(engine, version)
    flagged = ["name", "score"] if mod_tracker else []
    expected = reference_vacuum(before, ["id"], ["name", "score"], flagged, strategy == "validity")
    assert len(expected) < len(before)
    explicit = {"primary_key": ["id"], "columns": ["name", "score"], "mod_columns": flagged, "strategy": strategy}
    run(engine, lambda op: op.vacuum_versions("article", **(explicit if mode == "offline" else {})), mode)
    after = rows(engine, version)
    assert after == expected
    entity_1 = [(r["name"], r["operation_type"]) for r in after if r["id"] == 501]
    assert entity_1 == [("p", 0), ("q", 1), ("p", 1)]  # p -> q -> p keeps its real changes
    entity_2 = [r for r in after if r["id"] == 502]
    assert len(entity_2) == 1 and (strategy == "subquery" or entity_2[0]["end_transaction_id"] is None)


def test_equals_continuum_excluding_the_column(engine: sa.Engine, tmp_path: Any) -> None:
    """After the vacuum, each entity's history reads as if the column had never been versioned."""
    with versioned_app(mod_tracker=True, exclude=("content",)) as app:
        reference = sa.create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
        app.metadata.create_all(reference)
        write_history(reference, app, seed=12)
        content_only_history(reference, app)
        excluded = rows(reference, app.version("Article"))
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app, seed=12)
        content_only_history(engine, app)
    drop_content(engine, mod_tracker=True)
    run_online(engine, lambda op: op.vacuum_versions("article"))
    version = sa.Table("article_version", sa.MetaData(), autoload_with=engine)
    vacuumed = rows(engine, version)

    def histories(table_rows: list[Row]) -> list[Any]:
        return [
            (r["id"], r["name"], r["score"], r["operation_type"], r["name_mod"], r["score_mod"]) for r in table_rows
        ]

    assert histories(vacuumed) == histories(excluded)


def test_ignore_columns_recomputes_follower_flags(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        # content "y" is futile when content is ignored; then name "b" with content unchanged:
        # content_mod false, true once compared with "x"
        article_transactions(engine, app, {"name": "a", "content": "x"}, {"content": "y"}, {"name": "b"})
        table = app.version("Article")
        before = rows(engine, table)
        assert [r["content_mod"] for r in before] == [True, True, False]
        with caplog.at_level(logging.INFO, logger="alembic"):
            run_online(engine, lambda op: op.vacuum_versions("article", ignore_columns=["content"]))
        after = rows(engine, table)
        assert after == reference_vacuum(
            before, ["id"], ["name", "score"], ["name", "content", "score"], True, ["content"]
        )
        assert [(r["name"], r["content"], r["content_mod"]) for r in after] == [("a", "x", True), ("b", "y", True)]
        assert after[0]["end_transaction_id"] == after[1]["transaction_id"]
        assert "vacuum_versions article_version: 1 futile versions removed" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="alembic"):
            run_online(engine, lambda op: op.vacuum_versions("article", ignore_columns=["content"]))
        assert rows(engine, table) == after
        assert "vacuum_versions article_version: 0 futile versions removed" in caplog.text


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_ignore_columns_keeps_a_latest_version_the_live_row_needs(engine: sa.Engine, mode: str) -> None:
    """A latest version differing from the last one kept only in an ignored column is kept (else
    the open version no longer equals the live row, and a backfill writes it back); a latest one
    equal to it in every column goes, as do the ignored-only versions before it."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        table = app.version("Article")
        # article 1: content-only changes at the end; its latest content differs from the survivor's
        article_transactions(
            engine, app, {"name": "a", "content": "x"}, {"name": "b"}, {"content": "y"}, {"content": "z"}
        )
        with Session(engine) as session:  # article 2: content changed, then changed back to the survivor's
            session.add(app.Article(id=2, name="n", content="x"))
            session.commit()
            for content in ("y", "x"):
                session.get(app.Article, 2).content = content
                session.commit()
        before = rows(engine, table)
        expected = reference_vacuum(before, ["id"], ["name", "score"], ["name", "content", "score"], True, ["content"])
        for _ in range(2):  # idempotent
            run(
                engine,
                lambda op: op.vacuum_versions("article", ignore_columns=["content"]),
                mode,
                target_metadata=app.metadata,
            )
            assert rows(engine, table) == expected
        assert [(r["id"], r["name"], r["content"]) for r in expected] == [
            (1, "a", "x"),
            (1, "b", "x"),
            (1, "b", "z"),
            (2, "n", "x"),
        ]
        assert ours(produce(engine, app.metadata, alembic_versioning={"managers": [app.manager]})) == []


@pytest.mark.parametrize("ignore", [True, False], ids=["ignore_columns", "dropped-column"])
def test_a_change_and_change_back_after_a_futile_run_is_kept(engine: sa.Engine, ignore: bool) -> None:
    """A content-only version (futile without content) followed by a version whose name was
    changed and changed back within its transaction (``name_mod`` true, values equal): the
    latter flags a compared column, so it is kept, with its flag, and the chain stays intact."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        article_transactions(
            engine, app, {"name": "p", "content": "x"}, {"content": "y"}, [{"name": "q"}, {"name": "p"}]
        )
    if not ignore:
        drop_content(engine, mod_tracker=True)
    version = sa.Table("article_version", sa.MetaData(), autoload_with=engine)
    before = rows(engine, version)
    flagged = ["name", "content", "score"] if ignore else ["name", "score"]
    expected = reference_vacuum(before, ["id"], ["name", "score"], flagged, True, ["content"] if ignore else ())
    assert [r["transaction_id"] for r in expected] == [before[0]["transaction_id"], before[2]["transaction_id"]]
    for _ in range(2):  # idempotent
        run_online(
            engine, lambda op: op.vacuum_versions("article", **({"ignore_columns": ["content"]} if ignore else {}))
        )
        after = rows(engine, version)
        assert after == expected
    assert after[0]["end_transaction_id"] == after[1]["transaction_id"] and after[1]["end_transaction_id"] is None
    assert after[1]["name_mod"] is True or after[1]["name_mod"] == 1


def test_offline_sqlite_script_is_atomic_per_operation(tmp_path: Any) -> None:
    """Alembic's SQLite scripts have no transaction (``transactional_ddl=False``): each operation
    brings its own, so a failure part-way (here the DELETE, after the relinking UPDATE) leaves the
    history as it was. With ``transactional_ddl=True`` the script's own transaction does."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'offline.db'}")
    try:
        with versioned_app() as app:
            app.metadata.create_all(engine)
            content_only_history(engine, app)
            table = app.version("Article")
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "CREATE TRIGGER keep_versions BEFORE DELETE ON article_version "
                    "BEGIN SELECT RAISE(ABORT, 'versions are kept'); END"
                )
            before = rows(engine, table)
            vacuum = lambda op: op.vacuum_versions("article", ignore_columns=["content"])  # noqa: E731
            script = render_offline(engine, vacuum, target_metadata=app.metadata)
            assert "-- vacuum_versions: article_version\n\nBEGIN;\n" in script and script.rstrip().endswith("COMMIT;")
            with pytest.raises(sqlite3.IntegrityError, match="versions are kept"):
                execute_script(engine, script)
            assert rows(engine, table) == before
            script = render_offline(engine, vacuum, target_metadata=app.metadata, transactional_ddl=True)
            assert "BEGIN;" not in script
    finally:
        engine.dispose()


def test_composite_keys_and_custom_names(engine: sa.Engine) -> None:
    options = {
        "table_name": "%s_history",
        "transaction_column_name": "tx_id",
        "end_transaction_column_name": "end_tx_id",
    }
    with versioned_app(**options) as app:
        app.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([app.Translation(article_id=1, lang=lang, title="t") for lang in ("en", "fi")])
            session.commit()
            for title in ["u", "u2"]:
                session.get(app.Translation, (1, "fi")).title = title  # type: ignore[union-attr]
                session.commit()
        table = app.version("Translation")
        with engine.begin() as conn:  # make the Finnish changes futile, as an import of equal values would
            conn.execute(sa.update(table).values(title="t"))
        before = rows(engine, table)
        run_online(engine, lambda op: op.vacuum_versions("translation", **app.op_kwargs()))
        after = rows(engine, table)
    assert [(r["lang"], r["end_tx_id"]) for r in after] == [("en", None), ("fi", None)]
    assert len(before) == 4


def test_postgresql_schema(pg_engine: sa.Engine) -> None:
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA app")
    with versioned_app(schema="app", mod_tracker=True) as app:
        app.metadata.create_all(pg_engine)
        content_only_history(pg_engine, app)
        table = app.version("Article")
        before = rows(pg_engine, table)
        run_online(pg_engine, lambda op: op.vacuum_versions("article", schema="app", ignore_columns=["content"]))
        after = rows(pg_engine, table)
    assert after == reference_vacuum(before, ["id"], ["name", "score"], ["name", "content", "score"], True, ["content"])
    assert len(after) < len(before)


def test_unknown_ignored_column_is_refused(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        content_only_history(engine, app)
        table = app.version("Article")
        before = rows(engine, table)
        with pytest.raises(VersioningError, match=r"ignore_columns=\['colour'\].*\['colour'\] are not"):
            run_online(
                engine,
                lambda op: (
                    op.vacuum_versions("translation"),
                    op.vacuum_versions("article", ignore_columns=["colour"]),
                ),
            )
        assert rows(engine, table) == before
