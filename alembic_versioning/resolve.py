"""Find the :class:`VersionedTable` an operation works on, online or offline.

Online, the version table is reflected from the migration's connection. Offline
(``alembic upgrade --sql``) nothing can be read, so the table comes from the migration's
``target_metadata`` when it holds it, else from the op's explicit arguments.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic.operations import Operations

from .errors import VersioningError
from .model import VersionedTable
from .operations import VersionedTableOp
from .reflection import describe_version_table, missing_version_table, reflect_table


def _metadata_table(operations: Operations, name: str, schema: str | None) -> sa.Table | None:
    metadata = operations.migration_context.opts.get("target_metadata")
    key = f"{schema}.{name}" if schema else name
    for md in metadata if isinstance(metadata, (list, tuple)) else [metadata]:
        if md is not None and key in md.tables:
            return md.tables[key]
    return None


def resolve(operations: Operations, op: VersionedTableOp, columns: Sequence[str] | None = None) -> VersionedTable:
    """The versioned table ``op`` names, checked against the database when online.

    ``columns`` are the data columns the op needs, used only offline when neither the
    database nor ``target_metadata`` can describe the table.
    """
    version_name = op.naming.version_table_name(op.table_name)
    if not operations.migration_context.as_sql:
        bind = operations.get_bind()
        table = reflect_table(bind, version_name, op.schema)
        if table is None:
            if not sa.inspect(bind).has_table(op.table_name, schema=op.schema):
                where = f" in schema {op.schema!r}" if op.schema else ""
                raise VersioningError(
                    f"Unknown table {op.table_name!r}{where}: neither it nor {version_name!r} exists. "
                    f"Pass the live table's name (not the version table's) and schema=... if needed."
                )
            raise missing_version_table(op.table_name, op.schema, op.naming)
    else:
        table = _metadata_table(operations, version_name, op.schema)
    if table is not None:
        return describe_version_table(table, name=op.table_name, naming=op.naming, primary_key=op.primary_key)
    if op.primary_key is None:
        raise VersioningError(
            f"Offline mode cannot reflect {version_name!r} (table {op.table_name!r}) and the "
            f"migration's target_metadata does not hold it: pass primary_key=[...] (and the "
            f"columns the op needs) to op.{op.op_name}(), as autogenerate renders them."
        )
    cols = tuple(columns or ())
    return VersionedTable(
        name=op.table_name,
        schema=op.schema,
        naming=op.naming,
        primary_key=op.primary_key,
        columns=cols,
        mod_columns=cols,
    )
