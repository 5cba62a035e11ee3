"""The set-ups SQLAlchemy-Continuum's own test suite covers, as one matrix (issue #16).

Each set-up is a small model set modelled on Continuum's tests for that feature (inheritance kinds,
relationships, schemas, column options, naming options, plugins, a user class, native triggers).
For each, on SQLite and PostgreSQL:

1. a history is written through Continuum's ORM, and autogenerate finds nothing;
2. a twin run makes the same further changes through Continuum's ORM (the ground truth) and keeps
   the version tables;
3. the tables are re-created, the same history written, and the same changes made by raw SQL that
   bypasses Continuum; autogenerate names the expected repairs;
4. the generated upgrade runs: the version tables equal the twin's (transaction ids by rank), and the
   invariants hold (one open version per entity, chains intact, the latest version is the live row);
5. Continuum's API reads the repaired histories (``versions``, ``previous``/``next``,
   ``changeset``, ``version_at``, the set-up's own reads);
6. a second autogenerate finds nothing, and running the upgrade again writes nothing.

Where Continuum itself writes wrong data (concrete inheritance's chains), the set-up names what
autogenerate reports on Continuum's own history (``defects``), and the twin is repaired too.
Known failures of alembic-versioning are marked ``xfail(strict=True)`` with their reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from itertools import groupby, pairwise
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Session, relationship
from sqlalchemy_continuum import VersioningManager, make_versioned, parent_class, version_class
from sqlalchemy_continuum.plugins import (
    NullDeletePlugin,
    PropertyModTrackerPlugin,
    TransactionChangesPlugin,
    TransactionMetaPlugin,
)
from sqlalchemy_continuum.plugins.base import Plugin
from sqlalchemy_continuum.utils import versioned_column_properties

from alembic_versioning import DELETE

from .support.apps import CUSTOM_NAMES, App, mapped
from .support.autogen import REVISION, apply, found, produce, render, render_generated
from .support.migrate import execute_script

Declare = Callable[[type[DeclarativeBase]], dict[str, type]]


# --- building the apps --------------------------------------------------------------------


@contextmanager
def build(
    declare: Declare,
    *,
    mod_tracker: bool = True,
    plugins: tuple[Any, ...] = (),
    user_cls: str | None = None,
    schema: str | None = None,
    **options: Any,
) -> Iterator[App]:
    """The models ``declare`` defines on a fresh declarative base (``schema`` its MetaData's),
    versioned by a manager of their own with Continuum ``options`` and ``plugins``."""
    manager = VersioningManager(options=dict(options))
    tracker = [PropertyModTrackerPlugin()] if mod_tracker else []
    make_versioned(manager=manager, user_cls=user_cls, plugins=[*tracker, *plugins])

    class Base(DeclarativeBase):
        metadata = sa.MetaData(schema=schema)

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]
    models = declare(Base)
    with mapped(manager, Base):
        yield App(Base.metadata, manager, models, dict(options))


def _id() -> sa.Column[int]:
    return sa.Column(sa.Integer, primary_key=True, autoincrement=False)


def single_table(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/inheritance/test_single_table_inheritance.py: one table, three classes."""

    class TextItem(base):  # type: ignore[misc,valid-type]
        __tablename__ = "text_item"
        __versioned__: dict[str, Any] = {}
        id = _id()
        discriminator = sa.Column(sa.String(100))
        __mapper_args__ = {"polymorphic_on": discriminator, "polymorphic_identity": "text_item"}

    class Article(TextItem):
        __mapper_args__ = {"polymorphic_identity": "article"}
        name = sa.Column(sa.String(255))

    class BlogPost(TextItem):
        __mapper_args__ = {"polymorphic_identity": "blog_post"}
        title = sa.Column(sa.String(255))

    return {"TextItem": TextItem, "Article": Article, "BlogPost": BlogPost}


def joined_tables(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/inheritance/test_join_table_inheritance.py: a base and two subclass tables."""

    class TextItem(base):  # type: ignore[misc,valid-type]
        __tablename__ = "text_item"
        __versioned__: dict[str, Any] = {}
        id = _id()
        discriminator = sa.Column(sa.String(100))
        name = sa.Column(sa.String(255))
        __mapper_args__ = {"polymorphic_on": discriminator, "polymorphic_identity": "text_item"}

    class Article(TextItem):
        __tablename__ = "article"
        __mapper_args__ = {"polymorphic_identity": "article"}
        id = sa.Column(sa.Integer, sa.ForeignKey(TextItem.id), primary_key=True)
        content = sa.Column(sa.String(255))

    class BlogPost(TextItem):
        __tablename__ = "blog_post"
        __mapper_args__ = {"polymorphic_identity": "blog_post"}
        id = sa.Column(sa.Integer, sa.ForeignKey(TextItem.id), primary_key=True)
        title = sa.Column(sa.String(255))

    return {"TextItem": TextItem, "Article": Article, "BlogPost": BlogPost}


def multi_level(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/inheritance/test_multi_level_inheritance.py: a joined level, then a
    single-table level below it (with a column of its own on ``first_level``)."""

    class BaseModel(base):  # type: ignore[misc,valid-type]
        __tablename__ = "base_model"
        __versioned__: dict[str, Any] = {}
        id = _id()
        discriminator = sa.Column(sa.String(50), index=True)
        name = sa.Column(sa.String(50))
        __mapper_args__ = {"polymorphic_on": discriminator, "polymorphic_identity": "product"}

    class FirstLevel(BaseModel):
        __tablename__ = "first_level"
        __mapper_args__ = {"polymorphic_identity": "first_level"}
        id = sa.Column(sa.Integer, sa.ForeignKey(BaseModel.id), primary_key=True)
        level1 = sa.Column(sa.String(50))

    class SecondLevel(FirstLevel):
        __mapper_args__ = {"polymorphic_identity": "second_level"}
        level2 = sa.Column(sa.String(50))

    return {"BaseModel": BaseModel, "FirstLevel": FirstLevel, "SecondLevel": SecondLevel}


def concrete(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/inheritance/test_concrete_inheritance.py: each class its own table (and
    version table); the same id in two tables is two different entities."""

    class TextItem(base):  # type: ignore[misc,valid-type]
        __tablename__ = "text_item"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))

    class Article(TextItem):
        __tablename__ = "article"
        __mapper_args__ = {"concrete": True}
        id = _id()
        name = sa.Column(sa.String(255))
        content = sa.Column(sa.String(255))

    class BlogPost(TextItem):
        __tablename__ = "blog_post"
        __mapper_args__ = {"concrete": True}
        id = _id()
        name = sa.Column(sa.String(255))
        title = sa.Column(sa.String(255))

    return {"TextItem": TextItem, "Article": Article, "BlogPost": BlogPost}


def article_tags(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/relationships/test_many_to_many_relations.py (and, in a schema,
    tests/test_custom_schema.py): articles and tags through a versioned ``article_tag``."""
    prefix = f"{base.metadata.schema}." if base.metadata.schema else ""
    article_tag = sa.Table(
        "article_tag",
        base.metadata,
        sa.Column("article_id", sa.Integer, sa.ForeignKey(f"{prefix}article.id"), primary_key=True),
        sa.Column("tag_id", sa.Integer, sa.ForeignKey(f"{prefix}tag.id"), primary_key=True),
    )

    class Article(base):  # type: ignore[misc,valid-type]
        __tablename__ = "article"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))
        content = sa.Column(sa.String(255))

    class Tag(base):  # type: ignore[misc,valid-type]
        __tablename__ = "tag"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))

    Article.tags = relationship(Tag, secondary=article_tag, backref="articles")
    return {"Article": Article, "Tag": Tag}


