"""op.backfill_versions: Continuum's own API on the versions it writes.

After the op, ``obj.versions``, ``version.previous``/``next``, ``changeset``, ``revert()``,
``version_at`` and further ORM changes must treat the backfilled UPDATE and DELETE versions
like versions Continuum wrote itself: under the validity and subquery strategies, with
custom names, and for composite keys. ``meta=`` is checked online here (the offline script
is covered in test_backfill.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy_continuum import version_class
from sqlalchemy_continuum.plugins import TransactionMetaPlugin

from alembic_versioning import DELETE, INSERT, UPDATE, VersioningError

from .support.apps import CUSTOM_NAMES, App, snapshot, versioned_app
from .support.migrate import run_online

#: versioned_app() keyword arguments of each tested configuration.
VARIANTS: dict[str, dict[str, Any]] = {
    "validity": {"mod_tracker": True},
    "subquery": {"mod_tracker": True, "strategy": "subquery"},
    "custom-names": CUSTOM_NAMES,
}


@pytest.fixture(params=list(VARIANTS))
def app(request: pytest.FixtureRequest, engine: sa.Engine) -> Iterator[App]:
    """A versioned app of each configuration, its tables created in ``engine``."""
    with versioned_app(**VARIANTS[request.param]) as app:
        app.metadata.create_all(engine)
        yield app


# --- names of the configuration ------------------------------------------------------------


def tx_name(app: App) -> str:
    return app.options.get("transaction_column_name", "transaction_id")


def end_tx_name(app: App) -> str:
    return app.options.get("end_transaction_column_name", "end_transaction_id")


def uses_validity(app: App) -> bool:
    return app.options.get("strategy", "validity") == "validity"


def tracks_mods(app: App) -> bool:
    return any(c.name.endswith("_mod") for c in app.version("Article").c)


def tx(app: App, version: Any) -> int:
    return getattr(version, tx_name(app))


def mods(version: Any, *columns: str) -> tuple[bool, ...]:
    return tuple(getattr(version, f"{c}_mod") for c in columns)


# --- writing ------------------------------------------------------------------------------


def write_orm_history(engine: sa.Engine, app: App) -> None:
    """Through Continuum: article 1 inserted then updated (score 1 -> 2); article 2 beside it."""
    with Session(engine) as session:
        session.add_all(
            [app.Article(id=1, name="first", content="body", score=1), app.Article(id=2, name="other", score=2)]
        )
        session.commit()
    with Session(engine) as session:
        session.get_one(app.Article, 1).score = 2
        session.commit()


def bypass(engine: sa.Engine, *statements: sa.Executable) -> None:
    """Execute Core ``statements`` in one transaction, which Continuum does not version."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def backfill(engine: sa.Engine, app: App, table: str, **kwargs: Any) -> None:
    run_online(engine, lambda op: op.backfill_versions(table, **app.op_kwargs(), **kwargs))


def transaction_ids(engine: sa.Engine, app: App) -> list[int]:
    transaction = app.table("transaction")
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(transaction.c.id).order_by(transaction.c.id)))


# --- reading through Continuum ------------------------------------------------------------


def history(session: Session, app: App, model: str, **key: Any) -> list[Any]:
    """The versions of one entity, oldest first (also for entities whose live row is gone)."""
    version_cls = version_class(app.models[model])
    return list(session.scalars(sa.select(version_cls).filter_by(**key).order_by(getattr(version_cls, tx_name(app)))))


def assert_chained(app: App, versions: list[Any]) -> None:
    """Continuum's ``previous``/``next`` walk ``versions`` (one entity, oldest first) in order;
    with the validity strategy each end transaction id is the next version's transaction id
    and only the newest version is open."""
    assert versions[0].previous is None
    assert versions[-1].next is None
    for older, newer in pairwise(versions):
        assert newer.previous is older
        assert older.next is newer
    if uses_validity(app):
        ends = [getattr(v, end_tx_name(app)) for v in versions]
        assert ends == [tx(app, v) for v in versions[1:]] + [None]


def open_versions(session: Session, app: App, model: str, **key: Any) -> int:
    """How many versions of one entity have no end transaction id (validity strategy)."""
    version_cls = version_class(app.models[model])
    end = getattr(version_cls, end_tx_name(app))
    return session.scalars(
        sa.select(sa.func.count()).select_from(version_cls).filter_by(**key).where(end.is_(None))
    ).one()


def update_article_1_bypassing_continuum(engine: sa.Engine, app: App) -> int:
    """Article 1, after its ORM history, changed by a Core UPDATE and backfilled; the new tx id."""
    write_orm_history(engine, app)
    article = app.table("article")
    bypass(engine, sa.update(article).where(article.c.id == 1).values(name="raw", content=None))
    before = transaction_ids(engine, app)
    backfill(engine, app, "article")
    after = transaction_ids(engine, app)
    assert after[:-1] == before and len(after) == len(before) + 1
    return after[-1]


