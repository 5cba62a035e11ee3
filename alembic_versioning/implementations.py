"""Implementations of the operations in :mod:`alembic_versioning.operations`.

Each reads op -> catalog (the tables, :mod:`.catalog`) -> model (:class:`~.model.VersionedTable`)
-> SQL (:mod:`.sql`) -> execute (:mod:`.execute`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import replace

import sqlalchemy as sa
from alembic.operations import Operations

from .batches import Build, Work, run, with_range
from .catalog import Catalog, versioned_table
from .errors import VersioningError, no_room_for_backfill
from .model import KeyRange, VersionedTable, one_version_per_transaction
from .operations import (
    BackfillVersionsOp,
    HierarchyOp,
    UpdateEndTransactionIdsOp,
    UpdateModFlagsOp,
    VacuumVersionsOp,
    VersionedDataOp,
)
from .record import check_shared_values, transaction_record, transaction_table
from .sql.backfill import BackfillPart, backfill_setup, backfill_statements
from .sql.chains import end_transaction_update
from .sql.constructs import LockForWrite
from .sql.mod_flags import mod_flags_update
from .sql.vacuum import VacuumPart, hierarchy_vacuum_statements, vacuum_statements


@Operations.implementation_for(UpdateEndTransactionIdsOp)
def update_end_transaction_ids(operations: Operations, op: UpdateEndTransactionIdsOp) -> None:
    """Rebuild the end ids of ``op``'s version table (and of its hierarchy's, by the base table's chain)."""
    catalog = Catalog(operations)
    table = versioned_table(catalog, op)
    if table.strategy != "validity":
        raise VersioningError(
            f"{table.qualified_version_name!r} has no {table.naming.end_transaction_column_name!r} "
            f"column: table {table.name!r} uses the subquery strategy, which has no end ids to "
            f"repair. Pass end_transaction_column_name=... if the column is renamed."
        )
    joined = [_joined_table(catalog, op, table, name)[1] for name in op.joined]
    lock = writers_lock(catalog, table, *joined)

    def build(key_range: KeyRange | None) -> tuple[list[sa.Executable], Sequence[int]]:
        base = with_range(table, key_range)
        statements: list[sa.Executable] = [end_transaction_update(base)]
        statements += [
            end_transaction_update(with_range(t, key_range), base=base) for t in joined if t.strategy == "validity"
        ]
        return statements, range(len(statements))

    run(operations, op, _work(catalog, table, lock, build, "rows updated"))


@Operations.implementation_for(UpdateModFlagsOp)
def update_mod_flags(operations: Operations, op: UpdateModFlagsOp) -> None:
    """Recompute the mod flags of ``op``'s columns (default: every flagged column)."""
    catalog = Catalog(operations)
    # described by its arguments, the columns it names are the flagged ones; else the table says which
    table = versioned_table(catalog, op, columns=op.columns, mod_columns=op.columns if op.describes_table() else None)
    table = _as_written(catalog, op, table)
    columns = table.mod_columns if op.columns is None else op.columns
    unflagged = [c for c in columns if c not in table.mod_columns]
    if unflagged:
        flags = [table.mod_column(c) for c in unflagged]
        raise VersioningError(
            f"{table.qualified_version_name!r} (table {table.name!r}) has no mod flag column(s) "
            f"{flags} for {unflagged}: add them first (PropertyModTrackerPlugin creates them) "
            f"or leave those columns out of columns=[...]; flagged columns: {list(table.mod_columns)}."
        )
    if not columns:
        raise VersioningError(
            f"{table.qualified_version_name!r} (table {table.name!r}) has no mod flag columns "
            f"ending in {table.naming.mod_suffix!r}; pass mod_suffix=... if the plugin uses another suffix"
            + (", and columns=[...] offline without target_metadata." if not catalog.online else ".")
        )
    lock = writers_lock(catalog, table)

    def build(key_range: KeyRange | None) -> tuple[list[sa.Executable], Sequence[int]]:
        return [mod_flags_update(with_range(table, key_range), columns, op.insert_flags, op.keep_true)], (0,)

    run(operations, op, _work(catalog, table, lock, build, "rows updated"))


