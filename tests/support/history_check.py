"""Run in its own process by tests/test_sqlalchemy_history.py: sqlalchemy-history installs global
ORM listeners, so it must not share a process with the Continuum tests. Exits non-zero on failure."""

from __future__ import annotations

import sys

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool
from sqlalchemy_history import make_versioned
from sqlalchemy_history.plugins import PropertyModTrackerPlugin

import alembic_versioning  # noqa: F401
from alembic_versioning.discovery import find_versioned_tables

make_versioned(user_cls=None, plugins=[PropertyModTrackerPlugin()])


class Base(DeclarativeBase):
    pass


class Article(Base):
    __tablename__ = "article"
    __versioned__: dict[str, object] = {}
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str | None]


sa.orm.configure_mappers()
(table,) = find_versioned_tables(Base.metadata)
assert (table.name, table.mod_columns, table.strategy) == ("article", ("name",), "validity"), table

engine = sa.create_engine(sys.argv[1] if len(sys.argv) > 1 else "sqlite://", poolclass=StaticPool)
Base.metadata.create_all(engine)
with Session(engine) as session:
    article = Article(id=1, name="x")
    session.add(article)
    session.commit()
    article.name = "y"
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
    conn.execute(sa.insert(Article.__table__), [{"id": 2, "name": "raw"}])
assert [op.op_name for op in diff()] == ["backfill_versions"]
with engine.begin() as conn:
    Operations(MigrationContext.configure(conn)).backfill_versions("article")
assert diff() == []
with Session(engine) as session:
    raw = session.get(Article, 2)
    assert raw is not None and [v.name for v in raw.versions] == ["raw"]
print("OK")
