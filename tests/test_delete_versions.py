"""DELETE versions (and a link's superseded version) as Continuum writes them, which the checks
accept and the repairs write, online and offline:

- single-table inheritance with the mod tracker: a DELETE flags only the deleted entity's class's
  columns (``subclass_columns``, per row by the ``discriminator`` where the table has it);
- Continuum's ``NullDeletePlugin``: DELETE versions hold NULL in every non-key data column
  (``null_delete``);
- association (secondary) tables: Continuum never fills their versions' end ids (``association``).

Continuum's ORM writes the ground truth (a twin run); the same changes made by raw SQL are then
repaired by the generated migration, run online or as an offline script without ``target_metadata``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy_continuum import VersioningManager, make_versioned
from sqlalchemy_continuum.plugins import NullDeletePlugin, PropertyModTrackerPlugin

from alembic_versioning import BackfillVersionsOp, UpdateModFlagsOp

from .support.apps import App, mapped, versioned_app
from .support.autogen import apply, found, produce, render, render_generated
from .support.migrate import execute_script

OPTS = {"vacuum": True}

#: Continuum's own warning when the NullDeletePlugin nulls the discriminator of a DELETE version.
pytestmark = pytest.mark.filterwarnings("ignore:Flushing object .* with incompatible polymorphic identity")


@contextmanager
def text_items(*, levels: str = "single", null_delete: bool = False) -> Iterator[App]:
    """Continuum's single-table inheritance test models (``TextItem``, ``Article(name)``,
    ``BlogPost(title)`` on ``text_item``), or with ``levels="multi"`` its multi-level ones (a joined
    ``first_level`` table below ``base_model``, and ``SecondLevel(level2)`` sharing it); mod tracker on."""
    manager = VersioningManager()
    plugins = [PropertyModTrackerPlugin(), *([NullDeletePlugin()] if null_delete else [])]
    make_versioned(manager=manager, user_cls=None, plugins=plugins)

    class Base(DeclarativeBase):
        pass

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]

    class Root(Base):
        __tablename__ = "text_item" if levels == "single" else "base_model"
        __versioned__: dict[str, Any] = {}
        id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
        discriminator = sa.Column(sa.String(50))
        __mapper_args__ = {"polymorphic_on": discriminator, "polymorphic_identity": "root"}

    if levels == "single":

        class Article(Root):
            __mapper_args__ = {"polymorphic_identity": "article"}
            name = sa.Column(sa.String(50))

        class BlogPost(Root):
            __mapper_args__ = {"polymorphic_identity": "blog_post"}
            title = sa.Column(sa.String(50))

        models = {"Root": Root, "Article": Article, "BlogPost": BlogPost}
    else:

        class Article(Root):  # type: ignore[no-redef]
            __tablename__ = "first_level"
            __mapper_args__ = {"polymorphic_identity": "first_level"}
            id = sa.Column(sa.Integer, sa.ForeignKey(Root.id), primary_key=True)
            name = sa.Column(sa.String(50))

        class BlogPost(Article):  # type: ignore[no-redef]
            __mapper_args__ = {"polymorphic_identity": "second_level"}
            title = sa.Column(sa.String(50))

        models = {"Root": Root, "Article": Article, "BlogPost": BlogPost}
    with mapped(manager, Base):
        yield App(Base.metadata, manager, models)


def history(session: Session, app: App) -> None:
    """One entity of each class, an article without a name among them, then one change each."""
    session.add_all(
        [
            app.Article(id=1, name="a"),
            app.Article(id=2, name=None),
            app.BlogPost(id=3, title="t"),
            app.Root(id=4),
            app.Article(id=5, name="e"),
        ]
    )
    session.commit()
    session.get_one(app.Article, 1).name = "a2"
    session.get_one(app.BlogPost, 3).title = "t2"
    session.commit()


def deletes(session: Session, app: App) -> None:
    for model, key in (("Article", 1), ("Article", 2), ("BlogPost", 3), ("Root", 4)):
        session.delete(session.get_one(app.models[model], key))


def raw_deletes(app: App) -> list[str]:
    live = [t.name for t in app.metadata.sorted_tables if not t.name.endswith("_version") and t.name != "transaction"]
    return [f"DELETE FROM {name} WHERE id IN (1, 2, 3, 4)" for name in reversed(live)]


def version_rows(engine: sa.Engine, app: App) -> dict[str, list[tuple[Any, ...]]]:
    """Every version table's rows in key order, transaction ids replaced by their rank in the
    table (each backfill writes a transaction record of its own)."""
    ids_of = ("transaction_id", "end_transaction_id")
    result = {}
    with engine.connect() as conn:
        for table in app.metadata.sorted_tables:
            if table.name.endswith("_version"):
                rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).mappings().all()
                rank = {tx: i for i, tx in enumerate(sorted({row["transaction_id"] for row in rows}))}
                result[table.name] = [tuple(rank.get(v, v) if k in ids_of else v for k, v in r.items()) for r in rows]
    return result


def fresh(engine: sa.Engine, app: App, writer: Callable[[Session, App], None]) -> None:
    app.metadata.drop_all(engine)
    app.metadata.create_all(engine)
    with Session(engine) as session:
        writer(session, app)
        session.commit()


def continuum_twin(
    engine: sa.Engine, app: App, history: Callable[[Session, App], None], changes: Callable[[Session, App], None]
) -> dict[str, list[tuple[Any, ...]]]:
    """Return :func:`version_rows` after ``history`` on fresh tables and ``changes`` in one more
    transaction, both through Continuum's ORM (the tables keep them)."""
    fresh(engine, app, history)
    with Session(engine) as session:
        changes(session, app)
        session.commit()
    return version_rows(engine, app)


