"""Run in its own process by tests/test_sqlalchemy_history.py: sqlalchemy-history installs global
ORM listeners, so it must not share a process with the Continuum tests. Exits non-zero on failure."""

from __future__ import annotations

import io
import sys

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from alembic.operations import Operations
from migrate import execute_script  # a sibling module (this file runs as a script)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.pool import StaticPool
from sqlalchemy_history import make_versioned
from sqlalchemy_history.plugins import PropertyModTrackerPlugin

import alembic_versioning  # noqa: F401
from alembic_versioning.autogenerate.discovery import find_versioned_tables

make_versioned(user_cls=None, plugins=[PropertyModTrackerPlugin()])


class Base(DeclarativeBase):
    type_annotation_map = {str: sa.String(50)}  # MariaDB's VARCHAR needs a length


article_tag = sa.Table(
    "article_tag",
    Base.metadata,
    sa.Column("article_id", sa.Integer, sa.ForeignKey("article.id"), primary_key=True),
    sa.Column("tag_id", sa.Integer, sa.ForeignKey("tag.id"), primary_key=True),
)


class Tag(Base):
    __tablename__ = "tag"
    __versioned__: dict[str, object] = {"exclude": ["note"]}
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    label: Mapped[str | None]
    note: Mapped[str | None]  # not versioned: changing it writes no version, and is no drift


class Article(Base):
    __tablename__ = "article"
    __versioned__: dict[str, object] = {}
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str | None]
    # sqlalchemy-history gives the version table an enum of its own, history_status
    status: Mapped[str] = mapped_column(sa.Enum("draft", "published", name="status"), default="draft")
    tags: Mapped[list[Tag]] = relationship(secondary=article_tag)


sa.orm.configure_mappers()
found = {t.name: t for t in find_versioned_tables(Base.metadata)}
assert sorted(found) == ["article", "article_tag", "tag"], sorted(found)
table = found["article"]
assert (table.mod_columns, table.strategy, found["article_tag"].association) == (
    ("name", "status"),
    "validity",
    True,
), table
assert (found["tag"].columns, found["tag"].mod_columns) == (("label",), ("label",)), found["tag"]

engine = sa.create_engine(sys.argv[1] if len(sys.argv) > 1 else "sqlite://", poolclass=StaticPool)
Base.metadata.create_all(engine)
with Session(engine) as session:
    article = Article(id=1, name="x", tags=[Tag(id=1, label="a", note="n"), Tag(id=2)])
    session.add(article)
    session.commit()
    article.name = "y"
    article.tags = article.tags[:1]
    article.tags[0].note = "changed, not versioned"
    session.commit()


def diff() -> list[object]:
    with engine.connect() as conn:
        opts = {
            "target_metadata": Base.metadata,
            "autogenerate_plugins": ["alembic.autogenerate.*", "alembic_versioning.*"],
        }
        return produce_migrations(MigrationContext.configure(conn, opts=opts), Base.metadata).upgrade_ops.ops


assert diff() == [], "a history sqlalchemy-history wrote must give no diff"
with engine.begin() as conn:
    conn.execute(sa.insert(Article.__table__), [{"id": 2, "name": "raw", "status": "draft"}])
    conn.execute(sa.update(Article.__table__).where(Article.__table__.c.id == 1).values(status="published"))
assert [op.op_name for op in diff()] == ["backfill_versions"]
with engine.begin() as conn:
    Operations(MigrationContext.configure(conn)).backfill_versions("article")
assert diff() == []
with engine.connect() as conn:
    version = Base.metadata.tables["article_version"]
    latest = sa.select(version.c.id, version.c.status).where(version.c.end_transaction_id.is_(None))
    assert sorted(conn.execute(latest).all()) == [(1, "published"), (2, "draft")]
with engine.begin() as conn:  # offline too: the script converts the live enum as the op does online
    conn.execute(sa.update(Article.__table__).where(Article.__table__.c.id == 2).values(status="published"))
buffer = io.StringIO()
offline = MigrationContext.configure(
    dialect_name=engine.dialect.name,
    opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True, "target_metadata": Base.metadata},
)
Operations(offline).backfill_versions("article")
execute_script(engine, buffer.getvalue())
assert diff() == []
with engine.begin() as conn:  # a link removed behind sqlalchemy-history's back
    conn.exec_driver_sql("DELETE FROM article_tag")
assert [(op.op_name, op.table_name) for op in diff()] == [("backfill_versions", "article_tag")]
with engine.begin() as conn:
    Operations(MigrationContext.configure(conn)).backfill_versions("article_tag")
assert diff() == []
with Session(engine) as session:
    raw = session.get(Article, 2)
    assert raw is not None and [(v.name, v.status) for v in raw.versions] == [("raw", "draft"), ("raw", "published")]
print("OK")
