"""The versioned tables autogenerate looks at: from the target MetaData, filtered like Alembic's own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..catalog import metadata_table
from ..model import VersionedTable
from .discovery import find_versioned_tables
from .options import Options


def included(autogen_context: Any, name: str, schema: str | None) -> bool:
    """Whether the run includes the table ``schema.name`` (``include_name``, ``include_object``)."""
    if not autogen_context.run_name_filters(name, "table", {"schema_name": schema}):
        return False
    table = metadata_table(autogen_context.metadata, name, schema)
    return table is None or bool(autogen_context.run_object_filters(table, name, "table", False, None))


def versioned_pairs(autogen_context: Any, options: Options, schemas: Iterable[str | None]) -> list[VersionedTable]:
    """The versioned tables of the target MetaData in ``schemas`` that the run includes.

    A pair is left out when ``include_name`` / ``include_object`` exclude its live or its
    version table, or when ``skip_tables`` names it.
    """
    wanted = set(schemas)
    default = autogen_context.dialect.default_schema_name
    return [
        table
        for table in find_versioned_tables(autogen_context.metadata, managers=options.managers, default_schema=default)
        if (table.schema in wanted or (table.schema == default and None in wanted))
        and not options.skips(table, default)
        and included(autogen_context, table.name, table.schema)
        and included(autogen_context, table.version_name, table.schema)
    ]


def auto_updated_columns(autogen_context: Any, table: VersionedTable) -> list[str]:
    """Return the live table's columns the database or SQLAlchemy sets on every update.

    These are the ``onupdate`` and ``server_onupdate`` columns, as the target MetaData has them.
    Continuum never flags them (the value changes outside the attribute's history), so their flags
    are not checked."""
    live = metadata_table(autogen_context.metadata, table.name, table.schema)
    if live is None:
        return []
    return [c.name for c in live.c if c.onupdate is not None or c.server_onupdate is not None]
