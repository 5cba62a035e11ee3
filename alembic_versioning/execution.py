"""Run a statement for an operation, online or offline, and report what it did."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic.operations import Operations

from .model import VersionedTable

log = logging.getLogger("alembic.runtime.migration")


def run(operations: Operations, op_name: str, table: VersionedTable, statement: sa.Executable, done: str) -> None:
    """Execute ``statement``: online, log one INFO line with its row count; offline, emit it as SQL.

    ``done`` says what the rows counted are, e.g. ``"rows updated"``.
    """
    if operations.migration_context.as_sql:
        operations.impl.static_output(f"-- {op_name}: {table.qualified_version_name}")
        operations.execute(statement)
        return
    result = operations.get_bind().execute(statement)
    log.info("%s %s: %d %s", op_name, table.qualified_version_name, result.rowcount, done)
