"""Hostile table, schema and column names stay names: the four operations, online and as offline
scripts applied with the real clients (``sqlite3``, ``psql``, ``mariadb``), on SQLite, PostgreSQL
and MariaDB, repair a history exactly as they do under plain names, and no name escapes into the
script (the sentinel table ``victim`` stays, no shell command runs); the migration scripts
autogenerate renders stay the same Python."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations import Operations
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy_continuum import VersioningManager, make_versioned, version_class
from sqlalchemy_continuum.plugins import PropertyModTrackerPlugin

from .conftest import engine_dialects, mariadb_database, postgresql_database
from .support.apps import mapped, snapshot
from .support.autogen import produce
from .support.clients import apply_with_client
from .support.migrate import render_offline, run_online

#: Names that are no plain identifiers: keywords, case, spaces and dots, quotes (MariaDB's backtick
#: too), the paramstyles' and psql's markers, dollar quotes and backslashes (an escape in MariaDB's
#: string literals: one before a quote, or ending the name, ends the literal early where it is not
#: doubled), unicode; and line breaks that, written raw into a comment line of a script, end it: the
#: rest of the name is then SQL (``DROP TABLE``), a psql meta-command (``\!`` runs a shell command,
#: ending at ``\r`` too) or a sqlite3 dot-command. (Short: PostgreSQL truncates identifiers past 63
#: bytes, Continuum's index names included; MariaDB refuses names past 64 characters.)
TABLES = [
    "select",
    "Mixed Case.dot",
    'it\'s "quoted"',
    "back`tick``",
    "50% %(x)s :x;",
    "$$ $a$ \\",
    "x\\'; DROP TABLE victim; --",
    "t\nDROP TABLE victim; --",
    "t\r\\! touch p #\n.shell touch p #",
    "d\nDELIMITER ;\n\\! touch p",
    "tä 表 ✓",
]
COLUMNS = ["order", "Mixed Case", 'it\'s "q"', "back`tick", "50% %(x)s :x;", "c\\", "c\nDROP TABLE victim; --"]
SCHEMAS = ["user", 'Sch.ema "q"', "back`tick", "50% $$ %(x)s", "s\\'x", "s\nDROP TABLE victim; --"]
PLAIN_TABLE, PLAIN_COLUMN, PLAIN_SCHEMA = "thing", "name", "app"
MODES = ["online", "offline"]


@dataclass(frozen=True)
class Names:
    """Where the names go: the live table, its versioned text column and the schema."""

    table: str = PLAIN_TABLE
    column: str = PLAIN_COLUMN
    schema: str | None = None


@contextmanager
def thing_app(names: Names) -> Iterator[tuple[sa.MetaData, type]]:
    """One model (an integer key, the text column ``names.column`` and ``score``) on the table
    ``names.table`` in ``names.schema``, versioned with the mod tracker: MetaData and class."""
    manager = VersioningManager()
    make_versioned(manager=manager, user_cls=None, plugins=[PropertyModTrackerPlugin()])

    class Base(DeclarativeBase):
        metadata = sa.MetaData(schema=names.schema)

    Base.__versioning_manager__ = manager  # type: ignore[attr-defined]
    attributes = {
        "__tablename__": names.table,
        "__versioned__": {},
        "id": sa.Column(sa.Integer, primary_key=True, autoincrement=False),
        names.column: sa.Column(sa.String(20)),  # keyed by its name: Continuum names the flag after the key
        "score": sa.Column(sa.Integer),
    }
    model = type("Thing", (Base,), attributes)
    with mapped(manager, Base):
        yield Base.metadata, model


def write_history(engine: sa.Engine, model: type, column: str) -> None:
    """Inserts, updates (to and from NULL) and a delete, through Continuum's ORM."""
    changes: list[dict[int, dict[str, Any] | None]] = [
        {1: {column: "a", "score": 1}, 2: {column: "b", "score": 2}, 3: {column: None, "score": 3}},
        {1: {column: "a2"}, 2: {"score": None}},
        {3: None, 1: {"score": 5}},
        {2: {column: None}},
    ]
    with Session(engine) as session:
        for transaction in changes:
            for key, values in transaction.items():
                thing = session.get(model, key)
                if values is None:
                    session.delete(thing)
                    continue
                if thing is None:
                    thing = model(id=key)
                    session.add(thing)
                for name, value in values.items():
                    setattr(thing, name, value)
            session.commit()


