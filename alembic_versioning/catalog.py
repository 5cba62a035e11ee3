"""The one place that finds tables, online or offline, and describes the versioned table an op names.

- Online, tables are reflected from the migration's connection, once per operation (Alembic's own
  operations between two of ours may change them).
- Offline (``alembic upgrade --sql``) nothing can be read: tables come from the migration's
  ``target_metadata`` (one MetaData or a list of them) when it holds them, else from the op's
  explicit arguments.

Autogenerate reads the tables of every versioned pair at once (:class:`ReflectedTables`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.engine.reflection import ObjectKind

from .errors import VersioningError, missing_table, missing_version_table, require_supported
from .model import Naming, VersionedTable, flagged, is_flag_type, strategy_of
from .operations import VersionedTableOp
from .sql.constructs import NativeVersioningInstalled


def table_key(name: str, schema: str | None) -> str:
    """``schema.name`` (``name`` without a schema): how a MetaData keys its tables."""
    return f"{schema}.{name}" if schema else name


def system_schemas(dialect: Any) -> set[str]:
    """The schemas the database keeps for itself, which hold no application's tables: on MariaDB
    (whose schemas are the server's databases) ``mysql``, ``performance_schema`` and ``sys``
    besides ``information_schema``."""
    system = {"information_schema"}
    return system | {"mysql", "performance_schema", "sys"} if getattr(dialect, "is_mariadb", False) else system


def metadata_list(metadata: Any) -> list[sa.MetaData]:
    """``target_metadata`` as a list: one MetaData, a list or tuple of them, or none."""
    found = metadata if isinstance(metadata, (list, tuple)) else [metadata]
    return [m for m in found if m is not None]


def metadata_table(metadata: Any, name: str, schema: str | None) -> sa.Table | None:
    """``schema.name`` in ``metadata`` (see :func:`metadata_list`), or ``None``."""
    key = table_key(name, schema)
    return next((md.tables[key] for md in metadata_list(metadata) if key in md.tables), None)


#: Keys of a reflected column that mean the database fills it: a default, identity or computed.
GENERATED = ("default", "identity", "computed")


def json_checked(connection: sa.engine.Connection, schema: str | None, names: Iterable[str]) -> set[tuple[str, str]]:
    """The ``(table, column)`` pairs of the tables ``names`` of ``schema`` that hold JSON on
    MariaDB, whose JSON is a ``LONGTEXT`` with the check ``json_valid(column)`` and reflects as
    ``LONGTEXT`` alone (compared as text, Continuum's JSON ``null`` would differ from a live SQL
    NULL); none on other databases. One catalog query."""
    if not getattr(connection.dialect, "is_mariadb", False):
        return set()
    checks = sa.table(
        "check_constraints",
        sa.column("constraint_schema"),
        sa.column("table_name"),
        sa.column("constraint_name"),
        sa.column("check_clause"),
        schema="information_schema",
    )
    in_schema = sa.literal(schema, sa.String) if schema is not None else sa.func.database()
    found = connection.execute(
        sa.select(checks.c.table_name, checks.c.constraint_name, checks.c.check_clause).where(
            checks.c.constraint_schema == in_schema, checks.c.table_name.in_(sorted(names))
        )
    )
    quote = connection.dialect.identifier_preparer.quote_identifier
    return {(table, column) for table, column, clause in found if clause == f"json_valid({quote(column)})"}


#: MariaDB's catalog of columns.
_COLUMNS = sa.table(
    "columns",
    sa.column("table_schema"),
    sa.column("table_name"),
    sa.column("column_name"),
    sa.column("ordinal_position"),
    sa.column("column_type"),
    sa.column("is_nullable"),
    sa.column("column_default"),
    sa.column("generation_expression"),
    sa.column("column_key"),
    schema="information_schema",
)


def listed_columns(
    connection: sa.engine.Connection, schema: str | None, names: Iterable[str], found: dict[str, list[Any]]
) -> dict[str, list[Any]]:
    """``found``, the columns SQLAlchemy reflected of the tables ``names`` of ``schema`` by table
    name, with the names MariaDB's catalog gives; unchanged on other databases.

    SQLAlchemy reads MariaDB's columns from ``SHOW CREATE TABLE``, line by line: it leaves a
    backtick in a name doubled (as quoted there) and loses a column whose name holds a line break
    (the line is cut). So on MariaDB the columns are those ``information_schema.columns`` lists, in
    its order, each as SQLAlchemy reflected it where it did (its name written back to one
    backtick), else read from the catalog: its type (as SQLAlchemy parses it), nullability,
    default and generation expression. One catalog query."""
    if not getattr(connection.dialect, "is_mariadb", False):
        return found
    in_schema = sa.literal(schema, sa.String) if schema is not None else sa.func.database()
    c = _COLUMNS.c
    rows = connection.execute(
        sa.select(c.table_name, c.column_name, c.column_type, c.is_nullable, c.column_default, c.generation_expression)
        .where(c.table_schema == in_schema, c.table_name.in_(sorted(names)))
        .order_by(c.table_name, c.ordinal_position)
    ).all()
    listed: dict[str, list[Any]] = {}
    for table, column, type_, nullable, default, generated in rows:
        if table not in found:
            continue
        parsed = {str(f["name"]).replace("``", "`"): f for f in found[table]}
        if column in parsed:
            listed.setdefault(table, []).append({**parsed[column], "name": column})
            continue
        listed.setdefault(table, []).append(
            {
                "name": column,
                "type": _column_type(connection.dialect, type_),
                "nullable": nullable == "YES",
                "default": None if default in (None, "NULL") else default,
                "computed": {"sqltext": generated} if generated else None,
            }
        )
    return {table: listed.get(table, []) for table in found}


def _ignore_cut_lines() -> None:
    """Silence SQLAlchemy's warnings about the lines of ``SHOW CREATE TABLE`` a name's line break
    cut, whose columns :func:`listed_columns` reads from the catalog."""
    warnings.filterwarnings("ignore", "Unknown (schema content|column definition)", sa.exc.SAWarning)


def _column_type(dialect: Any, column_type: str) -> Any:
    """The SQLAlchemy type of a MariaDB ``column_type`` (``varchar(20)``, ``tinyint(1)``), parsed as
    SQLAlchemy parses a column of ``SHOW CREATE TABLE``."""
    from sqlalchemy.dialects.mysql.reflection import MySQLTableDefinitionParser

    parser = MySQLTableDefinitionParser(dialect, dialect.identifier_preparer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)  # a type it does not know: NullType
        state = parser.parse(f"CREATE TABLE `t` (\n  `c` {column_type}\n) ENGINE=InnoDB", None)
    return state.columns[0]["type"] if state.columns else sa.types.NullType()


def primary_key(connection: sa.engine.Connection, inspector: sa.Inspector, name: str, schema: str | None) -> list[str]:
    """The primary key columns of ``schema.name``; on MariaDB read from its catalog (SQLAlchemy's
    reading of ``SHOW CREATE TABLE`` loses a key with a backtick or a line break in a name)."""
    if not getattr(connection.dialect, "is_mariadb", False):
        return list(inspector.get_pk_constraint(name, schema)["constrained_columns"])
    in_schema = sa.literal(schema, sa.String) if schema is not None else sa.func.database()
    stats = sa.table(
        "statistics",
        sa.column("table_schema"),
        sa.column("table_name"),
        sa.column("index_name"),
        sa.column("column_name"),
        sa.column("seq_in_index"),
        schema="information_schema",
    )
    found = sa.select(stats.c.column_name).where(
        stats.c.table_schema == in_schema,
        stats.c.table_name == sa.literal(name, sa.String),
        stats.c.index_name == sa.literal("PRIMARY", sa.String),
    )
    return list(connection.execute(found.order_by(stats.c.seq_in_index)).scalars())


def reflect_table(connection: sa.engine.Connection, name: str, schema: str | None) -> sa.Table | None:
    """Return ``schema.name`` as read through ``connection``, or ``None`` when it does not exist.

    Read are its columns (names, types, nullability, whether the database fills them) and its
    primary key.

    Indexes, foreign keys, constraints and comments, which no statement here uses, are not read:
    a few catalog queries per table instead of the dozen a full reflection makes.
    """
    inspector = sa.inspect(connection)
    if schema is not None and schema not in inspector.get_schema_names():
        return None  # SQLite would fail on an unknown schema (database) instead
    try:
        with warnings.catch_warnings():
            if getattr(connection.dialect, "is_mariadb", False):
                _ignore_cut_lines()
            found = inspector.get_columns(name, schema)
    except sa.exc.NoSuchTableError:
        return None
    found = listed_columns(connection, schema, [name], {name: found})[name]
    json = {column for _, column in json_checked(connection, schema, [name])}
    columns = [
        sa.Column(
            c["name"],
            sa.JSON() if c["name"] in json else c["type"],
            nullable=c["nullable"],
            # whether the database fills the column itself (its value is never read here)
            server_default=sa.FetchedValue() if any(c.get(k) is not None for k in GENERATED) else None,
        )
        for c in found
    ]
    key = primary_key(connection, inspector, name, schema)
    return sa.Table(name, sa.MetaData(), *columns, sa.PrimaryKeyConstraint(*key), schema=schema)


def uses_native_versioning(connection: sa.engine.Connection, transaction: sa.Table) -> bool:
    """Whether Continuum's native (PostgreSQL trigger) versioning is installed on ``transaction``
    (see :class:`~alembic_versioning.sql.constructs.NativeVersioningInstalled`)."""
    return bool(connection.execute(sa.select(NativeVersioningInstalled(transaction))).scalar())


class Catalog:
    """The tables one operation can know: reflected online (each once), from ``target_metadata`` offline."""

    def __init__(self, operations: Operations) -> None:
        context = operations.migration_context
        self.dialect = context.dialect
        self.online = not context.as_sql
        self.bind = operations.get_bind() if self.online else None
        self.metadata = metadata_list(context.opts.get("target_metadata"))
        self._reflected: dict[str, sa.Table | None] = {}

    def table(self, name: str, schema: str | None) -> sa.Table | None:
        """``schema.name`` as the database (online) or ``target_metadata`` (offline) has it."""
        if self.bind is None:
            return metadata_table(self.metadata, name, schema)
        key = table_key(name, schema)
        if key not in self._reflected:
            self._reflected[key] = reflect_table(self.bind, name, schema)
        return self._reflected[key]

    def exists(self, table: sa.Table) -> bool:
        """Whether ``table`` exists.

        - Online: asked of the database.
        - Offline, where nothing can be read: taken for granted. A versioned database has its live
          and transaction tables; ``target_metadata``, the head revision's, may hold them under
          other keys or not at all."""
        return self.bind is None or self.table(table.name, table.schema) is not None

    def require(self, name: str, schema: str | None, why: str) -> sa.Table | None:
        """Like :meth:`table`, but online a missing table is an error saying ``why`` it is needed."""
        table = self.table(name, schema)
        if table is None and self.online:
            raise missing_table(name, schema, why)
        return table


def versioned_table(
    catalog: Catalog,
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
    require_supported(catalog.dialect, f"op.{op.op_name}({op.table_name!r})")
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
        described = VersionedTable.from_version_table(
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
    """Refuse, online, names an op gives that are not the version table's.

    - A wrong ``primary_key`` (not the key of a version table keyed on it and the transaction
      column, as Continuum keys them) would compare other rows as one entity.
    - An unknown data column (``columns``, of an op that reads them) is a typo.

    Unknown key columns and flags are named by the later checks."""
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


def _is_boolean(type_: Any) -> bool:
    """Whether ``type_`` is a boolean: also MariaDB's, a ``TINYINT(1)`` (an integer type)."""
    return is_flag_type(type_) and not isinstance(type_, sa.types.NullType)


def _check_roles(version: sa.Table, live: sa.Table | None, op: VersionedTableOp) -> None:
    """Online, the columns the naming options name must have the role they are given, or the op
    would write transaction ids or operation types into the application's data:

    - the transaction column is part of the version table's primary key (where it has one);
    - none of the transaction, end-transaction and operation-type columns is a live-table column;
    - each of them, where the version table has it, is of an integer type (not a boolean, which
      MariaDB stores as ``TINYINT(1)``).
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
        elif not isinstance(column.type, ID_TYPES) or _is_boolean(column.type):
            wrong = f"of type {'BOOLEAN' if _is_boolean(column.type) else column.type}, not an integer"
        if wrong:
            raise VersioningError(
                f"{option}={name!r} names the column of {version.fullname!r} that holds {role}, but "
                f"{name!r} is {wrong}; pass {option}=... with the column the versioning manager uses "
                f"(leave it out for Continuum's default {getattr(Naming(), option)!r}). Nothing was written."
            )


class ReflectedTables:
    """Column types of the live and version tables of ``tables``, by (schema, name)."""

    def __init__(self, inspector: sa.Inspector, tables: Iterable[VersionedTable]) -> None:
        names: dict[str | None, set[str]] = defaultdict(set)
        for table in tables:
            names[table.schema] |= {table.name, table.version_name}
        self._columns: dict[tuple[str | None, str], list[Any]] = {}
        for schema, wanted in names.items():
            with warnings.catch_warnings():
                if getattr(inspector.dialect, "is_mariadb", False):
                    _ignore_cut_lines()
                found = inspector.get_multi_columns(schema=schema, filter_names=sorted(wanted), kind=ObjectKind.ANY)
            json, by_name = set(), {name: columns for (_, name), columns in found.items()}
            if isinstance(inspector.bind, sa.Connection):
                json = json_checked(inspector.bind, schema, wanted)
                by_name = listed_columns(inspector.bind, schema, wanted, by_name)
            for name, columns in by_name.items():
                self._columns[(schema, name)] = [
                    {**c, "type": sa.JSON()} if (name, c["name"]) in json else c for c in columns
                ]

    def has_table(self, name: str, schema: str | None) -> bool:
        """Whether the database has the table (or view) ``schema.name``."""
        return (schema, name) in self._columns

    def types(self, name: str, schema: str | None) -> dict[str, Any]:
        """The column types of ``schema.name`` as the database holds them (none if it has no such table)."""
        return {c["name"]: c["type"] for c in self._columns.get((schema, name), [])}
