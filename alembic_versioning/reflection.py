"""Build a :class:`VersionedTable` from a version table's SQLAlchemy ``Table``.

The ``Table`` comes from reflecting the database (online migrations) or from the
migration's ``target_metadata`` (offline); either way the same rules apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from .errors import VersioningError
from .model import Naming, Strategy, VersionedTable
from .sql.constructs import NativeVersioningInstalled

#: Types a mod flag column may have (``NullType``: not known, as offline without target_metadata).
FLAG_TYPES = (sa.Boolean, sa.types.NullType)

#: Keys of a reflected column that mean the database fills it: a default, identity or computed.
GENERATED = ("default", "identity", "computed")


def reflect_table(connection: sa.engine.Connection, name: str, schema: str | None) -> sa.Table | None:
    """The columns (names, types, nullability, whether the database fills them) and primary key
    of ``schema.name``, read through ``connection``, or ``None`` when it does not exist.

    Indexes, foreign keys, constraints and comments, which no statement here uses, are not read:
    a few catalog queries per table instead of the dozen a full reflection makes.
    """
    inspector = sa.inspect(connection)
    if schema is not None and schema not in inspector.get_schema_names():
        return None  # SQLite would fail on an unknown schema (database) instead
    try:
        found = inspector.get_columns(name, schema)
    except sa.exc.NoSuchTableError:
        return None
    columns = [
        sa.Column(
            c["name"],
            c["type"],
            nullable=c["nullable"],
            # whether the database fills the column itself (its value is never read here)
            server_default=sa.FetchedValue() if any(c.get(k) is not None for k in GENERATED) else None,
        )
        for c in found
    ]
    key = inspector.get_pk_constraint(name, schema)["constrained_columns"]
    return sa.Table(name, sa.MetaData(), *columns, sa.PrimaryKeyConstraint(*key), schema=schema)


def missing_version_table(name: str, schema: str | None, naming: Naming) -> VersioningError:
    """The error for a live table whose version table cannot be found."""
    version = naming.version_table_name(name)
    where = f" in schema {schema!r}" if schema else ""
    return VersioningError(
        f"No version table {version!r}{where} for table {name!r}. Check the table name, pass "
        f"schema=... if it lives in another schema, or version_table_format=... if the "
        f"versioning manager's 'table_name' option is not {naming.version_table_format!r}."
    )


def strategy_of(version: sa.Table, naming: Naming) -> Strategy:
    """The strategy a version table's columns show: validity when it has the end-transaction column."""
    return "validity" if naming.end_transaction_column_name in version.c else "subquery"


def one_version_per_transaction(version: sa.Table, naming: Naming) -> bool:
    """Whether ``version`` is keyed on the transaction column alone: Continuum's shape for an
    association table without a primary key, which holds one version per transaction, while
    ``backfill_versions`` writes all its versions in one."""
    return [c.name for c in version.primary_key.columns] == [naming.transaction_column_name]


def no_room_for_backfill(name: str, naming: Naming) -> str:
    """Why ``backfill_versions`` cannot write ``name``'s versions, and the fix (see
    :func:`one_version_per_transaction`)."""
    version, column = naming.version_table_name(name), naming.transaction_column_name
    return (
        f"{version!r} (table {name!r}) has the primary key ({column}) alone, so it holds one version "
        f"per transaction, and backfill_versions writes all its versions in one. Give {name!r} a primary "
        f"key (Continuum then keys {version!r} on it and {column}), or drop that primary key constraint "
        f"of {version!r}."
    )


def flagged(version: sa.Table, naming: Naming, columns: Sequence[str], named: Sequence[str] = ()) -> list[str]:
    """The ``columns`` with a mod flag in ``version``: a ``<c><mod_suffix>`` column, boolean or of
    unknown type, that ``named`` (the data columns an op names) does not name as data."""
    found = []
    for column in columns:
        flag = version.c.get(column + naming.mod_suffix)
        if flag is not None and flag.name != column and isinstance(flag.type, FLAG_TYPES) and flag.name not in named:
            found.append(column)
    return found


def describe_version_table(
    version: sa.Table,
    *,
    name: str,
    naming: Naming,
    primary_key: Sequence[str] | None = None,
    strategy: Strategy | None = None,
    association: bool = False,
    mod_tracker: bool = True,
    data_columns: Sequence[str] | None = None,
) -> VersionedTable:
    """Describe the version table ``version`` of live table ``name``.

    A column ``<c><mod_suffix>`` is the mod flag of data column ``c`` when it is boolean (or of
    unknown type), ``mod_tracker`` is not false (the versioning manager has no tracker) and
    ``data_columns`` (the data columns an op names) does not name it: an application's
    ``price_mod`` integer, or boolean named as data, stays a data column.

    Raises :class:`~alembic_versioning.errors.VersioningError` naming the missing column and the option to pass when
    the table does not have the shape ``naming`` and ``strategy`` say it should.
    """
    cols = {c.name: c for c in version.c}
    where = f"version table {version.fullname!r} of {name!r}"
    for option in ("transaction_column_name", "operation_type_column_name"):
        column = getattr(naming, option)
        if column not in cols:
            raise VersioningError(
                f"The {where} has no column {column!r}; pass {option}=... with the name the versioning manager uses."
            )
    end = naming.end_transaction_column_name
    found = strategy_of(version, naming)
    if strategy is not None and strategy != found:
        raise VersioningError(
            f"The {where} has {'a' if found == 'validity' else 'no'} column {end!r}, so it "
            f"uses the {found!r} strategy, not {strategy!r}; pass strategy={found!r}"
            + ("" if found == "validity" else " or end_transaction_column_name=... if it is renamed")
            + "."
        )
    tx = naming.transaction_column_name
    if primary_key is None:
        key = tuple(c.name for c in version.primary_key.columns if c.name != tx)
    else:
        key = tuple(primary_key)
        unknown = [c for c in key if c not in cols]
        if unknown:
            raise VersioningError(f"The {where} has no primary-key column(s) {unknown}; fix primary_key=[...].")
    internal = {tx, end, naming.operation_type_column_name}
    data = [c for c in cols if c not in internal and c not in key]
    named = data_columns or ()
    flags = {c + naming.mod_suffix for c in flagged(version, naming, data, named)} & set(data) if mod_tracker else set()
    columns = tuple(c for c in data if c not in flags)
    mods = tuple(c for c in columns if c + naming.mod_suffix in flags)
    return VersionedTable(
        name=name,
        schema=version.schema,
        naming=naming,
        primary_key=key,
        columns=columns,
        mod_columns=mods,
        strategy=found,
        association=association,
        types={name: c.type for name, c in cols.items()},
    )


def uses_native_versioning(connection: sa.engine.Connection, transaction: sa.Table) -> bool:
    """Whether Continuum's native (PostgreSQL trigger) versioning is installed on ``transaction``
    (see :class:`~alembic_versioning.sql.constructs.NativeVersioningInstalled`)."""
    return bool(connection.execute(sa.select(NativeVersioningInstalled(transaction))).scalar())