def damage(engine: sa.Engine, live: sa.Table, version: sa.Table, column: str) -> None:
    """Break the history so each operation has work: end ids gone, update flags flipped, a futile
    version of entity 1 at the last transaction, and live rows changed behind Continuum's back."""
    v = version.c
    flag = v[column + "_mod"]
    with engine.begin() as conn:
        last = conn.execute(sa.select(sa.func.max(v.transaction_id))).scalar_one()
        latest = conn.execute(sa.select(version).where(v.id == 1).order_by(v.transaction_id.desc()).limit(1)).one()
        conn.execute(sa.insert(version).values({**latest._asdict(), "transaction_id": last, "operation_type": 1}))
        conn.execute(sa.update(version).values(end_transaction_id=None))
        conn.execute(sa.update(version).where(v.operation_type == 1).values({flag: sa.not_(flag)}))
        conn.execute(sa.update(live).where(live.c.id == 1).values({column: "raw"}))
        conn.execute(sa.insert(live).values({"id": 9, column: "new", "score": 9}))


def repairs(names: Names) -> Any:
    """All four operations on the table, in one migration."""

    def call(op: Operations) -> None:
        op.update_end_transaction_ids(names.table, schema=names.schema)
        op.update_mod_flags(names.table, schema=names.schema)
        op.vacuum_versions(names.table, schema=names.schema)
        op.backfill_versions(names.table, schema=names.schema)

    return call


@dataclass
class Outcome:
    """The version and live rows after the repairs, and the transaction ids recorded."""

    versions: list[tuple[Any, ...]]
    live: list[tuple[Any, ...]]
    transactions: list[int]


@pytest.fixture(scope="module")
def shared_pg_engine(postgresql_proc: Any) -> Iterator[sa.Engine]:
    """One PostgreSQL database for the module's cases (a fresh one each costs more than its case)."""
    with postgresql_database(postgresql_proc) as engine:
        yield engine


@contextmanager
def empty_database(dialect: str, names: Names, request: pytest.FixtureRequest, path: Path) -> Iterator[sa.Engine]:
    """An empty database holding the sentinel table ``victim`` (and the schema ``names.schema``):
    a SQLite file at ``path``, the module's PostgreSQL database, emptied afterwards, or a fresh
    MariaDB database."""
    if dialect == "mariadb":  # a database of its own (the case's schema dropped with it)
        with mariadb_database(request.getfixturevalue("mariadb_server")) as engine:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE victim (id INTEGER)"))
                if names.schema is not None:
                    conn.execute(sa.schema.CreateSchema(names.schema))
            yield engine
        return
    if dialect == "sqlite":
        engine = sa.create_engine(f"sqlite:///{path}")
    else:
        engine = request.getfixturevalue("shared_pg_engine")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE victim (id INTEGER)"))
        if names.schema is not None:
            conn.execute(sa.schema.CreateSchema(names.schema))
    try:
        yield engine
    finally:
        if dialect == "postgresql":
            with engine.begin() as conn:
                if names.schema is not None:
                    conn.execute(sa.schema.DropSchema(names.schema, cascade=True))
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        engine.dispose()  # no session (and temporary table) outlives its case