@Operations.implementation_for(BackfillVersionsOp)
def backfill_versions(operations: Operations, op: BackfillVersionsOp) -> None:
    """Write the versions that make ``op``'s version tables reflect the live rows, under one new record."""
    catalog = Catalog(operations)
    table = versioned_table(catalog, op, columns=op.columns, mod_columns=op.mod_columns)
    parts = [_backfill_part(catalog, op, table)]
    parts += [_joined_part(catalog, op, table, name) for name in op.joined]
    if not table.primary_key:
        _require_room_per_transaction(catalog, op)
    record = transaction_record(operations, catalog, op)
    if op.joined and record.native:
        raise VersioningError(
            f"backfill_versions({op.table_name!r}, joined={list(op.joined)}) under Continuum's native "
            f"versioning is not supported: its triggers write each table alone. Backfill through the ORM."
        )
    if op.batch_size is not None and not record.native:  # each batch is a database transaction, so a record
        record = replace(record, fresh=True)
    check_shared_values(catalog, op, record, [p.table for p in parts])

    def build(key_range: KeyRange | None) -> tuple[list[sa.Executable], Sequence[int]]:
        ranged = [replace(p, table=with_range(p.table, key_range)) for p in parts]
        return backfill_statements(ranged, record)

    # each batch is a transaction of its own, with a record of its own, whose id the lock takes
    # before it waits (MariaDB)
    lock = writers_lock(catalog, table, *(p.table for p in parts[1:]), reserve=record.sequence)
    work = _work(catalog, table, lock, build, "versions written", parts[0].live)
    run(operations, op, replace(work, setup=backfill_setup(parts, record)))


def _backfill_part(catalog: Catalog, op: BackfillVersionsOp, table: VersionedTable) -> BackfillPart:
    """``table`` with its live table: the versioned columns the live table has, in its types."""
    table = _as_written(catalog, op, table)
    why = f"backfill_versions compares its rows with {table.qualified_version_name!r}"
    live = catalog.require(table.name, table.schema, why)
    columns = list(table.columns)
    if live is not None and (catalog.online or not op.describes_table()):
        live_names = {c.name for c in live.c}
        missing_key = [k for k in table.entity_key if k not in live_names]
        if missing_key:
            raise VersioningError(
                f"Table {table.qualified_name!r} has no column(s) {missing_key} of its version table's "
                f"key: the live and version tables must share the primary key (pass primary_key=[...])."
            )
        if catalog.online or op.columns is None:  # offline, named columns are the revision's, not the head's
            columns = [c for c in columns if c in live_names]
    live_types = {c.name: c.type for c in live.c} if live is not None else None
    return BackfillPart(table, table.live_table(columns, live_types), columns)


def _as_written(catalog: Catalog, op: UpdateModFlagsOp | BackfillVersionsOp, table: VersionedTable) -> VersionedTable:
    """Return ``table`` with what ``op`` says of how Continuum writes its versions.

    - the DELETE flags of its subclass columns;
    - for a backfill: whether it is an association table, and whether DELETE versions hold NULLs.

    Online, the columns ``op`` names must be data columns of it."""
    flags = op.delete_flags
    named = [*flags.subclass_columns, *([flags.discriminator] if flags.discriminator is not None else [])]
    unknown = [c for c in named if c not in table.columns]
    if catalog.online and unknown:
        raise VersioningError(
            f"subclass_columns={list(flags.subclass_columns)}, discriminator={flags.discriminator!r} for table "
            f"{table.name!r}: {unknown} are not versioned data columns of {table.qualified_version_name!r}; "
            f"they are {list(table.columns)}."
        )
    written = dataclasses.replace(table, subclass_columns=flags.subclass_columns, discriminator=flags.discriminator)
    if isinstance(op, BackfillVersionsOp):
        written = dataclasses.replace(written, association=op.association, null_delete=op.null_delete)
    return written


def _joined_part(catalog: Catalog, op: BackfillVersionsOp, base: VersionedTable, name: str) -> BackfillPart:
    """The table ``name`` of ``op``'s hierarchy with its live table (see :func:`_joined_table`)."""
    joined, table = _joined_table(catalog, op, base, name)
    assert isinstance(joined, BackfillVersionsOp)
    joined.null_delete = op.null_delete  # the versioning manager's, for every table
    return _backfill_part(catalog, joined, table)


