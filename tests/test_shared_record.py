"""The backfills of one database transaction share one transaction record, as Continuum writes one.

Five tables backfilled in one migration give one record, holding the merged ``transaction=``
values, ``meta`` keys and ``transaction_changes`` rows, online and through an offline script,
under ORM and native (PostgreSQL) versioning; Continuum's API reads it; a re-run writes nothing.
Conflicting ``transaction=`` values stop the backfill before it writes; a second backfill of a table
brings the version it wrote up to date in place; another database transaction gets its own record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import Session
from sqlalchemy_continuum import version_class
from sqlalchemy_continuum.plugins import TransactionChangesPlugin, TransactionMetaPlugin

from alembic_versioning import INSERT, UPDATE, VersioningError

from .conftest import fresh_database
from .support.apps import App, items_app
from .support.dialects import sql_text
from .support.migrate import run, run_online

COUNT = 5
PLUGINS = (TransactionMetaPlugin(), TransactionChangesPlugin())


def five_tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[sa.Engine, App]]:
    """A database and five versioned tables, under ORM or native versioning (``request.param``:
    the dialect and whether native)."""
    dialect, native = request.param
    with fresh_database(dialect, request, tmp_path / "test.db") as engine:
        if native:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS hstore")
        with items_app(COUNT, plugins=PLUGINS, native_versioning=native) as app:
            app.metadata.create_all(engine)
            yield engine, app


@pytest.fixture(
    params=[("sqlite", False), ("postgresql", False), ("postgresql", True)],
    ids=["sqlite-orm", "postgresql-orm", "postgresql-native"],
)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[sa.Engine, App]]:
    """Five versioned tables under ORM versioning on each dialect, and native versioning."""
    yield from five_tables(request, tmp_path)


@pytest.fixture(params=[("sqlite", False), ("postgresql", False)], ids=["sqlite-orm", "postgresql-orm"])
def orm_setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[sa.Engine, App]]:
    """Five versioned tables under ORM versioning on each dialect."""
    yield from five_tables(request, tmp_path)


def native(app: App) -> dict[str, Any]:
    """``native_versioning=True`` where the app uses it (offline, nothing is detected)."""
    return {"native_versioning": True} if app.options.get("native_versioning") else {}


def write_history(engine: sa.Engine, app: App) -> None:
    """Item 1 of each table inserted through Continuum, then changed and item 2 inserted outside it."""
    with Session(engine) as session:
        session.add_all([model(id=1, name="first") for model in app.models.values()])
        session.commit()
    with engine.begin() as conn:  # no transaction record here: native versioning's triggers write nothing
        for model in app.models.values():
            table = model.__table__
            conn.execute(sa.update(table).where(table.c.id == 1).values(name="bulk"))
            conn.execute(sa.insert(table).values(id=2, name="bulk"))


def record_ids(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sql_text(conn, 'SELECT id FROM "transaction" ORDER BY id')).scalars())


def versions(engine: sa.Engine, app: App) -> dict[str, list[tuple[Any, ...]]]:
    """Every version table: (id, name, transaction id, end transaction id, operation type)."""
    found = {}
    with engine.connect() as conn:
        for name in app.models:
            v = app.version(name)
            columns = (v.c.id, v.c.name, v.c.transaction_id, v.c.end_transaction_id, v.c.operation_type)
            found[name] = [tuple(r) for r in conn.execute(sa.select(*columns).order_by(v.c.id, v.c.transaction_id))]
    return found


def five_backfills(app: App) -> Any:
    """One backfill per table, each with meta of its own (and a ``comment`` each gives), the first
    without ``transaction=``, the later ones with the same ``remote_addr``."""

    def call(op: Operations) -> None:
        for i, name in enumerate(app.models):
            op.backfill_versions(
                f"item{i}",
                meta={"comment": f"backfill {i}", f"table{i}": "done"},
                transaction={"remote_addr": "10.0.0.1"} if i else {},
                entity_names=[name],
                **native(app),
            )

    return call


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_five_backfills_one_record(setup: tuple[sa.Engine, App], mode: str) -> None:
    engine, app = setup
    write_history(engine, app)
    before = record_ids(engine)
    run(engine, five_backfills(app), mode, target_metadata=app.metadata)
    new = [tx for tx in record_ids(engine) if tx not in before]
    assert len(new) == 1, f"one database transaction wrote the records {new}"
    (tx,) = new
    first = before[-1]
    expected = [(1, "first", first, tx, INSERT), (1, "bulk", tx, None, UPDATE), (2, "bulk", tx, None, INSERT)]
    assert versions(engine, app) == {name: expected for name in app.models}
    with engine.connect() as conn:
        meta = dict(
            conn.execute(
                sql_text(conn, 'SELECT "key", value FROM transaction_meta WHERE transaction_id = :t'), {"t": tx}
            ).all()
        )
        changes = conn.execute(
            sa.text("SELECT entity_name FROM transaction_changes WHERE transaction_id = :t"), {"t": tx}
        )
        assert sorted(changes.scalars()) == sorted(app.models)
        remote = conn.execute(
            sql_text(conn, 'SELECT remote_addr FROM "transaction" WHERE id = :t'), {"t": tx}
        ).scalar_one()
    assert meta == {"comment": "backfill 0", **{f"table{i}": "done" for i in range(COUNT)}}  # the first comment stays
    assert remote == "10.0.0.1"  # given by a later backfill, filled in

    # Continuum's API reads the record.
    with Session(engine) as session:
        item = session.get(app.Item3, 2)
        (version,) = item.versions.all()
        assert version.transaction.id == tx
        assert dict(version.transaction.meta) == meta
        changed = version.transaction.changed_entities
        assert {cls.__name__: sorted(v.id for v in found) for cls, found in changed.items()} == {
            version_class(model).__name__: [1, 2] for model in app.models.values()
        }
        assert [v.name for v in session.get(app.Item0, 1).versions] == ["first", "bulk"]

    # Nothing left to write: no record, no version.
    after = versions(engine, app)
    run(engine, five_backfills(app), mode, target_metadata=app.metadata)
    assert record_ids(engine) == [*before, tx]
    assert versions(engine, app) == after


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_conflicting_transaction_values_stop_before_writing(setup: tuple[sa.Engine, App], mode: str) -> None:
    """A backfill giving another value than the shared record holds stops before it writes
    (online: a VersioningError naming both; offline: the script's guard)."""
    engine, app = setup
    write_history(engine, app)

    def call(op: Operations) -> None:
        op.backfill_versions("item0", transaction={"remote_addr": "10.0.0.1"}, **native(app))
        op.backfill_versions("item1", transaction={"remote_addr": "10.0.0.2"}, **native(app))

    before = versions(engine, app)
    if mode == "online":
        with pytest.raises(
            VersioningError, match=r"differs in \['remote_addr'\].*'10\.0\.0\.1'.*separate transactions"
        ):
            run_online(engine, call, target_metadata=app.metadata)
    else:
        with pytest.raises(Exception, match=r"holds other values for \[.remote_addr.\]"):
            run(engine, call, mode, target_metadata=app.metadata)
    now = versions(engine, app)
    assert now["Item1"] == before["Item1"]  # the second backfill wrote nothing
    # SQLite's script commits each op on its own (no transactional DDL): the first stays done
    done = mode == "offline" and engine.dialect.name == "sqlite"
    assert (now["Item0"] != before["Item0"]) == done


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_second_backfill_brings_its_version_up_to_date(orm_setup: tuple[sa.Engine, App], mode: str) -> None:
    """Backfill, change a row, backfill again in the same transaction: the entity keeps one version
    under the record, with the last values (as Continuum writes a row changed twice). (Under native
    versioning the triggers version the change themselves: see test_backfill_native.py.)"""
    engine, app = orm_setup
    write_history(engine, app)
    before = record_ids(engine)
    item0 = app.Item0.__table__

    def call(op: Operations) -> None:
        op.backfill_versions("item0", **native(app))
        op.execute(sa.update(item0).where(item0.c.id == 2).values(name="changed"))
        op.backfill_versions("item0", **native(app))
        op.backfill_versions("item1", **native(app))

    run(engine, call, mode, target_metadata=app.metadata)
    (tx,) = [tx for tx in record_ids(engine) if tx not in before]
    first = before[-1]
    found = versions(engine, app)
    assert found["Item0"] == [
        (1, "first", first, tx, INSERT),
        (1, "bulk", tx, None, UPDATE),
        (2, "changed", tx, None, INSERT),
    ]
    assert {v[2] for v in found["Item1"]} == {first, tx}


def test_each_database_transaction_gets_its_own_record(setup: tuple[sa.Engine, App]) -> None:
    """Two database transactions of one migration context on one connection (as batches, or
    ``transaction_per_migration``): a record each, though the first is still the newest."""
    engine, app = setup
    write_history(engine, app)
    before = record_ids(engine)
    with engine.connect() as conn:
        op = Operations(MigrationContext.configure(conn))
        for i in range(2):
            with conn.begin():
                op.backfill_versions(f"item{i}", meta={"comment": f"batch {i}"})
    new = [tx for tx in record_ids(engine) if tx not in before]
    assert len(new) == 2
    found = versions(engine, app)
    assert {v[2] for v in found["Item0"]} - {before[-1]} == {new[0]}
    assert {v[2] for v in found["Item1"]} - {before[-1]} == {new[1]}


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_newer_record_is_not_joined(orm_setup: tuple[sa.Engine, App], mode: str) -> None:
    """A transaction record newer than the shared one (here written by the migration itself; on
    SQLite offline, one another connection commits between two operations) ends the sharing: the
    next backfill takes a record of its own, dated after it."""
    engine, app = orm_setup
    write_history(engine, app)
    before = record_ids(engine)
    transaction = app.manager.transaction_cls.__table__

    def call(op: Operations) -> None:
        op.backfill_versions("item0")
        op.execute(sa.insert(transaction).values(remote_addr="elsewhere"))  # the id: as the table takes it
        op.backfill_versions("item1")

    run(engine, call, mode, target_metadata=app.metadata)
    shared, newer, own = [tx for tx in record_ids(engine) if tx not in before]
    found = versions(engine, app)
    assert {v[2] for v in found["Item0"]} - {before[-1]} == {shared}
    assert {v[2] for v in found["Item1"]} - {before[-1]} == {own} and own > newer
