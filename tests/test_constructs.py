"""Compiled SQL of the constructs and statement builders, on PostgreSQL and SQLite.

Snapshot-style, no database: each construct is compiled against a dialect object with literal
binds, as offline scripts render it, and the whole text is compared. The statements each op
emits for a small table are stored in ``tests/snapshots/*.sql``; ``UPDATE_SNAPSHOTS=1`` rewrites
those files (review the diff), a default run only compares.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy_continuum  # noqa: F401  (as in an application: it compiles BigInteger as INTEGER on SQLite)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect

from alembic_versioning.model import VersionedTable
from alembic_versioning.sql.backfill import BackfillPart, TransactionRecord, backfill_setup, backfill_statements
from alembic_versioning.sql.chains import end_transaction_update
from alembic_versioning.sql.constructs import (
    AddressIn,
    Analyze,
    BatchSettings,
    CreateTemporaryTableAs,
    Differs,
    DistinctOn,
    DropTemporaryTableIfExists,
    FullJoinSelect,
    InJsonType,
    LockForWrite,
    LockTimeout,
    NativeVersioningInstalled,
    NextTransactionId,
    RowAddress,
    SessionLockWait,
    StopIf,
    UnlessDistinctOn,
    UpdateAtAddresses,
    UtcNow,
    as_version_type,
    to_regclass,
)
from alembic_versioning.sql.mod_flags import mod_flags_update
from alembic_versioning.sql.vacuum import vacuum_statements

PG = postgresql.dialect()
SQLITE = sqlite.dialect()
MARIADB = mysql.mariadb.MariaDBDialect()
SNAPSHOTS = Path(__file__).parent / "snapshots"


def sql(element: Any, dialect: Dialect) -> str:
    """``element`` compiled for ``dialect`` with literal binds, without the trailing spaces
    SQLAlchemy leaves before its line breaks."""
    compiled = str(element.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return "\n".join(line.rstrip() for line in compiled.strip().splitlines())


def lines(*text: str) -> str:
    """SQL lines, one argument each."""
    return "\n".join(text)


class JsonText(sa.types.TypeDecorator[Any]):
    """JSON stored as ``jsonb`` on PostgreSQL and as text elsewhere, like sqlalchemy-utils' ``JSONType``."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(postgresql.JSONB() if dialect.name == "postgresql" else sa.Text())


def article_columns(state_enum: str) -> list[sa.Column[Any]]:
    """The data columns the live table and its version table share (``state_enum``: the name of
    the table's enum type)."""
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String),
        sa.Column("data", sa.JSON),
        sa.Column("doc", JsonText),
        sa.Column("tags", postgresql.ARRAY(sa.JSON)),
        sa.Column("issued", sa.DateTime),
        sa.Column("state", sa.Enum("draft", "published", name=state_enum)),
    ]


metadata = sa.MetaData()
live = sa.Table("article", metadata, *article_columns("state"))
version = sa.Table(
    "article_version",
    metadata,
    *article_columns("history_state"),
    sa.Column("transaction_id", sa.BigInteger, primary_key=True),
    schema="app",
)
transaction = sa.Table("transaction", sa.MetaData(), sa.Column("id", sa.BigInteger), schema="app")
pending = sa.Table("_av_pending", sa.MetaData(), sa.Column("id", sa.Integer), prefixes=["TEMPORARY"])