def published_articles(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/relationships/test_association_table_relations.py: ``published_article``,
    the secondary table of the versioned ``Author.articles``, also mapped by an (unversioned)
    association class the application writes through."""

    class Article(base):  # type: ignore[misc,valid-type]
        __tablename__ = "article"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))

    class PublishedArticle(base):  # type: ignore[misc,valid-type]
        __tablename__ = "published_article"
        article_id = sa.Column(sa.Integer, sa.ForeignKey("article.id"), primary_key=True)
        author_id = sa.Column(sa.Integer, sa.ForeignKey("author.id"), primary_key=True)
        author = relationship("Author", overlaps="articles")
        article = relationship("Article", overlaps="articles")

    class Author(base):  # type: ignore[misc,valid-type]
        __tablename__ = "author"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))
        articles = relationship("Article", secondary="published_article", overlaps="author,article")

    return {"Article": Article, "Author": Author, "PublishedArticle": PublishedArticle}


def excluded_column(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/test_column_inclusion_and_exclusion.py: ``content`` not versioned."""

    class Article(base):  # type: ignore[misc,valid-type]
        __tablename__ = "article"
        __versioned__ = {"exclude": ["content"]}
        id = _id()
        name = sa.Column(sa.String(255))
        content = sa.Column(sa.String(255))

    return {"Article": Article}


def aliased_column(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/test_column_aliases.py: attribute ``name`` on column ``_name``."""

    class TextItem(base):  # type: ignore[misc,valid-type]
        __tablename__ = "text_item"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column("_name", sa.String(255))
        kind = sa.Column(sa.String(20))

    return {"TextItem": TextItem}


def team_members(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's tests/test_composite_primary_key.py: ``team_member`` keyed on two foreign keys
    (``user`` is a reserved word on PostgreSQL)."""

    class User(base):  # type: ignore[misc,valid-type]
        __tablename__ = "user"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))

    class Team(base):  # type: ignore[misc,valid-type]
        __tablename__ = "team"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))

    class TeamMember(base):  # type: ignore[misc,valid-type]
        __tablename__ = "team_member"
        __versioned__: dict[str, Any] = {}
        user_id = sa.Column(sa.Integer, sa.ForeignKey(User.id, ondelete="CASCADE"), primary_key=True)
        team_id = sa.Column(sa.Integer, sa.ForeignKey(Team.id, ondelete="CASCADE"), primary_key=True)
        role = sa.Column(sa.String(255))

    return {"User": User, "Team": Team, "TeamMember": TeamMember}


def articles(base: type[DeclarativeBase]) -> dict[str, type]:
    """Continuum's default test model: one versioned ``article``."""

    class Article(base):  # type: ignore[misc,valid-type]
        __tablename__ = "article"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))
        content = sa.Column(sa.String(255))

    return {"Article": Article}


def users_and_articles(base: type[DeclarativeBase]) -> dict[str, type]:
    """``articles`` and the ``User`` class Continuum's transaction table refers to (``user_cls``)."""

    class User(base):  # type: ignore[misc,valid-type]
        __tablename__ = "user"
        __versioned__: dict[str, Any] = {}
        id = _id()
        name = sa.Column(sa.String(255))

    return {"User": User, **articles(base)}


class CurrentUserPlugin(Plugin):
    """Gives each new transaction record the current user's id, as Continuum's FlaskPlugin does."""

    def __init__(self) -> None:
        self.user_id: int | None = None

    def transaction_args(self, uow: Any, session: Session) -> dict[str, Any]:
        return {"user_id": self.user_id}


# --- the set-ups ----------------------------------------------------------------------------

Writer = Callable[[Session, App], None]


