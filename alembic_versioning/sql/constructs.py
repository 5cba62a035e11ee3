"""Compiled constructs that hide dialect differences from the statement builders."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement


class Differs(ColumnElement[bool]):
    """``a IS DISTINCT FROM b``: true when the values differ, NULL counting as a value.

    PostgreSQL's ``json`` type has no equality operator, so there both sides are compared
    as ``jsonb`` (equal documents compare equal, as they do in Python).
    """

    inherit_cache = True
    type = sa.Boolean()

    def __init__(self, left: ColumnElement[Any], right: ColumnElement[Any]) -> None:
        self.left = left
        self.right = right


@compiles(Differs)
def _differs(element: Differs, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.left.is_distinct_from(element.right), **kw)


@compiles(Differs, "postgresql")
def _differs_postgresql(element: Differs, compiler: SQLCompiler, **kw: Any) -> str:
    from sqlalchemy.dialects.postgresql import JSONB

    left, right = element.left, element.right
    if isinstance(left.type, sa.JSON) and not isinstance(left.type, JSONB):
        left, right = sa.cast(left, JSONB), sa.cast(right, JSONB)
    return compiler.process(left.is_distinct_from(right), **kw)


def constant(value: int) -> ColumnElement[int]:
    """An integer written into the SQL text, so offline scripts need no bound parameters."""
    return sa.literal_column(str(int(value)), sa.SmallInteger)


def same_entity(
    left: sa.sql.ColumnCollection[str, Any],
    right: sa.sql.ColumnCollection[str, Any],
    key: tuple[str, ...],
    *,
    key_is_primary: bool,
) -> list[ColumnElement[bool]]:
    """Conditions matching rows of two selectables on the entity ``key``.

    A primary key is never NULL, so plain ``=`` lets the database use its index; a key made
    of all columns (an association table without a primary key) is compared NULL-safely.
    """
    if key_is_primary:
        return [left[k] == right[k] for k in key]
    return [left[k].is_not_distinct_from(right[k]) for k in key]
