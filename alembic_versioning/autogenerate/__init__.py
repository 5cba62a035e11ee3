"""Autogenerate support: detect version-table drift and write the repairs into migrations.

One comparator, run after Alembic's own schema comparison, looks at every versioned table of
the target MetaData: tables the migration creates or alters get the repairs the schema change
implies (:mod:`.migration`); the others are checked in the database (:mod:`.drift`). The
repairs are appended after Alembic's schema operations, so they run once the schema is in
place; in a downgrade they run first, on the schema they were generated for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alembic import util

from ..errors import require_supported
from ..model import VersionedTable
from ..operations import BackfillVersionsOp, LeftOutOp, Repair, RepairOnDowngradeOp
from ..reflection import no_room_for_backfill, one_version_per_transaction, reflect_table, uses_native_versioning
from ..transactions import transaction_table
from .drift import drift_ops
from .hierarchies import Found, hierarchy_of, joined_repairs
from .migration import (
    TableKey,
    as_downgrade_leaves,
    downgrade_repairs,
    predicted_ops,
    schema_changes,
    without_missing_changes_table,
)
from .options import options_for
from .pairs import auto_updated_columns, metadata_table, versioned_pairs
from .reflected import ReflectedTables
from .unversioned import unversioned_repairs


def compare_versioned_tables(autogen_context: Any, upgrade_ops: Any, schemas: Iterable[str | None]) -> Any:
    """The ``"schema"`` comparator: append the repairs each versioned table needs to ``upgrade_ops``."""
    options = options_for(autogen_context)
    changes = schema_changes(upgrade_ops)
    connection = autogen_context.connection
    upgrade: Found = []
    downgrade: Found = []
    pairs = list(versioned_pairs(autogen_context, options, schemas))
    tables = {table.qualified_name: table for table in pairs}
    reflected: ReflectedTables | None = None  # read when the first table is checked in the database
    for table in pairs:
        require_supported(autogen_context.dialect, f"autogenerate, versioned table {table.name!r}")
        if changes.touches(table):
            upgrade.append((table, predicted_ops(table, changes, options)))
            downgrade.append((table, downgrade_repairs(table, changes, options)))
        else:
            joined = hierarchy_of(tables, table)  # compared as they are in the database, so left alone
            joined = None if joined is None or any(changes.touches(t) for t in joined) else joined
            unflagged = auto_updated_columns(autogen_context, table)
            if reflected is None:
                untouched = [t for t in pairs if not changes.touches(t)]
                reflected = ReflectedTables(autogen_context.inspector, untouched)
            base = tables.get(table.joined_base) if table.joined_base else None
            base = base if base is not None and base.schema == table.schema else None
            upgrade.append((table, drift_ops(connection, reflected, table, options, joined, unflagged, base)))
    downgrade += unversioned_repairs(autogen_context, upgrade_ops, changes, tables, options)
    for table, repairs in joined_repairs(downgrade, tables, lambda table: as_downgrade_leaves(table, changes)):
        # first in the upgrade, in reverse: the downgrade runs them last, in order
        runnable = _runnable(autogen_context, table, repairs, appears=changes.dropped, disappears=changes.created)
        runnable = without_missing_changes_table(runnable, changes.created)
        upgrade_ops.ops[0:0] = [RepairOnDowngradeOp(op) for op in reversed(runnable) if not isinstance(op, LeftOutOp)]
    for table, found in joined_repairs(upgrade, tables):
        for op in found:
            if isinstance(op, BackfillVersionsOp) and _native(autogen_context, table):
                op.native_versioning = True  # rendered, so the script is right offline too
        runnable = _runnable(autogen_context, table, found, appears=changes.created, disappears=changes.dropped)
        upgrade_ops.ops.extend(without_missing_changes_table(runnable, changes.dropped))
    return None


def _runnable(
    autogen_context: Any,
    table: VersionedTable,
    found: Sequence[Repair],
    *,
    appears: set[TableKey],
    disappears: set[TableKey],
) -> Sequence[Repair]:
    """``found`` with the repairs that could only fail or do harm left out (:class:`LeftOutOp`),
    each warned about, naming the fix (the drift stays until it is dealt with): a backfill without a transaction
    table to record it in (in the database and not among the tables that ``disappear`` in this
    direction, or among those that ``appear``), one its version table has no room for, or one of a
    hierarchy under native versioning."""
    backfills = [op for op in found if isinstance(op, BackfillVersionsOp)]
    if not backfills:
        return found
    where = table.naming.transaction_location(table.schema)
    why = ""
    if not _transaction_table_after(autogen_context, where, appears, disappears):
        why = (
            f"its transaction table {'.'.join(filter(None, where))!r} does not exist; create Continuum's "
            f"transaction table, or write the backfill by hand naming one with transaction_table=..."
        )
    elif _one_version_per_transaction(autogen_context, table):
        why = no_room_for_backfill(table.name, table.naming)
    elif any(op.joined for op in backfills) and _native(autogen_context, table):
        why = (
            "Continuum's native versioning writes each table of a joined-table inheritance hierarchy alone; "
            "backfill through the ORM, and add the tables to skip_tables."
        )
    if not why:
        return found
    for op in backfills:
        util.warn(f"alembic-versioning leaves out {op.op_name}({op.table_name!r}) ({op.finding}): {why}")
    return [LeftOutOp(op, why) if op in backfills else op for op in found]


def _transaction_table_after(
    autogen_context: Any, where: TableKey, appears: set[TableKey], disappears: set[TableKey]
) -> bool:
    """Whether the transaction table at ``where`` exists once the migration's schema changes ran."""
    default = autogen_context.dialect.default_schema_name

    def plain(key: TableKey) -> TableKey:
        return (None if key[0] == default else key[0], key[1])

    if plain(where) in {plain(k) for k in appears | disappears}:
        return plain(where) in {plain(k) for k in appears}
    connection = autogen_context.connection
    return connection is None or bool(autogen_context.inspector.has_table(where[1], schema=where[0]))


def _native(autogen_context: Any, table: VersionedTable) -> bool:
    """Whether the database versions ``table`` with Continuum's native (trigger) versioning."""
    connection = autogen_context.connection
    return connection is not None and uses_native_versioning(connection, transaction_table(table))


def _one_version_per_transaction(autogen_context: Any, table: VersionedTable) -> bool:
    """Whether ``table``'s version table is keyed on the transaction column alone: as the models
    describe it, unless the database holds it with another key (the user dropped the constraint);
    only looked up in the database when the models say so."""
    version = metadata_table(autogen_context, table.version_name, table.schema)
    if version is None or not one_version_per_transaction(version, table.naming):
        return False
    connection = autogen_context.connection
    in_database = reflect_table(connection, table.version_name, table.schema) if connection is not None else None
    return in_database is None or one_version_per_transaction(in_database, table.naming)


def register_legacy() -> None:
    """Register the comparator the pre-plugin way, for Alembic < 1.18 (call it in ``env.py``).

    There Alembic's own comparators are registered first and so run first. With Alembic
    >= 1.18 use ``autogenerate_plugins`` instead: legacy comparators run before Alembic's
    table comparison there. Calling it again (``env.py`` runs once per command) changes nothing.
    """
    from alembic.autogenerate import comparators

    if compare_versioned_tables not in comparators._registry.get(("schema", "default"), []):
        comparators.dispatch_for("schema")(compare_versioned_tables)
