"""Concrete-table inheritance: every table holds its own entities, repaired alone.

Continuum's own inheritance test models with ``concrete: True``: ``Article`` and ``BlogPost``
extend a versioned ``TextItem``, each with its own whole table and its own ``id``, so Article 1,
BlogPost 1 and TextItem 1 are three entities (Continuum writes ``article_version`` for an Article
only). Drift in one table must be repaired in that table only, as Continuum writes the same changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy_continuum import version_class

from .support.apps import ranked, text_item_app
from .support.autogen import apply, ours, produce

VERSION_TABLES = ("text_item_version", "article_version", "blog_post_version")

#: Per table: raw SQL bypassing Continuum, and the same changes through its ORM.
CHANGES: dict[str, tuple[list[str], Callable[[Session, dict[str, type]], None]]] = {
    "text_item": (
        [
            "DELETE FROM text_item WHERE id = 11",
            "INSERT INTO text_item (id, discriminator) VALUES (12, 'text_item')",
        ],
        lambda s, m: [s.delete(s.get(m["TextItem"], 11)), s.add(m["TextItem"](id=12))],
    ),
    "article": (
        [
            "UPDATE article SET name = 'a3' WHERE id = 1",
            "DELETE FROM article WHERE id = 2",
            "INSERT INTO article (id, name) VALUES (3, 'e')",
        ],
        lambda s, m: [
            setattr(s.get(m["Article"], 1), "name", "a3"),
            s.delete(s.get(m["Article"], 2)),
            s.add(m["Article"](id=3, name="e")),
        ],
    ),
    "blog_post": (
        [
            "DELETE FROM blog_post WHERE id = 1",
            "UPDATE blog_post SET title = 'd3' WHERE id = 2",
            "INSERT INTO blog_post (id, title) VALUES (3, 'f')",
        ],
        lambda s, m: [
            s.delete(s.get(m["BlogPost"], 1)),
            setattr(s.get(m["BlogPost"], 2), "title", "d3"),
            s.add(m["BlogPost"](id=3, title="f")),
        ],
    ),
}


def create_history(engine: sa.Engine, metadata: sa.MetaData, m: dict[str, type]) -> None:
    """Fresh tables and two transactions through Continuum: Articles and BlogPosts 1 and 2 (the
    same ids, other entities), TextItems 10 and 11 (ids of their own: Continuum closes the
    ``text_item_version`` row of an Article's or a BlogPost's id when it writes their versions)."""
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([m["TextItem"](id=10), m["TextItem"](id=11)])
        session.add_all([m["Article"](id=1, name="a"), m["Article"](id=2, name="b")])
        session.add_all([m["BlogPost"](id=1, title="c"), m["BlogPost"](id=2, title="d")])
        session.commit()
        session.get(m["Article"], 1).name = "a2"
        session.get(m["BlogPost"], 2).title = "d2"
        session.commit()


def versions(engine: sa.Engine, metadata: sa.MetaData) -> dict[str, list[tuple[Any, ...]]]:
    return {name: ranked(engine, metadata.tables[name]) for name in VERSION_TABLES}


@pytest.mark.parametrize("mod_tracker", [False, True], ids=["plain", "mod-tracker"])
def test_continuums_history_has_no_drift(engine: sa.Engine, mod_tracker: bool) -> None:
    with text_item_app(concrete=True, mod_tracker=mod_tracker) as (metadata, manager, m):
        create_history(engine, metadata, m)
        with Session(engine) as session:
            for _, through_orm in CHANGES.values():
                through_orm(session, m)
            session.commit()
        script = produce(engine, metadata, alembic_versioning={"managers": [manager], "vacuum": True})
        assert ours(script) == []


@pytest.mark.parametrize("table", list(CHANGES))
def test_drift_in_one_table_is_repaired_in_that_table_only(engine: sa.Engine, table: str) -> None:
    """Raw changes to ``table``: one backfill of ``table`` alone (no ``joined``); applied, the
    version tables are those Continuum writes for the same changes, and nothing is left."""
    raw, through_orm = CHANGES[table]
    with text_item_app(concrete=True, mod_tracker=True) as (metadata, manager, m):
        options = {"alembic_versioning": {"managers": [manager]}}
        create_history(engine, metadata, m)
        with Session(engine) as session:
            through_orm(session, m)
            session.commit()
        expected = versions(engine, metadata)

        create_history(engine, metadata, m)
        with engine.begin() as conn:
            for statement in raw:
                conn.exec_driver_sql(statement)
        script = produce(engine, metadata, **options)
        assert [(name, on) for name, on, _ in ours(script)] == [("backfill_versions", table)]
        assert not script.upgrade_ops.ops[-1].joined
        apply(engine, script)
        assert versions(engine, metadata) == expected
        assert ours(produce(engine, metadata, **options)) == []


def test_the_base_version_continuum_closes_for_a_subclass_is_reopened(engine: sa.Engine) -> None:
    """Continuum, writing a version of Article 1, closes the open version of TextItem 1 (another
    entity) with that transaction, so its own API reads TextItem 1 as gone: the check reports the
    broken chain of ``text_item`` alone, and its repair reopens the version."""
    with text_item_app(concrete=True) as (metadata, manager, m):
        options = {"alembic_versioning": {"managers": [manager]}}
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([m["TextItem"](id=1), m["Article"](id=1, name="a")])
            session.commit()
            session.get(m["Article"], 1).name = "a2"
            session.commit()
        articles = ranked(engine, metadata.tables["article_version"])
        text_item_version = version_class(m["TextItem"])
        with Session(engine) as session:
            last = session.scalars(sa.select(text_item_version.transaction_id)).one() + 1
            assert text_item_version.version_at(session, {"id": 1}, last) is None
        script = produce(engine, metadata, **options)
        assert [(name, table) for name, table, _ in ours(script)] == [("update_end_transaction_ids", "text_item")]
        apply(engine, script)
        assert ranked(engine, metadata.tables["article_version"]) == articles
        with Session(engine) as session:
            assert text_item_version.version_at(session, {"id": 1}, last).discriminator == "text_item"
        assert ours(produce(engine, metadata, **options)) == []