def run_generated(engine: sa.Engine, app: App, mode: str) -> str:
    """Autogenerate, then run the upgrade online or as an offline script (no ``target_metadata``);
    the rendered code."""
    code = render(engine, produce(engine, app.metadata, alembic_versioning={**OPTS, "managers": [app.manager]}))
    if mode == "online":
        apply(engine, code)
    else:
        execute_script(engine, render_generated(engine, code))
    return code


def drift(engine: sa.Engine, app: App) -> list[tuple[str, str, tuple[str, ...]]]:
    return found(produce(engine, app.metadata, alembic_versioning={**OPTS, "managers": [app.manager]}))


CASES = {
    "single": {"levels": "single"},
    "multi-level": {"levels": "multi"},
    "single-null-delete": {"levels": "single", "null_delete": True},
}


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("case", list(CASES))
def test_deletes_backfilled_as_continuum_writes_them(engine: sa.Engine, case: str, mode: str) -> None:
    """Continuum's DELETE versions show no drift; raw DELETEs get the same versions from the
    generated backfill (flags of subclass columns per class, NULLs under the NullDeletePlugin)."""
    with text_items(**CASES[case]) as app:
        twin = continuum_twin(engine, app, history, deletes)
        assert drift(engine, app) == []

        fresh(engine, app, history)
        with engine.begin() as conn:
            for statement in raw_deletes(app):
                conn.exec_driver_sql(statement)
        code = run_generated(engine, app, mode)
        if case == "single":
            assert (
                "subclass_columns={'name': ['article'], 'title': ['blog_post']}, discriminator='discriminator'" in code
            )
        elif case == "multi-level":
            assert "'subclass_columns': ['title']" in code  # the joined table's, without a discriminator of its own
        else:
            assert "null_delete=True" in code
        assert version_rows(engine, app) == twin
        assert drift(engine, app) == []


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("case", ["single", "single-null-delete"])
def test_cleared_delete_flags_repaired_as_continuum_writes_them(engine: sa.Engine, case: str, mode: str) -> None:
    """DELETE flags cleared by hand are found missing where Continuum sets them (the deleted
    entity's class maps the column: by the discriminator) and only there; the repair sets those."""
    with text_items(**CASES[case]) as app:
        twin = continuum_twin(engine, app, history, deletes)
        version = app.metadata.tables["text_item_version"]
        with engine.begin() as conn:
            flags = {c.name: sa.false() for c in version.c if c.name.endswith("_mod")}
            conn.execute(sa.update(version).where(version.c.operation_type == 2).values(flags))
        found_now = drift(engine, app)
        assert found_now == [("update_mod_flags", "text_item", ())]
        run_generated(engine, app, mode)
        if case == "single":
            assert version_rows(engine, app) == twin
        else:  # the discriminator is NULL too: the flags of subclass columns cannot be told
            repaired = version_rows(engine, app)["text_item_version"]
            expected = twin["text_item_version"]
            title_mod = [c.name for c in version.c].index("title_mod")
            name_mod = [c.name for c in version.c].index("name_mod")
            unknown = {title_mod, name_mod}
            strip = lambda rows: [tuple(v for i, v in enumerate(r) if i not in unknown) for r in rows]  # noqa: E731
            assert strip(repaired) == strip(expected)
        assert drift(engine, app) == []


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_null_delete_backfill(engine: sa.Engine, mode: str) -> None:
    """With the NullDeletePlugin on a plain table (and an association table), the backfill's
    DELETE versions hold NULL in every non-key column, as Continuum's do, and a link's superseded
    version keeps its NULL end id; the checks and the vacuum find nothing afterwards."""
    with versioned_app(mod_tracker=True, plugins=(NullDeletePlugin(),)) as app:

        def history(session: Session, app: App) -> None:
            tags = [app.Tag(id=i, label=f"t{i}") for i in (1, 2)]
            session.add_all([app.Article(id=i, name=f"a{i}", content="x", score=i, tags=tags) for i in (1, 2)])
            session.commit()
            session.get_one(app.Article, 1).score = 10
            session.commit()

        def changes(session: Session, app: App) -> None:
            session.delete(session.get_one(app.Article, 1))
            session.get_one(app.Article, 2).tags = [session.get_one(app.Tag, 1)]

        twin = continuum_twin(engine, app, history, changes)
        assert drift(engine, app) == []
        assert [r[1:4] for r in twin["article_version"] if r[6] == 2] == [(None, None, None)]

        fresh(engine, app, history)
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM article_tag WHERE article_id = 1 OR tag_id = 2")
            conn.exec_driver_sql("DELETE FROM article WHERE id = 1")
        code = run_generated(engine, app, mode)
        link = "primary_key=['article_id', 'tag_id'], columns=[], mod_columns=[], association=True, strategy='validity'"
        assert f"versioning.backfill_versions('article_tag', {link})" in code
        assert "null_delete=True" in code
        assert version_rows(engine, app) == twin
        assert drift(engine, app) == []


def test_rendered_arguments() -> None:
    """The arguments round-trip through the ops (what autogenerate renders recreates the op)."""
    backfill = BackfillVersionsOp(
        "text_item",
        association=False,
        null_delete=True,
        subclass_columns={"name": ["article"], "title": ["blog_post", 7]},
        discriminator="kind",
    )
    assert backfill.arguments() == {
        "null_delete": True,
        "subclass_columns": {"name": ["article"], "title": ["blog_post", 7]},
        "discriminator": "kind",
    }
    flags = UpdateModFlagsOp("first_level", subclass_columns=["level2"])
    assert flags.arguments() == {"subclass_columns": ["level2"]}
    assert BackfillVersionsOp("article_tag", association=True).arguments() == {"association": True}