@dataclass
class Setup:
    """One row of the matrix."""

    #: builds the app (a context manager yielding it)
    app: Callable[[], AbstractContextManager[App]]
    #: the history through Continuum's ORM, several transactions (it commits them)
    history: Writer
    #: further changes through Continuum's ORM, in one transaction (committed after)
    changes: Writer
    #: the same changes as raw SQL that bypasses Continuum, in one database transaction
    raw: list[str]
    #: what autogenerate finds after ``raw``: (op name, table, joined tables)
    expected: list[tuple[str, str, tuple[str, ...]]]
    #: reads through Continuum's API after the repair, besides the generic ones
    reads: Writer = lambda session, app: None
    #: more tables compared with the twin's (their ``transaction_id`` by rank)
    compared: tuple[str, ...] = ()
    #: what autogenerate finds on Continuum's own history: the repairs of Continuum defects that
    #: leave wrong data (the twin gets them too before it is compared)
    defects: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    #: autogenerate options
    opts: dict[str, Any] = field(default_factory=dict)
    #: the only dialect the set-up runs on
    dialect: str | None = None
    #: prepares a fresh database (schemas, extensions)
    prepare: Callable[[sa.Engine], None] = lambda engine: None
    #: a known failure of alembic-versioning on this set-up (``pytest.mark.xfail(strict=True)``)
    xfail: str | None = None


def backfill(table: str, *joined: str) -> tuple[str, str, tuple[str, ...]]:
    return ("backfill_versions", table, tuple(sorted(joined)))


# single-table inheritance


def single_history(session: Session, app: App) -> None:
    session.add_all(
        [
            app.Article(id=1, name="a"),
            app.BlogPost(id=2, title="b"),
            app.TextItem(id=3),
            app.Article(id=4, name="d"),
            app.BlogPost(id=6, title="f"),
        ]
    )
    session.commit()
    session.get(app.Article, 1).name = "a2"
    session.get(app.BlogPost, 2).title = "b2"
    session.commit()
    session.delete(session.get(app.Article, 4))
    session.commit()
    session.get(app.Article, 1).name = None
    session.commit()


def single_changes(session: Session, app: App) -> None:
    session.add(app.Article(id=5, name="e"))
    session.get(app.BlogPost, 2).title = "b3"
    session.delete(session.get(app.TextItem, 3))
    session.get(app.Article, 1).name = "a3"


def deleted_versions(session: Session, app: App, model: str = "Article", **key: Any) -> list[Any]:
    """The versions of an entity (whose live row may be gone), oldest first."""
    version_cls = version_class(app.models[model])
    tx = getattr(version_cls, names(app)[0])
    return list(session.scalars(sa.select(version_cls).filter_by(**key).order_by(tx)))


def single_reads(session: Session, app: App) -> None:
    post = session.get(app.BlogPost, 2)
    assert [v.title for v in post.versions] == ["b", "b2", "b3"]
    assert post.versions[2].changeset == {"title": ["b2", "b3"]}
    assert [v.operation_type for v in session.get(app.Article, 5).versions] == [0]
    deleted = deleted_versions(session, app, "TextItem", id=3)
    assert [v.operation_type for v in deleted] == [0, DELETE]


SINGLE = Setup(
    app=lambda: build(single_table, mod_tracker=False),
    history=single_history,
    changes=single_changes,
    raw=[
        "INSERT INTO text_item (id, discriminator, name) VALUES (5, 'article', 'e')",
        "UPDATE text_item SET title = 'b3' WHERE id = 2",
        "DELETE FROM text_item WHERE id = 3",
        "UPDATE text_item SET name = 'a3' WHERE id = 1",
    ],
    expected=[backfill("text_item")],
    reads=single_reads,
)


# joined-table inheritance


def joined_history(session: Session, app: App) -> None:
    session.add_all(
        [
            app.Article(id=1, name="a", content="x"),
            app.BlogPost(id=2, name="b", title="t"),
            app.TextItem(id=3, name="c"),
            app.Article(id=4, name="d", content="y"),
            app.BlogPost(id=6, name="f", title="u"),
        ]
    )
    session.commit()
    session.get(app.Article, 1).content = "x2"  # only the subclass table's half changes
    session.get(app.BlogPost, 2).name = "b2"  # only the base table's half changes
    session.commit()
    session.delete(session.get(app.Article, 4))
    session.commit()


def joined_changes(session: Session, app: App) -> None:
    session.add(app.Article(id=5, name="e", content="z"))
    session.get(app.BlogPost, 2).title = "t2"
    session.get(app.Article, 1).name = "a2"
    session.delete(session.get(app.BlogPost, 6))
    session.delete(session.get(app.TextItem, 3))


def joined_reads(session: Session, app: App) -> None:
    article = session.get(app.Article, 1)
    assert [(v.name, v.content) for v in article.versions] == [("a", "x"), ("a", "x2"), ("a2", "x2")]
    assert article.versions[2].changeset == {"name": ["a", "a2"]}
    post = session.get(app.BlogPost, 2)
    assert [(v.name, v.title) for v in post.versions] == [("b", "t"), ("b2", "t"), ("b2", "t2")]
    assert [(v.name, v.content) for v in session.get(app.Article, 5).versions] == [("e", "z")]


JOINED = Setup(
    app=lambda: build(joined_tables),
    history=joined_history,
    changes=joined_changes,
    raw=[
        "INSERT INTO text_item (id, discriminator, name) VALUES (5, 'article', 'e')",
        "INSERT INTO article (id, content) VALUES (5, 'z')",
        "UPDATE blog_post SET title = 't2' WHERE id = 2",
        "UPDATE text_item SET name = 'a2' WHERE id = 1",
        "DELETE FROM blog_post WHERE id = 6",
        "DELETE FROM text_item WHERE id IN (3, 6)",
    ],
    expected=[backfill("text_item", "article", "blog_post")],
    reads=joined_reads,
)


# multi-level inheritance


