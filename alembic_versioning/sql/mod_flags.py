"""``update_mod_flags``: recompute ``<column>_mod`` flags in one ``UPDATE ... FROM``."""

from __future__ import annotations

from typing import Literal, Sequence

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..model import DELETE, UPDATE, VersionedTable
from .constructs import Differs, constant, same_entity

InsertFlags = Literal["keep", "non_null", "all"]


def mod_flag_expressions(
    row: sa.sql.ColumnCollection[str, sa.ColumnElement[object]],
    table: VersionedTable,
    column: str,
    previous_value: ColumnElement[object],
    has_previous: ColumnElement[bool],
    insert_flags: InsertFlags,
) -> ColumnElement[bool]:
    """The flag ``column`` gets, following the package's convention.

    DELETE: true. UPDATE with a previous version: whether the value differs from it.
    INSERT, or UPDATE without a previous version (Continuum's value depends on which
    attributes the application assigned, which the database does not record): the flag
    is kept (``"keep"``), or set to ``value IS NOT NULL`` (``"non_null"``) or true (``"all"``).
    """
    op = row[table.naming.operation_type_column_name]
    underivable: ColumnElement[bool] = {
        "keep": row[table.mod_column(column)],
        "non_null": row[column].is_not(None),
        "all": sa.true(),
    }[insert_flags]
    return sa.case(
        (op == constant(DELETE), sa.true()),
        (sa.and_(op == constant(UPDATE), has_previous), Differs(row[column], previous_value)),
        else_=underivable,
    )


def mod_flags_update(
    table: VersionedTable, columns: Sequence[str], insert_flags: InsertFlags = "keep"
) -> sa.Update:
    """Recompute the flags of ``columns`` against each entity's previous version.

    The previous version is found by transaction order, not through the end column, so
    this works for both strategies and on broken chains. Only rows whose flags change
    are written.
    """
    names = table.naming
    version = table.version_table()
    key = [version.c[k] for k in table.entity_key]
    tx = version.c[names.transaction_column_name]
    window = {"partition_by": key, "order_by": tx}
    history = sa.select(
        *key,
        tx,
        version.c[names.operation_type_column_name],
        *(version.c[c] for c in columns if c not in table.entity_key),
        *(version.c[table.mod_column(c)] for c in columns),
        sa.func.lag(tx).over(**window).label("_av_previous_tx"),
        *(sa.func.lag(version.c[c]).over(**window).label(f"_av_previous_{i}") for i, c in enumerate(columns)),
    ).subquery("history")
    has_previous = history.c._av_previous_tx.is_not(None)
    new_flags = {
        version.c[table.mod_column(c)]: mod_flag_expressions(
            history.c, table, c, history.c[f"_av_previous_{i}"], has_previous, insert_flags
        )
        for i, c in enumerate(columns)
    }
    return (
        sa.update(version)
        .values(new_flags)
        .where(
            *same_entity(version.c, history.c, table.entity_key, key_is_primary=bool(table.primary_key)),
            tx == history.c[tx.name],
            sa.or_(*(Differs(flag, value) for flag, value in new_flags.items())),
        )
    )
