"""Find the tables an operation works on, online or offline.

Online, tables are reflected from the migration's connection. Offline
(``alembic upgrade --sql``) nothing can be read, so they come from the migration's
``target_metadata`` when it holds them, else from the op's explicit arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sqlalchemy as sa
from alembic.operations import Operations

from .errors import VersioningError, require_supported
from .model import Naming, VersionedTable
from .operations import VersionedTableOp
from .reflection import describe_version_table, flagged, missing_version_table, reflect_table, strategy_of


class Catalog:
    """The tables a migration can know: reflected online, from ``target_metadata`` offline."""

    def __init__(self, operations: Operations) -> None:
        self.online = not operations.migration_context.as_sql
        self.bind = operations.get_bind() if self.online else None
        metadata = operations.migration_context.opts.get("target_metadata")
        self.metadata = [m for m in (metadata if isinstance(metadata, (list, tuple)) else [metadata]) if m is not None]

    def table(self, name: str, schema: str | None) -> sa.Table | None:
        """``schema.name`` as the database (online) or ``target_metadata`` (offline) has it."""
        if self.bind is not None:
            return reflect_table(self.bind, name, schema)
        key = f"{schema}.{name}" if schema else name
        return next((md.tables[key] for md in self.metadata if key in md.tables), None)

    def exists(self, table: sa.Table) -> bool:
        """Whether ``table`` exists: asked of the database online; offline, where nothing can be
        read, taken for granted (a versioned database has its live and transaction tables;
        ``target_metadata``, the head revision's, may hold them under other keys or not at all)."""
        return self.bind is None or sa.inspect(self.bind).has_table(table.name, schema=table.schema)

    def require(self, name: str, schema: str | None, why: str) -> sa.Table | None:
        """Like :meth:`table`, but online a missing table is an error saying ``why`` it is needed."""
        table = self.table(name, schema)
        if table is None and self.online:
            raise self.missing(name, schema, why)
        return table

    @staticmethod
    def missing(name: str, schema: str | None, why: str) -> VersioningError:
        """The error for a table ``schema.name`` that does not exist but is needed (``why``)."""
        where = f" in schema {schema!r}" if schema else ""
        return VersioningError(f"Table {name!r}{where} does not exist: {why}.")


def resolve(
    operations: Operations,
    op: VersionedTableOp,
    columns: Sequence[str] | None = None,
    mod_columns: Sequence[str] | None = None,
) -> VersionedTable:
    """The versioned table ``op`` names, checked against the database when online (where the
    ``columns`` given here stay data columns even when named like a mod flag).

    Offline, the op's explicit arguments (``primary_key``, and ``columns`` / ``mod_columns``
    given here, as autogenerate renders them) describe the table as of the migration's
    revision; ``target_metadata`` (the head revision) only fills in what they leave out: the
    key, the column types, which of the ``columns`` have flags when ``mod_columns`` is not given
    and, unless ``strategy=`` is given, the strategy.
    """
    require_supported(operations.migration_context.dialect, f"op.{op.op_name}({op.table_name!r})")
    catalog = Catalog(operations)
    version_name = op.naming.version_table_name(op.table_name)
    table = catalog.table(version_name, op.schema)
    if table is None and catalog.online:
        if catalog.table(op.table_name, op.schema) is None:
            where = f" in schema {op.schema!r}" if op.schema else ""
            raise VersioningError(
                f"Unknown table {op.table_name!r}{where}: neither it nor {version_name!r} exists. "
                f"Pass the live table's name (not the version table's) and schema=... if needed."
            )
        raise missing_version_table(op.table_name, op.schema, op.naming)
    if table is not None and catalog.online:
        _check_names(table, op, [*(columns or ()), *(mod_columns or ())] if op.reads_data else [])
        _check_roles(table, catalog.table(op.table_name, op.schema), op)
    if table is not None and (catalog.online or not op.describes_table()):
        described = describe_version_table(
            table,
            name=op.table_name,
            naming=op.naming,
            primary_key=op.primary_key,
            strategy=op.strategy,
            data_columns=columns,
        )
        if catalog.online or columns is None:
            return described
        # offline, the head's key and types, but the columns the op names (its revision's)
        flags = [c for c in columns if c in described.mod_columns] if mod_columns is None else mod_columns
        return dataclasses.replace(described, columns=tuple(columns), mod_columns=tuple(flags))
    if op.primary_key is None:
        raise VersioningError(
            f"Offline mode cannot reflect {version_name!r} (table {op.table_name!r}) and the "
            f"migration's target_metadata does not hold it: pass primary_key=[...] (and the "
            f"columns the op needs) to op.{op.op_name}(), or give env.py's context.configure() the target_metadata."
        )
    if (op.reads_data and columns is None) or (not op.primary_key and not columns):
        keyless = " (with primary_key=[], no primary key, they also key its entities)" if not op.primary_key else ""
        raise VersioningError(
            f"Offline mode cannot reflect {version_name!r} (table {op.table_name!r}) and the migration's "
            f"target_metadata does not hold it: op.{op.op_name}() needs its versioned data columns{keyless}. "
            f"Pass them as columns=[...] (and mod_columns=[...], those with flags) where op.{op.op_name}() "
            f"takes them, or give env.py's context.configure() the target_metadata."
        )
    if mod_columns is None and table is not None:  # not given: the flags target_metadata shows
        mod_columns = flagged(table, op.naming, columns or (), named=columns or ())
    return VersionedTable(
        name=op.table_name,
        schema=op.schema,
        naming=op.naming,
        primary_key=op.primary_key,
        columns=tuple(columns or ()),
        mod_columns=tuple(mod_columns or ()),
        strategy=op.strategy or (strategy_of(table, op.naming) if table is not None else "validity"),
        types={c.name: c.type for c in table.c} if table is not None else {},
    )


def _check_names(version: sa.Table, op: VersionedTableOp, columns: Sequence[str]) -> None:
    """Online, the names an op gives must be the version table's: a wrong ``primary_key`` (not
    the key of a version table keyed on it and the transaction column, as Continuum keys them)
    would compare other rows as one entity, and an unknown data column (``columns``, of an op
    that reads them) is a typo. Unknown key columns and flags are named by the later checks."""
    where = f"The version table {version.fullname!r} of {op.table_name!r}"
    tx = op.naming.transaction_column_name
    keyed = [c.name for c in version.primary_key.columns]
    if op.primary_key is not None and tx in keyed and set(op.primary_key) <= set(version.c.keys()):
        key = [c for c in keyed if c != tx]
        if sorted(op.primary_key) != sorted(key):
            raise VersioningError(
                f"{where} is keyed on {keyed}, so its entities are keyed on {key}, not primary_key="
                f"{list(op.primary_key)}; pass primary_key={key}, or leave it out (online it is reflected)."
            )
    unknown = [c for c in columns if c not in version.c]
    if unknown:
        raise VersioningError(
            f"{where} has no column(s) {unknown}; fix columns=[...] / mod_columns=[...] (online they are "
            f"reflected: leave them out to take the table's)."
        )


#: Types the transaction, end-transaction and operation-type columns may have (``NullType``: a
#: SQLite column declared without a type).
ID_TYPES = (sa.Integer, sa.Numeric, sa.types.NullType)


def _check_roles(version: sa.Table, live: sa.Table | None, op: VersionedTableOp) -> None:
    """Online, the columns the naming options name must have the role they are given, or the op
    would write transaction ids or operation types into the application's data:

    - the transaction column is part of the version table's primary key (where it has one);
    - none of the transaction, end-transaction and operation-type columns is a live-table column;
    - each of them, where the version table has it, is of an integer type.
    """
    naming = op.naming
    roles = {
        "transaction_column_name": "the transaction id of each version",
        "end_transaction_column_name": "the transaction id that ends each version",
        "operation_type_column_name": "the operation type (0, 1, 2) of each version",
    }
    live_columns = set(live.c.keys()) if live is not None else set()
    keyed = [c.name for c in version.primary_key.columns]
    for option, role in roles.items():
        name = getattr(naming, option)
        column = version.c.get(name)
        if column is None:
            continue  # named by describe_version_table's own checks
        wrong = ""
        if name in live_columns:
            wrong = f"a column of the live table {op.table_name!r} too, so it holds the application's data"
        elif option == "transaction_column_name" and keyed and name not in keyed:
            wrong = f"not in its primary key {keyed}, as Continuum's transaction column is"
        elif not isinstance(column.type, ID_TYPES):
            wrong = f"of type {column.type}, not an integer"
        if wrong:
            raise VersioningError(
                f"{option}={name!r} names the column of {version.fullname!r} that holds {role}, but "
                f"{name!r} is {wrong}; pass {option}=... with the column the versioning manager uses "
                f"(leave it out for Continuum's default {getattr(Naming(), option)!r}). Nothing was written."
            )
