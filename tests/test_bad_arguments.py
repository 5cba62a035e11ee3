"""Bad arguments are refused with a VersioningError naming the argument and the fix, before
anything is written, online and offline; values reach the transaction record as given."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy_continuum.plugins import TransactionMetaPlugin

from alembic_versioning import VersioningError

from .support.apps import App, snapshot, versioned_app, write_history
from .support.migrate import assert_refused, execute_script, render_offline, run


def everything(engine: sa.Engine, app: App) -> list[Any]:
    """Every table's rows: the live and version tables and the transaction records."""
    return [snapshot(engine, t) for t in app.metadata.sorted_tables]


@pytest.fixture
def app(engine: sa.Engine) -> Any:
    """Continuum's models with the mod tracker, a history, and drift for every operation."""
    with versioned_app(mod_tracker=True) as app:
        app.metadata.create_all(engine)
        write_history(engine, app)
        version = app.version("Article")
        with engine.begin() as conn:
            conn.execute(sa.update(app.table("article")).values(score=sa.literal(777)))
            conn.execute(sa.update(version).values(end_transaction_id=None, name_mod=False))
        yield app


#: Naming options that name an existing column of the wrong role: each op would overwrite it.
WRONG_ROLES = [
    (
        lambda op: op.update_end_transaction_ids("article", end_transaction_column_name="score"),
        r"end_transaction_column_name='score' .*'score' is a column of the live table 'article'",
    ),
    (
        lambda op: op.backfill_versions("article", end_transaction_column_name="score"),
        r"end_transaction_column_name='score' .*holds the application's data",
    ),
    (
        lambda op: op.update_end_transaction_ids("article", transaction_column_name="id"),
        r"transaction_column_name='id' .*'id' is a column of the live table",
    ),
    (
        lambda op: op.update_mod_flags("article", operation_type_column_name="score"),
        r"operation_type_column_name='score' .*the operation type .*live table",
    ),
    (
        lambda op: op.vacuum_versions("article", operation_type_column_name="name_mod"),
        r"operation_type_column_name='name_mod' .*of type BOOLEAN, not an integer",
    ),
    (
        lambda op: op.update_end_transaction_ids("article", transaction_column_name="name_mod"),
        r"transaction_column_name='name_mod' .*not in its primary key \['id', 'transaction_id'\]",
    ),
]

#: Malformed arguments, refused online and offline alike.
MALFORMED = [
    (lambda op: op.update_end_transaction_ids("article", version_table_format="%s_version%"), "version_table_format"),
    (lambda op: op.update_end_transaction_ids("article", version_table_format="%s_%d"), "no other % directive"),
    (lambda op: op.update_end_transaction_ids("article", version_table_format="version"), "exactly once"),
    (lambda op: op.update_end_transaction_ids("article", version_table_format=7), "version_table_format=7 .*string"),
    (lambda op: op.update_end_transaction_ids("article", mod_suffix=None), "mod_suffix=None .*non-empty string"),
    (lambda op: op.update_end_transaction_ids(None), "table_name=None: pass the live table's name"),
    (lambda op: op.vacuum_versions(""), "table_name='': pass the live table's name"),
    (lambda op: op.update_end_transaction_ids("article", schema=3), "schema=3 "),
    (lambda op: op.update_end_transaction_ids("article", primary_key="id"), r"primary_key='id' .*\['id'\]"),
    (lambda op: op.update_mod_flags("article", columns="name"), r"columns='name' .*pass a list of names"),
    (lambda op: op.update_mod_flags("article", columns=[None]), r"\[None\] are not names"),
    (lambda op: op.update_mod_flags("article", keep_true="yes"), "keep_true='yes' .*True or False"),
    (lambda op: op.vacuum_versions("article", ignore_columns="name"), "ignore_columns='name' .*list of names"),
    (lambda op: op.backfill_versions("article", transaction="remote_addr"), "transaction='remote_addr' .*dict"),
    (lambda op: op.backfill_versions("article", meta=["comment"]), r"meta=\['comment'\] .*dict"),
    (lambda op: op.backfill_versions("article", meta={1: "x"}), "meta=.*dict keyed by name"),
    (lambda op: op.backfill_versions("article", native_versioning="no"), "native_versioning='no' .*True or False"),
    (lambda op: op.backfill_versions("article", joined="doc"), r"joined='doc' .*joined=\['doc'\]"),
    (lambda op: op.backfill_versions("article", joined={"doc": ["id"]}), "list the other tables"),
    (
        lambda op: op.backfill_versions("article", transaction={"issued_at": "yesterday"}),
        r"transaction=\{'issued_at': 'yesterday'\} .*type (DATETIME|TIMESTAMP).*datetime",
    ),
    (
        lambda op: op.update_end_transaction_ids("article", end_transaction_column_name="transaction_id"),
        "must name three different columns",
    ),
]


