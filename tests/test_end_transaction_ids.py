"""op.update_end_transaction_ids against histories written by Continuum's ORM."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_versioning import VersioningError

from .support.apps import CUSTOM_NAMES, App, snapshot, versioned_app, write_history
from .support.migrate import assert_refused, render_offline, run, run_online


def _end(app: App, table: sa.Table) -> sa.Column[Any]:
    return table.c[app.options.get("end_transaction_column_name", "end_transaction_id")]


def _tx(app: App, table: sa.Table) -> sa.Column[Any]:
    return table.c[app.options.get("transaction_column_name", "transaction_id")]


def all_null(app: App, table: sa.Table) -> sa.Executable:
    """What a switch from the subquery strategy leaves."""
    return sa.update(table).values({_end(app, table): None})


def stale(app: App, table: sa.Table) -> sa.Executable:
    """Wrong non-NULL values everywhere."""
    return sa.update(table).values({_end(app, table): _tx(app, table) + 1000})


def end_equals_tx(app: App, table: sa.Table) -> sa.Executable:
    """What PostgreSQL native versioning leaves after two changes in one transaction."""
    return sa.update(table).where(_end(app, table).is_not(None)).values({_end(app, table): _tx(app, table)})


def several_open(app: App, table: sa.Table) -> sa.Executable:
    """Several open versions per entity."""
    return sa.update(table).where(_tx(app, table) % 2 == 0).values({_end(app, table): None})


CORRUPTIONS: list[Callable[[App, sa.Table], sa.Executable]] = [all_null, stale, end_equals_tx, several_open]


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("options", [{}, CUSTOM_NAMES], ids=["default-names", "custom-names"])
def test_repairs_to_what_continuum_wrote(engine: sa.Engine, mode: str, corrupt: Any, options: dict[str, Any]) -> None:
    with versioned_app(**options) as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        tables = [app.version("Article"), app.version("Translation")]
        truth = [snapshot(engine, t) for t in tables]
        with engine.begin() as conn:
            for t in tables:
                conn.execute(corrupt(app, t))
        assert [snapshot(engine, t) for t in tables] != truth

        def repair(op: Any) -> None:
            op.update_end_transaction_ids("article", **app.op_kwargs())
            op.update_end_transaction_ids("translation", **app.op_kwargs())

        run(engine, repair, mode, target_metadata=app.metadata)
        assert [snapshot(engine, t) for t in tables] == truth


def test_bulk_transaction_over_many_entities(engine: sa.Engine) -> None:
    """One transaction touching many entities: the case Continuum's helper makes quadratic."""
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with sa.orm.Session(engine) as session:
            session.add_all([app.Article(id=i, name="a") for i in range(200)])
            session.commit()
            for article in session.scalars(sa.select(app.Article)):
                article.name = "b"
            session.commit()
        table = app.version("Article")
        truth = snapshot(engine, table)
        with engine.begin() as conn:
            conn.execute(all_null(app, table))
        run_online(engine, lambda op: op.update_end_transaction_ids("article"))
        assert snapshot(engine, table) == truth


def test_writes_only_differing_rows_and_logs_them(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        table = app.version("Article")
        tx = table.c.transaction_id
        with engine.begin() as conn:
            broken = conn.execute(
                sa.update(table)
                .where(table.c.end_transaction_id.is_not(None), tx % 3 == 0)
                .values(end_transaction_id=None)
            ).rowcount
        assert broken > 0
        with caplog.at_level(logging.INFO, logger="alembic"):
            run_online(engine, lambda op: op.update_end_transaction_ids("article"))
        assert f"update_end_transaction_ids article_version: {broken} rows updated" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="alembic"):
            run_online(engine, lambda op: op.update_end_transaction_ids("article"))
        assert "update_end_transaction_ids article_version: 0 rows updated" in caplog.text


def test_postgresql_schema(pg_engine: sa.Engine) -> None:
    engine = pg_engine
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA app")
    with versioned_app(schema="app") as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        table = app.version("Article")
        truth = snapshot(engine, table)
        with engine.begin() as conn:
            conn.execute(stale(app, table))
        run_online(engine, lambda op: op.update_end_transaction_ids("article", schema="app"))
        assert snapshot(engine, table) == truth


def test_subquery_strategy_is_refused(engine: sa.Engine) -> None:
    with versioned_app(strategy="subquery") as app:
        app.metadata.create_all(engine)
        with pytest.raises(VersioningError, match="article_version.*subquery strategy"):
            run_online(engine, lambda op: op.update_end_transaction_ids("article"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda op: op.update_end_transaction_ids("nope"), "Unknown table 'nope'"),
        (lambda op: op.update_end_transaction_ids("plain"), "No version table 'plain_version'.*version_table_format"),
        (
            lambda op: op.update_end_transaction_ids("article", transaction_column_name="tx"),
            "no column 'tx'; pass transaction_column_name",
        ),
        (
            lambda op: op.update_end_transaction_ids("article", primary_key=["uid"]),
            r"primary-key column\(s\) \['uid'\]",
        ),
        (lambda op: op.update_end_transaction_ids("article", version_table_format="v"), "must contain '%s'"),
        (lambda op: op.update_end_transaction_ids("article", colour="red"), r"Unknown option\(s\) \['colour'\]"),
        (
            lambda op: op.update_mod_flags("article", insertflags="all"),
            r"Unknown option\(s\) \['insertflags'\] .*its arguments are \[.*'insert_flags'.*'keep_true'",
        ),
        (
            lambda op: op.update_end_transaction_ids("article", schema="other"),
            "Unknown table 'article' in schema 'other'",
        ),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(engine: sa.Engine, call: Any, message: str) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE plain (id INTEGER PRIMARY KEY)")
        write_history(engine, app)
        table = app.version("Article")
        with engine.begin() as conn:
            conn.execute(all_null(app, table))
        first = lambda op: op.update_end_transaction_ids("translation")  # noqa: E731
        assert_refused(engine, first, call, message, lambda: snapshot(engine, table))


def test_offline_needs_a_primary_key_without_target_metadata(engine: sa.Engine) -> None:
    with pytest.raises(VersioningError, match="Offline mode cannot reflect 'article_version'.*primary_key"):
        render_offline(engine, lambda op: op.update_end_transaction_ids("article"))
    script = render_offline(engine, lambda op: op.update_end_transaction_ids("article", primary_key=["id"]))
    assert "-- update_end_transaction_ids: article_version" in script
    # MariaDB joins in the UPDATE itself: UPDATE article_version, (...) AS linked SET article_version.end_...
    assert re.search(r"^UPDATE article_version\b.* SET (article_version\.)?end_transaction_id\s*=", script, re.M | re.S)


def test_offline_explicit_arguments_take_the_strategy_from_target_metadata(engine: sa.Engine) -> None:
    """``primary_key=[...]`` describes the table offline; the subquery strategy of the version
    table in ``target_metadata`` still holds: no end ids to repair, none written by a backfill."""
    with versioned_app(strategy="subquery") as app:

        def chains(op: Any) -> None:
            op.update_end_transaction_ids("article", primary_key=["id"])

        with pytest.raises(VersioningError, match="subquery strategy"):
            render_offline(engine, chains, target_metadata=app.metadata)

        def backfill(op: Any) -> None:
            op.backfill_versions("article", primary_key=["id"], columns=["name"], mod_columns=[])

        script = render_offline(engine, backfill, target_metadata=app.metadata)
        assert "INSERT INTO article_version" in script and "end_transaction_id" not in script
