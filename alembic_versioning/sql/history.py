"""One window pass over a version table: each version beside its neighbours.

Every repair and every drift check reads the versions of an entity in transaction order; this
module builds that ordered view once, so they share it (and a check of several kinds costs
one pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..model import VersionedTable
from .constructs import same_entity


@dataclass(frozen=True)
class History:
    """A version table's rows with the previous version's values and the next transaction id."""

    table: VersionedTable
    subquery: sa.Subquery
    columns: tuple[str, ...]

    @property
    def c(self) -> Any:
        return self.subquery.c

    @property
    def next_tx(self) -> ColumnElement[Any]:
        """The entity's next transaction id (NULL for its last version; built with ``next_tx``)."""
        return self.c._av_next_tx

    @property
    def previous_tx(self) -> ColumnElement[Any]:
        """The entity's previous transaction id (NULL for its first version; with ``previous_tx``)."""
        return self.c._av_previous_tx

    @property
    def previous_op(self) -> ColumnElement[Any]:
        """The previous version's operation type (NULL for the first version; with ``previous_op``)."""
        return self.c._av_previous_op

    def previous(self, column: str) -> ColumnElement[Any]:
        """The previous version's value of ``column``."""
        return self.c[f"_av_previous_{self.columns.index(column)}"]

    def matches(self, version: sa.Table) -> list[ColumnElement[bool]]:
        """Conditions joining ``version``'s rows to their own history row."""
        return same_version(self.table, version, self.subquery)


def same_version(table: VersionedTable, left: Any, right: Any) -> list[ColumnElement[bool]]:
    """Conditions matching one version (entity and transaction) in two selectables of ``table``,
    ``left`` (the table a statement writes) kept in the table's key range, so that a batch reads
    only its own entities there too."""
    tx = table.naming.transaction_column_name
    key = same_entity(table, left.c, right.c)
    return [*key, left.c[tx] == right.c[tx], *table.in_key_range(left.c)]


def history(
    table: VersionedTable,
    version: sa.Table,
    columns: Sequence[str] = (),
    name: str = "history",
    *,
    next_tx: bool = False,
    previous_tx: bool = False,
    previous_op: bool = False,
    whole: bool = False,
) -> History:
    """The versions of ``version`` with, per entity in transaction order, the previous values of
    ``columns`` and, as asked for, the next transaction id and the previous transaction id and
    operation type. Each window function costs the database a little on every row, so only
    those asked for are computed.

    Each version carries its key, transaction, end-transaction and operation columns and
    ``columns`` with their mod flags, or with ``whole`` every column of ``version``: a repair
    needs no column it does not read (an offline script's description of the table may hold
    columns a later revision adds). Only the entities of the table's
    :attr:`~alembic_versioning.model.VersionedTable.key_range` are read (a batch)."""
    names = table.naming
    tx = version.c[names.transaction_column_name]
    window: dict[str, Any] = {"partition_by": table.key_columns(version.c), "order_by": tx}
    columns = tuple(columns)
    neighbours = {
        "_av_next_tx": sa.func.lead(tx) if next_tx else None,
        "_av_previous_tx": sa.func.lag(tx) if previous_tx else None,
        "_av_previous_op": sa.func.lag(version.c[names.operation_type_column_name]) if previous_op else None,
    }
    carried = version.c if whole else _carried(table, version, columns)
    subquery = (
        sa.select(
            *carried,
            *(function.over(**window).label(label) for label, function in neighbours.items() if function is not None),
            *(sa.func.lag(version.c[c]).over(**window).label(f"_av_previous_{i}") for i, c in enumerate(columns)),
        )
        .where(*table.in_key_range(version.c))  # whole entities: their windows stay whole
        .subquery(name)
    )
    return History(table, subquery, columns)


def _carried(table: VersionedTable, version: sa.Table, columns: Sequence[str]) -> list[sa.Column[Any]]:
    """The columns of ``version`` a history of ``columns`` needs, in the table's order."""
    names = table.naming
    needed = {*table.entity_key, *columns, *(table.mod_column(c) for c in columns if c in table.mod_columns)}
    if table.subclass_columns and table.discriminator is not None:  # tells a DELETE's flags
        needed.add(table.discriminator)
    needed |= {names.transaction_column_name, names.end_transaction_column_name, names.operation_type_column_name}
    return [c for c in version.c if c.name in needed]
