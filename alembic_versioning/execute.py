"""Execute an operation's statements, online or as an offline script, and report what they did."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import sqlalchemy as sa
from alembic.operations import Operations

from .comments import one_line
from .model import VersionedTable
from .sql.constructs import delimited, is_compound

log = logging.getLogger("alembic.runtime.migration")


def execute_statements(
    operations: Operations,
    op_name: str,
    table: VersionedTable,
    statements: Sequence[sa.Executable],
    done: str,
    counted: Sequence[int] = (-1,),
) -> None:
    """Execute ``statements`` online, or emit them as SQL offline.

    - Online: log one INFO line with the rows counted by the statements at the indexes
      ``counted`` (summed); ``done`` says what they are, e.g. ``"rows updated"``.
    - Offline: emit them after a comment naming the op, between ``BEGIN`` and ``COMMIT`` where
      the script has no transaction of its own (Alembic's default for SQLite,
      ``transactional_ddl=False``), so that a failure part-way leaves nothing half done.

    The table's name is written with its control characters escaped
    (:func:`~alembic_versioning.comments.one_line`): a line break in it would end the comment, and
    the rest would run as SQL or as a psql command.
    """
    name = one_line(table.qualified_version_name)
    if operations.migration_context.as_sql:
        impl = operations.migration_context.impl
        impl.static_output(f"-- {op_name}: {name}")
        own_transaction = not impl.transactional_ddl
        if own_transaction:
            impl.emit_begin()
        for statement in statements:
            if is_compound(statement, impl.dialect):  # MariaDB's guards: the client needs their own delimiter
                impl.static_output(delimited(str(cast(sa.ClauseElement, statement).compile(dialect=impl.dialect))))
            else:
                operations.execute(statement)
        if own_transaction:
            impl.emit_commit()
        return
    bind = operations.get_bind()
    counts = [
        bind.execute(statement, execution_options={"preserve_rowcount": True}).rowcount for statement in statements
    ]
    log.info("%s %s: %d %s", op_name, name, sum(counts[i] for i in counted), done)
