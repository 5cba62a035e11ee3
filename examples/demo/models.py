"""The demo application: two models versioned by SQLAlchemy-Continuum with mod tracking."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy_continuum import make_versioned, version_class
from sqlalchemy_continuum.plugins import PropertyModTrackerPlugin

make_versioned(user_cls=None, plugins=[PropertyModTrackerPlugin()])


class Base(DeclarativeBase):
    """Declarative base; its metadata also holds the version and transaction tables."""


class Article(Base):
    """A versioned article."""

    __tablename__ = "article"
    __versioned__: dict[str, Any] = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20), default="draft")


class Translation(Base):
    """A versioned translation of an article's title: composite primary key."""

    __tablename__ = "translation"
    __versioned__: dict[str, Any] = {}

    article_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    lang: Mapped[str] = mapped_column(sa.String(5), primary_key=True)
    title: Mapped[str | None] = mapped_column(sa.String(200))


sa.orm.configure_mappers()

ArticleVersion: type = version_class(Article)
TranslationVersion: type = version_class(Translation)
