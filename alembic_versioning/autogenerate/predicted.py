"""What the migration being generated does to versioned tables, and the repairs it implies.

The data cannot be queried for a table the migration creates or alters (the database does not
have its new shape yet), so those repairs are predicted from Alembic's schema operations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from alembic.operations import ops as alembic_ops

from ..model import Strategy, VersionedTable
from ..operations import (
    BackfillVersionsOp,
    Repair,
    UpdateEndTransactionIdsOp,
    UpdateModFlagsOp,
    VacuumVersionsOp,
    VersionedTableOp,
    repair_of,
)
from ..record import CHANGES_TABLE
from .factory import make_op
from .options import Options

TableKey = tuple[str | None, str]


@dataclass
class SchemaChanges:
    """Tables the migration creates, drops or reshapes (columns added, dropped or renamed), and the
    columns it adds and drops."""

    created: set[TableKey] = field(default_factory=set)
    dropped: set[TableKey] = field(default_factory=set)
    altered: set[TableKey] = field(default_factory=set)  # columns added, dropped or renamed
    added: dict[TableKey, list[str]] = field(default_factory=lambda: defaultdict(list))
    removed: dict[TableKey, list[str]] = field(default_factory=lambda: defaultdict(list))

    def touches(self, table: VersionedTable) -> bool:
        """Whether the migration reshapes ``table``'s live or version table.

        It does when it creates or drops the table, or adds, drops or renames its columns. Type,
        default, nullability, index, constraint and comment changes leave the data checkable: the
        repairs run after them, and find nothing if they fixed it."""
        keys = {(table.schema, table.name), (table.schema, table.version_name)}
        return bool(keys & (self.created | self.dropped | self.altered))


def schema_changes(upgrade_ops: alembic_ops.UpgradeOps) -> SchemaChanges:
    """Read the schema operations Alembic's own comparators produced."""
    changes = SchemaChanges()
    for op in upgrade_ops.ops:
        if isinstance(op, alembic_ops.CreateTableOp):
            changes.created.add((op.schema, op.table_name))
        elif isinstance(op, alembic_ops.DropTableOp):
            changes.dropped.add((op.schema, op.table_name))
        elif isinstance(op, alembic_ops.ModifyTableOps):
            key = (op.schema, op.table_name)
            for column_op in op.ops:
                if isinstance(column_op, alembic_ops.AddColumnOp):
                    changes.added[key].append(column_op.column.name)
                elif isinstance(column_op, alembic_ops.DropColumnOp):
                    changes.removed[key].append(column_op.column_name)
                elif not isinstance(column_op, alembic_ops.AlterColumnOp) or column_op.modify_name is None:
                    continue  # a type, default, nullability or comment change keeps the shape the checks read
                changes.altered.add(key)
    return changes


def versioned_columns_removed(table: VersionedTable, removed: list[str]) -> list[str]:
    """Return the data columns among ``removed`` columns of the version table.

    Not data columns: the transaction, end or operation-type column (a strategy switch), a mod
    flag (the tracker switched off)."""
    names = table.naming
    bookkeeping = {names.transaction_column_name, names.end_transaction_column_name, names.operation_type_column_name}
    data = set(removed) | set(table.columns)
    suffix = names.mod_suffix
    return [c for c in removed if c not in bookkeeping and not (c.endswith(suffix) and c[: -len(suffix)] in data)]


def _listing(names: list[str]) -> str:
    return ", ".join(names)


def predicted_ops(table: VersionedTable, changes: SchemaChanges, options: Options) -> list[VersionedTableOp]:
    """Return the repairs that follow from what the migration does to ``table``, in run order."""
    live, version = (table.schema, table.name), (table.schema, table.version_name)
    if version in changes.dropped or live in changes.dropped or live in changes.created:
        return []
    if version in changes.created:
        if not options.enabled("backfill"):
            return []
        return [
            make_op(
                BackfillVersionsOp,
                table,
                f"{table.version_name} is new: versions for the existing rows of {table.name}",
            )
        ]
    names = table.naming
    added = changes.added.get(version, [])
    found: list[tuple[str, type[VersionedTableOp], dict[str, Any], str]] = []
    if names.end_transaction_column_name in added and not table.association:  # see downgrade_repairs
        found.append(
            ("chains", UpdateEndTransactionIdsOp, {}, f"{names.end_transaction_column_name} added (validity strategy)")
        )
    removed = versioned_columns_removed(table, changes.removed.get(version, []))
    if removed:
        found.append(
            (
                "vacuum",
                VacuumVersionsOp,
                {},
                f"versioned column(s) {_listing(removed)} dropped: versions may now be futile",
            )
        )
    flags = [c for c in table.mod_columns if table.mod_column(c) in added]
    if flags:
        found.append(
            (
                "mod_flags",
                UpdateModFlagsOp,
                {"columns": flags, "insert_flags": "non_null"},  # new flags are false: INSERTs get theirs too
                f"mod flag(s) added for {_listing(flags)}",
            )
        )
    data = [c for c in added if c in table.columns]
    if data:
        found.append(
            (
                "backfill",
                BackfillVersionsOp,
                {},
                f"column(s) {_listing(data)} added to {table.name} and {table.version_name}",
            )
        )
    return [make_op(cls, table, finding, **extra) for check, cls, extra, finding in found if options.enabled(check)]


