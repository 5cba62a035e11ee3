"""Real SQLAlchemy-Continuum applications for the tests, and histories written through them.

Each :func:`versioned_app` call builds a fresh declarative base, a fresh versioning manager
with the given options, and the models below; histories come from Continuum's own ORM path,
so the version tables it writes are the ground truth the operations are checked against.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy_continuum import VersioningManager, make_versioned, remove_versioning, version_class
from sqlalchemy_continuum.plugins import PropertyModTrackerPlugin
from sqlalchemy_continuum.transaction import TransactionBase

from alembic_versioning import DELETE


@dataclass
class App:
    """The models and manager of one versioned application."""

    metadata: sa.MetaData
    manager: VersioningManager
    models: dict[str, type]
    options: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> type:
        try:
            return self.models[name]
        except KeyError:
            raise AttributeError(name) from None

    def table(self, name: str) -> sa.Table:
        """The table ``name`` in this app's schema."""
        schema = self.metadata.schema
        return self.metadata.tables[f"{schema}.{name}" if schema else name]

    def version(self, model: str) -> sa.Table:
        return version_class(self.models[model]).__table__

    def op_kwargs(self) -> dict[str, Any]:
        """The op keyword arguments naming this app's version tables."""
        rename = {
            "table_name": "version_table_format",
            "transaction_column_name": "transaction_column_name",
            "end_transaction_column_name": "end_transaction_column_name",
        }
        return {rename[k]: v for k, v in self.options.items() if k in rename}


#: Continuum's naming options, none at its default (its own writes ignore
#: ``operation_type_column_name``: they leave that column NULL).
CUSTOM_NAMES = {
    "table_name": "%s_history",
    "transaction_column_name": "tx_id",
    "end_transaction_column_name": "end_tx_id",
}


@contextmanager
def versioned_app(
    *,
    mod_tracker: bool = False,
    schema: str | None = None,
    exclude: tuple[str, ...] = (),
    plugins: tuple[Any, ...] = (),
    mod_suffix: str = "_mod",
    **options: Any,
) -> Iterator[App]:
    """Build the test models under a new versioning manager with Continuum ``options`` (and
    ``plugins`` besides the mod tracker, whose flags are named ``<column><mod_suffix>``)."""
    manager = VersioningManager(options=dict(options))
    tracker = [PropertyModTrackerPlugin()] if mod_tracker else []
    for plugin in tracker:
        plugin.column_suffix = mod_suffix
    make_versioned(manager=manager, user_cls=None, plugins=[*tracker, *plugins])

    class Base(DeclarativeBase):
        metadata = sa.MetaData(schema=schema)

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]

    article_tag = sa.Table(
        "article_tag",
        Base.metadata,
        sa.Column("article_id", sa.Integer, sa.ForeignKey("article.id"), primary_key=True),
        sa.Column("tag_id", sa.Integer, sa.ForeignKey("tag.id"), primary_key=True),
    )

    class Article(Base):
        __tablename__ = "article"
        __versioned__ = {"exclude": list(exclude)}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        name: Mapped[str | None] = mapped_column(sa.String(100))
        content: Mapped[str | None] = mapped_column(sa.Text)
        score: Mapped[int | None] = mapped_column()
        tags: Mapped[list[Tag]] = relationship(secondary=article_tag)

    class Tag(Base):
        __tablename__ = "tag"
        __versioned__: dict[str, Any] = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        label: Mapped[str | None] = mapped_column(sa.String(50))

    class Translation(Base):
        __tablename__ = "translation"
        __versioned__: dict[str, Any] = {}
        article_id: Mapped[int] = mapped_column(primary_key=True)
        lang: Mapped[str] = mapped_column(sa.String(5), primary_key=True)
        title: Mapped[str | None] = mapped_column(sa.String(100))

    with mapped(manager, Base):
        yield App(Base.metadata, manager, {"Article": Article, "Tag": Tag, "Translation": Translation}, dict(options))


