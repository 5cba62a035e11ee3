"""JSON columns: values compared as Python sees them, JSON ``null`` equal to SQL NULL.

A JSON column never set holds SQL NULL in the live row, while Continuum copies the attribute's
``None`` into the version row, where SQLAlchemy's JSON type writes the JSON ``null``. Both load as
``None``; neither the checks nor the repairs may take one for a change.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from .support.apps import one_model_app, snapshot
from .support.autogen import ours, produce
from .support.migrate import run


class WrappedJSON(sa.types.TypeDecorator[Any]):
    """JSON behind a ``TypeDecorator``."""

    impl = sa.JSON
    cache_ok = True


class TextOrJSON(sa.types.TypeDecorator[Any]):
    """JSON on PostgreSQL only, text elsewhere: built as sqlalchemy-utils' ``JSONType`` is."""

    impl = sa.UnicodeText
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> Any:
        return dialect.type_descriptor(postgresql.JSON() if dialect.name == "postgresql" else sa.UnicodeText())


def json_app(json_type: Any = sa.JSON) -> Any:
    """``note`` (``title``, ``meta`` of ``json_type``)."""
    return one_model_app("note", title=sa.Column(sa.String(50)), meta=sa.Column(json_type, nullable=True))


def _history(engine: sa.Engine, note: type) -> None:
    """Notes whose ``meta`` is never set, set, set to ``None`` and set again, through the ORM."""
    with Session(engine) as session:
        session.add_all([note(id=i, title="never set") for i in (1, 4)])
        session.add_all([note(id=2, title="set", meta={"a": 1}), note(id=3)])
        session.commit()
        first, second, third = (session.get(note, i) for i in (1, 2, 3))
        first.title = "title only"
        second.meta = None
        third.meta = {"b": [1, 2]}
        session.commit()
        second.meta = {"a": 1}
        third.title = "then a title"
        session.commit()
        session.delete(first)
        session.commit()


@pytest.mark.parametrize(
    ("mode", "json_type"),
    [("online", sa.JSON), ("offline", sa.JSON), ("online", WrappedJSON)],
    ids=["online", "offline", "type-decorator"],
)
def test_json_null_and_sql_null_are_no_change(engine: sa.Engine, mode: str, json_type: Any) -> None:
    with json_app(json_type) as (metadata, note):
        metadata.create_all(engine)
        _history(engine, note)
        version = metadata.tables["note_version"]
        assert ours(produce(engine, metadata, alembic_versioning={"vacuum": True})) == []
        written = snapshot(engine, version)
        run(engine, lambda op: op.backfill_versions("note"), mode, target_metadata=metadata)
        run(engine, lambda op: op.update_mod_flags("note"), mode, target_metadata=metadata)
        run(engine, lambda op: op.vacuum_versions("note"), mode, target_metadata=metadata)
        assert snapshot(engine, version) == written

        # A real change next to a null: found and repaired.
        with engine.begin() as conn:
            conn.execute(sa.update(metadata.tables["note"]).where(sa.text("id = 2")).values(meta=sa.null()))
        assert [f[:2] for f in ours(produce(engine, metadata))] == [("backfill_versions", "note")]
        run(engine, lambda op: op.backfill_versions("note"), mode, target_metadata=metadata)
        assert ours(produce(engine, metadata, alembic_versioning={"vacuum": True})) == []
        with Session(engine) as session:
            second = session.get(note, 2)
            assert second is not None and [v.meta for v in second.versions] == [{"a": 1}, None, {"a": 1}, None]


def test_continuum_writes_json_null_where_the_live_row_holds_sql_null(engine: sa.Engine) -> None:
    """The premise of the comparison: the two nulls do sit side by side in Continuum's history."""
    with json_app() as (metadata, note):
        metadata.create_all(engine)
        with Session(engine) as session:
            session.add(note(id=1, title="never set"))
            session.commit()
        with engine.connect() as conn:
            live = conn.execute(sa.text("SELECT meta IS NULL FROM note")).scalar()
            stored = conn.execute(sa.text("SELECT meta IS NULL FROM note_version")).scalar()
        assert (bool(live), bool(stored)) == (True, False)


