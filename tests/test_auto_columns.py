"""Columns the database or SQLAlchemy fills: ``server_default=func.now()``, ``onupdate``.

Continuum copies their values into the version as SQLAlchemy reads them, but never flags an
``onupdate`` column (its value changes outside the attribute's history); and on SQLite the
database's ``CURRENT_TIMESTAMP`` text has no fractional seconds where SQLAlchemy writes six. Neither
may read as drift in a history Continuum wrote.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .support.apps import one_model_app
from .support.autogen import apply, ours, produce


def stamped_app() -> Any:
    """``post`` with ``created_at`` (a server default) and ``updated_at`` (``onupdate``)."""
    return one_model_app(
        "post",
        title=sa.Column(sa.String(50)),
        created_at=sa.Column(sa.DateTime, server_default=sa.func.now()),
        updated_at=sa.Column(sa.DateTime, onupdate=sa.func.now()),
    )


def test_timestamps_continuum_wrote_are_no_drift(engine: sa.Engine) -> None:
    with stamped_app() as (metadata, post):
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([post(id=1, title="a"), post(id=2, title="b")])
            session.commit()
            for title in ("a2", "a3"):
                session.get(post, 1).title = title
                session.commit()
        assert ours(produce(engine, metadata, alembic_versioning={"vacuum": True})) == []

        # Real drift next to them is still found: a flag cleared, a live row changed.
        version = metadata.tables["post_version"]
        with engine.begin() as conn:
            conn.execute(sa.update(version).where(version.c.operation_type == 1).values(title_mod=False))
            conn.execute(sa.update(metadata.tables["post"]).where(sa.text("id = 2")).values(title="raw"))
        script = produce(engine, metadata)
        assert [f[0] for f in ours(script)] == ["update_mod_flags", "backfill_versions"]
        apply(engine, script)
        assert ours(produce(engine, metadata, alembic_versioning={"vacuum": True})) == []
