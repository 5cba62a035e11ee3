"""The comparator: every versioned table of the target MetaData, its repairs appended to the migration.

Tables the migration creates or alters get the repairs the schema change implies
(:mod:`.predicted`); the others are checked in the database (:mod:`.drift`). The repairs are
appended after Alembic's schema operations, so they run once the schema is in place; in a
downgrade they run first, on the schema they were generated for. Repairs that could only fail
are left out (:mod:`.leave_out`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..catalog import ReflectedTables
from ..errors import require_supported
from ..operations import BackfillVersionsOp, LeftOutOp, RepairOnDowngradeOp
from .attribution import attribute
from .batching import batch_large
from .drift import drift_ops
from .hierarchies import Found, hierarchy_of, joined_repairs
from .leave_out import leave_out, native
from .options import options_for
from .predicted import (
    as_downgrade_leaves,
    downgrade_repairs,
    predicted_ops,
    schema_changes,
    without_missing_changes_table,
)
from .targets import auto_updated_columns, versioned_pairs
from .unversioned import unversioned_repairs


def compare_versioned_tables(autogen_context: Any, upgrade_ops: Any, schemas: Iterable[str | None]) -> Any:
    """The ``"schema"`` comparator: append the repairs each versioned table needs to ``upgrade_ops``."""
    options = options_for(autogen_context)
    alone = upgrade_ops.is_empty()  # no schema operation in this revision: repairs may run in batches
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
        runnable = leave_out(autogen_context, table, repairs, appears=changes.dropped, disappears=changes.created)
        runnable = without_missing_changes_table(runnable, changes.created)
        attribute(runnable, options.transaction, options.meta, autogen_context.metadata, changes.created)
        upgrade_ops.ops[0:0] = [RepairOnDowngradeOp(op) for op in reversed(runnable) if not isinstance(op, LeftOutOp)]
    for table, found in joined_repairs(upgrade, tables):
        for op in found:
            if isinstance(op, BackfillVersionsOp) and native(autogen_context, table):
                op.native_versioning = True  # rendered, so the script is right offline too
        if (table.schema, table.version_name) not in changes.created:  # else no versions to estimate yet
            batch_large(connection, table, found, options, alone and not changes.touches(table))
        runnable = leave_out(autogen_context, table, found, appears=changes.created, disappears=changes.dropped)
        runnable = without_missing_changes_table(runnable, changes.dropped)
        attribute(runnable, options.transaction, options.meta, autogen_context.metadata, changes.dropped)
        upgrade_ops.ops.extend(runnable)
    return None