# --- Differs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "dialect", "expected"),
    [
        # IS DISTINCT FROM on PostgreSQL, IS NOT on SQLite
        pytest.param("title", PG, "article.title IS DISTINCT FROM app.article_version.title", id="postgresql"),
        pytest.param("title", SQLITE, "article.title IS NOT app.article_version.title", id="sqlite"),
        # JSON: compared as jsonb on PostgreSQL, as stored text on SQLite; the JSON null as SQL NULL
        pytest.param(
            "data",
            PG,
            "nullif(CAST(article.data AS JSONB), 'null'::jsonb) IS DISTINCT FROM "
            "nullif(CAST(app.article_version.data AS JSONB), 'null'::jsonb)",
            id="json-postgresql",
        ),
        pytest.param(
            "data",
            SQLITE,
            "nullif(article.data, 'null') IS NOT nullif(app.article_version.data, 'null')",
            id="json-sqlite",
        ),
        # a TypeDecorator that is jsonb on PostgreSQL is compared as JSON there, as plain text on
        # SQLite (where it is text)
        pytest.param(
            "doc",
            PG,
            "nullif(CAST(article.doc AS JSONB), 'null'::jsonb) IS DISTINCT FROM "
            "nullif(CAST(app.article_version.doc AS JSONB), 'null'::jsonb)",
            id="json-type-decorator-postgresql",
        ),
        pytest.param("doc", SQLITE, "article.doc IS NOT app.article_version.doc", id="json-type-decorator-sqlite"),
        # json[] has no equality operator: both sides are compared as jsonb[]
        pytest.param(
            "tags",
            PG,
            "CAST(article.tags AS JSONB[]) IS DISTINCT FROM CAST(app.article_version.tags AS JSONB[])",
            id="json-array-postgresql",
        ),
        # datetimes compare as they are on PostgreSQL; on SQLite (text) with six fractional digits,
        # added where the text has none
        pytest.param(
            "issued", PG, "article.issued IS DISTINCT FROM app.article_version.issued", id="datetime-postgresql"
        ),
        pytest.param(
            "issued",
            SQLITE,
            "CASE WHEN (length(CAST(article.issued AS TEXT)) = 19) "
            "THEN CAST(article.issued AS TEXT) || '.000000' ELSE CAST(article.issued AS TEXT) END "
            "IS NOT "
            "CASE WHEN (length(CAST(app.article_version.issued AS TEXT)) = 19) "
            "THEN CAST(app.article_version.issued AS TEXT) || '.000000' "
            "ELSE CAST(app.article_version.issued AS TEXT) END",
            id="datetime-sqlite",
        ),
    ],
)
def test_differs(column: str, dialect: Dialect, expected: str) -> None:
    """Differs compares a live column with its version column NULL-safely, in each dialect's terms."""
    assert sql(Differs(live.c[column], version.c[column]), dialect) == expected


# --- as_version_type and InJsonType ----------------------------------------------------------


def test_as_version_type_other_enum_postgresql() -> None:
    """A live enum meets a version enum of another name by way of text."""
    value = as_version_type(live.c.state, version.c.state.type)
    assert sql(value, PG) == "CAST(CAST(article.state AS TEXT) AS history_state)"


def test_as_version_type_other_enum_sqlite() -> None:
    """On SQLite (no enum types) the conversion is to the enum's VARCHAR, as long as its longest value."""
    value = as_version_type(live.c.state, version.c.state.type)
    assert sql(value, SQLITE) == "CAST(CAST(article.state AS TEXT) AS VARCHAR(9))"


def test_as_version_type_same_enum() -> None:
    """An enum of the same name is the value itself."""
    state = sa.Enum("draft", "published", name="state")
    assert as_version_type(live.c.state, state) is live.c.state


def test_as_version_type_plain() -> None:
    """A non-JSON, non-enum value is the value itself."""
    assert as_version_type(live.c.title, version.c.title.type) is live.c.title


def test_as_version_type_json() -> None:
    """A value for a JSON version column is put in that type (InJsonType)."""
    value = as_version_type(live.c.data, postgresql.JSONB())
    assert isinstance(value, InJsonType)
    assert (sql(value, PG), sql(value, SQLITE)) == ("CAST(article.data AS JSONB)", "article.data")


def test_in_json_type_postgresql() -> None:
    """On PostgreSQL a JSON value is cast to the JSON type."""
    assert sql(InJsonType(live.c.data, sa.JSON()), PG) == "CAST(article.data AS JSON)"


def test_in_json_type_array_postgresql() -> None:
    """On PostgreSQL an array of JSON is cast to the array type."""
    assert sql(InJsonType(live.c.tags, postgresql.ARRAY(sa.JSON)), PG) == "CAST(article.tags AS JSON[])"


def test_in_json_type_not_json_on_dialect_postgresql() -> None:
    """A type that is no JSON on the dialect leaves the value alone."""
    assert sql(InJsonType(live.c.title, sa.Text()), PG) == "article.title"


def test_in_json_type_sqlite() -> None:
    """SQLite takes the value itself."""
    assert sql(InJsonType(live.c.data, sa.JSON()), SQLITE) == "article.data"


# --- FullJoinSelect, DistinctOn, UnlessDistinctOn --------------------------------------------