@contextmanager
def one_model_app(table: str, **columns: Any) -> Iterator[tuple[sa.MetaData, type]]:
    """One model on ``table`` (an integer ``id`` key and ``columns``), versioned with the mod
    tracker under a manager of its own: its MetaData and class."""
    manager = VersioningManager()
    make_versioned(manager=manager, user_cls=None, plugins=[PropertyModTrackerPlugin()])

    class Base(DeclarativeBase):
        pass

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]
    attributes = {
        "__tablename__": table,
        "__versioned__": {},
        "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False),
        **columns,
    }
    model = type(table.title(), (Base,), attributes)
    with mapped(manager, Base):
        yield Base.metadata, model


@contextmanager
def items_app(count: int, *, plugins: tuple[Any, ...] = (), **options: Any) -> Iterator[App]:
    """``count`` models ``Item0``... on tables ``item0``... (an integer ``id`` key and a ``name``),
    versioned with the mod tracker and ``plugins`` under a manager of its own (Continuum ``options``)."""
    manager = VersioningManager(options=dict(options))
    make_versioned(manager=manager, user_cls=None, plugins=[PropertyModTrackerPlugin(), *plugins])

    class Base(DeclarativeBase):
        pass

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]
    models = {
        f"Item{i}": type(
            f"Item{i}",
            (Base,),
            {
                "__tablename__": f"item{i}",
                "__versioned__": {},
                "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False),
                "name": sa.Column(sa.String(50)),
            },
        )
        for i in range(count)
    }
    with mapped(manager, Base):
        yield App(Base.metadata, manager, models, dict(options))


@contextmanager
def mapped(manager: VersioningManager, base: type[DeclarativeBase]) -> Iterator[None]:
    """Configure the mappers of ``base``'s models (Continuum builds its version classes then);
    on exit, close sessions, remove ``manager``'s versioning and dispose of the models."""
    sa.orm.configure_mappers()
    try:
        yield
    finally:
        sa.orm.close_all_sessions()
        remove_versioning(manager=manager)
        base.registry.dispose()


@contextmanager
def keyless_links() -> Iterator[tuple[sa.MetaData, VersioningManager]]:
    """``a`` and ``b`` related through ``link``, an association table without a primary key."""
    manager = VersioningManager()
    make_versioned(manager=manager, user_cls=None)

    class Base(DeclarativeBase):
        pass

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]
    link = sa.Table(
        "link",
        Base.metadata,
        sa.Column("a_id", sa.Integer, sa.ForeignKey("a.id")),
        sa.Column("b_id", sa.Integer, sa.ForeignKey("b.id")),
    )

    class B(Base):
        __tablename__ = "b"
        __versioned__: dict[str, Any] = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)

    class A(Base):
        __tablename__ = "a"
        __versioned__: dict[str, Any] = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        bs: Mapped[list[B]] = relationship(secondary=link)

    with mapped(manager, Base):
        yield Base.metadata, manager