# --- backfilled UPDATE versions -----------------------------------------------------------


def test_backfilled_update_in_continuums_history(engine: sa.Engine, app: App) -> None:
    new_tx = update_article_1_bypassing_continuum(engine, app)
    with Session(engine) as session:
        obj = session.get_one(app.Article, 1)
        versions = obj.versions.all()
        assert [v.operation_type for v in versions] == [INSERT, UPDATE, UPDATE]
        inserted, updated, backfilled = versions
        assert tx(app, backfilled) == new_tx
        assert backfilled.transaction.id == new_tx
        assert_chained(app, versions)
        assert backfilled.previous is updated and updated.next is backfilled
        assert (backfilled.name, backfilled.content, backfilled.score) == ("raw", None, 2)
        assert backfilled.changeset == {"name": ["first", "raw"], "content": ["body", None]}
        if tracks_mods(app):
            assert mods(backfilled, "name", "content", "score") == (True, True, False)
        version_cls = type(backfilled)
        assert version_cls.version_at(session, {"id": 1}, tx(app, inserted)) is inserted
        assert version_cls.version_at(session, {"id": 1}, tx(app, updated)) is updated
        assert version_cls.version_at(session, {"id": 1}, new_tx) is backfilled
        # Article 2 did not change: its history is untouched by the backfill.
        assert [tx(app, v) for v in session.get_one(app.Article, 2).versions] == [tx(app, inserted)]


def test_revert_to_the_version_before_a_backfilled_update(engine: sa.Engine, app: App) -> None:
    new_tx = update_article_1_bypassing_continuum(engine, app)
    with Session(engine) as session:
        obj = session.get_one(app.Article, 1)
        _, updated, backfilled = obj.versions.all()
        updated.revert()
        session.commit()
        assert (obj.name, obj.content, obj.score) == ("first", "body", 2)
        versions = obj.versions.all()
        assert len(versions) == 4 and versions[2] is backfilled
        reverted = versions[3]
        assert tx(app, reverted) > new_tx
        assert reverted.operation_type == UPDATE
        assert reverted.previous is backfilled and backfilled.next is reverted
        assert reverted.changeset == {"name": ["raw", "first"], "content": [None, "body"]}
        if tracks_mods(app):
            assert mods(reverted, "name", "content", "score") == (True, True, False)
        assert_chained(app, versions)
        if uses_validity(app):
            assert open_versions(session, app, "Article", id=1) == 1
    assert_nothing_left_to_backfill(engine, app)


def assert_nothing_left_to_backfill(engine: sa.Engine, app: App) -> None:
    """The history matches the live table: a backfill writes no transaction record."""
    before = transaction_ids(engine, app)
    backfill(engine, app, "article")
    assert transaction_ids(engine, app) == before


def test_orm_update_chains_onto_a_backfilled_update(engine: sa.Engine, app: App) -> None:
    new_tx = update_article_1_bypassing_continuum(engine, app)
    with Session(engine) as session:
        obj = session.get_one(app.Article, 1)
        obj.score = 7
        session.commit()
        versions = obj.versions.all()
        assert len(versions) == 4
        backfilled, latest = versions[2:]
        assert tx(app, backfilled) == new_tx
        assert latest.operation_type == UPDATE
        assert latest.previous is backfilled
        assert latest.changeset == {"score": [2, 7]}
        if tracks_mods(app):
            assert mods(latest, "name", "content", "score") == (False, False, True)
        assert_chained(app, versions)
        if uses_validity(app):
            assert getattr(backfilled, end_tx_name(app)) == tx(app, latest)
            assert open_versions(session, app, "Article", id=1) == 1
        assert type(latest).version_at(session, {"id": 1}, new_tx) is backfilled


# --- backfilled DELETE versions -----------------------------------------------------------


def delete_article_1_bypassing_continuum(engine: sa.Engine, app: App) -> int:
    """Article 1, after its ORM history, deleted by a Core DELETE and backfilled; the new tx id."""
    write_orm_history(engine, app)
    article = app.table("article")
    bypass(engine, sa.delete(article).where(article.c.id == 1))
    backfill(engine, app, "article")
    return transaction_ids(engine, app)[-1]


def test_backfilled_delete_in_continuums_history(engine: sa.Engine, app: App) -> None:
    new_tx = delete_article_1_bypassing_continuum(engine, app)
    with Session(engine) as session:
        assert session.get(app.Article, 1) is None
        versions = history(session, app, "Article", id=1)
        assert [v.operation_type for v in versions] == [INSERT, UPDATE, DELETE]
        _, updated, deleted = versions
        assert tx(app, deleted) == new_tx
        assert (deleted.name, deleted.content, deleted.score) == ("first", "body", 2)  # the last values
        if tracks_mods(app):
            assert mods(deleted, "name", "content", "score") == (True, True, True)
        assert deleted.previous is updated and updated.next is deleted
        assert_chained(app, versions)
        assert deleted.changeset == {}  # like Continuum's own DELETE versions, which repeat the last values
        assert type(deleted).version_at(session, {"id": 1}, new_tx) is deleted
        assert type(deleted).version_at(session, {"id": 1}, tx(app, updated)) is updated