left = sa.table("a", sa.column("id"))
right = sa.table("b", sa.column("id"))


def full_join() -> FullJoinSelect:
    select = sa.select(sa.func.coalesce(left.c.id, right.c.id).label("id")).select_from(
        left.join(right, left.c.id == right.c.id, full=True)
    )
    return FullJoinSelect.of(
        select,
        lambda: sa.union_all(
            sa.select(left.c.id), sa.select(right.c.id).where(~sa.exists().where(left.c.id == right.c.id))
        ),
    )


def test_full_join_select_postgresql() -> None:
    """PostgreSQL runs the FULL JOIN."""
    assert sql(full_join(), PG) == lines(
        "SELECT coalesce(a.id, b.id) AS id",
        "FROM a FULL OUTER JOIN b ON a.id = b.id",
    )


def test_full_join_select_sqlite() -> None:
    """SQLite runs the fallback."""
    assert sql(full_join(), SQLITE) == lines(
        "SELECT a.id",
        "FROM a UNION ALL SELECT b.id",
        "FROM b",
        "WHERE NOT (EXISTS (SELECT *",
        "FROM a",
        "WHERE a.id = b.id))",
    )


def distinct_select() -> sa.Select[Any]:
    return (
        sa.select(version.c.id, version.c.transaction_id)
        .prefix_with(DistinctOn(version.c.id), dialect="postgresql")  # type: ignore[arg-type]
        .where(UnlessDistinctOn(version.c.transaction_id > 5))
    )


def test_distinct_on_postgresql() -> None:
    """PostgreSQL gets DISTINCT ON, and the filter it makes redundant is true."""
    assert sql(distinct_select(), PG) == lines(
        "SELECT DISTINCT ON (app.article_version.id) app.article_version.id, app.article_version.transaction_id",
        "FROM app.article_version",
        "WHERE true",
    )


def test_distinct_on_sqlite() -> None:
    """SQLite gets no DISTINCT ON, and the filter as it is (compared with 1, as SQLite's booleans are)."""
    assert sql(distinct_select(), SQLITE) == lines(
        "SELECT app.article_version.id, app.article_version.transaction_id",
        "FROM app.article_version",
        "WHERE app.article_version.transaction_id > 5 = 1",
    )


# --- temporary tables and statistics ---------------------------------------------------------


@pytest.mark.parametrize("dialect", [PG, SQLITE], ids=["postgresql", "sqlite"])
def test_create_temporary_table_as(dialect: Dialect) -> None:
    """CREATE TEMPORARY TABLE ... AS the select, its values literal."""
    select = sa.select(live.c.id).where(live.c.title == "it's")
    assert sql(CreateTemporaryTableAs(pending, select), dialect) == lines(
        "CREATE TEMPORARY TABLE _av_pending AS SELECT article.id",
        "FROM article",
        "WHERE article.title = 'it''s'",
    )


def test_create_temporary_table_as_mariadb() -> None:
    """MariaDB creates a keyed table's primary key with it, and computes derived tables whole on request."""
    keyed = sa.Table("_av_keyed", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), prefixes=["TEMPORARY"])
    select = sa.select(live.c.id)
    assert sql(CreateTemporaryTableAs(pending, select), MARIADB) == lines(
        "CREATE TEMPORARY TABLE _av_pending AS SELECT article.id", "FROM article"
    )
    assert sql(CreateTemporaryTableAs(keyed, select, whole_derived=True), MARIADB) == lines(
        "SET STATEMENT optimizer_switch='split_materialized=off' FOR "
        "CREATE TEMPORARY TABLE _av_keyed (PRIMARY KEY (id)) AS SELECT article.id",
        "FROM article",
    )
    assert sql(CreateTemporaryTableAs(keyed, select, whole_derived=True), PG) == lines(
        "CREATE TEMPORARY TABLE _av_keyed AS SELECT article.id", "FROM article"
    )


def _vacuum_heads(dialect: Dialect) -> tuple[list[str], list[str]]:
    """The vacuum's statements for ARTICLE on ``dialect``, and the head of each (up to its first
    `` (``, `` AS `` or comma)."""
    statements = [sql(s, dialect) for s in vacuum_statements(ARTICLE, ARTICLE.columns, dialect)]
    return statements, [s.split(" (")[0].split(" AS ")[0].split(",")[0] for s in statements]