def write_history(
    engine: sa.Engine, app: App, *, seed: int = 0, transactions: int = 12, many_to_many: bool = False
) -> None:
    """Write a varied history through Continuum's ORM.

    Inserts, updates (including to and from NULL), deletes, re-inserts of deleted keys,
    several entities per transaction, several flushes per transaction, composite keys; with
    ``many_to_many``, tag changes too (the ``article_tag`` association table; not under a custom
    ``table_name``, where Continuum's association versioning looks for ``<table>_version`` and fails).
    """
    rng = random.Random(seed)
    tagging = random.Random(seed + 1)  # its own sequence: the articles' history stays what it was
    tag_changes = many_to_many and app.options.get("table_name", "%s_version") == "%s_version"
    values: list[str | None] = ["alpha", "beta", None, "gamma"]
    Article, Tag, Translation = app.Article, app.Tag, app.Translation
    with Session(engine) as session:
        session.add_all([Article(id=i, name=rng.choice(values), score=i) for i in range(1, 9)])
        session.add_all([Translation(article_id=i, lang=lang, title=f"t{i}") for i in (1, 2) for lang in ("en", "fi")])
        tags = [Tag(id=i, label=f"tag {i}") for i in range(1, 4)]
        session.add_all(tags)
        session.commit()
        for _ in range(transactions):
            articles = session.scalars(sa.select(Article).order_by(Article.id)).all()
            deleted = set()
            for article in rng.sample(articles, k=min(len(articles), rng.randint(1, 4))):
                action = rng.random()
                if action < 0.15:
                    session.delete(article)
                    deleted.add(article.id)
                else:
                    article.name = rng.choice(values)
                    if rng.random() < 0.5:
                        article.content = rng.choice(values)
                    if rng.random() < 0.3:
                        article.score = None if article.score else rng.randint(1, 5)
                if rng.random() < 0.3:
                    session.flush()
            live = {a.id for a in articles}
            for missing in sorted(set(range(1, 11)) - live)[: rng.randint(0, 2)]:
                session.add(Article(id=missing, name=rng.choice(values), content="again"))
            for article in articles:
                if tag_changes and article.id not in deleted and tagging.random() < 0.2:
                    article.tags = tagging.sample(tags, k=tagging.randint(0, len(tags)))
            translation = session.get(Translation, (rng.choice([1, 2]), rng.choice(["en", "fi"])))
            if translation is not None:
                translation.title = rng.choice(values)
            session.commit()


def article_transactions(engine: sa.Engine, app: App, *transactions: dict[str, Any] | list[dict[str, Any]]) -> None:
    """Article 1 through Continuum's ORM: created with the first transaction's values, then each
    further transaction's changes committed; a list of changes is flushed one by one within one
    transaction (e.g. a value changed and changed back)."""
    first, *rest = transactions
    with Session(engine) as session:
        article = app.Article(id=1, **first)
        session.add(article)
        session.commit()
        for transaction in rest:
            for changes in transaction if isinstance(transaction, list) else [transaction]:
                for name, value in changes.items():
                    setattr(article, name, value)
                session.flush()
            session.commit()


