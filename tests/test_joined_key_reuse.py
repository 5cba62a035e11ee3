"""Joined-table inheritance with a key reused by another class of the hierarchy.

Continuum's inheritance test models, joined: ``Article`` and ``BlogPost`` extend a versioned
``TextItem`` and share its ``id``. Article 1 is deleted and the next BlogPost gets id 1 (SQLite
reuses the highest deleted id; PostgreSQL is given it). The entity is the key across the
hierarchy: Continuum closes the Article's last version, in ``text_item_version`` and in
``article_version``, with the BlogPost's first transaction, though ``article_version`` has no
later row for id 1. Checks, repairs and Continuum's reading API must agree with that history.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session
from sqlalchemy_continuum import version_class

from .support.apps import text_item_app
from .support.autogen import apply, ours, produce, render_generated
from .support.migrate import execute_script, run

VERSION_TABLES = ("text_item_version", "article_version", "blog_post_version")
HIERARCHY = {"article": {"primary_key": ["id"]}, "blog_post": {"primary_key": ["id"]}}

App = tuple[sa.MetaData, Any, dict[str, type]]


@pytest.fixture
def app() -> Iterator[App]:
    with text_item_app(concrete=False, mod_tracker=True) as found:
        yield found


def article_then_blog_post(engine: sa.Engine, app: App, *, blog_post: bool = True, changed: bool = True) -> None:
    """Fresh tables; through Continuum, Article 1 written, changed and deleted, then (with
    ``blog_post``) BlogPost 1 written and (with ``changed``) changed."""
    metadata, _, m = app
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with Session(engine) as session:
        session.add(m["Article"](name="a"))
        session.commit()
        session.get(m["Article"], 1).name = "a2"
        session.commit()
        session.delete(session.get(m["Article"], 1))
        session.commit()
        if not blog_post:
            return
        post = m["BlogPost"](title="b", **reused(engine))
        session.add(post)
        session.commit()
        assert post.id == 1
        if changed:
            post.title = "b2"
            session.commit()


def reused(engine: sa.Engine) -> dict[str, int]:
    """The key SQLite reuses by itself, given to PostgreSQL (whose sequence moved on)."""
    return {} if engine.dialect.name == "sqlite" else {"id": 1}


def versions(engine: sa.Engine, metadata: sa.MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the version tables, transaction ids replaced by their rank among all of them."""
    with engine.connect() as conn:
        tables = [metadata.tables[name] for name in VERSION_TABLES]
        ids = sorted({tx for t in tables for tx in conn.execute(sa.select(t.c.transaction_id)).scalars()})
        rank = {tx: i for i, tx in enumerate(ids)}
        ids_of = ("transaction_id", "end_transaction_id")
        return {
            t.name: [
                tuple(rank.get(v, v) if k in ids_of else v for k, v in row.items())
                for row in conn.execute(sa.select(t).order_by(t.c.id, t.c.transaction_id)).mappings()
            ]
            for t in tables
        }


def _seen(version: Any) -> tuple[Any, ...] | None:
    if version is None:
        return None
    return (type(version).__name__, version.operation_type, getattr(version, "name", getattr(version, "title", None)))


def readings(engine: sa.Engine, app: App) -> dict[str, Any]:
    """What Continuum's API reads of key 1: the BlogPost's ``versions`` with each one's ``previous``
    and ``next``, and each version class's ``version_at`` at every transaction of the history."""
    _, _, m = app
    with Session(engine) as session:
        post = session.get(m["BlogPost"], 1)
        found: dict[str, Any] = {
            "versions": [(_seen(v), _seen(v.previous), _seen(v.next)) for v in post.versions] if post else None
        }
        base = version_class(m["TextItem"])
        ids = session.scalars(sa.select(base.transaction_id).distinct().order_by(base.transaction_id)).all()
        for name in ("TextItem", "Article", "BlogPost"):
            cls = version_class(m[name])
            found[name] = [_seen(cls.version_at(session, {"id": 1}, tx)) for tx in ids]
        return found


