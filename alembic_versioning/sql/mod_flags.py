"""``update_mod_flags``: recompute ``<column>_mod`` flags in one ``UPDATE ... FROM``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..model import DELETE, UPDATE, InsertFlags, VersionedTable
from .constructs import Differs, constant, unset
from .history import History, history


def subclass_delete_flag(table: VersionedTable, row: Any, column: str) -> ColumnElement[Any] | None:
    """Return the flag Continuum gives ``column`` on a DELETE version where that is not simply true.

    It is true for every attribute of the deleted entity's class. ``row``: a column collection
    holding the version.

    - For a column only some classes of a single-table inheritance hierarchy map
      (:attr:`~alembic_versioning.model.VersionedTable.subclass_columns`): whether the row's
      discriminator names one of them; NULL where that is not known (no discriminator described
      or carried, or NULL in the row).
    - ``None`` for any other column."""
    if column not in table.subclass_columns:
        return None
    identities = table.subclass_columns[column]
    if table.discriminator is None or not identities or table.discriminator not in row:
        return sa.null()
    discriminator = row[table.discriminator]
    return sa.case(
        (discriminator.in_([sa.literal(i) for i in identities]), sa.true()),
        (discriminator.is_not(None), sa.false()),
        else_=sa.null(),
    )


def mod_flag_expression(
    row: Any,
    table: VersionedTable,
    column: str,
    previous_value: ColumnElement[Any],
    has_previous: ColumnElement[bool],
    insert_flags: InsertFlags = "keep",
) -> ColumnElement[bool]:
    """The flag ``column`` gets, following the package's convention.

    DELETE: true, or as Continuum flags a subclass column (see :func:`subclass_delete_flag`), kept
    where that is not known. UPDATE with a previous version: whether the value differs from it.
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
    subclass = subclass_delete_flag(table, row, column)
    on_delete = sa.true() if subclass is None else sa.func.coalesce(subclass, row[table.mod_column(column)])
    return sa.case(
        (op == constant(DELETE), on_delete),
        (sa.and_(op == constant(UPDATE), has_previous), Differs(row[column], previous_value)),
        else_=underivable,
    )


def expected_flags(
    h: History, columns: Sequence[str], insert_flags: InsertFlags = "keep"
) -> dict[str, ColumnElement[bool]]:
    """Each flag column of ``columns`` with the value the convention gives it, over ``h``."""
    has_previous = h.previous_tx.is_not(None)
    return {
        h.table.mod_column(c): mod_flag_expression(h.c, h.table, c, h.previous(c), has_previous, insert_flags)
        for c in columns
    }


def missing_flags(h: History, columns: Sequence[str]) -> ColumnElement[bool]:
    """Whether a version lacks a flag the data proves.

    A flag is missing when it is false (or NULL):

    - on a DELETE, where Continuum flags the column (see :func:`subclass_delete_flag`);
    - on an UPDATE whose value differs from the previous version's.

    The converse, a true flag on an unchanged value, is not counted: Continuum's ORM writes it
    when an attribute is changed and changed back within one transaction. (The same rows
    :func:`expected_flags` derives, in a form the database evaluates with fewer branches.)
    """
    op = h.c[h.table.naming.operation_type_column_name]
    flags = [h.c[h.table.mod_column(c)] for c in columns]
    return sa.or_(
        sa.and_(
            op == constant(DELETE),
            sa.or_(*(_missing_on_delete(h, c, flag) for c, flag in zip(columns, flags, strict=True))),
        ),
        sa.and_(
            op == constant(UPDATE),
            h.previous_tx.is_not(None),
            sa.or_(
                *(sa.and_(unset(flag), Differs(h.c[c], h.previous(c))) for c, flag in zip(columns, flags, strict=True))
            ),
        ),
    )


def _missing_on_delete(h: History, column: str, flag: ColumnElement[bool]) -> ColumnElement[bool]:
    """Whether a DELETE version's ``flag`` of ``column`` is unset where Continuum sets it."""
    subclass = subclass_delete_flag(h.table, h.c, column)
    return unset(flag) if subclass is None else sa.and_(unset(flag), subclass)


def mod_flags_update(
    table: VersionedTable, columns: Sequence[str], insert_flags: InsertFlags = "keep", keep_true: bool = False
) -> sa.Update:
    """Recompute the flags of ``columns`` against each entity's previous version (with
    ``keep_true``, a true flag stays true: only the flags :func:`missing_flags` counts are set).

    The previous version is found by transaction order, not through the end column, so
    this works for both strategies and on broken chains. Only rows whose flags change
    are written.
    """
    version = table.version_table()
    h = history(table, version, columns, previous_tx=True)
    expected = expected_flags(h, columns, insert_flags)
    if keep_true:
        expected = {flag: sa.or_(h.c[flag].is_(sa.true()), value) for flag, value in expected.items()}
    new_flags = {version.c[flag]: value for flag, value in expected.items()}
    return (
        sa.update(version)
        .values(new_flags)
        .where(*h.matches(version), sa.or_(*(Differs(flag, value) for flag, value in new_flags.items())))
    )