def multi_history(session: Session, app: App) -> None:
    session.add_all(
        [
            app.BaseModel(id=1, name="p"),
            app.FirstLevel(id=2, name="f", level1="l1"),
            app.SecondLevel(id=3, name="s", level1="m1", level2="m2"),
            app.SecondLevel(id=4, name="t", level1="n1", level2="n2"),
        ]
    )
    session.commit()
    session.get(app.SecondLevel, 3).level2 = "m2b"
    session.get(app.FirstLevel, 2).name = "f2"
    session.commit()


def multi_changes(session: Session, app: App) -> None:
    session.add(app.SecondLevel(id=5, name="u", level1="o1", level2="o2"))
    session.get(app.SecondLevel, 3).level2 = "m2c"
    session.get(app.SecondLevel, 4).name = "t2"
    session.delete(session.get(app.FirstLevel, 2))
    session.get(app.BaseModel, 1).name = "p2"


def multi_reads(session: Session, app: App) -> None:
    third = session.get(app.SecondLevel, 3)
    assert [(v.name, v.level1, v.level2) for v in third.versions] == [
        ("s", "m1", "m2"),
        ("s", "m1", "m2b"),
        ("s", "m1", "m2c"),
    ]
    assert third.versions[2].changeset == {"level2": ["m2b", "m2c"]}
    assert [v.name for v in session.get(app.SecondLevel, 4).versions] == ["t", "t2"]


MULTI = Setup(
    app=lambda: build(multi_level, mod_tracker=False),
    history=multi_history,
    changes=multi_changes,
    raw=[
        "INSERT INTO base_model (id, discriminator, name) VALUES (5, 'second_level', 'u')",
        "INSERT INTO first_level (id, level1, level2) VALUES (5, 'o1', 'o2')",
        "UPDATE first_level SET level2 = 'm2c' WHERE id = 3",
        "UPDATE base_model SET name = 't2' WHERE id = 4",
        "DELETE FROM first_level WHERE id = 2",
        "DELETE FROM base_model WHERE id = 2",
        "UPDATE base_model SET name = 'p2' WHERE id = 1",
    ],
    expected=[backfill("base_model", "first_level")],
    reads=multi_reads,
)


# concrete-table inheritance


def concrete_history(session: Session, app: App) -> None:
    session.add_all(
        [
            app.TextItem(id=1, name="i1"),
            app.TextItem(id=2, name="i2"),
            app.Article(id=1, name="a1", content="x"),
            app.Article(id=3, name="a3", content="y"),
            app.BlogPost(id=1, name="b1", title="t"),
        ]
    )
    session.commit()
    session.get(app.Article, 1).content = "x2"
    session.get(app.TextItem, 2).name = "i2b"
    session.commit()


def concrete_changes(session: Session, app: App) -> None:
    session.get(app.Article, 1).name = "a1b"  # article 1, not text item 1
    session.delete(session.get(app.Article, 3))
    session.add(app.BlogPost(id=2, name="b2", title="u"))  # blog post 2 beside text item 2
    session.get(app.TextItem, 1).name = "i1b"


def concrete_reads(session: Session, app: App) -> None:
    article = versions_of(session, app, session.get_one(app.Article, 1))
    assert [(v.name, v.content) for v in article] == [("a1", "x"), ("a1", "x2"), ("a1b", "x2")]
    assert article[2].changeset == {"name": ["a1", "a1b"]}
    assert [v.name for v in session.get_one(app.TextItem, 1).versions] == ["i1", "i1b"]
    assert [v.name for v in session.get_one(app.TextItem, 2).versions] == ["i2", "i2b"]
    assert [(v.name, v.title) for v in versions_of(session, app, session.get_one(app.BlogPost, 2))] == [("b2", "u")]
    gone = deleted_versions(session, app, "Article", id=3)
    assert [(v.operation_type, v.name) for v in gone] == [(0, "a3"), (DELETE, "a3")]


#: A Continuum defect: writing a version of an ``Article`` closes the open ``text_item_version`` row
#: of the same id too (UnitOfWork.update_version_validity walks the version class's MRO, and
#: ArticleVersion subclasses TextItemVersion), though text item 1 is another entity: its open
#: version gets an end id with no next version, so ``version_at`` finds nothing after it.
CONCRETE_CHAINS = ("update_end_transaction_ids", "text_item", ())

CONCRETE = Setup(
    app=lambda: build(concrete),
    history=concrete_history,
    changes=concrete_changes,
    raw=[
        "UPDATE article SET name = 'a1b' WHERE id = 1",
        "DELETE FROM article WHERE id = 3",
        "INSERT INTO blog_post (id, name, title) VALUES (2, 'b2', 'u')",
        "UPDATE text_item SET name = 'i1b' WHERE id = 1",
    ],
    expected=[backfill("article"), backfill("blog_post"), backfill("text_item"), CONCRETE_CHAINS],
    reads=concrete_reads,
    defects=[CONCRETE_CHAINS],
)


# many-to-many (and in a schema)


def tags_history(session: Session, app: App) -> None:
    tags = [app.Tag(id=i, name=f"tag {i}") for i in (1, 2, 3)]
    session.add_all([app.Article(id=1, name="a", tags=tags[:2]), app.Article(id=2, name="b", tags=tags[2:])])
    session.commit()
    first, second = session.get_one(app.Article, 1), session.get_one(app.Article, 2)
    first.tags = [tags[0]]
    first.name = "a2"
    session.commit()
    second.tags.append(tags[1])
    session.commit()


def tags_changes(session: Session, app: App) -> None:
    first, second = session.get_one(app.Article, 1), session.get_one(app.Article, 2)
    first.tags.append(session.get_one(app.Tag, 3))
    second.tags.remove(session.get_one(app.Tag, 2))
    session.get_one(app.Tag, 1).name = "first"
    session.add(app.Article(id=3, name="c"))


