"""Compiled constructs that hide dialect differences from the statement builders."""

from __future__ import annotations

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
    """A live column's ``value`` in its version column's type, where the database would not take
    one for the other in a ``CASE``, a ``UNION`` or a comparison: different enum types
    (sqlalchemy-history gives version tables enums of their own, ``history_<name>``, which
    PostgreSQL neither compares nor assigns to the live enum), converted by way of text; JSON, see
    :class:`InJsonType`."""
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
    """A JSON ``value`` (or array of JSON) in the JSON type ``type_``: on PostgreSQL cast, since
    ``json`` and ``jsonb`` meet in one ``CASE`` or ``UNION`` only so, and which of the two the
    database holds may not be what the models say (offline, nothing else is known); elsewhere, and
    where ``type_`` is no JSON on the dialect, the value itself. A cast to the type the value
    already has is no operation."""

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
    """``CREATE TEMPORARY TABLE <table> AS <select>``: ``select``'s rows, computed once."""

    inherit_cache = False

    def __init__(self, table: sa.Table, select: sa.SelectBase) -> None:
        self.table = table
        self.select = select


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
    """Whether Continuum's native (PostgreSQL trigger) versioning is installed on ``transaction``:
    the ``transaction_trigger`` Continuum puts on the transaction table. False where the
    database has no triggers of that kind (everywhere but PostgreSQL)."""

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
    """PostgreSQL's ``to_regclass('"schema"."name"')``: the relation's oid, or NULL (not an error)
    where it does not exist. The name is quoted as PostgreSQL reads it, in a bound text value (the
    preparer's quoting may double percent signs)."""
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name) if part is not None)
    return sa.func.to_regclass(sa.literal(quoted, sa.Text))


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


@compiles(NextTransactionId)
def _next_transaction_id(element: NextTransactionId, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.supports_sequences:
        new: ColumnElement[Any] = element.sequence.next_value()
    else:
        ids = [sa.select(sa.func.max(c).label("id")) for c in (element.transaction_id, *element.above)]
        highest = sa.union_all(*ids).subquery("highest")
        new = sa.select(sa.func.coalesce(sa.func.max(highest.c.id), constant(0)) + constant(1)).scalar_subquery()
    if element.reuse is not None:
        new = sa.func.coalesce(element.reuse, new)
    return compiler.process(new, **kw)


class StopIf(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """Stop the migration with ``message`` where ``condition`` holds, online and in an offline
    script alike. PostgreSQL: a ``DO`` block raising the error; elsewhere the comment ``note``
    (the statements there need no such check; control characters escaped, see
    :func:`~alembic_versioning.comments.one_line`). With ``everywhere``, SQLite stops too: a
    ``SELECT`` failing with ``JSON path error near '<message>'`` where the condition holds (SQLite
    has no statement raising an error of one's own outside a trigger)."""

    inherit_cache = False

    def __init__(self, condition: ColumnElement[bool], message: str, note: str, everywhere: bool = False) -> None:
        self.condition = condition
        self.message = message
        self.note = note
        self.everywhere = everywhere


def refuse_native_versioning(transaction: sa.Table, message: str) -> StopIf:
    """Stop with ``message`` where Continuum's native versioning is installed on ``transaction``
    (see :class:`NativeVersioningInstalled`): for offline scripts rendered without knowing."""
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
    """

    inherit_cache = False

    def __init__(self, *tables: sa.Table) -> None:
        self.tables = tables


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