def test_vacuum_on_mariadb_lists_futile_versions_first() -> None:
    """MariaDB's vacuum lists the futile versions in a keyed temporary table, relinks from the
    list and deletes by a join: no statement classifies the versions inside a DELETE."""
    statements, heads = _vacuum_heads(MARIADB)
    assert heads == [
        "DROP TEMPORARY TABLE IF EXISTS _av_futile",
        "SET STATEMENT optimizer_switch='split_materialized=off' FOR CREATE TEMPORARY TABLE _av_futile",
        "DO 0",
        "UPDATE article_version",
        "DELETE FROM article_version USING article_version",
        "DROP TEMPORARY TABLE _av_futile",
    ]
    assert "PRIMARY KEY (id, transaction_id)" in statements[1]
    assert "LEFT OUTER JOIN article_version AS `before`" in statements[1]  # classified by a join
    assert "FROM _av_futile) AS starts" in statements[3]
    assert "EXISTS" not in statements[4]


def test_vacuum_on_postgresql_lists_futile_versions_first() -> None:
    """PostgreSQL's vacuum classifies the versions once, by ``lag()``, into a list, relinks from
    the list and deletes by a join; SQLite (and no dialect) classifies in each statement."""
    statements, heads = _vacuum_heads(PG)
    assert heads == [
        "DROP TABLE IF EXISTS pg_temp._av_futile",
        "CREATE TEMPORARY TABLE _av_futile",
        "ANALYZE _av_futile",
        "UPDATE article_version SET end_transaction_id=runs._av_run_end FROM",
        "DELETE FROM article_version USING _av_futile WHERE article_version.id = _av_futile.id "
        "AND article_version.transaction_id = _av_futile.transaction_id",
        "DROP TABLE _av_futile",
    ]
    assert "lag(article_version.title) OVER" in statements[1]
    assert "EXISTS" not in statements[4]
    for dialect in (SQLITE, None):
        assert vacuum_statements(ARTICLE, ARTICLE.columns, dialect)[-1].is_delete


def test_drop_temporary_table_postgresql() -> None:
    """The drop names PostgreSQL's temporary schema, never a permanent table."""
    assert sql(DropTemporaryTableIfExists(pending), PG) == "DROP TABLE IF EXISTS pg_temp._av_pending"


def test_drop_temporary_table_sqlite() -> None:
    """The drop names SQLite's temporary schema, never a permanent table."""
    assert sql(DropTemporaryTableIfExists(pending), SQLITE) == "DROP TABLE IF EXISTS temp._av_pending"


def test_drop_temporary_table_quotes_name() -> None:
    """A name that needs quoting is quoted after the schema."""
    table = sa.Table("Pending", sa.MetaData())
    assert sql(DropTemporaryTableIfExists(table), PG) == 'DROP TABLE IF EXISTS pg_temp."Pending"'


def test_analyze_postgresql() -> None:
    """ANALYZE of a (schema-qualified) table."""
    assert sql(Analyze(version), PG) == "ANALYZE app.article_version"


def test_analyze_columns_postgresql() -> None:
    """PostgreSQL samples only the columns named."""
    assert sql(Analyze(version, ["id", "transaction_id"]), PG) == "ANALYZE app.article_version (id, transaction_id)"


def test_analyze_columns_sqlite() -> None:
    """SQLite has no column list: the whole table."""
    assert sql(Analyze(version, ["id", "transaction_id"]), SQLITE) == "ANALYZE app.article_version"


# --- values: UtcNow, NativeVersioningInstalled, NextTransactionId, to_regclass ----------------


def test_utc_now_postgresql() -> None:
    """Naive UTC on PostgreSQL, the form Continuum writes."""
    assert sql(UtcNow(), PG) == "(now() AT TIME ZONE 'utc')"


def test_utc_now_timezone_postgresql() -> None:
    """With timezone=True (a timestamptz column), the instant itself."""
    assert sql(UtcNow(timezone=True), PG) == "now()"


@pytest.mark.parametrize("timezone", [False, True])
def test_utc_now_sqlite(timezone: bool) -> None:
    """SQLite: UTC text with six fractional digits, as SQLAlchemy writes datetimes."""
    assert sql(UtcNow(timezone=timezone), SQLITE) == "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"