def tags_reads(session: Session, app: App) -> None:
    """A version written after the repair sees the repaired links (Continuum reads association
    versions with ``max(transaction_id) <= T`` subqueries)."""
    first, second = session.get(app.Article, 1), session.get(app.Article, 2)
    first.name, second.name = "a3", "b2"
    session.commit()
    assert sorted(t.id for t in first.versions.all()[-1].tags) == [1, 3]
    assert sorted(t.id for t in second.versions.all()[-1].tags) == [3]
    assert [t.id for t in first.versions[1].tags] == [1]


TAGS_RAW = [
    "INSERT INTO {s}article_tag (article_id, tag_id) VALUES (1, 3)",
    "DELETE FROM {s}article_tag WHERE article_id = 2 AND tag_id = 2",
    "UPDATE {s}tag SET name = 'first' WHERE id = 1",
    "INSERT INTO {s}article (id, name) VALUES (3, 'c')",
]

MANY_TO_MANY = Setup(
    app=lambda: build(article_tags),
    history=tags_history,
    changes=tags_changes,
    raw=[s.format(s="") for s in TAGS_RAW],
    expected=[backfill("article"), backfill("article_tag"), backfill("tag")],
    reads=tags_reads,
)


def create_schema(engine: sa.Engine) -> None:
    """A schema ``app``: on PostgreSQL created, on MariaDB a database (dropped with the test's
    own), on SQLite an attached database file."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database + ".app"

        @sa.event.listens_for(engine, "connect")
        def attach(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.execute(f"ATTACH DATABASE '{path}' AS app")

        engine.dispose()
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA app")


SCHEMA = Setup(
    app=lambda: build(article_tags, schema="app"),
    history=tags_history,
    changes=tags_changes,
    raw=[s.format(s="app.") for s in TAGS_RAW],
    expected=[backfill("article"), backfill("article_tag"), backfill("tag")],
    reads=tags_reads,
    # as Alembic needs on MariaDB, whose schemas are the server's databases (performance_schema, ...)
    opts={
        "include_schemas": True,
        "include_name": lambda name, type_, parents: type_ != "schema" or name in (None, "app"),
    },
    prepare=create_schema,
)


# an association table also mapped by a class


def published_history(session: Session, app: App) -> None:
    session.add_all([app.Article(id=i, name=f"a{i}") for i in (1, 2, 3)])
    session.add_all([app.Author(id=1, name="x"), app.Author(id=2, name="y")])
    session.commit()
    # Continuum versions the association class's rows only in a flush that changes a versioned
    # object (alone, they get no transaction record and no versions)
    session.add_all([app.PublishedArticle(article_id=1, author_id=1), app.PublishedArticle(article_id=2, author_id=1)])
    session.get_one(app.Author, 1).name = "x1"
    session.commit()
    author = session.get_one(app.Author, 2)
    author.articles.append(session.get_one(app.Article, 3))
    session.commit()


def published_changes(session: Session, app: App) -> None:
    session.add(app.PublishedArticle(article_id=3, author_id=1))
    session.delete(session.get_one(app.PublishedArticle, (2, 1)))
    session.get_one(app.Article, 1).name = "a1b"


def published_reads(session: Session, app: App) -> None:
    author = session.get(app.Author, 1)
    author.name = "x2"
    session.commit()
    assert sorted(a.id for a in author.versions.all()[-1].articles) == [1, 3]


PUBLISHED = Setup(
    app=lambda: build(published_articles),
    history=published_history,
    changes=published_changes,
    raw=[
        "INSERT INTO published_article (article_id, author_id) VALUES (3, 1)",
        "DELETE FROM published_article WHERE article_id = 2 AND author_id = 1",
        "UPDATE article SET name = 'a1b' WHERE id = 1",
    ],
    expected=[backfill("article"), backfill("published_article")],
    reads=published_reads,
)


# column exclusion, column aliases


def excluded_history(session: Session, app: App) -> None:
    session.add_all([app.Article(id=1, name="a", content="x"), app.Article(id=2, name="b", content="y")])
    session.commit()
    session.get(app.Article, 1).content = "x2"  # no version: the column is not versioned
    session.commit()
    session.get(app.Article, 2).name = "b2"
    session.commit()


def excluded_changes(session: Session, app: App) -> None:
    session.get(app.Article, 2).content = "y2"  # still no version
    session.get(app.Article, 1).name = "a2"
    session.add(app.Article(id=3, name="c", content="z"))


def excluded_reads(session: Session, app: App) -> None:
    versions = session.get(app.Article, 1).versions.all()
    assert [v.name for v in versions] == ["a", "a2"]
    assert versions[1].changeset == {"name": ["a", "a2"]}
    assert "content" not in version_class(app.Article).__table__.c
    assert [v.name for v in session.get(app.Article, 2).versions] == ["b", "b2"]


EXCLUDED = Setup(
    app=lambda: build(excluded_column),
    history=excluded_history,
    changes=excluded_changes,
    raw=[
        "UPDATE article SET content = 'y2' WHERE id = 2",
        "UPDATE article SET name = 'a2' WHERE id = 1",
        "INSERT INTO article (id, name, content) VALUES (3, 'c', 'z')",
    ],
    expected=[backfill("article")],
    reads=excluded_reads,
)


def aliased_history(session: Session, app: App) -> None:
    session.add_all([app.TextItem(id=1, name="Something", kind="k"), app.TextItem(id=2, name="Other", kind="k")])
    session.commit()
    session.get(app.TextItem, 1).name = "Some other thing"
    session.commit()
    session.get(app.TextItem, 1).versions[0].revert()  # Continuum's test_revert
    session.commit()


def aliased_changes(session: Session, app: App) -> None:
    session.get(app.TextItem, 2).name = "Other 2"
    session.delete(session.get(app.TextItem, 1))


def aliased_reads(session: Session, app: App) -> None:
    item = session.get(app.TextItem, 2)
    assert [v.name for v in item.versions] == ["Other", "Other 2"]
    assert item.versions[1].changeset == {"name": ["Other", "Other 2"]}
    item.versions[0].revert()
    session.commit()
    assert [v.name for v in item.versions] == ["Other", "Other 2", "Other"]


ALIASED = Setup(
    # no mod tracker: it never flags a column whose attribute key differs from its name (a
    # Continuum defect, documented in docs/autogenerate.rst)
    app=lambda: build(aliased_column, mod_tracker=False),
    history=aliased_history,
    changes=aliased_changes,
    raw=["UPDATE text_item SET _name = 'Other 2' WHERE id = 2", "DELETE FROM text_item WHERE id = 1"],
    expected=[backfill("text_item")],
    reads=aliased_reads,
)


# composite primary keys


def members_history(session: Session, app: App) -> None:
    session.add_all([app.User(id=i, name=f"u{i}") for i in (1, 2)] + [app.Team(id=i, name=f"t{i}") for i in (1, 2)])
    session.commit()  # no relationships: nothing orders the members' INSERTs after theirs
    session.add_all([app.TeamMember(user_id=1, team_id=1, role="lead"), app.TeamMember(user_id=2, team_id=1)])
    session.commit()
    session.get(app.TeamMember, (2, 1)).role = "dev"
    session.add(app.TeamMember(user_id=1, team_id=2, role="dev"))
    session.commit()


def members_changes(session: Session, app: App) -> None:
    session.get(app.TeamMember, (1, 1)).role = "owner"
    session.delete(session.get(app.TeamMember, (1, 2)))
    session.add(app.TeamMember(user_id=2, team_id=2, role="qa"))


def members_reads(session: Session, app: App) -> None:
    member = session.get(app.TeamMember, (1, 1))
    assert [v.role for v in member.versions] == ["lead", "owner"]
    assert member.versions[1].changeset == {"role": ["lead", "owner"]}
    gone = version_class(app.TeamMember).version_at(session, {"user_id": 1, "team_id": 2}, 10**9)
    assert gone is not None and gone.operation_type == DELETE and gone.role == "dev"


MEMBERS = Setup(
    app=lambda: build(team_members),
    history=members_history,
    changes=members_changes,
    raw=[
        "UPDATE team_member SET role = 'owner' WHERE user_id = 1 AND team_id = 1",
        "DELETE FROM team_member WHERE user_id = 1 AND team_id = 2",
        "INSERT INTO team_member (user_id, team_id, role) VALUES (2, 2, 'qa')",
    ],
    expected=[backfill("team_member")],
    reads=members_reads,
)


# plain articles under naming options and plugins


def articles_history(session: Session, app: App) -> None:
    session.add_all([app.Article(id=i, name=f"a{i}", content="x") for i in (1, 2, 3, 4)])
    session.commit()
    session.get(app.Article, 1).name = "a1b"
    session.get(app.Article, 2).content = None
    session.commit()
    session.delete(session.get(app.Article, 3))
    session.commit()


def articles_changes(session: Session, app: App) -> None:
    session.get(app.Article, 1).content = "y"
    session.delete(session.get(app.Article, 2))
    session.add(app.Article(id=5, name="e", content="z"))


ARTICLES_RAW = [
    "UPDATE article SET content = 'y' WHERE id = 1",
    "DELETE FROM article WHERE id = 2",
    "INSERT INTO article (id, name, content) VALUES (5, 'e', 'z')",
]


def articles_reads(session: Session, app: App) -> None:
    first = session.get(app.Article, 1)
    assert [(v.name, v.content) for v in first.versions] == [("a1", "x"), ("a1b", "x"), ("a1b", "y")]
    assert first.versions[2].changeset == {"content": ["x", "y"]}
    first.versions[1].revert()
    session.commit()
    assert first.content == "x" and first.versions.all()[-1].changeset == {"content": ["y", "x"]}
    assert [v.operation_type for v in deleted_versions(session, app, id=2)] == [0, 1, DELETE]


#: Plain articles: what the set-ups under naming options and plugins share (not a set-up itself).
ARTICLES = Setup(
    app=lambda: build(articles),
    history=articles_history,
    changes=articles_changes,
    raw=ARTICLES_RAW,
    expected=[backfill("article")],
    reads=articles_reads,
)


def custom_names_reads(session: Session, app: App) -> None:
    articles_reads(session, app)
    assert version_class(app.Article).__table__.name == "article_history"
    assert all(v.end_tx_id is None for v in session.get(app.Article, 5).versions)


def changes_reads(session: Session, app: App) -> None:
    articles_reads(session, app)
    (new,) = session.get(app.Article, 5).versions
    assert version_class(app.Article) in new.transaction.changed_entities
    assert [c.entity_name for c in new.transaction.changes] == ["Article"]


def meta_history(session: Session, app: App) -> None:
    articles_history(session, app)
    session.get_one(app.Article, 4).name = "a4b"
    transaction = app.manager.unit_of_work(session).create_transaction(session)
    transaction.meta = {"source": "import"}  # as Continuum's TransactionMetaPlugin documents
    session.commit()


def meta_reads(session: Session, app: App) -> None:
    fourth = session.get(app.Article, 4)
    assert fourth.versions[1].transaction.meta == {"source": "import"}
    (new,) = session.get(app.Article, 5).versions
    assert new.transaction.meta == {"comment": f"alembic revision {REVISION}"}  # the generated default
    articles_reads(session, app)


def null_delete_reads(session: Session, app: App) -> None:
    gone = deleted_versions(session, app, id=2)
    assert [(v.operation_type, v.name, v.content) for v in gone] == [(0, "a2", "x"), (1, "a2", None), (2, None, None)]


CURRENT_USER = CurrentUserPlugin()


def users_history(session: Session, app: App) -> None:
    session.add_all([app.User(id=1, name="alice"), app.User(id=2, name="bob")])
    session.commit()
    for user in (1, 2):
        CURRENT_USER.user_id = user
        try:
            if user == 1:
                articles_history(session, app)
            else:
                session.get(app.Article, 4).name = "by bob"
                session.commit()
        finally:
            CURRENT_USER.user_id = None


def users_reads(session: Session, app: App) -> None:
    fourth = session.get(app.Article, 4)
    assert [v.transaction.user.name for v in fourth.versions] == ["alice", "bob"]
    (new,) = session.get(app.Article, 5).versions
    assert new.transaction.user is None
    articles_reads(session, app)


def native_prepare(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS hstore")  # the triggers' UPDATE check uses it


def native_reads(session: Session, app: App) -> None:
    first = session.get(app.Article, 1)
    assert [(v.name, v.content) for v in first.versions] == [("a1", "x"), ("a1b", "x"), ("a1b", "y")]
    assert first.versions[2].changeset == {"content": ["x", "y"]}
    first.name = "after"  # the triggers keep versioning on top of the backfilled versions
    session.commit()
    assert [v.name for v in first.versions] == ["a1", "a1b", "a1b", "after"]


SETUPS: dict[str, Setup] = {
    "single": SINGLE,
    "single-mod-tracker": replace(SINGLE, app=lambda: build(single_table)),
    "joined": JOINED,
    "multi-level": MULTI,
    "multi-level-mod-tracker": replace(MULTI, app=lambda: build(multi_level)),
    "concrete": CONCRETE,
    "many-to-many": MANY_TO_MANY,
    "association-class": PUBLISHED,
    "schema": SCHEMA,
    "exclude": EXCLUDED,
    "alias": ALIASED,
    "composite-key": MEMBERS,
    "custom-names": replace(ARTICLES, app=lambda: build(articles, **CUSTOM_NAMES), reads=custom_names_reads),
    "transaction-changes": replace(
        ARTICLES,
        app=lambda: build(articles, plugins=(TransactionChangesPlugin(),)),
        reads=changes_reads,
        compared=("transaction_changes",),
    ),
    "transaction-meta": replace(
        ARTICLES,
        app=lambda: build(articles, plugins=(TransactionMetaPlugin(),)),
        history=meta_history,
        reads=meta_reads,
    ),
    "null-delete": replace(
        ARTICLES, app=lambda: build(articles, plugins=(NullDeletePlugin(),)), reads=null_delete_reads
    ),
    "user-class": replace(
        ARTICLES,
        app=lambda: build(users_and_articles, plugins=(CURRENT_USER,), user_cls="User"),
        history=users_history,
        reads=users_reads,
    ),
    "native": replace(
        ARTICLES,
        app=lambda: build(articles, native_versioning=True),
        reads=native_reads,
        dialect="postgresql",
        prepare=native_prepare,
    ),
}


# --- reading the database -------------------------------------------------------------------


def names(app: App) -> tuple[str, str]:
    """The transaction and end transaction column names."""
    return (
        app.options.get("transaction_column_name", "transaction_id"),
        app.options.get("end_transaction_column_name", "end_transaction_id"),
    )


def pairs(app: App) -> list[tuple[sa.Table, sa.Table, bool]]:
    """Each versioned live table, its version table, and whether it is an association table."""
    version_format = app.options.get("table_name", "%s_version")
    found = []
    for live in app.metadata.sorted_tables:
        name = version_format % live.name
        version = app.metadata.tables.get(f"{live.schema}.{name}" if live.schema else name)
        if version is not None:
            found.append((live, version, live in app.manager.association_tables))
    return found


def snapshot(engine: sa.Engine, app: App, compared: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the version tables (and ``compared``), in key order, each table's transaction
    ids replaced by their rank in it."""
    tx, end = names(app)
    tables = [version for _, version, _ in pairs(app)] + [app.table(name) for name in compared]
    result = {}
    with engine.connect() as conn:
        for table in tables:
            tx_column = table.c[tx] if tx in table.c else table.c.transaction_id
            rank = {t: i for i, t in enumerate(sorted(set(conn.scalars(sa.select(tx_column)))))}
            order = list(table.primary_key.columns) or list(table.c)
            rows = conn.execute(sa.select(table).order_by(*order)).mappings()
            result[table.name] = [
                tuple(rank[v] if k in (tx, end, tx_column.name) and v is not None else v for k, v in row.items())
                for row in rows
            ]
    return result


