"""The database's tables and column types, as the drift checks need them: read once per schema
(one reflection query on PostgreSQL) for every versioned pair, not per table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.reflection import ObjectKind

from ..model import VersionedTable


class ReflectedTables:
    """Column types of the live and version tables of ``tables``, by (schema, name)."""

    def __init__(self, inspector: sa.Inspector, tables: Iterable[VersionedTable]) -> None:
        names: dict[str | None, set[str]] = defaultdict(set)
        for table in tables:
            names[table.schema] |= {table.name, table.version_name}
        self._columns: dict[tuple[str | None, str], list[Any]] = {}
        for schema, wanted in names.items():
            found = inspector.get_multi_columns(schema=schema, filter_names=sorted(wanted), kind=ObjectKind.ANY)
            self._columns.update({(schema, name): columns for (_, name), columns in found.items()})

    def has_table(self, name: str, schema: str | None) -> bool:
        """Whether the database has the table (or view) ``schema.name``."""
        return (schema, name) in self._columns

    def types(self, name: str, schema: str | None) -> dict[str, Any]:
        """The column types of ``schema.name`` as the database holds them (none if it has no such table)."""
        return {c["name"]: c["type"] for c in self._columns.get((schema, name), [])}