def test_native_versioning_installed_postgresql() -> None:
    """PostgreSQL looks for Continuum's trigger on the transaction table."""
    assert sql(NativeVersioningInstalled(transaction), PG) == lines(
        "EXISTS (SELECT *",
        "FROM pg_trigger",
        'WHERE pg_trigger.tgrelid = to_regclass(\'"app"."transaction"\') '
        "AND pg_trigger.tgname = 'transaction_trigger')",
    )


def test_native_versioning_installed_sqlite() -> None:
    """Elsewhere there is no native versioning: false."""
    assert sql(NativeVersioningInstalled(transaction), SQLITE) == "0"


def test_to_regclass() -> None:
    """to_regclass of the quoted name, in a text value."""
    assert sql(to_regclass("app", "transaction"), PG) == 'to_regclass(\'"app"."transaction"\')'


def test_to_regclass_without_schema() -> None:
    """Without a schema, the name alone (found on the search path)."""
    assert sql(to_regclass(None, "transaction_id_seq"), PG) == "to_regclass('\"transaction_id_seq\"')"


def test_to_regclass_doubles_quotes() -> None:
    """Double quotes in a name are doubled, single quotes escaped in the literal."""
    assert sql(to_regclass("o'k", 'a"b'), PG) == 'to_regclass(\'"o\'\'k"."a""b"\')'


sequence = sa.Sequence("transaction_id_seq", schema="app")
held = sa.Table("temporary_transaction", sa.MetaData(), sa.Column("id", sa.BigInteger))
reuse = sa.select(sa.func.max(held.c.id)).scalar_subquery()


def test_next_transaction_id_postgresql() -> None:
    """PostgreSQL takes the sequence's next value."""
    assert sql(NextTransactionId(transaction.c.id, sequence, None), PG) == "nextval('app.transaction_id_seq')"


def test_next_transaction_id_reuse_postgresql() -> None:
    """With reuse, the current record's id comes first, the sequence after."""
    assert sql(NextTransactionId(transaction.c.id, sequence, reuse), PG) == lines(
        "coalesce((SELECT max(temporary_transaction.id) AS max_1",
        "FROM temporary_transaction), nextval('app.transaction_id_seq'))",
    )


def test_next_transaction_id_sqlite() -> None:
    """SQLite takes one more than the largest id of the transaction table."""
    assert sql(NextTransactionId(transaction.c.id, sequence, None), SQLITE) == lines(
        "(SELECT coalesce(max(highest.id), 0) + 1 AS anon_1",
        'FROM (SELECT max(app."transaction".id) AS id',
        'FROM app."transaction") AS highest)',
    )


def test_next_transaction_id_above_and_reuse_sqlite() -> None:
    """SQLite takes one more than the largest id of the transaction and version tables, after a reused id."""
    element = NextTransactionId(transaction.c.id, sequence, reuse, [version.c.transaction_id])
    assert sql(element, SQLITE) == lines(
        "coalesce((SELECT max(temporary_transaction.id) AS max_1",
        "FROM temporary_transaction), (SELECT coalesce(max(highest.id), 0) + 1 AS anon_1",
        'FROM (SELECT max(app."transaction".id) AS id',
        'FROM app."transaction" UNION ALL SELECT max(app.article_version.transaction_id) AS id',
        "FROM app.article_version) AS highest))",
    )


# --- StopIf ----------------------------------------------------------------------------------

gone = sa.exists().where(live.c.id > 1)


def test_stop_if_postgresql() -> None:
    """PostgreSQL: a DO block raising the message where the condition holds."""
    assert sql(StopIf(gone, "Stop here.", "no check"), PG) == lines(
        "DO $av_guard$ BEGIN IF EXISTS (SELECT *",
        "FROM article",
        "WHERE article.id > 1) THEN RAISE EXCEPTION USING MESSAGE = 'Stop here.'; END IF; END $av_guard$",
    )


def test_stop_if_quotes_message_postgresql() -> None:
    """The message is a SQL string literal."""
    assert sql(StopIf(sa.true(), "it's 'quoted'", "no check"), PG) == (
        "DO $av_guard$ BEGIN IF true THEN RAISE EXCEPTION USING MESSAGE = 'it''s ''quoted'''; END IF; END $av_guard$"
    )