def test_restore_a_row_deleted_behind_continuums_back(engine: sa.Engine, app: App) -> None:
    new_tx = delete_article_1_bypassing_continuum(engine, app)
    with Session(engine) as session:
        *_, deleted = history(session, app, "Article", id=1)
        deleted.previous.revert()  # Continuum's way to restore a deleted row
        session.commit()
        restored = session.get_one(app.Article, 1)
        assert (restored.name, restored.content, restored.score) == ("first", "body", 2)
        versions = restored.versions.all()
        assert [v.operation_type for v in versions] == [INSERT, UPDATE, DELETE, INSERT]
        assert versions[2] is deleted and tx(app, deleted) == new_tx
        assert versions[3].previous is deleted and deleted.next is versions[3]
        assert_chained(app, versions)
        if uses_validity(app):
            assert open_versions(session, app, "Article", id=1) == 1
    assert_nothing_left_to_backfill(engine, app)


# --- composite primary keys ---------------------------------------------------------------


def write_translations(engine: sa.Engine, app: App) -> None:
    """Through Continuum: four translations, then one of them updated."""
    with Session(engine) as session:
        titles = {(1, "en"): "t1", (1, "fi"): "t1f", (2, "en"): "t2", (2, "fi"): "t2f"}
        session.add_all([app.Translation(article_id=a, lang=lang, title=t) for (a, lang), t in titles.items()])
        session.commit()
    with Session(engine) as session:
        session.get_one(app.Translation, (2, "en")).title = "t2b"
        session.commit()


#: New titles by composite key (None: to NULL); (3, "en") does not exist yet and is inserted.
NEW_TITLES: dict[tuple[int, str], str | None] = {
    (1, "en"): "changed",
    (1, "fi"): None,
    (2, "en"): "t2b",  # unchanged
    (3, "en"): "new",
}
#: The translation deleted.
DELETED = (2, "fi")


def change_translations(engine: sa.Engine, app: App, *, via: str) -> None:
    """Apply NEW_TITLES and delete DELETED, through Continuum's ORM or Core SQL that bypasses it."""
    if via == "orm":
        with Session(engine) as session:
            for key, title in NEW_TITLES.items():
                obj = session.get(app.Translation, key)
                if obj is None:
                    session.add(app.Translation(article_id=key[0], lang=key[1], title=title))
                else:
                    obj.title = title
            session.delete(session.get_one(app.Translation, DELETED))
            session.commit()
        return
    translation = app.table("translation")

    def where(key: tuple[int, str]) -> sa.ColumnElement[bool]:
        return sa.and_(translation.c.article_id == key[0], translation.c.lang == key[1])

    bypass(
        engine,
        *(sa.update(translation).where(where(key)).values(title=t) for key, t in NEW_TITLES.items() if key[0] < 3),
        sa.insert(translation).values(article_id=3, lang="en", title=NEW_TITLES[3, "en"]),
        sa.delete(translation).where(where(DELETED)),
    )


@pytest.mark.parametrize(
    "options",
    [{}, {"mod_tracker": True}, {"mod_tracker": True, "strategy": "subquery"}, CUSTOM_NAMES],
    ids=["plain", "mod-tracker", "subquery", "custom-names"],
)
def test_composite_key_equals_what_continuum_writes(engine: sa.Engine, options: dict[str, Any]) -> None:
    with versioned_app(**options) as app:
        version = app.version("Translation")
        app.metadata.create_all(engine)
        write_translations(engine, app)
        change_translations(engine, app, via="orm")
        truth = snapshot(engine, version), transaction_ids(engine, app)
        app.metadata.drop_all(engine)
        app.metadata.create_all(engine)
        write_translations(engine, app)
        change_translations(engine, app, via="sql")
        assert (snapshot(engine, version), transaction_ids(engine, app)) != truth
        backfill(engine, app, "translation")
        assert (snapshot(engine, version), transaction_ids(engine, app)) == truth