def repaired(dialect: str, mode: str, names: Names, request: pytest.FixtureRequest, tmp_path: Path) -> Outcome:
    """Write a history under ``names`` in an empty database, break it, run the four operations
    (``mode``); check that the sentinel ``victim`` stays and that no shell command ran."""
    client = tmp_path / "client"  # the clients' working directory
    client.mkdir(parents=True)
    with empty_database(dialect, names, request, tmp_path / "test.db") as engine, thing_app(names) as (metadata, model):
        metadata.create_all(engine)
        live, version = model.__table__, version_class(model).__table__
        write_history(engine, model, names.column)
        damage(engine, live, version, names.column)
        if mode == "online":
            run_online(engine, repairs(names))
        else:
            apply_with_client(engine, render_offline(engine, repairs(names), target_metadata=metadata), client)
        transaction = metadata.tables[f"{names.schema}.transaction" if names.schema else "transaction"]
        with engine.connect() as conn:
            ids = conn.execute(sa.select(transaction.c.id).order_by(transaction.c.id)).scalars().all()
            assert sa.inspect(conn).has_table("victim")
        outcome = Outcome(snapshot(engine, version), snapshot(engine, live), list(ids))
    assert not list(client.iterdir()), "a shell command ran"
    return outcome


_plain: dict[tuple[str, str, bool], Outcome] = {}


def plain_outcome(dialect: str, mode: str, schema: bool, request: pytest.FixtureRequest, tmp_path: Path) -> Outcome:
    """The outcome under plain names (computed once per dialect, mode and schema or not)."""
    key = (dialect, mode, schema)
    if key not in _plain:
        names = Names(schema=PLAIN_SCHEMA if schema else None)
        _plain[key] = outcome = repaired(dialect, mode, names, request, tmp_path)
        # the repairs worked: the end ids back, flags and futile version fixed, two new versions
        assert outcome.transactions == [1, 2, 3, 4, 5]
        assert [row[3:6] for row in outcome.versions] == [
            (1, 2, 0), (2, 3, 1), (3, 5, 1), (5, None, 1),
            (1, 2, 0), (2, 4, 1), (4, None, 1),
            (1, 3, 0), (3, None, 2),
            (5, None, 0),
        ]  # fmt: skip
    return _plain[key]


def _case(position: str, name: str, dialects: tuple[str, ...]) -> list[Any]:
    """One case per dialect of ``name`` at ``position`` (``table``, ``column`` or ``schema``)."""
    cases = []
    for dialect in dialects:
        cases.append(pytest.param(dialect, Names(**{position: name}), id=f"{dialect}-{position}-{name!r}"))
    return cases


#: The dialects swept (those of the ``engine`` fixture: ``ALEMBIC_VERSIONING_TEST_DIALECTS`` narrows them).
DIALECTS = tuple(d for d in ("sqlite", "postgresql", "mariadb") if d in engine_dialects())
CASES = [
    *(case for name in TABLES for case in _case("table", name, DIALECTS)),
    *(case for name in COLUMNS for case in _case("column", name, DIALECTS)),
    *(case for name in SCHEMAS for case in _case("schema", name, tuple(d for d in DIALECTS if d != "sqlite"))),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("dialect", "names"), CASES)
