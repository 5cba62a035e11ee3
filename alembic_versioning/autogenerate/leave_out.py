"""The leave-out policy: repairs autogenerate finds needed but leaves out, since they could only
fail or do harm. Each becomes a :class:`~alembic_versioning.operations.LeftOutOp` (commented in the
script, a diff for ``alembic check``), warned about with the fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic import util

from ..catalog import metadata_table, reflect_table, uses_native_versioning
from ..errors import no_room_for_backfill
from ..model import VersionedTable, one_version_per_transaction
from ..operations import BackfillVersionsOp, LeftOutOp, Repair
from ..record import transaction_table
from .predicted import TableKey


def leave_out(
    autogen_context: Any,
    table: VersionedTable,
    found: Sequence[Repair],
    *,
    appears: set[TableKey],
    disappears: set[TableKey],
) -> Sequence[Repair]:
    """Return ``found`` with each repair that could only fail or do harm left out.

    A repair left out becomes a :class:`LeftOutOp`, warned about with the fix (the drift stays
    until it is dealt with). Left out are backfills:

    - without a transaction table to record them in once the migration's schema changes ran
      (``appears`` / ``disappears``: the tables this direction creates / drops);
    - into a version table with no room for them (keyed on the transaction column alone);
    - of a joined-table hierarchy under native versioning.
    """
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
    elif any(op.joined for op in backfills) and native(autogen_context, table):
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


def native(autogen_context: Any, table: VersionedTable) -> bool:
    """Whether the database versions ``table`` with Continuum's native (trigger) versioning."""
    connection = autogen_context.connection
    return connection is not None and uses_native_versioning(connection, transaction_table(table))


def _one_version_per_transaction(autogen_context: Any, table: VersionedTable) -> bool:
    """Whether ``table``'s version table is keyed on the transaction column alone.

    It is when the models describe it so, unless the database holds it with another key (the user
    dropped the constraint). The database is looked up only when the models say so."""
    version = metadata_table(autogen_context.metadata, table.version_name, table.schema)
    if version is None or not one_version_per_transaction(version, table.naming):
        return False
    connection = autogen_context.connection
    in_database = reflect_table(connection, table.version_name, table.schema) if connection is not None else None
    return in_database is None or one_version_per_transaction(in_database, table.naming)
