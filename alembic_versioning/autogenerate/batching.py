"""Batches for large tables: generated repairs of a table with many versions get ``batch_size=``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..model import VersionedTable
from ..operations import Repair, VersionedTableOp
from ..sql.constructs import RowEstimate
from .options import Options


def estimated_versions(connection: sa.Connection | None, table: VersionedTable) -> int | None:
    """Return the number of rows of ``table``'s version table by estimate (``None``: none known);
    nothing is counted (see :class:`~alembic_versioning.sql.constructs.RowEstimate`)."""
    if connection is None:
        return None
    return connection.execute(sa.select(RowEstimate(table.version_table()))).scalar()


def batch_large(
    connection: sa.Connection | None, table: VersionedTable, repairs: Sequence[Repair], options: Options, alone: bool
) -> None:
    """Give the repairs of ``table`` ``batch_size=`` where its version table is large.

    Large: at least ``batch_threshold`` versions by estimate. Batches commit the revision's DDL
    first, so:

    - in a revision of repairs ``alone``, the repairs get ``batch_size=``;
    - in a revision with schema changes (a batch failing would leave them applied and the revision
      not), the finding says so instead."""
    ops: list[Any] = [r for r in repairs if isinstance(r, VersionedTableOp) and r.batch_size is None]
    if not ops or not options.batch_size or not table.primary_key:
        return
    estimate = estimated_versions(connection, table)
    if estimate is None or estimate < options.batch_threshold:
        return
    for op in ops:
        if alone:
            op.batch_size = options.batch_size
        else:
            op.finding = (
                f"{op.finding + '; ' if op.finding else ''}about {estimate:,} versions: in a revision without "
                f"schema changes this repair would run in batches (batch_size={options.batch_size})"
            )