def test_hostile_names_repair_as_plain_names(
    dialect: str, names: Names, mode: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The four operations under a hostile name leave the rows they leave under plain names."""
    expected = plain_outcome(dialect, mode, names.schema is not None, request, tmp_path / "plain")
    assert repaired(dialect, mode, names, request, tmp_path) == expected


@pytest.mark.parametrize("mode", MODES)
def test_the_sequence_hint_names_hostile_tables_as_psql_reads_them(
    mode: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Behind a sequence that lags the transaction ids, the backfill stops with the ``setval``
    to run: its names quoted as psql reads them (a ``%`` was written ``%%``), so it runs as given."""
    names = Names(table="50% %(x)s :x;", column="50% %(x)s :x;", schema="50% $$ %(x)s")
    with empty_database("postgresql", names, request, tmp_path) as engine, thing_app(names) as (metadata, model):
        metadata.create_all(engine)
        write_history(engine, model, names.column)
        with engine.begin() as conn:  # Continuum's sequence is in the default schema
            conn.exec_driver_sql("SELECT setval('transaction_id_seq', 1)")
            conn.execute(sa.update(model.__table__).values({names.column: "raw"}))
        backfill = lambda op: op.backfill_versions(names.table, schema=names.schema)  # noqa: E731
        if mode == "online":
            with pytest.raises(sa.exc.DatabaseError) as stopped:
                run_online(engine, backfill)
            error = str(stopped.value.orig)
        else:
            error = apply_with_client(
                engine, render_offline(engine, backfill, target_metadata=metadata), tmp_path, fails=True
            )
        hint = re.search(r"SELECT setval\(.*?\);", error)
        assert hint is not None, error
        assert "%%" not in hint.group(0)
        with engine.begin() as conn:  # the fix as the message names it, as psql would run it
            conn.connection.driver_connection.execute(hint.group(0))
        run_online(engine, backfill)


@pytest.mark.parametrize(("mode", "sequence"), [("online", None), ("offline", None), ("online", "s\\'`%.q\\'`%(x)s")])
def test_the_sequence_hint_names_hostile_tables_as_the_mariadb_client_reads_them(
    mode: str, sequence: str | None, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """On MariaDB the backfill's guard (a ``SIGNAL`` in a compound statement, between ``DELIMITER``
    lines offline) stops with the statements moving the sequence: names with backticks, quotes,
    backslashes and ``%`` in it (the sequence's too, ``transaction_sequence=...``) as the
    ``mariadb`` client reads them, so they run as given."""
    names = Names(table="b`t\\'%(x)s", column="c`\\", schema="s\\'`%")
    with empty_database("mariadb", names, request, tmp_path) as engine, thing_app(names) as (metadata, model):
        metadata.create_all(engine)
        write_history(engine, model, names.column)
        quote = engine.dialect.identifier_preparer.quote
        seq = "transaction_id_seq" if sequence is None else ".".join(map(quote, sequence.split(".")))
        with engine.begin() as conn:
            if sequence is not None:  # the ids taken so far, in a sequence of a hostile name
                conn.exec_driver_sql(f"CREATE SEQUENCE {seq}")
                conn.exec_driver_sql(f"SELECT NEXTVAL({seq}), NEXTVAL({seq}), NEXTVAL({seq})")
            else:
                conn.execute(sa.text("ALTER SEQUENCE transaction_id_seq RESTART WITH 1"))
            conn.execute(sa.update(model.__table__).values({names.column: "raw"}))
        options = {} if sequence is None else {"transaction_sequence": sequence}
        backfill = lambda op: op.backfill_versions(names.table, schema=names.schema, **options)  # noqa: E731
        if mode == "online":
            with pytest.raises(sa.exc.DatabaseError) as stopped:
                run_online(engine, backfill)
            error = str(stopped.value.orig.args[1])
        else:
            stderr = apply_with_client(
                engine, render_offline(engine, backfill, target_metadata=metadata), tmp_path, fails=True
            )
            error = stderr.split("ERROR 1644 (45000) at line ", 1)[-1]  # the message (the statement is shown first)
        hint = re.search(r"run it again: (SELECT GREATEST\(.*\);) \(so the new versions", error)
        assert hint is not None, error
        client = tmp_path / "fix"
        client.mkdir()
        apply_with_client(engine, hint.group(1), client)  # the fix as the message names it, in the client
        run_online(engine, backfill)


def _shape(code: str) -> tuple[int, list[str]]:
    """The number of lines of a rendered ``upgrade()``/``downgrade()`` body and the kinds of its
    top-level statements."""
    return len(code.splitlines()), [type(node).__name__ for node in ast.parse(code.replace("\n    ", "\n")).body]


@pytest.mark.filterwarnings("ignore:Unknown schema content")  # Alembic's reading of MariaDB's index names
@pytest.mark.parametrize("dialect", ["sqlite", "mariadb"])
@pytest.mark.parametrize("name", TABLES)
def test_rendered_comments_keep_names_inert(dialect: str, name: str, request: pytest.FixtureRequest) -> None:
    """A migration autogenerate renders has the same lines and Python statements under a hostile
    table and column name as under plain names: a name in a comment saying what was found (the
    column added to the table, here) ends no line. (On MariaDB, Alembic's own index operations
    are left out: SQLAlchemy reads index names from ``SHOW CREATE TABLE`` line by line, with a
    backtick doubled or a line break cutting the line, so Alembic recreates those indexes.)"""
    engine = request.getfixturevalue(f"{dialect}_engine")

    def rendered(names: Names) -> list[str]:
        flag = names.column + "_mod"
        with thing_app(names) as (metadata, _):
            metadata.create_all(engine)
            quote = engine.dialect.identifier_preparer.quote
            dropped = [(names.table, names.column), *((names.table + "_version", c) for c in (names.column, flag))]
            with engine.begin() as conn:  # so the migration adds them: the column, its version and flag
                for table, column in dropped:
                    conn.exec_driver_sql(f"ALTER TABLE {quote(table)} DROP COLUMN {quote(column)}")
            script = produce(engine, metadata)
            metadata.drop_all(engine)
        codes = [render_python_code(ops) for ops in (script.upgrade_ops, script.downgrade_ops)]
        alembic_indexes = re.compile(r"\s*op\.(create|drop)_index\(")
        return ["\n".join(line for line in code.split("\n") if not alembic_indexes.match(line)) for code in codes]

    plain = rendered(Names())
    hostile = rendered(Names(table=name, column=name))
    assert (
        "# column(s) name added to thing and thing_version\n" in plain[0] and "versioning.backfill_versions" in plain[0]
    )
    assert [_shape(code) for code in hostile] == [_shape(code) for code in plain]


def test_mariadb_columns_and_keys_keep_hostile_names(mariadb_engine: sa.Engine) -> None:
    """SQLAlchemy reads MariaDB's columns from ``SHOW CREATE TABLE`` line by line: it leaves a
    backtick doubled and loses a name with a line break, and with it the primary key. The
    operations and autogenerate read every column under its name, with its type, and the key;
    the catalog lookups (whether the table exists, its row estimate) find it by its exact name."""
    from alembic_versioning.catalog import ReflectedTables, reflect_table
    from alembic_versioning.model import VersionedTable
    from alembic_versioning.sql.constructs import RegClass, RowEstimate

    names = ["k`ey", "k\ney", "back`tick", "c\nDROP TABLE victim; --", "flag\n_mod"]
    table = sa.Table(
        "t`\\'\nx",
        sa.MetaData(),
        sa.Column(names[0], sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(names[1], sa.String(5), primary_key=True),
        sa.Column(names[2], sa.String(20)),
        sa.Column(names[3], sa.Integer, nullable=False, server_default="3"),
        sa.Column(names[4], sa.Boolean),
    )
    table.create(mariadb_engine)
    with mariadb_engine.connect() as conn:
        found = reflect_table(conn, table.name, None)
        assert found is not None
        assert [c.name for c in found.c] == names
        assert [c.name for c in found.primary_key.columns] == names[:2]
        assert [type(c.type).__name__ for c in found.c] == ["INTEGER", "VARCHAR", "VARCHAR", "INTEGER", "TINYINT"]
        assert [c.nullable for c in found.c] == [False, False, True, False, True]
        assert found.c[names[3]].server_default is not None and found.c[names[2]].server_default is None
        estimate, found_table = conn.execute(sa.select(RowEstimate(table), RegClass(None, table.name))).one()
        assert (estimate, found_table) == (0, 1)  # the catalog lookups find it by its name
        assert conn.execute(sa.select(RegClass(None, "T`\\'\nX"))).scalar() is None  # and by no other spelling
        autogenerated = ReflectedTables(sa.inspect(conn), [VersionedTable(name=table.name)])  # as autogenerate reads
        assert list(autogenerated.types(table.name, None)) == names