def test_stop_if_dollar_quote_collision_postgresql() -> None:
    """A body holding the dollar quote gets a longer one."""
    assert sql(StopIf(sa.true(), "a $av_guard$ b", "no check"), PG) == (
        "DO $av_guard_$ BEGIN IF true THEN RAISE EXCEPTION USING MESSAGE = 'a $av_guard$ b'; END IF; END $av_guard_$"
    )


def test_stop_if_double_dollar_quote_collision_postgresql() -> None:
    """A body holding the longer quote too gets a longer one still."""
    assert sql(StopIf(sa.true(), "$av_guard$ $av_guard_$", "no check"), PG) == (
        "DO $av_guard__$ BEGIN IF true THEN RAISE EXCEPTION USING MESSAGE = '$av_guard$ $av_guard_$'; "
        "END IF; END $av_guard__$"
    )


def test_stop_if_sqlite() -> None:
    """SQLite: the note, as a comment."""
    assert sql(StopIf(gone, "Stop here.", "no check needed here"), SQLITE) == "-- no check needed here"


# --- locking and row addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (PG, ["SET LOCAL lock_timeout = 100", "SET LOCAL lock_timeout = 2500"]),
        (SQLITE, ["-- lock wait: the connection's busy timeout"] * 2),
        (MARIADB, ["SET SESSION innodb_lock_wait_timeout = 1", "SET SESSION innodb_lock_wait_timeout = 3"]),
    ],
    ids=["postgresql", "sqlite", "mariadb"],
)
def test_lock_timeout(dialect: Dialect, expected: list[str]) -> None:
    """A bounded lock wait: PostgreSQL's in milliseconds, MariaDB's in whole seconds (rounded up)."""
    assert [sql(LockTimeout(seconds), dialect) for seconds in (0.1, 2.5)] == expected


@pytest.mark.parametrize(
    ("dialect", "durable", "expected"),
    [
        (PG, True, "SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)"),
        (
            PG,
            False,
            "SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true), "
            "set_config('synchronous_commit', 'off', true)",
        ),
        (SQLITE, False, "-- no batch settings here"),
        (MARIADB, False, "-- no batch settings here"),
    ],
    ids=["postgresql", "postgresql-not-durable", "sqlite", "mariadb"],
)
def test_batch_settings(dialect: Dialect, durable: bool, expected: str) -> None:
    assert sql(BatchSettings(durable), dialect) == expected


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (PG, "SELECT NULL AS anon_1"),
        (SQLITE, "SELECT NULL AS anon_1"),
        (MARIADB, "SELECT @@SESSION.innodb_lock_wait_timeout AS anon_1"),
    ],
    ids=["postgresql", "sqlite", "mariadb"],
)
def test_session_lock_wait(dialect: Dialect, expected: str) -> None:
    """The session's lock wait a batched run sets back: MariaDB's alone outlives a transaction."""
    assert sql(sa.select(SessionLockWait()), dialect) == expected


def test_lock_for_write_postgresql() -> None:
    """PostgreSQL locks every table in SHARE ROW EXCLUSIVE mode."""
    assert sql(LockForWrite(transaction, live, version), PG) == (
        "LOCK TABLE app.transaction, article, app.article_version IN SHARE ROW EXCLUSIVE MODE"
    )


def test_lock_for_write_sqlite() -> None:
    """SQLite deletes nothing from the last table, which takes the database's write lock."""
    assert sql(LockForWrite(transaction, live, version), SQLITE) == "DELETE FROM app.article_version WHERE 0"


def test_lock_for_write_quotes_names() -> None:
    """Names that need quoting are quoted."""
    table = sa.Table("Article", sa.MetaData(), schema="My App")
    assert sql(LockForWrite(table), PG) == 'LOCK TABLE "My App"."Article" IN SHARE ROW EXCLUSIVE MODE'
    assert sql(LockForWrite(table), SQLITE) == 'DELETE FROM "My App"."Article" WHERE 0'


def test_row_address_postgresql() -> None:
    """PostgreSQL's row address is ctid."""
    assert sql(sa.select(RowAddress(version).label("address")), PG) == lines(
        "SELECT app.article_version.ctid AS address",
        "FROM app.article_version",
    )


def test_row_address_sqlite() -> None:
    """SQLite has none: NULL."""
    assert sql(sa.select(RowAddress(version).label("address")), SQLITE) == lines(
        "SELECT NULL AS address",
        "FROM app.article_version",
    )