def as_downgrade_leaves(table: VersionedTable, changes: SchemaChanges) -> VersionedTable | None:
    """Return ``table`` as the migration's downgrade leaves it.

    That is, with its versioned columns, those with mod flags and its strategy before the upgrade.
    ``None`` when the upgrade creates the table or its version table: the downgrade leaves it
    unversioned."""
    live, version = (table.schema, table.name), (table.schema, table.version_name)
    if version in changes.created or live in changes.created:
        return None
    removed, added = changes.removed.get(version, []), changes.added.get(version, [])
    end = table.naming.end_transaction_column_name
    before: Strategy = "validity" if end in removed else "subquery" if end in added else table.strategy
    columns = [*(c for c in table.columns if c not in added), *versioned_columns_removed(table, removed)]
    flagged = [c for c in table.mod_columns if table.mod_column(c) not in added]
    mod_columns = [c for c in columns if table.mod_column(c) in removed or c in flagged]
    return replace(table, columns=tuple(columns), mod_columns=tuple(mod_columns), strategy=before)


def downgrade_repairs(table: VersionedTable, changes: SchemaChanges, options: Options) -> list[VersionedTableOp]:
    """Return the repairs the migration's *downgrade* implies for ``table``, in run order.

    - An end-transaction column or mod flags the upgrade drops come back empty: rebuild them.
    - Versioned columns the upgrade adds and backfills leave futile versions once dropped again:
      vacuum, if opted in.
    - Versioned columns the upgrade drops come back empty: backfill.

    Each op describes the table as the downgrade leaves it."""
    version = (table.schema, table.version_name)
    described = as_downgrade_leaves(table, changes)
    if version in changes.dropped or described is None:
        return []
    names = table.naming
    removed, added = changes.removed.get(version, []), changes.added.get(version, [])
    end = names.end_transaction_column_name
    before, columns, mod_columns = described.strategy, list(described.columns), list(described.mod_columns)
    found: list[VersionedTableOp] = []
    # Continuum never fills an association version table's end ids (the drift check skips them too)
    if end in removed and options.enabled("chains") and not table.association:
        found.append(
            make_op(
                UpdateEndTransactionIdsOp, table, f"{end} is back, empty: rebuild the validity chain", strategy=before
            )
        )
    back = versioned_columns_removed(table, removed)
    versioned = [c for c in added if c in table.columns]
    if versioned and options.enabled("backfill") and options.enabled("vacuum"):
        found.append(
            make_op(
                VacuumVersionsOp,
                table,
                f"column(s) {_listing(versioned)} dropped again: the versions the backfill wrote are futile",
                columns=columns,
                mod_columns=mod_columns,
                strategy=before,
            )
        )
    flags = [c[: -len(names.mod_suffix)] for c in removed if c.endswith(names.mod_suffix)]
    flags = [c for c in flags if c in table.columns or c in removed]
    if flags and options.enabled("mod_flags"):
        found.append(
            make_op(
                UpdateModFlagsOp,
                table,
                f"mod flag(s) for {_listing(flags)} are back, false: recompute them",
                columns=flags,
                insert_flags="non_null",
                strategy=before,
            )
        )
    if back and options.enabled("backfill"):
        found.append(
            make_op(
                BackfillVersionsOp,
                table,
                f"column(s) {_listing(back)} back in {table.version_name}, empty: versions with the live values",
                columns=columns,
                mod_columns=mod_columns,
                strategy=before,
            )
        )
    return found


def without_missing_changes_table(ops: Sequence[Repair], missing: set[TableKey]) -> Sequence[Repair]:
    """Return ``ops``, with no ``entity_names`` on a backfill whose ``transaction_changes`` table is missing.

    ``missing``: the tables the upgrade drops (for upgrade ops) or creates (for downgrade ops).
    Left-out backfills lose them too (the script shows them)."""
    for found in ops:
        op = repair_of(found)
        if isinstance(op, BackfillVersionsOp) and op.entity_names:
            schema, _ = op.naming.transaction_location(op.schema)
            if (schema, CHANGES_TABLE) in missing:
                op.entity_names = ()
    return ops