def _joined_table(
    catalog: Catalog, op: HierarchyOp, base: VersionedTable, name: str
) -> tuple[HierarchyOp, VersionedTable]:
    """Return an op of the same kind on the table ``name`` of ``op``'s hierarchy alone, and the table.

    The table is described like ``op``'s own:

    - online, from the database;
    - offline, from what ``joined`` says of it, else from ``target_metadata``."""
    joined = type(op)(name, schema=op.schema, naming=op.naming, strategy=op.strategy, **op.joined[name])
    version_name = op.naming.version_table_name(name)
    if not catalog.online and not joined.describes_table() and catalog.table(version_name, op.schema) is None:
        described = ", ".join(f"{k!r}: [...]" for k in op.joined_keys)
        raise VersioningError(
            f"Offline mode cannot reflect {version_name!r} (joined table {name!r} of table {op.table_name!r}) "
            f"and the migration's target_metadata does not hold it: describe it, joined={{{name!r}: "
            f"{{{described}}}}}, or give env.py's context.configure() the target_metadata."
        )
    data = joined if isinstance(joined, VersionedDataOp) else None
    table = versioned_table(
        catalog,
        joined,
        columns=data.columns if data is not None else None,
        mod_columns=data.mod_columns if data is not None else None,
    )
    if len(table.primary_key) != len(base.primary_key) or not base.primary_key:
        raise VersioningError(
            f"joined={list(op.joined)} for table {op.table_name!r}: {name!r} has the primary key "
            f"{list(table.primary_key)} and {op.table_name!r} {list(base.primary_key)}; the tables of a "
            f"joined-table inheritance hierarchy share the base table's key, column for column."
        )
    return joined, table


@Operations.implementation_for(VacuumVersionsOp)
def vacuum_versions(operations: Operations, op: VacuumVersionsOp) -> None:
    """Delete the futile versions of ``op``'s table (of its hierarchy with ``joined``) and relink the chains."""
    catalog = Catalog(operations)
    table = versioned_table(catalog, op, columns=op.columns, mod_columns=op.mod_columns)
    unknown = [c for c in op.ignore_columns if c not in table.columns]
    if unknown:
        raise VersioningError(
            f"ignore_columns={list(op.ignore_columns)} for table {table.name!r}: {unknown} are not "
            f"versioned data columns of {table.qualified_version_name!r}; they are {list(table.columns)}."
        )
    compared = [c for c in table.columns if c not in op.ignore_columns]
    parts = [VacuumPart(table, compared)]
    parts += [VacuumPart(t, t.columns) for _, t in (_joined_table(catalog, op, table, n) for n in op.joined)]
    lock = writers_lock(catalog, *(p.table for p in parts))
    dialect = operations.migration_context.dialect

    def build(key_range: KeyRange | None) -> tuple[list[sa.Executable], Sequence[int]]:
        if not op.joined:
            statements = vacuum_statements(with_range(table, key_range), compared, dialect)
        else:
            ranged = [replace(p, table=with_range(p.table, key_range)) for p in parts]
            statements = hierarchy_vacuum_statements(ranged, dialect)
        return statements, [i for i, statement in enumerate(statements) if isinstance(statement, sa.Delete)]

    run(operations, op, _work(catalog, table, lock, build, "futile versions removed"))


def _work(
    catalog: Catalog,
    table: VersionedTable,
    lock: LockForWrite,
    build: Build,
    done: str,
    live: sa.Table | None = None,
) -> Work:
    """Return an operation's work on ``table``.

    Batches follow the keys of its version table and, given ``live`` (a backfill, whose entities
    may have no version yet), of its live table."""
    live_rows = table.live_table(())
    return Work(
        table,
        lock,
        [table.version_table(), *([live] if live is not None else [])],
        build,
        done,
        live_rows if catalog.online and catalog.exists(live_rows) else None,
    )


def writers_lock(
    catalog: Catalog, table: VersionedTable, *others: VersionedTable, reserve: sa.Sequence | None = None
) -> LockForWrite:
    """Return the lock that keeps Continuum's writers off until the migration commits.

    An op takes it before its first write, in the writers' own order (transaction, live, version
    tables), as ``backfill_versions`` takes it. So:

    - a writer never chains onto a version the op is changing;
    - the ops of one migration and the application's writers never wait on each other in a cycle.

    Tables that do not exist are left out. ``reserve``: see :class:`LockForWrite`."""
    every = (table, *others)
    tables = [transaction_table(table), *(t.live_table(()) for t in every), *(t.version_table() for t in every)]
    return LockForWrite(*(t for t in tables if catalog.exists(t)), reserve=reserve)


def _require_room_per_transaction(catalog: Catalog, op: BackfillVersionsOp) -> None:
    """Refuse a version table that holds one version per transaction (see
    :func:`~alembic_versioning.model.one_version_per_transaction`)."""
    version = catalog.table(op.naming.version_table_name(op.table_name), op.schema)
    if version is not None and one_version_per_transaction(version, op.naming):
        raise VersioningError(no_room_for_backfill(op.table_name, op.naming))