def snapshot(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    """All rows of ``table`` as plain tuples (booleans normalised), in primary-key order."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
    return [tuple(bool(v) if isinstance(v, bool) else v for v in row) for row in rows]


@contextmanager
def joined_app(
    *,
    note: bool = False,
    extra: bool = False,
    versioned_parent: bool = True,
    schema: str | None = None,
    plain_doc: str | None = None,
    mod_tracker: bool = False,
    strategy: str = "validity",
    plugins: tuple[Any, ...] = (),
) -> Iterator[tuple[sa.MetaData, VersioningManager, type, type]]:
    """``Doc(Item)`` under joined-table inheritance and a manager of their own (``Item``
    unversioned with ``versioned_parent=False``; ``doc.note`` with ``note``, ``item.extra`` with
    ``extra``; with ``plain_doc``,
    an unrelated versioned model on a table ``doc`` in that schema): metadata, manager, Item, Doc."""

    class Base(DeclarativeBase):
        pass

    manager = VersioningManager(options={"strategy": strategy})
    tracker = [PropertyModTrackerPlugin()] if mod_tracker else []
    make_versioned(manager=manager, user_cls=None, plugins=[*tracker, *plugins])
    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]
    item: dict[str, Any] = {
        "__tablename__": "item",
        "__table_args__": {"schema": schema},
        "__mapper_args__": {"polymorphic_on": "kind", "polymorphic_identity": "item"},
        "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False),
        "kind": sa.Column(sa.String(20)),
        "name": sa.Column(sa.String(50)),
        **({"extra": sa.Column(sa.String(50))} if extra else {}),
        **({"__versioned__": {}} if versioned_parent else {}),
    }
    Item = type("Item", (Base,), item)
    doc: dict[str, Any] = {
        "__tablename__": "doc",
        "__table_args__": {"schema": schema},
        "__versioned__": {},
        "__mapper_args__": {"polymorphic_identity": "doc"},
        "id": sa.Column(sa.Integer, sa.ForeignKey(f"{schema}.item.id" if schema else "item.id"), primary_key=True),
        "body": sa.Column(sa.String(50)),
        **({"note": sa.Column(sa.String(50))} if note else {}),
    }
    Doc = type("Doc", (Item,), doc)
    if plain_doc:
        plain = {"__tablename__": "doc", "__table_args__": {"schema": plain_doc}, "__versioned__": {}}
        type("PlainDoc", (Base,), {**plain, "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False)})
    with mapped(manager, Base):
        yield Base.metadata, manager, Item, Doc


def bulk_change(engine: sa.Engine, app: App, *, via: str) -> None:
    """One deterministic change of live rows: through Continuum's ORM, or raw SQL that bypasses it.

    Updates (to and from NULL, one a no-op), a delete, a re-insert of a deleted key, a new
    row, and a composite-key change.
    """
    article, translation = app.table("article"), app.table("translation")
    version = app.version("Article")
    tx = version.c[app.options.get("transaction_column_name", "transaction_id")]
    with engine.connect() as conn:
        live = conn.scalars(sa.select(article.c.id).order_by(article.c.id)).all()
        newest = sa.select(version.c.id, sa.func.max(tx).label("tx")).group_by(version.c.id).subquery()
        deleted = conn.scalars(
            sa.select(version.c.id)
            .join(newest, sa.and_(version.c.id == newest.c.id, tx == newest.c.tx))
            .where(version.c.operation_type == DELETE)
            .order_by(version.c.id)
        ).all()
        first_name = conn.scalar(sa.select(article.c.name).where(article.c.id == live[1]))
    updates = {
        live[0]: {"name": "bulk", "content": None},
        live[1]: {"name": first_name},
        live[2]: {"score": None, "content": "c"},
    }
    removed = live[3]
    inserts = {100: {"name": "new", "score": 1}, **{i: {"name": "back"} for i in deleted[:1]}}
    if via == "orm":
        with Session(engine) as session:
            for key, values in updates.items():
                obj = session.get(app.Article, key)
                for name, value in values.items():
                    setattr(obj, name, value)
            session.delete(session.get(app.Article, removed))
            session.add_all([app.Article(id=key, **values) for key, values in inserts.items()])
            session.get(app.Translation, (1, "en")).title = "bulk"  # type: ignore[union-attr]
            session.commit()
        return
    with engine.begin() as conn:
        for key, values in updates.items():
            conn.execute(sa.update(article).where(article.c.id == key).values(values))
        conn.execute(sa.delete(article).where(article.c.id == removed))
        conn.execute(
            sa.insert(article),
            [{"id": key, "name": None, "content": None, "score": None, **v} for key, v in inserts.items()],
        )
        conn.execute(
            sa.update(translation).where(translation.c.article_id == 1, translation.c.lang == "en").values(title="bulk")
        )


@contextmanager
def native_app(engine: sa.Engine, plugins: tuple[Any, ...] = ()) -> Iterator[App]:
    """The test models under native versioning, their tables and triggers created on ``engine``."""
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS hstore")  # the triggers' UPDATE check uses it
    with versioned_app(native_versioning=True, mod_tracker=True, plugins=plugins) as app:
        app.metadata.create_all(engine)
        yield app


@contextmanager
def thing_app(
    *,
    table_args: dict[str, Any] | None = None,
    custom_transaction: bool = False,
    columns: dict[str, sa.types.TypeEngine[Any]] | None = None,
) -> Iterator[Any]:
    """One versioned model under its own manager: optionally in its own schema, or with its own
    transaction class, table and sequence, or with more ``columns``."""

    class Base(DeclarativeBase):
        pass

    options: dict[str, Any] = {}
    if custom_transaction:

        class AuditTransaction(Base, TransactionBase):
            __tablename__ = "audit_tx"
            id = sa.Column(sa.BigInteger, sa.Sequence("audit_tx_id_seq"), primary_key=True)

        options["transaction_cls"] = AuditTransaction
    manager = VersioningManager(**options)
    if custom_transaction:
        AuditTransaction.__versioning_manager__ = manager  # type: ignore[attr-defined]
    make_versioned(manager=manager, user_cls=None)
    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]

    attributes = {name: sa.Column(type_) for name, type_ in (columns or {}).items()}
    Thing = type(
        "Thing",
        (Base,),
        {
            "__tablename__": "thing",
            "__table_args__": table_args or {},
            "__versioned__": {},
            "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False),
            "name": sa.Column(sa.String(50)),
            **attributes,
        },
    )

    with mapped(manager, Base):
        yield Base.metadata, Thing


@contextmanager
def text_item_app(
    *, concrete: bool, mod_tracker: bool = False
) -> Iterator[tuple[sa.MetaData, VersioningManager, dict[str, type]]]:
    """Continuum's own inheritance test models: ``Article`` and ``BlogPost`` subclasses of a
    versioned ``TextItem``, under joined-table inheritance (the subclass tables keyed on
    ``text_item.id``) or, with ``concrete``, concrete-table inheritance (each table whole, with
    its own ``id``). Ids are autoincremented (SQLite reuses the highest deleted one).
    Metadata, manager and the classes by name."""
    manager = VersioningManager()
    tracker = [PropertyModTrackerPlugin()] if mod_tracker else []
    make_versioned(manager=manager, user_cls=None, plugins=tracker)

    class Base(DeclarativeBase):
        pass

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]

    class TextItem(Base):
        __tablename__ = "text_item"
        __versioned__: dict[str, Any] = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
        discriminator: Mapped[str | None] = mapped_column(sa.String(100))
        __mapper_args__ = {"polymorphic_on": "discriminator", "polymorphic_identity": "text_item"}

    def subclass(name: str, table: str, column: str) -> type:
        key = sa.ForeignKey("text_item.id") if not concrete else None
        attributes: dict[str, Any] = {
            "__tablename__": table,
            "__mapper_args__": {"polymorphic_identity": table, **({"concrete": True} if concrete else {})},
            "id": sa.Column(sa.Integer, *([key] if key is not None else []), primary_key=True, autoincrement=True),
            column: sa.Column(sa.String(255)),
        }
        return type(name, (TextItem,), attributes)

    article = subclass("Article", "article", "name")
    blog_post = subclass("BlogPost", "blog_post", "title")
    with mapped(manager, Base):
        yield Base.metadata, manager, {"TextItem": TextItem, "Article": article, "BlogPost": blog_post}


#: Continuum options of the joined-table inheritance tests.
VARIANTS: dict[str, dict[str, Any]] = {
    "validity": {"mod_tracker": True},
    "subquery": {"mod_tracker": True, "strategy": "subquery"},
    "no-tracker": {},
}


def versions(engine: sa.Engine, metadata: sa.MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of both version tables, transaction ids replaced by their rank."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        ids = sorted(
            {
                r[0]
                for t in ("item_version", "doc_version")
                for r in conn.execute(sa.select(metadata.tables[t].c.transaction_id))
            }
        )
        rank = {tx: i for i, tx in enumerate(ids)}
        for name in ("item_version", "doc_version"):
            table = metadata.tables[name]
            rows = conn.execute(sa.select(table).order_by(table.c.id, table.c.transaction_id)).mappings()
            found[name] = [
                tuple(rank.get(v, v) if k in ("transaction_id", "end_transaction_id") else v for k, v in row.items())
                for row in rows
            ]
    return found


def ranked(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    """``table``'s rows, transaction ids replaced by their rank among the table's own."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id, table.c.transaction_id)).mappings().all()
    ids = sorted({row["transaction_id"] for row in rows})
    ranks = {tx: i for i, tx in enumerate(ids)}
    ids_of = ("transaction_id", "end_transaction_id")
    return [tuple(ranks.get(v, v) if k in ids_of else v for k, v in row.items()) for row in rows]