def update_at_addresses() -> UpdateAtAddresses:
    close = sa.update(version).values(transaction_id=sa.literal_column("7"))
    return UpdateAtAddresses.of(
        close.where(AddressIn(version, sa.select(sa.column("_av_latest_row")).select_from(pending))),
        close.where(version.c.id == pending.c.id),
    )


def test_update_at_addresses_postgresql() -> None:
    """PostgreSQL updates the rows at the addresses (a TID scan)."""
    assert sql(update_at_addresses(), PG) == lines(
        "UPDATE app.article_version SET transaction_id=7 "
        "WHERE app.article_version.ctid = ANY(ARRAY(SELECT _av_latest_row",
        "FROM _av_pending))",
    )


def test_update_at_addresses_sqlite() -> None:
    """SQLite updates the same rows found by key."""
    assert sql(update_at_addresses(), SQLITE) == (
        "UPDATE app.article_version SET transaction_id=7 FROM _av_pending WHERE app.article_version.id = _av_pending.id"
    )


def test_address_in_postgresql() -> None:
    """AddressIn: ctid = ANY(ARRAY(subquery))."""
    addresses: sa.Select[Any] = sa.select(sa.column("_av_latest_row")).select_from(pending)
    assert sql(AddressIn(version, addresses), PG) == lines(
        "app.article_version.ctid = ANY(ARRAY(SELECT _av_latest_row",
        "FROM _av_pending))",
    )


def test_address_in_sqlite_refused() -> None:
    """AddressIn is PostgreSQL's only: other dialects refuse to compile it."""
    addresses: sa.Select[Any] = sa.select(sa.column("_av_latest_row")).select_from(pending)
    with pytest.raises(sa.exc.UnsupportedCompilationError):
        sql(AddressIn(version, addresses), SQLITE)


# --- the statements each op emits (snapshots) ------------------------------------------------

#: A small validity-strategy table: one key, two data columns, a mod flag on the first.
ARTICLE = VersionedTable("article", primary_key=("id",), columns=("title", "body"), mod_columns=("title",))


def backfill(dialect: Dialect) -> list[sa.Executable]:
    """backfill_statements for ARTICLE, recording its versions under a plain transaction record."""
    record_table = sa.Table(
        "transaction", sa.MetaData(), sa.Column("id", sa.BigInteger), sa.Column("issued_at", sa.DateTime)
    )
    record = TransactionRecord(table=record_table, sequence=sa.Sequence("transaction_id_seq"), values={})
    parts = [BackfillPart(ARTICLE, ARTICLE.live_table(), ARTICLE.columns)]
    return [*backfill_setup(parts, record), *backfill_statements(parts, record)[0]]


#: Each op's statements for ARTICLE on a dialect.
OPS: dict[str, Callable[[Dialect], Sequence[Any]]] = {
    "update_end_transaction_ids": lambda dialect: [end_transaction_update(ARTICLE)],
    "update_mod_flags": lambda dialect: [mod_flags_update(ARTICLE, ["title"])],
    "vacuum_versions": lambda dialect: vacuum_statements(ARTICLE, ARTICLE.columns, dialect),
    "backfill_versions": backfill,
}


def script(op_name: str, dialect: Dialect, statements: Sequence[Any]) -> str:
    """The statements as a SQL file: a header comment, then each statement ended by ``;``, a blank line between."""
    header = (
        f"-- {op_name} on {dialect.name}, table article (id; title with a mod flag, body), validity strategy.\n"
        f"-- Compared by tests/test_constructs.py; UPDATE_SNAPSHOTS=1 rewrites it.\n\n"
    )
    return header + "\n\n".join(f"{sql(statement, dialect)};" for statement in statements) + "\n"


@pytest.mark.parametrize("dialect", [PG, SQLITE], ids=["postgresql", "sqlite"])
@pytest.mark.parametrize("op_name", list(OPS))
def test_op_statements(op_name: str, dialect: Dialect) -> None:
    """The SQL an op emits for a small table is the snapshot's (tests/snapshots/<op>.<dialect>.sql)."""
    path = SNAPSHOTS / f"{op_name}.{dialect.name}.sql"
    actual = script(op_name, dialect, OPS[op_name](dialect))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1 and review it"
    assert actual == path.read_text()