def transaction_count(engine: sa.Engine, app: App) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(app.table("transaction")))


def assert_invariants(engine: sa.Engine, app: App) -> None:
    """Per entity, in transaction order: each end id the next version's transaction id, the last
    open; the open version a DELETE exactly when the live row is gone, else equal to the live row.
    For association tables (end ids never filled by Continuum): the latest version a DELETE exactly
    when the link is gone."""
    tx, end = names(app)
    with engine.connect() as conn:
        for live, version, association in pairs(app):
            key = [c.name for c in live.primary_key.columns]
            data = [c.name for c in live.c if c.name in version.c and c.name not in key]
            rows = conn.execute(sa.select(*(live.c[c] for c in key + data))).all()
            current = {tuple(row[: len(key)]): tuple(row[len(key) :]) for row in rows}
            versions = conn.execute(sa.select(version).order_by(*(version.c[c] for c in key), version.c[tx]))
            entities = groupby(versions.mappings(), key=lambda v: tuple(v[c] for c in key))
            seen = set()
            for entity, history in ((k, list(g)) for k, g in entities):
                seen.add(entity)
                last = history[-1]
                where = f"{version.name} {entity}"
                if not association:
                    assert [v[end] for v in history] == [v[tx] for v in history[1:]] + [None], where
                if entity not in current:
                    assert last["operation_type"] == DELETE, where
                    continue
                assert last["operation_type"] != DELETE, where
                if not association:
                    assert tuple(last[c] for c in data) == current[entity], where
            assert set(current) <= seen, f"{live.name}: live rows without versions"


