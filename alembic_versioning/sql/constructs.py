"""Compiled constructs that hide dialect differences from the statement builders."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import roles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from ..comments import one_line
from ..model import VersionedTable


class Differs(ColumnElement[bool]):
    """``a IS DISTINCT FROM b``: true when the values differ, NULL counting as a value.

    JSON values are compared as Python sees them: the JSON ``null`` equals SQL NULL (both load as
    ``None``; Continuum writes the first where the live row, its column never set, holds the
    second). PostgreSQL's ``json`` type has no equality operator, so there both sides are compared
    as ``jsonb`` (equal documents compare equal, as they do in Python), arrays of ``json`` as
    ``jsonb[]``; SQLite compares the stored text (the same serialiser writes both sides), datetimes
    with six fractional digits (``CURRENT_TIMESTAMP`` writes none).
    """

    inherit_cache = True
    type = sa.Boolean()
    _traverse_internals = [("left", InternalTraversal.dp_clauseelement), ("right", InternalTraversal.dp_clauseelement)]

    def __init__(self, left: ColumnElement[Any], right: ColumnElement[Any]) -> None:
        self.left = left
        self.right = right

    @property
    def _from_objects(self) -> list[Any]:
        return [*self.left._from_objects, *self.right._from_objects]


def _dialect_type(type_: Any, compiler: SQLCompiler) -> Any:
    """``type_`` as the dialect sees it (a ``TypeDecorator``'s, as in sqlalchemy-utils)."""
    return type_.load_dialect_impl(compiler.dialect) if isinstance(type_, sa.types.TypeDecorator) else type_


def _types(element: Differs, compiler: SQLCompiler) -> list[Any]:
    """Both sides' types, as the dialect sees them."""
    return [_dialect_type(t, compiler) for t in (element.left.type, element.right.type)]


def _is_json_type(type_: Any, compiler: SQLCompiler) -> bool:
    return isinstance(_dialect_type(type_, compiler), sa.JSON)


def _is_json(element: Differs, compiler: SQLCompiler) -> bool:
    """Whether either side is JSON."""
    return any(_is_json_type(t, compiler) for t in (element.left.type, element.right.type))


@compiles(Differs)
def _differs(element: Differs, compiler: SQLCompiler, **kw: Any) -> str:
    left, right = element.left, element.right
    if _is_json(element, compiler):  # stored as text (SQLite)
        left, right = (sa.func.nullif(side, sa.literal_column("'null'")) for side in (left, right))
    elif any(isinstance(t, sa.DateTime) for t in _types(element, compiler)):
        left, right = (_full_datetime_text(side) for side in (left, right))
    return compiler.process(left.is_distinct_from(right), **kw)


def _full_datetime_text(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A datetime stored as text (SQLite) with SQLAlchemy's six fractional digits: the database's
    own ``CURRENT_TIMESTAMP`` (a ``server_default`` or ``func.now()``) writes none, while Continuum
    copies the same instant as SQLAlchemy writes it, ``.000000`` added."""
    text = sa.cast(value, sa.Text)
    return sa.case((sa.func.length(text) == constant(19), text.concat(sa.literal_column("'.000000'"))), else_=text)


@compiles(Differs, "postgresql")
def _differs_postgresql(element: Differs, compiler: SQLCompiler, **kw: Any) -> str:
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.dialects.postgresql import JSONB

    left, right = element.left, element.right
    if _is_json(element, compiler):
        left, right = (
            sa.func.nullif(sa.cast(side, JSONB), sa.literal_column("'null'::jsonb")) for side in (left, right)
        )
    elif any(isinstance(t, sa.ARRAY) and _is_json_type(t.item_type, compiler) for t in _types(element, compiler)):
        left, right = (sa.cast(side, postgresql.ARRAY(JSONB)) for side in (left, right))  # json[]: no equality either
    return compiler.process(left.is_distinct_from(right), **kw)


def as_version_type(value: ColumnElement[Any], version_type: Any) -> ColumnElement[Any]:
    """Return a live column's ``value`` in its version column's type, where the database needs it.

    That is where the database would not take one for the other in a ``CASE``, a ``UNION`` or a
    comparison:

    - different enum types (sqlalchemy-history gives version tables enums of their own,
      ``history_<name>``, which PostgreSQL neither compares nor assigns to the live enum):
      converted by way of text;
    - JSON: see :class:`InJsonType`."""
    live_type = value.type
    if isinstance(live_type, sa.Enum) and isinstance(version_type, sa.Enum) and live_type.name != version_type.name:
        return sa.cast(sa.cast(value, sa.Text), version_type)
    if _may_be_json(version_type):
        return InJsonType(value, version_type)
    return value


def _may_be_json(type_: Any) -> bool:
    """Whether ``type_`` may be JSON, or an array of it, on some dialect (a ``TypeDecorator``
    decides per dialect, as sqlalchemy-utils' ``JSONType`` does)."""
    return isinstance(_element_type(type_), (sa.JSON, sa.types.TypeDecorator))


def _element_type(type_: Any) -> Any:
    """An array type's element type; any other type itself."""
    return type_.item_type if isinstance(type_, sa.ARRAY) else type_


class InJsonType(ColumnElement[Any]):
    """A JSON ``value`` (or array of JSON) in the JSON type ``type_``.

    - On PostgreSQL: cast, since ``json`` and ``jsonb`` meet in one ``CASE`` or ``UNION`` only so,
      and which of the two the database holds may not be what the models say (offline, nothing
      else is known). A cast to the type the value already has is no operation.
    - Elsewhere, and where ``type_`` is no JSON on the dialect: the value itself."""

    inherit_cache = True
    _traverse_internals = [("value", InternalTraversal.dp_clauseelement), ("type", InternalTraversal.dp_type)]

    def __init__(self, value: ColumnElement[Any], type_: Any) -> None:
        self.value = value
        self.type = type_

    @property
    def _from_objects(self) -> list[Any]:
        return self.value._from_objects


@compiles(InJsonType)
def _in_json_type(element: InJsonType, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.value, **kw)


@compiles(InJsonType, "postgresql")
def _in_json_type_postgresql(element: InJsonType, compiler: SQLCompiler, **kw: Any) -> str:
    type_ = _dialect_type(element.type, compiler)
    if not _is_json_type(_element_type(type_), compiler):
        return compiler.process(element.value, **kw)
    return compiler.process(sa.cast(element.value, type_), **kw)


def unset(flag: ColumnElement[bool]) -> ColumnElement[bool]:
    """Whether a mod flag is not true: false or NULL (``flag IS NOT true``)."""
    return flag.is_not(sa.true())


def constant(value: int) -> ColumnElement[int]:
    """An integer written into the SQL text, so offline scripts need no bound parameters."""
    return sa.literal_column(str(int(value)), sa.SmallInteger)


def same_entity(table: VersionedTable, left: Any, right: Any) -> list[ColumnElement[bool]]:
    """Conditions matching rows of two column collections of ``table`` on the entity key.

    A primary key is never NULL, so plain ``=`` lets the database use its index; a key made
    of all columns (an association table without a primary key) is compared NULL-safely.
    """
    if table.primary_key:
        return [left[k] == right[k] for k in table.entity_key]
    return [left[k].is_not_distinct_from(right[k]) for k in table.entity_key]


def same_entity_across(
    table: VersionedTable, columns: Any, other: VersionedTable, other_columns: Any
) -> list[ColumnElement[bool]]:
    """Conditions matching rows of ``table`` and ``other``, two tables of a joined-table inheritance
    hierarchy, on the entity: primary keys paired in order (each table is keyed like the base)."""
    pairs = zip(table.entity_key, other.entity_key, strict=True)
    return [columns[k] == other_columns[o] for k, o in pairs]


class FullJoinSelect(sa.sql.Select):  # type: ignore[type-arg]
    """A ``SELECT`` over a ``FULL JOIN``, with an equivalent ``fallback`` (built by the callable,
    only for the dialects that need it) that must return the same columns and rows.

    SQLite gets ``fallback``: its ``FULL JOIN`` (3.39+) of a materialised subquery builds no
    index and rescans the subquery for every row of the other side (quadratic: 10 s at 20k rows,
    where the ``UNION ALL`` fallback takes 0.05 s).
    """

    inherit_cache = False
    fallback: Callable[[], sa.sql.expression.SelectBase]

    @classmethod
    def of(cls, select: sa.Select[Any], fallback: Callable[[], sa.sql.expression.SelectBase]) -> FullJoinSelect:
        full = cls.__new__(cls)
        full.__dict__.update(select.__dict__)
        full.fallback = fallback
        return full


@compiles(FullJoinSelect, "sqlite")
def _full_join_select_sqlite(element: FullJoinSelect, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.fallback(), **kw)


class DistinctOn(roles.StatementOptionRole, sa.sql.expression.ClauseElement):
    """``DISTINCT ON (columns)``, a ``SELECT`` prefix for PostgreSQL (attach it with
    ``prefix_with(..., dialect="postgresql")``)."""

    inherit_cache = False

    def __init__(self, *columns: ColumnElement[Any]) -> None:
        self.columns = columns


@compiles(DistinctOn)
def _distinct_on(element: DistinctOn, compiler: SQLCompiler, **kw: Any) -> str:
    return "DISTINCT ON (" + ", ".join(compiler.process(c, **kw) for c in element.columns) + ")"


class UnlessDistinctOn(ColumnElement[bool]):
    """A filter that :class:`DistinctOn` makes redundant: ``condition`` where the dialect has no
    ``DISTINCT ON``, ``true`` on PostgreSQL."""

    inherit_cache = False
    type = sa.Boolean()

    def __init__(self, condition: ColumnElement[bool]) -> None:
        self.condition = condition

    @property
    def _from_objects(self) -> list[Any]:
        return list(self.condition._from_objects)


@compiles(UnlessDistinctOn)
def _unless_distinct_on(element: UnlessDistinctOn, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.condition, **kw)


@compiles(UnlessDistinctOn, "postgresql")
def _unless_distinct_on_postgresql(element: UnlessDistinctOn, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.true(), **kw)


class CreateTemporaryTableAs(sa.schema.ExecutableDDLElement):
    """``CREATE TEMPORARY TABLE <table> AS <select>``: ``select``'s rows, computed once.

    On MariaDB ``table``'s primary key, where it declares one, is created with it (InnoDB then
    finds a row of it by key; the other databases create none), and with ``whole_derived`` the
    select's derived tables are computed whole, once (see the MariaDB form)."""

    inherit_cache = False

    def __init__(self, table: sa.Table, select: sa.SelectBase, whole_derived: bool = False) -> None:
        self.table = table
        self.select = select
        self.whole_derived = whole_derived


@compiles(CreateTemporaryTableAs)
def _create_temporary_table_as(element: CreateTemporaryTableAs, compiler: Any, **kw: Any) -> str:
    select = element.select.compile(dialect=compiler.dialect, compile_kwargs={"literal_binds": True})
    return f"CREATE TEMPORARY TABLE {compiler.preparer.format_table(element.table)} AS {select}"


class DropTemporaryTableIfExists(sa.schema.ExecutableDDLElement):
    """``DROP TABLE IF EXISTS`` of the *temporary* table ``table``, schema-qualified with the
    session's temporary schema, so that a permanent table of that name is never touched."""

    inherit_cache = False

    def __init__(self, table: sa.Table) -> None:
        self.table = table


@compiles(DropTemporaryTableIfExists)
def _drop_temporary_table(element: DropTemporaryTableIfExists, compiler: Any, **kw: Any) -> str:
    return f"DROP TABLE IF EXISTS temp.{compiler.preparer.quote(element.table.name)}"


@compiles(DropTemporaryTableIfExists, "postgresql")
def _drop_temporary_table_postgresql(element: DropTemporaryTableIfExists, compiler: Any, **kw: Any) -> str:
    return f"DROP TABLE IF EXISTS pg_temp.{compiler.preparer.quote(element.table.name)}"


class Analyze(sa.schema.ExecutableDDLElement):
    """``ANALYZE <table>``: statistics for a freshly filled (temporary) table.

    PostgreSQL samples only ``columns`` (the ones later statements join on; the row count is
    kept either way), a fraction of the cost of every column; SQLite has no column list.
    """

    inherit_cache = False

    def __init__(self, table: sa.Table, columns: Sequence[str] = ()) -> None:
        self.table = table
        self.columns = tuple(columns)


@compiles(Analyze)
def _analyze(element: Analyze, compiler: Any, **kw: Any) -> str:
    return f"ANALYZE {compiler.preparer.format_table(element.table)}"


@compiles(Analyze, "postgresql")
def _analyze_columns(element: Analyze, compiler: Any, **kw: Any) -> str:
    if not element.columns:
        return _analyze(element, compiler, **kw)
    columns = ", ".join(compiler.preparer.quote(c) for c in element.columns)
    return f"{_analyze(element, compiler, **kw)} ({columns})"


class UtcNow(ColumnElement[Any]):
    """The current time for ``issued_at``: naive UTC, the form Continuum writes, or with
    ``timezone`` (a ``timestamptz`` column) the current instant with its zone."""

    inherit_cache = False

    def __init__(self, timezone: bool = False) -> None:
        self.timezone = timezone
        self.type = sa.DateTime(timezone=timezone)


@compiles(UtcNow)
def _utc_now(element: UtcNow, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(UtcNow, "sqlite")
def _utc_now_sqlite(element: UtcNow, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores Continuum's datetimes as text with six fractional digits, compared as text;
    # CURRENT_TIMESTAMP has none (so it sorted before Continuum's records of the same second)
    now = sa.func.strftime(sa.literal("%Y-%m-%d %H:%M:%f"), sa.literal("now")).concat(sa.literal("000"))
    return compiler.process(now, **{**kw, "literal_binds": True})


@compiles(UtcNow, "postgresql")
def _utc_now_postgresql(element: UtcNow, compiler: SQLCompiler, **kw: Any) -> str:
    return "now()" if element.timezone else "(now() AT TIME ZONE 'utc')"


class NativeVersioningInstalled(ColumnElement[bool]):
    """Whether Continuum's native (PostgreSQL trigger) versioning is installed on ``transaction``.

    It is when the transaction table has the ``transaction_trigger`` Continuum puts on it. False
    where the database has no triggers of that kind (everywhere but PostgreSQL)."""

    inherit_cache = False
    type = sa.Boolean()

    def __init__(self, transaction: sa.Table) -> None:
        self.transaction = transaction


@compiles(NativeVersioningInstalled)
def _native_versioning_installed(element: NativeVersioningInstalled, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.false(), **kw)


@compiles(NativeVersioningInstalled, "postgresql")
def _native_versioning_installed_postgresql(
    element: NativeVersioningInstalled, compiler: SQLCompiler, **kw: Any
) -> str:
    trigger = sa.table("pg_trigger", sa.column("tgrelid"), sa.column("tgname"))
    regclass = to_regclass(element.transaction.schema, element.transaction.name)
    exists = sa.exists().where(trigger.c.tgrelid == regclass, trigger.c.tgname == sa.literal("transaction_trigger"))
    return compiler.process(exists, **kw)


def to_regclass(schema: str | None, name: str) -> ColumnElement[Any]:
    """Return PostgreSQL's ``to_regclass('"schema"."name"')``: the relation's oid, or NULL (no error).

    NULL where the relation does not exist. The name is quoted as PostgreSQL reads it, in a bound
    text value (the preparer's quoting may double percent signs). MariaDB: see
    :class:`RegClass`."""
    return RegClass(schema, name)


class RegClass(ColumnElement[Any]):
    """:func:`to_regclass`: whether the relation ``schema.name`` exists (NULL where it does not).

    - PostgreSQL: its function, giving the relation's oid.
    - MariaDB: 1 where ``information_schema.tables`` lists the table, view or sequence
      ``schema.name`` (``schema``: the current database where ``None``)."""

    inherit_cache = False
    type = sa.Integer()

    def __init__(self, schema: str | None, name: str) -> None:
        self.schema = schema
        self.name = name


@compiles(RegClass)
def _regclass(element: RegClass, compiler: SQLCompiler, **kw: Any) -> str:
    parts = (element.schema, element.name)
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in parts if part is not None)
    return compiler.process(sa.func.to_regclass(sa.literal(quoted, sa.Text)), **kw)


class NextTransactionId(ColumnElement[int]):
    """The id a new row of Continuum's transaction table gets.

    Where the dialect has sequences, the next value of ``sequence`` (Continuum's
    ``transaction_id_seq``, which PostgreSQL does not attach as a column default). Elsewhere
    (SQLite's ``INTEGER PRIMARY KEY``), one more than the largest id, as the database itself
    would assign, and than the largest of ``above`` (the version tables' transaction ids: a
    transaction table emptied or recreated must not date the new versions before, or among, the
    existing ones; an indexed ``max()``). ``reuse``, a scalar expression, is the id of a record
    to join where it is not NULL (the database transaction's current record: see
    :func:`~alembic_versioning.sql.backfill.reused_id`).
    """

    inherit_cache = False
    type = sa.BigInteger()

    def __init__(
        self,
        transaction_id: sa.Column[Any],
        sequence: sa.Sequence,
        reuse: ColumnElement[Any] | None,
        above: Sequence[sa.Column[Any]] = (),
    ) -> None:
        self.transaction_id = transaction_id
        self.sequence = sequence
        self.reuse = reuse
        self.above = above


def _joining(element: NextTransactionId, new: ColumnElement[Any]) -> ColumnElement[Any]:
    """``new``, the id a new record gets, unless ``element`` has a record to join (``reuse``)."""
    return new if element.reuse is None else sa.func.coalesce(element.reuse, new)


@compiles(NextTransactionId)
def _next_transaction_id(element: NextTransactionId, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.supports_sequences:
        new: ColumnElement[Any] = element.sequence.next_value()
    else:
        ids = [sa.select(sa.func.max(c).label("id")) for c in (element.transaction_id, *element.above)]
        highest = sa.union_all(*ids).subquery("highest")
        new = sa.select(sa.func.coalesce(sa.func.max(highest.c.id), constant(0)) + constant(1)).scalar_subquery()
    return compiler.process(_joining(element, new), **kw)


class StopIf(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """Stop the migration with ``message`` where ``condition`` holds, online and in an offline script alike.

    - PostgreSQL: a ``DO`` block raising the error; MariaDB: a compound statement signalling it
      (``messages`` may word it for a dialect).
    - Elsewhere: the comment ``note`` (the statements there need no such check; control
      characters escaped, see :func:`~alembic_versioning.comments.one_line`).
    - With ``everywhere``, SQLite stops too: a ``SELECT`` failing with ``JSON path error near
      '<message>'`` where the condition holds (SQLite has no statement raising an error of one's
      own outside a trigger)."""

    inherit_cache = False

    def __init__(
        self,
        condition: ColumnElement[bool],
        message: str,
        note: str,
        messages: dict[str, str] | None = None,
        everywhere: bool = False,
    ) -> None:
        self.condition = condition
        self.message = message
        self.note = note
        #: ``message`` in another dialect's words (a hint with SQL in it), by dialect name
        self.messages = messages or {}
        self.everywhere = everywhere


def refuse_native_versioning(transaction: sa.Table, message: str) -> StopIf:
    """Stop with ``message`` where Continuum's native versioning is installed on ``transaction``.

    For offline scripts rendered without knowing (see :class:`NativeVersioningInstalled`)."""
    return StopIf(NativeVersioningInstalled(transaction), message, "no native versioning on this database")


@compiles(StopIf)
def _stop_if(element: StopIf, compiler: SQLCompiler, **kw: Any) -> str:
    return f"-- {one_line(element.note)}"


@compiles(StopIf, "sqlite")
def _stop_if_sqlite(element: StopIf, compiler: SQLCompiler, **kw: Any) -> str:
    if not element.everywhere:
        return _stop_if(element, compiler, **kw)
    # a JSON path must start with '$': json_extract() refuses the message, quoting it in its error
    # as written in the SQL (so with single quotes doubled: double ones read better there)
    message = " " + element.message.replace("'", '"')
    fail = sa.func.json_extract(sa.literal("{}", sa.Text), sa.literal(message, sa.Text))
    stop = sa.select(sa.case((element.condition, fail)))
    return compiler.process(stop, **{**kw, "literal_binds": True})


@compiles(StopIf, "postgresql")
def _stop_if_postgresql(element: StopIf, compiler: SQLCompiler, **kw: Any) -> str:
    literal = {**kw, "literal_binds": True}
    condition = compiler.process(element.condition, **literal)
    message = compiler.process(sa.literal(element.message, sa.Text), **literal)
    body = f" BEGIN IF {condition} THEN RAISE EXCEPTION USING MESSAGE = {message}; END IF; END "
    tag = "$av_guard$"
    while tag in body:  # a name may hold any dollar quote
        tag = tag[:-1] + "_$"
    return f"DO {tag}{body}{tag}"


class LockForWrite(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """Keep other writers off ``tables`` until the migration's transaction ends.

    - PostgreSQL: ``LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE`` (readers go on, writers wait).
    - SQLite: a write that changes nothing (``DELETE ... WHERE 0`` on the last of ``tables``),
      which takes the database's write lock at once, as ``BEGIN IMMEDIATE`` does: the driver opens
      its transaction before it and the wait honours the connection's busy timeout, so nothing
      the operation reads afterwards can change before it commits.
    - MariaDB: see :func:`_lock_for_write_mariadb`; with ``reserve`` (a backfill's transaction
      id sequence) it first takes the id the backfill's new record gets
      (:data:`RESERVED_TRANSACTION_ID`, read by :class:`NextTransactionId`).
    """

    inherit_cache = False

    def __init__(self, *tables: sa.Table, reserve: sa.Sequence | None = None) -> None:
        self.tables = tables
        self.reserve = reserve


@compiles(LockForWrite)
def _lock_for_write(element: LockForWrite, compiler: SQLCompiler, **kw: Any) -> str:
    return f"DELETE FROM {compiler.preparer.format_table(element.tables[-1])} WHERE 0"


@compiles(LockForWrite, "postgresql")
def _lock_for_write_postgresql(element: LockForWrite, compiler: SQLCompiler, **kw: Any) -> str:
    names = ", ".join(compiler.preparer.format_table(t) for t in element.tables)
    return f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE"


class RowAddress(ColumnElement[Any]):
    """A row's physical address within the statement: PostgreSQL's ``ctid``, NULL elsewhere.

    Read once and used by :class:`UpdateAtAddresses` later in the same transaction, with the table
    locked against other writers, it finds the rows again without an index or a join.
    """

    inherit_cache = False

    def __init__(self, table: sa.Table) -> None:
        self.table = table

    @property
    def _from_objects(self) -> list[Any]:
        return [self.table]


@compiles(RowAddress)
def _row_address(element: RowAddress, compiler: SQLCompiler, **kw: Any) -> str:
    return "NULL"


@compiles(RowAddress, "postgresql")
def _row_address_postgresql(element: RowAddress, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.preparer.format_table(element.table)}.ctid"


class UpdateAtAddresses(sa.sql.dml.Update):
    """An ``UPDATE`` of the rows whose :class:`RowAddress` another table holds, with ``by_key``,
    which finds the same rows by key, for databases without addresses.

    On PostgreSQL its ``WHERE ctid = ANY(ARRAY(...))`` (:class:`AddressIn`) is a TID scan:
    only those rows are read, where a join on the key reads the whole table.
    """

    inherit_cache = False
    by_key: sa.Update

    @classmethod
    def of(cls, by_address: sa.Update, by_key: sa.Update) -> UpdateAtAddresses:
        update = cls.__new__(cls)
        update.__dict__.update(by_address.__dict__)
        update.by_key = by_key
        return update


@compiles(UpdateAtAddresses)
def _update_at_addresses(element: UpdateAtAddresses, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.by_key, **kw)


@compiles(UpdateAtAddresses, "postgresql")
def _update_at_addresses_postgresql(element: UpdateAtAddresses, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.visit_update(element, **kw)


class AddressIn(ColumnElement[bool]):
    """``table.ctid = ANY(ARRAY(addresses))``, for :class:`UpdateAtAddresses` on PostgreSQL."""

    inherit_cache = False
    type = sa.Boolean()

    def __init__(self, table: sa.Table, addresses: sa.Select[Any]) -> None:
        self.table = table
        self.addresses = addresses

    @property
    def _from_objects(self) -> list[Any]:
        return [self.table]


@compiles(AddressIn, "postgresql")
def _address_in_postgresql(element: AddressIn, compiler: SQLCompiler, **kw: Any) -> str:
    addresses = compiler.process(element.addresses.scalar_subquery(), **kw)  # "(SELECT ...)"
    return f"{compiler.preparer.format_table(element.table)}.ctid = ANY(ARRAY{addresses})"


# --- MariaDB (dialect "mariadb", and "mysql" where the server is MariaDB) ----------------------------
#
# Every construct above gets its MariaDB form here. What differs from PostgreSQL: no FULL JOIN,
# no DISTINCT ON, no ctid; ``<=>`` for NULL-safe comparison, text compared character by character
# as ``utf8mb4_nopad_bin`` (MariaDB's collations ignore case and trailing spaces, and a column's
# character set is its own); temporary tables dropped with ``DROP TEMPORARY TABLE`` (a plain
# ``DROP TABLE`` commits); no ``ANALYZE`` (``ANALYZE TABLE`` commits too); ``UTC_TIMESTAMP(6)``;
# Continuum's ``transaction_id_seq`` is a SEQUENCE (``nextval``); guards are compound statements
# (``BEGIN NOT ATOMIC ... END``) raising with ``SIGNAL``, which the ``mariadb`` client reads
# between ``DELIMITER`` lines (see :func:`delimited`).

MARIADB = ("mariadb", "mysql")


def _text_like(type_: Any, compiler: SQLCompiler) -> bool:
    return isinstance(_dialect_type(type_, compiler), (sa.String, sa.JSON))


@compiles(Differs, *MARIADB)
def _differs_mariadb(element: Differs, compiler: SQLCompiler, **kw: Any) -> str:
    left, right = element.left, element.right
    if _is_json(element, compiler):  # stored as text: the JSON null is SQL NULL
        left, right = (sa.func.nullif(side, sa.literal_column("'null'")) for side in (left, right))
    left_sql, right_sql = (compiler.process(side.self_group(), **kw) for side in (left, right))
    if _is_json(element, compiler) or any(_text_like(t, compiler) for t in _types(element, compiler)):
        # character by character: a case-insensitive, PAD SPACE collation takes 'a' and 'A ' for
        # equal (utf8mb4_bin too pads); the same text in two character sets is the same (bytes
        # would differ: a legacy latin1 live column, its utf8mb4 version column)
        left_sql, right_sql = (
            f"CONVERT({side} USING utf8mb4) COLLATE utf8mb4_nopad_bin" for side in (left_sql, right_sql)
        )
    return f"(NOT ({_grouped(left_sql)} <=> {_grouped(right_sql)}))"


def _grouped(sql: str) -> str:
    """``sql`` in parentheses unless it is a plain (qualified, quoted) name: ``<=>`` binds tighter
    than ``OR`` and ``IS``."""
    plain = sql.replace("`", "").replace(".", "").replace("_", "")
    return sql if plain.isalnum() else f"({sql})"


@compiles(FullJoinSelect, *MARIADB)
def _full_join_select_mariadb(element: FullJoinSelect, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.fallback(), **kw)


@compiles(DropTemporaryTableIfExists, *MARIADB)
def _drop_temporary_table_mariadb(element: DropTemporaryTableIfExists, compiler: Any, **kw: Any) -> str:
    return f"DROP TEMPORARY TABLE IF EXISTS {compiler.preparer.quote(element.table.name)}"


@compiles(CreateTemporaryTableAs, *MARIADB)
def _create_temporary_table_as_mariadb(element: CreateTemporaryTableAs, compiler: Any, **kw: Any) -> str:
    """``CREATE TEMPORARY TABLE <table> (PRIMARY KEY (...)) AS <select>`` where ``table`` has a
    primary key: a later join on it then looks rows up by key, where a table without an index is
    read whole for every row of the other side (block nested loops).

    With ``whole_derived``, under ``SET STATEMENT optimizer_switch='split_materialized=off' FOR``:
    MariaDB would otherwise compute a derived table with a window partitioned by the key it is
    joined on as a ``LATERAL DERIVED`` table, once per row of the other side (at 1M versions the
    vacuum's self-join, 0.3 s at 200k, took 45 s so; 5 s computed whole)."""
    key = element.table.primary_key.columns
    sql = _create_temporary_table_as(element, compiler, **kw)
    if key:
        select = element.select.compile(dialect=compiler.dialect, compile_kwargs={"literal_binds": True})
        columns = ", ".join(compiler.preparer.quote(c.name) for c in key)
        table = compiler.preparer.format_table(element.table)
        sql = f"CREATE TEMPORARY TABLE {table} (PRIMARY KEY ({columns})) AS {select}"
    if element.whole_derived:
        sql = f"SET STATEMENT optimizer_switch='split_materialized=off' FOR {sql}"
    return sql


@compiles(sa.schema.DropTable, *MARIADB)
def _drop_table_mariadb(element: sa.schema.DropTable, compiler: Any, **kw: Any) -> str:
    """``DROP TEMPORARY TABLE`` for a table declared ``TEMPORARY`` (a plain ``DROP TABLE`` commits
    the transaction, also of a temporary table); any other table as SQLAlchemy drops it."""
    table = element.element
    if "TEMPORARY" in (p.upper() for p in getattr(table, "_prefixes", ())):
        return f"DROP TEMPORARY TABLE {compiler.preparer.format_table(table)}"
    return compiler.visit_drop_table(element, **kw)


@compiles(RowAddress, *MARIADB)
def _row_address_mariadb(element: RowAddress, compiler: SQLCompiler, **kw: Any) -> str:
    # a typed NULL: InnoDB cannot create a table (CREATE ... AS) with a column a UNION types as NULL
    return "CAST(NULL AS SIGNED)"


@compiles(Analyze, *MARIADB)
def _analyze_mariadb(element: Analyze, compiler: Any, **kw: Any) -> str:
    # ANALYZE TABLE commits the transaction; InnoDB keeps a temporary table's row count anyway
    return "DO 0"


@compiles(UtcNow, *MARIADB)
def _utc_now_mariadb(element: UtcNow, compiler: SQLCompiler, **kw: Any) -> str:
    return "UTC_TIMESTAMP(6)"  # CURRENT_TIMESTAMP is the session's local time


#: The MariaDB session variable holding the id :class:`LockForWrite` took for a backfill's record
#: before its lock (``NULL`` where the sequence does not exist).
RESERVED_TRANSACTION_ID = "@av_transaction_id"


@compiles(NextTransactionId, *MARIADB)
def _next_transaction_id_mariadb(element: NextTransactionId, compiler: SQLCompiler, **kw: Any) -> str:
    # Continuum's Sequence is a SEQUENCE on MariaDB (the dialect knows it only once connected:
    # offline it would otherwise take max() + 1, an id the sequence hands out again). The id is
    # the one the backfill's lock took first (see _lock_for_write_mariadb).
    reserved: ColumnElement[Any] = sa.func.coalesce(
        sa.literal_column(RESERVED_TRANSACTION_ID), element.sequence.next_value()
    )
    return compiler.process(_joining(element, reserved), **kw)


#: MariaDB's list of tables, views and sequences.
_TABLES = sa.table(
    "tables", sa.column("table_schema"), sa.column("table_name"), sa.column("table_rows"), schema="information_schema"
)


def _listed_table(schema: str | None, name: str, value: ColumnElement[Any]) -> sa.Select[Any]:
    """``value`` (of :data:`_TABLES`' columns) for the table, view or sequence ``schema.name``
    (``schema``: the current database where ``None``)."""
    in_schema = sa.literal(schema, sa.String) if schema is not None else sa.func.database()
    where = (_TABLES.c.table_schema == in_schema, _TABLES.c.table_name == sa.literal(name, sa.String))
    return sa.select(value).select_from(_TABLES).where(*where).limit(1)


@compiles(RegClass, *MARIADB)
def _regclass_mariadb(element: RegClass, compiler: SQLCompiler, **kw: Any) -> str:
    found = _listed_table(element.schema, element.name, constant(1))
    return compiler.process(found.scalar_subquery(), **{**kw, "literal_binds": True})


#: The most bytes (UTF-8) of a ``SIGNAL`` message the client receives: ``MESSAGE_TEXT`` holds
#: 512 characters (a longer one fails with error 1648, "Data too long for condition item",
#: instead of raising the message), and the error packet 511 bytes of it.
SIGNAL_MESSAGE_BYTES = 511


def _signal(message: str, compiler: SQLCompiler, **kw: Any) -> str:
    """``SIGNAL`` raising ``message``, cut to :data:`SIGNAL_MESSAGE_BYTES` (``...`` ending a cut
    one): write the part that must show first."""
    encoded = message.encode()
    if len(encoded) > SIGNAL_MESSAGE_BYTES:
        message = encoded[: SIGNAL_MESSAGE_BYTES - 3].decode(errors="ignore") + "..."
    text = compiler.process(sa.literal(message, sa.String), **{**kw, "literal_binds": True})
    return f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = {text}"


@compiles(StopIf, *MARIADB)
def _stop_if_mariadb(element: StopIf, compiler: SQLCompiler, **kw: Any) -> str:
    condition = compiler.process(element.condition, **{**kw, "literal_binds": True})
    message = element.messages.get("mariadb", element.message) if element.messages else element.message
    return f"BEGIN NOT ATOMIC IF {condition} THEN {_signal(message, compiler, **kw)}; END IF; END"


#: The isolation levels under which :class:`LockForWrite` keeps new writers off (gap locks).
LOCKING_ISOLATION = ("REPEATABLE-READ", "SERIALIZABLE")


@compiles(LockForWrite, *MARIADB)
def _lock_for_write_mariadb(element: LockForWrite, compiler: SQLCompiler, **kw: Any) -> str:
    """Compile the writers' lock for MariaDB: a locking read of every row of the transaction table.

    InnoDB has no table lock a transaction can take (``LOCK TABLES`` commits and does not mix with
    transactions). So the lock reads every row of the first of ``tables``, the transaction table,
    which every Continuum writer inserts its record into before it touches a versioned table:

    - it waits for every writer holding an uncommitted record, whatever its id;
    - its next-key locks (up to the supremum) keep any later writer's record out until the
      migration commits;
    - only REPEATABLE READ and SERIALIZABLE take gap locks: the guard stops under the others;
    - the count goes into a variable: ``FOR UPDATE`` in a subquery, as in ``DO (SELECT ...)``,
      locks nothing.

    The later statements' reads are locking reads too (InnoDB reads the latest committed rows
    inside INSERT/CREATE ... SELECT, UPDATE and DELETE), not the migration's snapshot.

    With ``reserve``, a backfill's id is taken from the sequence *before* the lock: nothing holds
    off ``NEXTVAL``, so a Continuum writer that takes its id while the backfill runs, and then waits
    for the lock with its record's ``INSERT``, gets a later id than the backfill's, and its version
    comes after the backfill's, as its commit does."""
    table = compiler.preparer.format_table(element.tables[0])
    reserve = ""
    if element.reserve is not None:
        exists = _listed_table(element.reserve.schema, element.reserve.name, constant(1)).scalar_subquery()
        found = compiler.process(exists, **{**kw, "literal_binds": True})
        sequence = compiler.preparer.format_sequence(element.reserve)
        reserve = (
            f"SET {RESERVED_TRANSACTION_ID} = NULL; "
            f"IF {found} IS NOT NULL THEN SET {RESERVED_TRANSACTION_ID} = NEXTVAL({sequence}); END IF; "
        )
    levels = ", ".join(f"'{level}'" for level in LOCKING_ISOLATION)
    message = (
        "alembic-versioning locks Continuum's writers out with InnoDB's next-key locks, which only "
        "REPEATABLE READ and SERIALIZABLE take; run the migration at REPEATABLE READ, MariaDB's default "
        "(SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ before it begins)."
    )
    return (
        f"BEGIN NOT ATOMIC DECLARE av_rows BIGINT; "
        f"IF @@tx_isolation NOT IN ({levels}) THEN {_signal(message, compiler, **kw)}; END IF; "
        f"{reserve}SELECT count(*) INTO av_rows FROM {table} FOR UPDATE; END"
    )


def is_compound(statement: Any, dialect: Any) -> bool:
    """Whether ``statement`` compiles to a compound statement on ``dialect`` (MariaDB's guards and
    lock), which a client script needs between ``DELIMITER`` lines (see :func:`delimited`)."""
    return dialect.name in MARIADB and isinstance(statement, (StopIf, LockForWrite))


def delimited(text: str) -> str:
    """A compound statement's ``text`` as the ``mariadb`` client reads it (it would end the
    statement at its first ``;``): between ``DELIMITER`` lines, with a delimiter ``text`` lacks."""
    delimiter = "$$"
    while delimiter in text:
        delimiter += "$"
    return f"DELIMITER {delimiter}\n{text} {delimiter}\nDELIMITER ;"


class LockTimeout(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """Bound how long the current transaction waits for a lock, e.g. :class:`LockForWrite`'s.

    - PostgreSQL: ``SET LOCAL lock_timeout`` (milliseconds; the transaction's alone): a lock not
      granted in time fails with SQLSTATE 55P03, and the writers queued behind the request go on.
    - SQLite: a comment; the connection's busy timeout bounds the wait (a connection setting,
      ``sqlite3.connect(timeout=...)``, 5 s by default), and nothing queues behind a waiting writer.
    - MariaDB: ``SET SESSION innodb_lock_wait_timeout`` (whole seconds, rounded up; it stays set for
      the connection's later statements, so a run reads it first, :class:`SessionLockWait`, and
      sets it back): a lock not granted in time fails with error 1205.
    """

    inherit_cache = False

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


@compiles(LockTimeout)
def _lock_timeout(element: LockTimeout, compiler: SQLCompiler, **kw: Any) -> str:
    return "-- lock wait: the connection's busy timeout"


@compiles(LockTimeout, "postgresql")
def _lock_timeout_postgresql(element: LockTimeout, compiler: SQLCompiler, **kw: Any) -> str:
    return f"SET LOCAL lock_timeout = {max(1, round(element.seconds * 1000))}"


@compiles(LockTimeout, *MARIADB)
def _lock_timeout_mariadb(element: LockTimeout, compiler: SQLCompiler, **kw: Any) -> str:
    # whole seconds (rounded up); InnoDB has no transaction-local setting: the session keeps it
    return f"SET SESSION innodb_lock_wait_timeout = {max(1, math.ceil(element.seconds))}"


class SessionLockWait(ColumnElement[Any]):
    """The session's bound on lock waits that :class:`LockTimeout` changes beyond the
    transaction, in seconds: MariaDB's ``innodb_lock_wait_timeout``; NULL elsewhere (PostgreSQL's
    is the transaction's alone, SQLite's is the connection's busy timeout, left alone)."""

    inherit_cache = False
    type = sa.Integer()


@compiles(SessionLockWait)
def _session_lock_wait(element: SessionLockWait, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.null(), **kw)


@compiles(SessionLockWait, *MARIADB)
def _session_lock_wait_mariadb(element: SessionLockWait, compiler: SQLCompiler, **kw: Any) -> str:
    return "@@SESSION.innodb_lock_wait_timeout"


#: PostgreSQL's ``work_mem`` for a batch: enough to sort a batch's versions in memory.
BATCH_WORK_MEM = "64MB"


class BatchSettings(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """Set up the current transaction for a batch's short statements (the transaction's alone).

    - PostgreSQL: no JIT compilation (on a large table the statements' cost estimates pass
      ``jit_above_cost``, and compiling one took longer than running it: 50 to 150 ms at every
      batch), and ``work_mem`` of :data:`BATCH_WORK_MEM` (a batch's versions, read by key range,
      are sorted; at the default 4MB the sort spills to disk). Unless ``durable``, the commit
      does not wait for its WAL to reach the disk (``synchronous_commit = off``): a crash may
      lose the last such batches whole (never part of one), which a re-run redoes; the run's
      last batch is ``durable``, and its commit flushes theirs too.
    - Elsewhere: a comment.
    """

    inherit_cache = False

    def __init__(self, durable: bool = True) -> None:
        self.durable = durable


@compiles(BatchSettings)
def _batch_settings(element: BatchSettings, compiler: SQLCompiler, **kw: Any) -> str:
    return "-- no batch settings here"


@compiles(BatchSettings, "postgresql")
def _batch_settings_postgresql(element: BatchSettings, compiler: SQLCompiler, **kw: Any) -> str:
    settings = {"jit": "off", "work_mem": BATCH_WORK_MEM, **({} if element.durable else {"synchronous_commit": "off"})}
    return "SELECT " + ", ".join(f"set_config('{k}', '{v}', true)" for k, v in settings.items())


class RowEstimate(ColumnElement[Any]):
    """The number of rows of ``table`` by estimate, read without a scan; NULL where none is known.

    - PostgreSQL: ``pg_class.reltuples`` (NULL before the table's first ``VACUUM`` or ``ANALYZE``).
    - SQLite: the largest ``rowid``, one step down the table's b-tree (rows deleted since count
      too); NULL for a ``WITHOUT ROWID`` table.
    - MariaDB: InnoDB's ``information_schema.tables.table_rows``.
    """

    inherit_cache = False
    type = sa.BigInteger()

    def __init__(self, table: sa.Table) -> None:
        self.table = table


@compiles(RowEstimate)
def _row_estimate(element: RowEstimate, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.null(), **kw)


@compiles(RowEstimate, *MARIADB)
def _row_estimate_mariadb(element: RowEstimate, compiler: SQLCompiler, **kw: Any) -> str:
    # InnoDB's estimate from its statistics (recalculated in the background as rows change)
    rows = sa.cast(_TABLES.c.table_rows, sa.BigInteger)  # BIGINT UNSIGNED: a subquery gives a DECIMAL
    estimate = _listed_table(element.table.schema, element.table.name, rows)
    return compiler.process(estimate.scalar_subquery(), **{**kw, "literal_binds": True})


@compiles(RowEstimate, "postgresql")
def _row_estimate_postgresql(element: RowEstimate, compiler: SQLCompiler, **kw: Any) -> str:
    pg_class = sa.table("pg_class", sa.column("oid"), sa.column("reltuples"))
    known = sa.case((pg_class.c.reltuples >= 0, sa.cast(pg_class.c.reltuples, sa.BigInteger)))
    estimate = sa.select(known).where(pg_class.c.oid == to_regclass(element.table.schema, element.table.name))
    return compiler.process(estimate.scalar_subquery(), **kw)


@compiles(RowEstimate, "sqlite")
def _row_estimate_sqlite(element: RowEstimate, compiler: SQLCompiler, **kw: Any) -> str:
    if not element.table.dialect_options["sqlite"]["with_rowid"]:
        return compiler.process(sa.null(), **kw)
    largest: sa.Select[Any] = sa.select(sa.func.max(sa.literal_column("rowid"))).select_from(element.table)
    return compiler.process(largest.scalar_subquery(), **kw)
