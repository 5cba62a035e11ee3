"""Operations as autogenerate emits them: every argument explicit, so scripts run offline too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from ..model import VersionedTable
from ..operations import JOINED_KEYS, BackfillVersionsOp, UpdateModFlagsOp, VersionedDataOp, VersionedTableOp

Op = TypeVar("Op", bound=VersionedTableOp)


def make_op(cls: type[Op], table: VersionedTable, finding: str, **extra: Any) -> Op:
    """An op on ``table`` with its schema, key, naming and (where the op takes them) columns
    given explicitly, carrying ``finding`` for the comment rendered above it."""
    kwargs: dict[str, Any] = {"schema": table.schema, "primary_key": table.primary_key, "naming": table.naming}
    if cls is UpdateModFlagsOp:
        kwargs["columns"] = table.mod_columns
    if issubclass(cls, VersionedDataOp):
        kwargs.update(columns=table.columns, mod_columns=table.mod_columns)
    if cls is BackfillVersionsOp:
        if table.entity_names:
            kwargs["entity_names"] = table.entity_names
        kwargs.update(association=table.association, null_delete=table.null_delete)
    # explicit either way: offline, a missing strategy comes from target_metadata, the head revision's
    kwargs["strategy"] = table.strategy
    kwargs.update(extra)
    if cls in (BackfillVersionsOp, UpdateModFlagsOp):
        kwargs.update(_subclass_arguments(table, kwargs["columns"]))
    op = cls(table.name, **kwargs)
    op.finding = finding
    return op


def _subclass_arguments(table: VersionedTable, columns: Sequence[str]) -> dict[str, Any]:
    """``subclass_columns`` (and ``discriminator``) of ``table`` among the ``columns`` an op names (a
    downgrade's op describes the table without the columns the upgrade added)."""
    subclass = {c: v for c, v in table.subclass_columns.items() if c in columns}
    if not subclass:
        return {}
    return {"subclass_columns": subclass, "discriminator": table.discriminator if any(subclass.values()) else None}


def joined_description(
    tables: Sequence[VersionedTable | VersionedTableOp], keys: Sequence[str] = JOINED_KEYS
) -> dict[str, dict[str, Any]]:
    """``joined=`` describing ``tables`` (or the tables of ops) explicitly, as generated ops do
    (``keys``: what the op's ``joined=`` says of a table)."""
    ops = [t if isinstance(t, VersionedTableOp) else make_op(BackfillVersionsOp, t, "") for t in tables]
    # a joined table's subclass columns as a list: its discriminator, if any, is its base table's
    return {
        op.table_name: {k: list(v) if k == "subclass_columns" else v for k, v in op.arguments().items() if k in keys}
        for op in ops
    }