def versions_of(session: Session, app: App, obj: Any) -> list[Any]:
    """``obj.versions``; for a class mapped with concrete-table inheritance, which has no such
    attribute (SQLAlchemy does not give a concrete mapper its base's relationships), its version
    class's rows of ``obj``, oldest first."""
    mapper = sa.inspect(type(obj))
    if not mapper.concrete:
        return obj.versions.all()
    key = dict(zip((c.name for c in mapper.primary_key), mapper.primary_key_from_instance(obj), strict=True))
    return deleted_versions(session, app, type(obj).__name__, **key)


def assert_api_reads(engine: sa.Engine, app: App) -> None:
    """For every live object of every versioned class: ``versions`` ends with its live values,
    ``previous``/``next`` walk them in order, ``version_at`` finds each, ``changeset`` reads."""
    tx, _ = names(app)
    with Session(engine) as session:
        for model in app.models.values():
            if not hasattr(model, "__versioned__"):
                continue
            for obj in session.scalars(sa.select(model)):
                versions = versions_of(session, app, obj)
                assert versions, obj
                last = versions[-1]
                assert last.operation_type != DELETE
                for prop in versioned_column_properties(obj):
                    assert getattr(last, prop.key) == getattr(obj, prop.key), (obj, prop.key)
                assert versions[0].previous is None and last.next is None
                for older, newer in pairwise(versions):
                    assert newer.previous is older and older.next is newer
                identity = sa.inspect(obj).mapper.primary_key_from_instance(obj)
                key = {c.name: v for c, v in zip(sa.inspect(type(obj)).primary_key, identity, strict=True)}
                for version in versions:
                    assert isinstance(obj, parent_class(type(version)))
                    assert isinstance(version, version_class(sa.inspect(model).base_mapper.class_))
                    assert isinstance(version.changeset, dict)
                    assert type(version).version_at(session, key, getattr(version, tx)) is version