def test_composite_key_history_through_continuum(engine: sa.Engine, app: App) -> None:
    write_translations(engine, app)
    change_translations(engine, app, via="sql")
    backfill(engine, app, "translation")
    new_tx = transaction_ids(engine, app)[-1]
    with Session(engine) as session:
        updated = session.get_one(app.Translation, (1, "en"))
        created, backfilled = versions = updated.versions.all()
        assert tx(app, backfilled) == new_tx and backfilled.operation_type == UPDATE
        assert_chained(app, versions)
        assert backfilled.changeset == {"title": ["t1", "changed"]}
        version_cls = type(backfilled)
        assert version_cls.version_at(session, {"article_id": 1, "lang": "en"}, tx(app, created)) is created
        assert version_cls.version_at(session, {"article_id": 1, "lang": "en"}, new_tx) is backfilled
        # Same article id, other language: a separate chain in the same transaction.
        to_null = session.get_one(app.Translation, (1, "fi")).versions.all()
        assert [v.operation_type for v in to_null] == [INSERT, UPDATE]
        assert to_null[1].changeset == {"title": ["t1f", None]}
        assert to_null[1].previous is to_null[0] and to_null[0].next is to_null[1]
        (inserted,) = session.get_one(app.Translation, (3, "en")).versions.all()
        assert inserted.operation_type == INSERT and tx(app, inserted) == new_tx
        assert inserted.changeset == {"article_id": [None, 3], "lang": [None, "en"], "title": [None, "new"]}
        gone = history(session, app, "Translation", article_id=DELETED[0], lang=DELETED[1])
        assert [v.operation_type for v in gone] == [INSERT, DELETE] and gone[1].title == "t2f"
        assert_chained(app, gone)

        gone[1].previous.revert()
        updated.title = "orm"
        session.commit()
        restored = session.get_one(app.Translation, DELETED)
        assert restored.title == "t2f"
        # The ORM update and the restoring INSERT chain onto the backfilled UPDATE and DELETE.
        for obj, backfilled_version, operation, change in (
            (updated, backfilled, UPDATE, {"title": ["changed", "orm"]}),
            (restored, gone[1], INSERT, {}),  # the DELETE version holds the restored values
        ):
            versions = obj.versions.all()
            assert len(versions) == 3 and versions[1] is backfilled_version
            assert versions[2].previous is backfilled_version
            assert (versions[2].operation_type, versions[2].changeset) == (operation, change)
            assert_chained(app, versions)
            if uses_validity(app):
                key = {"article_id": obj.article_id, "lang": obj.lang}
                assert open_versions(session, app, "Translation", **key) == 1


# --- transaction meta, online -------------------------------------------------------------


def add_meta_plugin(app: App) -> None:
    """Give ``app`` Continuum's TransactionMetaPlugin (its model and ``transaction_meta`` table)."""
    app.manager.plugins = [*app.manager.plugins, TransactionMetaPlugin()]
    app.manager.plugins[-1].after_build_tx_class(app.manager)  # type: ignore[attr-defined]
    sa.orm.configure_mappers()


def test_meta_online(engine: sa.Engine) -> None:
    with versioned_app() as app:
        add_meta_plugin(app)
        app.metadata.create_all(engine)
        meta = app.table("transaction_meta")
        write_orm_history(engine, app)
        article = app.table("article")
        bypass(engine, sa.update(article).where(article.c.id == 1).values(name="raw"))
        backfill(engine, app, "article", meta={"comment": "initial versions"})
        new_tx = transaction_ids(engine, app)[-1]
        with engine.connect() as conn:
            rows = conn.execute(sa.select(meta.c.transaction_id, meta.c.key, meta.c.value)).all()
        assert [tuple(r) for r in rows] == [(new_tx, "comment", "initial versions")]
        with Session(engine) as session:
            *earlier, backfilled = session.get_one(app.Article, 1).versions.all()
            assert tx(app, backfilled) == new_tx
            assert dict(backfilled.transaction.meta) == {"comment": "initial versions"}
            assert all(dict(v.transaction.meta) == {} for v in earlier)
        # Nothing left to backfill: neither a transaction record nor meta rows are written.
        before = transaction_ids(engine, app), snapshot(engine, meta)
        backfill(engine, app, "article", meta={"comment": "again"})
        assert (transaction_ids(engine, app), snapshot(engine, meta)) == before


def test_meta_online_without_the_meta_table(engine: sa.Engine) -> None:
    with versioned_app() as app:
        app.metadata.create_all(engine)
        write_orm_history(engine, app)
        article = app.table("article")
        bypass(engine, sa.update(article).where(article.c.id == 1).values(name="raw"))
        version = app.version("Article")
        before = snapshot(engine, version), snapshot(engine, app.table("transaction"))
        with pytest.raises(VersioningError, match="'transaction_meta' does not exist.*TransactionMetaPlugin"):
            backfill(engine, app, "article", meta={"comment": "initial versions"})
        assert (snapshot(engine, version), snapshot(engine, app.table("transaction"))) == before
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("transaction_meta")
        # Without meta the same backfill has a version to write: the refusal really prevented it.
        backfill(engine, app, "article")
        assert len(snapshot(engine, version)) == len(before[0]) + 1