@pytest.mark.parametrize(("call", "message"), WRONG_ROLES + MALFORMED)
def test_refused_online_before_anything_is_written(engine: sa.Engine, app: App, call: Any, message: str) -> None:
    first = lambda op: op.backfill_versions("translation")  # noqa: E731
    assert_refused(engine, first, call, message, lambda: everything(engine, app))


@pytest.mark.parametrize(("call", "message"), MALFORMED)
def test_refused_offline(engine: sa.Engine, app: App, call: Any, message: str) -> None:
    with pytest.raises(VersioningError, match=message):
        render_offline(engine, call, target_metadata=app.metadata)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_missing_transaction_sequence_is_named(pg_engine: sa.Engine, mode: str) -> None:
    """Online the op refuses it; an offline script stops with the same advice before any write."""
    engine = pg_engine
    with versioned_app() as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "x"}])
        before = everything(engine, app)
        described = {"primary_key": ["id"], "columns": ["name", "content", "score"], "mod_columns": []}
        call = lambda op: op.backfill_versions("article", transaction_sequence="tx_seq", **described)  # noqa: E731
        message = r"sequence 'tx_seq', which does not exist on the search path.*transaction_sequence=..."
        with pytest.raises((VersioningError, psycopg.errors.RaiseException), match=message) as raised:
            run(engine, call, mode)  # offline without target_metadata: the option names the sequence
        assert isinstance(raised.value, VersioningError) == (mode == "online")
        assert everything(engine, app) == before


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_meta_none_is_stored_as_null(engine: sa.Engine, mode: str) -> None:
    """As Continuum's TransactionMetaPlugin stores it."""
    with versioned_app(plugins=(TransactionMetaPlugin(),)) as app:
        app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "x"}])
        call = lambda op: op.backfill_versions("article", meta={"comment": None, "by": "deploy"})  # noqa: E731
        run(engine, call, mode, target_metadata=app.metadata)
        meta = app.table("transaction_meta")
        with engine.connect() as conn:
            assert sorted(conn.execute(sa.select(meta.c.key, meta.c.value)).all()) == [
                ("by", "deploy"),
                ("comment", None),
            ]


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_issued_at_is_now_in_a_timestamptz_column(pg_engine: sa.Engine, mode: str, zone: str) -> None:
    """A transaction table whose ``issued_at`` has a time zone gets the current instant, whatever
    the session's time zone; Continuum's naive column gets naive UTC (the instant, read as UTC)."""
    engine = sa.create_engine(pg_engine.url, connect_args={"options": f"-c timezone={zone}"})
    with versioned_app() as app:
        metadata = sa.MetaData()
        for table in app.metadata.sorted_tables:
            table.to_metadata(metadata)
        transaction = metadata.tables["transaction"]
        transaction.c.issued_at.type = sa.DateTime(timezone=True)
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(metadata.tables["article"]), [{"id": 1, "name": "x"}])
        start = dt.datetime.now(dt.UTC)
        run(engine, lambda op: op.backfill_versions("article"), mode, target_metadata=metadata)
        with engine.connect() as conn:
            issued = conn.execute(sa.select(transaction.c.issued_at)).scalar_one()
        assert issued.tzinfo is not None
        assert abs(issued - start) < dt.timedelta(minutes=1), (issued, start)
    engine.dispose()


def test_offline_script_with_a_missing_sequence_writes_nothing(pg_engine: sa.Engine) -> None:
    """The guard comes before the script's first write: applied, it stops and leaves no record."""
    with versioned_app() as app:
        app.metadata.create_all(pg_engine)
        with pg_engine.begin() as conn:
            conn.execute(sa.insert(app.table("article")), [{"id": 1, "name": "x"}])
        script = render_offline(
            pg_engine,
            lambda op: op.backfill_versions(
                "article", transaction_sequence="other.tx_seq", primary_key=["id"], columns=["name"], mod_columns=[]
            ),
        )
        assert script.index("does not exist in schema ''other''") < script.index("INSERT INTO")
        with pytest.raises(psycopg.errors.RaiseException, match="does not exist in schema 'other'"):
            execute_script(pg_engine, script)
        with pg_engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(app.table("transaction"))).scalar() == 0
