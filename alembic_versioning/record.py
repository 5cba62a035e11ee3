"""The Continuum transaction record a backfill writes its versions under: the transaction table's
row, its ``transaction_meta`` and ``transaction_changes`` rows, and the table holding the id of the
database transaction's current record (native versioning's, or the backfills' own), which the
backfills of one database transaction share."""

from __future__ import annotations

import datetime
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.sql.elements import ColumnElement

from .catalog import Catalog, uses_native_versioning
from .errors import VersioningError, missing_table
from .model import VersionedTable
from .operations import BackfillVersionsOp
from .sql.backfill import TransactionRecord, current_record_table, reused_id

if TYPE_CHECKING:  # (importing it while alembic loads its plugins is circular)
    from alembic.runtime.migration import MigrationContext

#: Table of Continuum's TransactionMetaPlugin.
META_TABLE = "transaction_meta"
#: TransactionChangesPlugin's table: (transaction_id, entity_name).
CHANGES_TABLE = "transaction_changes"
#: Continuum's native versioning keeps the current transaction id in this temporary table.
NATIVE_TRANSACTION_TABLE = "temporary_transaction"


def native_transaction_table() -> sa.Table:
    """Native versioning's ``temporary_transaction``, as Continuum's trigger creates it."""
    return sa.Table(
        NATIVE_TRANSACTION_TABLE,
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


def transaction_table(table: VersionedTable) -> sa.Table:
    """The name-only transaction table of ``table``'s versioning."""
    schema, name = table.naming.transaction_location(table.schema)
    return sa.Table(name, sa.MetaData(), schema=schema)


def _core_table(name: str, schema: str | None, known: sa.Table | None, columns: dict[str, Any]) -> sa.Table:
    """A Core table with ``columns`` (name -> fallback type), typed like ``known`` where it has them."""
    known_types = {c.name: c.type for c in known.c} if known is not None else {}
    return sa.Table(
        name, sa.MetaData(), *(sa.Column(c, known_types.get(c, t)) for c, t in columns.items()), schema=schema
    )


def transaction_sequence(name: str, known: sa.Table | None) -> sa.Sequence:
    """The sequence new transaction ids come from.

    The transaction table's own ``Sequence`` when ``target_metadata`` has one; else ``name``,
    which may be ``schema.name`` and otherwise is found on the search path (Continuum's
    ``Sequence('transaction_id_seq')`` has no schema of its own).
    """
    ids = [c for c in known.c if c.name == "id"] if known is not None else []
    default = ids[0].default if ids else None
    if isinstance(default, sa.Sequence):
        return default
    schema, _, sequence = name.rpartition(".")
    return sa.Sequence(sequence, schema=schema or None)


def _check_transaction_values(op: BackfillVersionsOp, found: sa.Table) -> None:
    """Refuse ``op.transaction`` unless it fits the transaction table ``found``.

    Refused:

    - a column ``found`` does not have;
    - a column the database cannot fill itself (NOT NULL, no default) left unfilled by the op."""
    known = {c.name for c in found.c}
    unknown = sorted(set(op.transaction) - known)
    if unknown:
        raise VersioningError(
            f"transaction={op.transaction!r} for table {op.table_name!r}: {found.name!r} has no "
            f"column(s) {unknown}; its columns are {sorted(known)}."
        )
    filled = {"id", "issued_at", *op.transaction}
    required = [
        c.name
        for c in found.c
        if c.name not in filled and not c.nullable and c.server_default is None and c.default is None
    ]
    if required:
        raise VersioningError(
            f"backfill_versions({op.table_name!r}) writes a record into {found.name!r}, whose column(s) "
            f"{required} need a value (NOT NULL, no default); pass transaction={{{required[0]!r}: ...}}."
        )


def transaction_record(operations: Operations, catalog: Catalog, op: BackfillVersionsOp) -> TransactionRecord:
    """The record ``op``'s new versions belong to, checked against the database when online."""
    naming = op.naming
    schema, name = naming.transaction_location(op.schema)
    found = catalog.require(
        name,
        schema,
        f"backfill_versions({op.table_name!r}) writes a transaction record there; "
        f"pass transaction_table=... if the versioning manager's transaction table is named otherwise",
    )
    extra = op.transaction
    if found is not None:
        _check_transaction_values(op, found)
    table = _core_table(
        name,
        schema,
        found,
        {"id": sa.BigInteger(), "issued_at": sa.DateTime(), **{k: sa.types.NULLTYPE for k in extra}},
    )
    values = {k: _transaction_value(operations, op, k, table.c[k].type if found is not None else None) for k in extra}
    meta_table = None
    if op.meta:
        meta_table = _plugin_table(
            catalog,
            found,
            META_TABLE,
            schema,
            f"meta={op.meta!r} for table {op.table_name!r} is written there; enable "
            f"Continuum's TransactionMetaPlugin (and create its table) or leave meta out",
            {"transaction_id": sa.BigInteger(), "key": sa.String(), "value": sa.String()},
        )
    changes_table = None
    if op.entity_names:
        changes_table = _plugin_table(
            catalog,
            found,
            CHANGES_TABLE,
            schema,
            f"entity_names={list(op.entity_names)!r} for table {op.table_name!r} are written there; enable "
            f"Continuum's TransactionChangesPlugin (and create its table) or leave entity_names out",
            {"transaction_id": sa.BigInteger(), "entity_name": sa.String()},
        )
    native = op.native_versioning
    refuse_native = None
    if native is None and catalog.bind is None:
        where = f"{schema}.{name}" if schema else name
        refuse_native = (
            f"backfill_versions({op.table_name!r}): Continuum's native versioning is installed on {where}, "
            f"and this script was rendered without knowing: pass native_versioning=True (as autogenerate "
            f"renders it) and render the script again."
        )
    if native is None:
        native = catalog.bind is not None and found is not None and uses_native_versioning(catalog.bind, found)
    sequence = transaction_sequence(naming.transaction_sequence, found)
    if catalog.bind is not None and catalog.bind.dialect.supports_sequences:
        _require_sequence(catalog.bind, op, sequence)
    return TransactionRecord(
        table=table,
        sequence=sequence,
        values=values,
        meta=[
            (operations.inline_literal(k), sa.null() if v is None else operations.inline_literal(str(v)))
            for k, v in op.meta.items()
        ],
        meta_table=meta_table,
        entity_names=[operations.inline_literal(name) for name in op.entity_names],
        changes_table=changes_table,
        current=native_transaction_table() if native else current_record_table(),
        native=native,
        fresh=not native and _starts_record(operations.migration_context),
        refuse_native=refuse_native,
    )


#: Per migration context, the scope its backfills last held a current record in (see :func:`_starts_record`).
_record_scopes: weakref.WeakKeyDictionary[MigrationContext, weakref.ref[Any]] = weakref.WeakKeyDictionary()


def _starts_record(context: MigrationContext) -> bool:
    """Whether a backfill starts the current record of its database transaction.

    Asked where the database cannot tell: SQLite's temporary tables outlive a commit (PostgreSQL's
    table of the current record is emptied by it). It does when it is:

    - online, the first backfill in the connection's current (SQLAlchemy) transaction;
    - offline, the first of the script, whose backfills share one record while it is the newest
      (each backfill commits on its own without ``transactional_ddl``)."""
    if context.dialect.name == "postgresql":
        return False
    scope = context.bind.get_transaction() if not context.as_sql and context.bind is not None else context
    held = _record_scopes.get(context)
    _record_scopes[context] = weakref.ref(scope) if scope is not None else weakref.ref(context)
    return scope is None or held is None or held() is not scope


def check_shared_values(
    catalog: Catalog, op: BackfillVersionsOp, record: TransactionRecord, parts: Sequence[VersionedTable]
) -> None:
    """Refuse, online, ``transaction=`` values other than those of the current record the backfill would join.

    The backfills of one database transaction share that record. The check runs before anything is
    written."""
    bind = catalog.bind
    if bind is None or not record.values or record.fresh or not sa.inspect(bind).has_table(record.current.name):
        return
    versions_tx = [t.version_table().c[t.naming.transaction_column_name] for t in parts]
    txt = record.table
    columns = [txt.c[k] for k in record.values]
    row = bind.execute(sa.select(*columns).where(txt.c.id == reused_id(record, versions_tx))).first()
    if row is None:
        return
    held = dict(zip(record.values, row, strict=True))
    given = {k: _naive_utc(v, txt.c[k].type) for k, v in op.transaction.items()}
    differing = sorted(k for k, v in held.items() if v is not None and v != given[k])
    if differing:
        raise VersioningError(
            f"backfill_versions({op.table_name!r}): transaction={op.transaction!r} differs in {differing} from "
            f"the transaction record this database transaction's backfills share, created before it "
            f"({ {k: held[k] for k in differing}!r}). Give the backfills of one transaction the same "
            f"transaction=... values (or leave them out after the first), or run them in separate transactions."
        )


def _transaction_value(operations: Operations, op: BackfillVersionsOp, key: str, type_: Any) -> ColumnElement[Any]:
    """Return ``op.transaction[key]`` as an inline literal of the column's type (``None``: not known).

    A value that is no value of that type is refused."""
    value = op.transaction[key]
    literal = operations.inline_literal(_naive_utc(value, type_), type_=type_)
    try:
        literal.compile(dialect=operations.migration_context.dialect, compile_kwargs={"literal_binds": True})
    except sa.exc.CompileError:
        raise VersioningError(
            f"transaction={{{key!r}: {value!r}}} for table {op.table_name!r}: the column {key!r} is of type "
            f"{type_}, and {value!r} is no value of it; pass one, e.g. a datetime.datetime for a timestamp."
        ) from None
    return literal


def _require_sequence(bind: sa.Connection, op: BackfillVersionsOp, sequence: sa.Sequence) -> None:
    """Online, refuse a transaction sequence the database does not have (new ids come from it)."""
    if not sa.inspect(bind).has_sequence(sequence.name, schema=sequence.schema):
        where = f" in schema {sequence.schema!r}" if sequence.schema else " on the search path"
        raise VersioningError(
            f"backfill_versions({op.table_name!r}) takes the new transaction id from the sequence "
            f"{sequence.name!r}, which does not exist{where}; pass transaction_sequence=... with the sequence "
            f"the transaction table's ids come from ('schema.name' where it is not on the search path)."
        )


def _naive_utc(value: Any, column_type: Any) -> Any:
    """Return ``value`` as Continuum writes it in a column of ``column_type``.

    A timezone-aware datetime for a column without a time zone (Continuum's ``issued_at``, or one
    not known offline) becomes naive UTC; other values stay as they are."""
    aware = isinstance(value, datetime.datetime) and value.tzinfo is not None
    if aware and not (isinstance(column_type, sa.DateTime) and column_type.timezone):
        return value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def _plugin_table(
    catalog: Catalog, found: sa.Table | None, name: str, schema: str | None, why: str, columns: dict[str, Any]
) -> sa.Table:
    """Return a table a Continuum plugin keeps beside the transaction table (``found``, when known).

    It must exist: in the database, or offline in ``target_metadata`` when that describes the
    transaction table."""
    known = catalog.require(name, schema, why)
    if known is None and found is not None:  # offline, target_metadata has one and not the other
        raise missing_table(name, schema, why + " (offline: as target_metadata describes the database)")
    return _core_table(name, schema, known, columns)
