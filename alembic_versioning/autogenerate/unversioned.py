"""Tables the migration stops versioning: their downgrade brings the version table back empty.

When a model stops being versioned, autogenerate drops its version table; the downgrade creates
it again, without a row. The repair is a backfill, which gives every live row an INSERT version,
as a migration that starts versioning a table does. The table is no longer in the models, so it
is described from the dropped table Alembic reflected, named like the remaining versioned tables
(or by Continuum's defaults).
"""

from __future__ import annotations

from typing import Any

from alembic import util
from alembic.operations import ops as alembic_ops

from ..model import Naming, VersionedTable
from ..operations import BackfillVersionsOp, VersionedTableOp
from ..reflection import describe_version_table
from .factory import make_op
from .migration import SchemaChanges
from .options import Options
from .pairs import included, target_metadatas

Found = list[tuple[VersionedTable, list[VersionedTableOp]]]


def _naming(tables: dict[str, VersionedTable], schema: str | None) -> Naming:
    """The naming of the versioned tables that remain in ``schema`` (Continuum's defaults without)."""
    return next((t.naming for t in tables.values() if t.schema == schema), Naming())


def _dropped_version_tables(upgrade_ops: alembic_ops.UpgradeOps) -> list[Any]:
    """The tables the upgrade drops, as Alembic reflected them (``None`` columns: not known)."""
    return [op.to_table() for op in upgrade_ops.ops if isinstance(op, alembic_ops.DropTableOp) and op._reverse]


def unversioned_repairs(
    autogen_context: Any,
    upgrade_ops: alembic_ops.UpgradeOps,
    changes: SchemaChanges,
    tables: dict[str, VersionedTable],
    options: Options,
) -> Found:
    """A backfill, for the downgrade, of each live table whose version table the upgrade drops
    while keeping the live table (its model is no longer versioned).

    Left out, with a warning: a table keyed on another table whose version table the upgrade
    drops too (joined-table inheritance, whose versions are written together: one backfill of
    the hierarchy, by hand)."""
    if not options.enabled("backfill"):
        return []
    found: Found = []
    rebuilt = changes.created | changes.dropped
    versioned = {(t.schema, t.version_name) for t in tables.values()}
    dropped = _dropped_version_tables(upgrade_ops)
    for version in dropped:
        naming = _naming(tables, version.schema)
        live = _live_table(autogen_context, version, naming)
        if live is None or (version.schema, version.name) in versioned or (live.schema, live.name) in rebuilt:
            continue
        if {naming.transaction_column_name, naming.operation_type_column_name} - set(version.c.keys()):
            continue
        parents = _versioned_parents(live, naming, dropped)
        if parents:
            util.warn(
                f"alembic-versioning leaves out the downgrade's backfill_versions({live.name!r}): {version.name!r} "
                f"comes back empty together with {parents}, and a joined-table inheritance hierarchy is "
                f"versioned together; add op.backfill_versions(base, joined=[...]) to the downgrade by hand."
            )
            continue
        association = all(column.foreign_keys for column in live.c)
        table = describe_version_table(version, name=live.name, naming=naming, association=association)
        if options.skips(table, autogen_context.dialect.default_schema_name):
            continue
        finding = f"{version.name} is back, empty: versions for the existing rows of {live.name}"
        found.append((table, [make_op(BackfillVersionsOp, table, finding)]))
    return found


def _live_table(autogen_context: Any, version: Any, naming: Naming) -> Any:
    """The live table of ``version`` in the target MetaData, when the run includes it."""
    for table in (t for md in target_metadatas(autogen_context) for t in md.tables.values()):
        if table.schema == version.schema and naming.version_table_name(table.name) == version.name:
            return table if included(autogen_context, table.name, table.schema) else None
    return None


def _versioned_parents(live: Any, naming: Naming, dropped: list[Any]) -> list[str]:
    """The tables ``live``'s primary key refers to whose version tables the upgrade drops too."""
    gone = {(t.schema, t.name) for t in dropped}
    parents = {
        fk.column.table
        for column in live.primary_key.columns
        for fk in column.foreign_keys
        if fk.column.table is not live
    }
    return sorted(p.name for p in parents if (p.schema, naming.version_table_name(p.name)) in gone)