# --- the matrix -----------------------------------------------------------------------------


def write(engine: sa.Engine, app: App, writer: Writer, commit: bool = False) -> None:
    with Session(engine) as session:
        writer(session, app)
        if commit:
            session.commit()


def fresh_history(engine: sa.Engine, app: App, setup: Setup) -> None:
    app.metadata.drop_all(engine)
    app.metadata.create_all(engine)
    write(engine, app, setup.history)


def params() -> list[Any]:
    return [
        pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=s.xfail)] if s.xfail else [])
        for name, s in SETUPS.items()
    ]


@pytest.mark.parametrize("name", params())
def test_setup(engine: sa.Engine, name: str) -> None:
    setup = SETUPS[name]
    if setup.dialect and engine.dialect.name != setup.dialect:
        pytest.skip(f"{name}: {setup.dialect} only")
    setup.prepare(engine)
    with setup.app() as app:
        opts = {"alembic_versioning": {"vacuum": True, "managers": [app.manager]}, **setup.opts}

        # 1-2. Continuum's history: no diff (but Continuum's own defects); the twin: the changes
        # through Continuum, and Continuum's defects repaired
        fresh_history(engine, app, setup)
        assert found(produce(engine, app.metadata, **opts)) == setup.defects
        write(engine, app, setup.changes, commit=True)
        script = produce(engine, app.metadata, **opts)
        assert found(script) == setup.defects
        if setup.defects:
            apply(engine, render(engine, script))
            assert found(produce(engine, app.metadata, **opts)) == []
        expected = snapshot(engine, app, setup.compared)

        # 3. the same history; the changes by raw SQL: drift found
        fresh_history(engine, app, setup)
        before = snapshot(engine, app, setup.compared)
        with engine.begin() as conn:
            for statement in setup.raw:
                conn.exec_driver_sql(statement)
        assert snapshot(engine, app, setup.compared) == before  # Continuum saw none of it
        script = produce(engine, app.metadata, **opts)
        assert sorted(found(script)) == sorted(setup.expected)

        # 4. the generated upgrade: Continuum's tables as the twin's, the invariants hold
        code = render(engine, script)
        apply(engine, code)
        assert snapshot(engine, app, setup.compared) == expected
        assert_invariants(engine, app)

        # 6. nothing left: no diff, and the upgrade again writes nothing
        assert found(produce(engine, app.metadata, **opts)) == []
        records = transaction_count(engine, app)
        apply(engine, code)
        assert snapshot(engine, app, setup.compared) == expected
        assert transaction_count(engine, app) == records

        # 5. Continuum's API
        assert_api_reads(engine, app)
        write(engine, app, setup.reads)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_association_end_ids(engine: sa.Engine, mode: str) -> None:
    """Continuum never fills the end ids of an association table's versions (it reads them with
    ``max(transaction_id)`` subqueries): the repaired table keeps that shape, so that the versions
    Continuum writes later look like the backfilled ones (the matrix compares them too)."""
    with build(article_tags) as app:
        app.metadata.create_all(engine)
        write(engine, app, tags_history)
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM article_tag WHERE article_id = 2 AND tag_id = 2")
        script = produce(engine, app.metadata, alembic_versioning={"managers": [app.manager]})
        assert found(script) == [backfill("article_tag")]
        code = render(engine, script)
        if mode == "online":
            apply(engine, code)
        else:  # the script alone (no target_metadata) says it is an association table
            execute_script(engine, render_generated(engine, code))
        version = app.table("article_tag_version")
        with engine.connect() as conn:
            ops = conn.execute(sa.select(version.c.operation_type, version.c.end_transaction_id)).all()
        assert sorted(ops, key=lambda row: row[0]) == [(0, None)] * 4 + [(2, None)] * 2