@pytest.mark.parametrize(
    ("item_type", "mode", "version_type"),
    [
        (sa.JSON, "online", None),
        (WrappedJSON, "offline", None),
        (sa.JSON, "online", "jsonb[]"),
        (sa.JSON, "offline", "jsonb[]"),
    ],
    ids=["json", "type-decorator-offline", "beside-jsonb-online", "beside-jsonb-offline"],
)
def test_arrays_of_json_compare_on_postgresql(
    pg_engine: sa.Engine, item_type: Any, mode: str, version_type: str | None
) -> None:
    """``json[]`` has no equality operator either: compared as ``jsonb[]``, Continuum's history
    gives no diff, and a raw change is found and repaired; also beside a ``jsonb[]`` version column."""
    engine = pg_engine
    with json_app(postgresql.ARRAY(item_type)) as (metadata, note):
        metadata.create_all(engine)
        if version_type is not None:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f"ALTER TABLE note_version ALTER COLUMN meta TYPE {version_type} USING meta::{version_type}"
                )
        with Session(engine) as session:
            session.add_all([note(id=1, meta=[{"a": 1}]), note(id=2)])
            session.commit()
            session.get(note, 1).meta = [{"a": 1}, {"b": None}]
            session.commit()
        assert ours(produce(engine, metadata, alembic_versioning={"vacuum": True})) == []
        with engine.begin() as conn:
            conn.exec_driver_sql("""UPDATE note SET meta = ARRAY['{"c": 3}'::json] WHERE id = 2""")
        assert [f[:2] for f in ours(produce(engine, metadata))] == [("backfill_versions", "note")]
        run(engine, lambda op: op.backfill_versions("note"), mode, target_metadata=metadata)
        assert ours(produce(engine, metadata, alembic_versioning={"vacuum": True})) == []
        with Session(engine) as session:
            assert [v.meta for v in session.get(note, 2).versions] == [None, [{"c": 3}]]


@pytest.mark.parametrize(
    ("live_type", "version_type", "model_type"),
    [
        ("json", "jsonb", postgresql.JSON),
        ("jsonb", "json", postgresql.JSON),
        ("json", "json", postgresql.JSONB),  # the models wrong about both
        ("json", "jsonb", TextOrJSON),
    ],
    ids=["json-jsonb", "jsonb-json", "models-say-jsonb", "type-decorator"],
)
@pytest.mark.parametrize("mode", ["online", "offline"])
def test_json_live_column_beside_a_jsonb_version_column(
    pg_engine: sa.Engine, live_type: str, version_type: str, model_type: Any, mode: str
) -> None:
    """One side ``json``, the other ``jsonb`` (a version table migrated to ``jsonb`` for its
    indexes), or the database unlike the models (offline scripts go by the models): compared and
    copied across the two types."""
    engine = pg_engine
    with json_app(model_type) as (metadata, note):
        metadata.create_all(engine)
        with engine.begin() as conn:
            for table, type_ in (("note", live_type), ("note_version", version_type)):
                conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN meta TYPE {type_} USING meta::{type_}")
        with Session(engine) as session:
            session.add_all([note(id=1, meta={"a": 1}), note(id=2), note(id=3, meta={"c": [1]})])
            session.commit()
            session.get(note, 1).meta = {"a": 2}
            session.commit()
        assert ours(produce(engine, metadata, alembic_versioning={"vacuum": True})) == []
        with engine.begin() as conn:
            conn.exec_driver_sql("""UPDATE note SET meta = '{"b": 1}' WHERE id = 2""")
            conn.exec_driver_sql("DELETE FROM note WHERE id = 3")
        assert [f[:2] for f in ours(produce(engine, metadata))] == [("backfill_versions", "note")]
        run(engine, lambda op: op.backfill_versions("note"), mode, target_metadata=metadata)
        assert ours(produce(engine, metadata, alembic_versioning={"vacuum": True})) == []
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, meta::text, operation_type FROM note_version ORDER BY id, transaction_id"
            )
            assert [tuple(r) for r in rows][2:] == [
                (2, "null", 0),
                (2, '{"b": 1}', 1),
                (3, '{"c": [1]}', 0),
                (3, '{"c": [1]}', 2),
            ]


def test_json_cast_only_on_the_latest_versions(pg_engine: sa.Engine) -> None:
    """Offline the JSON casts follow the models, so they must not sit below ``DISTINCT ON``, where
    PostgreSQL would compute them for every version and sort them instead of reading the index."""
    from .support.migrate import render_offline

    with json_app(sa.JSON) as (metadata, _):
        script = render_offline(pg_engine, lambda op: op.backfill_versions("note"), target_metadata=metadata)
    latest = re.search(r"SELECT DISTINCT ON \(note_version\.id\) (.*?)\s+FROM note_version", script, re.S)
    assert latest is not None and "CAST" not in latest.group(1)
    assert "ELSE CAST(latest.meta AS JSON) END" in script