def test_continuums_history_has_no_drift(engine: sa.Engine, app: App) -> None:
    metadata, manager, _ = app
    article_then_blog_post(engine, app)
    with engine.connect() as conn:  # the article half of the delete ends with the BlogPost's first transaction
        (end,) = conn.exec_driver_sql("SELECT end_transaction_id FROM article_version WHERE operation_type = 2").one()
        assert end == conn.exec_driver_sql("SELECT min(transaction_id) FROM blog_post_version").scalar_one()
    assert ours(produce(engine, metadata, alembic_versioning={"managers": [manager], "vacuum": True})) == []


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_the_repair_changes_nothing_continuum_wrote(engine: sa.Engine, app: App, mode: str) -> None:
    """``update_end_transaction_ids`` of the hierarchy, online, offline with ``target_metadata``
    and offline with the tables described: nothing changes, and Continuum reads the same."""
    metadata, _, _ = app
    article_then_blog_post(engine, app)
    written, read = versions(engine, metadata), readings(engine, app)
    assert read["Article"][-2:] == [None, None]  # no Article 1 while the BlogPost lives
    assert [v[0][0] for v in read["versions"]] == ["ArticleVersion"] * 3 + ["BlogPostVersion"] * 2
    run(
        engine,
        lambda op: op.update_end_transaction_ids("text_item", joined=list(HIERARCHY)),
        mode,
        target_metadata=metadata,
    )
    assert versions(engine, metadata) == written
    if mode == "offline":
        described = {"primary_key": ["id"], "strategy": "validity", "joined": HIERARCHY}
        run(engine, lambda op: op.update_end_transaction_ids("text_item", **described), mode)
        assert versions(engine, metadata) == written
    assert readings(engine, app) == read


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_broken_chains_are_repaired_as_continuum_wrote_them(engine: sa.Engine, app: App, mode: str) -> None:
    """Every end id lost: one ``update_end_transaction_ids`` of the hierarchy on its base table,
    which, applied (or its ``--sql`` script run), gives back what Continuum wrote."""
    metadata, manager, _ = app
    options = {"alembic_versioning": {"managers": [manager]}}
    article_then_blog_post(engine, app)
    written, read = versions(engine, metadata), readings(engine, app)
    with engine.begin() as conn:
        for name in VERSION_TABLES:
            conn.execute(sa.update(metadata.tables[name]).values(end_transaction_id=None))
    script = produce(engine, metadata, **options)
    assert ours(script) == [
        (
            "update_end_transaction_ids",
            "text_item",
            "text_item: 4 versions whose end id is not the next version's transaction id; "
            "article: 3 versions whose end id is not the next version's transaction id; "
            "blog_post: 1 version whose end id is not the next version's transaction id",
        )
    ]
    code = render_python_code(script.upgrade_ops, migration_context=MigrationContext.configure(dialect_name="sqlite"))
    assert (
        "versioning.update_end_transaction_ids('text_item', primary_key=['id'], "
        "joined={'article': {'primary_key': ['id']}, 'blog_post': {'primary_key': ['id']}}, strategy='validity')"
        in code
    )
    if mode == "online":
        apply(engine, script)
    else:  # the generated script describes the tables: no target_metadata needed
        execute_script(engine, render_generated(engine, code))
    assert versions(engine, metadata) == written
    assert readings(engine, app) == read
    assert ours(produce(engine, metadata, **options)) == []


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_backfill_closes_the_other_class_as_continuum_does(engine: sa.Engine, app: App, mode: str) -> None:
    """BlogPost 1 written by raw SQL over the deleted Article 1: the generated backfill of the
    hierarchy closes the Article's last version in both its tables, as Continuum's ORM does
    when it writes the BlogPost, and nothing is left to repair."""
    metadata, manager, _ = app
    options = {"alembic_versioning": {"managers": [manager]}}
    article_then_blog_post(engine, app, changed=False)
    expected, read = versions(engine, metadata), readings(engine, app)
    article_then_blog_post(engine, app, blog_post=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO text_item (id, discriminator) VALUES (1, 'blog_post')")
        conn.exec_driver_sql("INSERT INTO blog_post (id, title) VALUES (1, 'b')")
    script = produce(engine, metadata, **options)
    assert [(name, table) for name, table, _ in ours(script)] == [("backfill_versions", "text_item")]
    if mode == "online":
        apply(engine, script)
    else:
        code = render_python_code(script.upgrade_ops, migration_context=MigrationContext.configure(engine.connect()))
        execute_script(engine, render_generated(engine, code))
    assert versions(engine, metadata) == expected
    assert readings(engine, app) == read
    assert ours(produce(engine, metadata, **options)) == []


def test_joined_says_only_the_key_of_a_table() -> None:
    from alembic_versioning import VersioningError
    from alembic_versioning.operations import UpdateEndTransactionIdsOp

    with pytest.raises(VersioningError, match=r"its \['primary_key'\], e.g. joined=\{'doc': \{'primary_key'"):
        UpdateEndTransactionIdsOp("item", joined={"doc": {"columns": ["body"]}})
    with pytest.raises(VersioningError, match="without 'item' itself"):
        UpdateEndTransactionIdsOp("item", joined=["item"])
