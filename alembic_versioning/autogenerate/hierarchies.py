"""Joined-table inheritance: one backfill per hierarchy, on its base table.

Continuum writes every table of a hierarchy at each version of an entity, so the backfills the
tables of one hierarchy need become one ``backfill_versions(base, joined=[...])`` (see
:func:`~alembic_versioning.sql.backfill.backfill_statements`), placed after the repairs of the
hierarchy's last table. A hierarchy the migration cannot backfill as a whole (a table of it
skipped, or in another schema than the base) gets none, with a warning naming the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import util

from ..model import VersionedTable
from ..operations import JOINED_KEYS, BackfillVersionsOp, VersionedTableOp, joined_tables
from .factory import make_op

Found = list[tuple[VersionedTable, list[VersionedTableOp]]]


def joined_backfills(found: Found) -> Found:
    """``found`` (each versioned table with its repairs, in order) with the backfills of the
    tables of a joined-table inheritance hierarchy merged into one on its base table."""
    tables = {table.qualified_name: table for table, _ in found}
    groups: dict[str, list[BackfillVersionsOp]] = {}
    last: dict[str, int] = {}
    result: Found = []
    for index, (table, ops) in enumerate(found):
        if not table.joined_with:
            result.append((table, ops))
            continue
        base = table.joined_base or table.qualified_name
        groups.setdefault(base, []).extend(op for op in ops if isinstance(op, BackfillVersionsOp))
        last[base] = index
        result.append((table, [op for op in ops if not isinstance(op, BackfillVersionsOp)]))
    for base, backfills in groups.items():
        if backfills:
            merged = _merged(tables, base, backfills)
            if merged is not None:
                result[last[base]][1].append(merged)
    return result


def _merged(
    tables: dict[str, VersionedTable], base: str, backfills: Sequence[BackfillVersionsOp]
) -> BackfillVersionsOp | None:
    """One backfill of the hierarchy of ``base`` for ``backfills`` (its tables' own), or ``None``
    and a warning when the hierarchy cannot be backfilled as a whole here."""
    root = tables.get(base)
    problem = _incomplete(tables, base, root)
    if root is None or problem:
        names = sorted({op.table_name for op in backfills})
        util.warn(
            f"alembic-versioning leaves out backfill_versions of {names}: joined-table inheritance versions "
            f"them together, and {problem}; backfill them with op.backfill_versions(base, joined=[...]) by "
            f"hand, or add them to skip_tables."
        )
        return None
    alone = len(backfills) == 1 and backfills[0].table_name == root.name
    finding = "; ".join(op.finding if alone else f"{op.table_name}: {op.finding}" for op in backfills if op.finding)
    # each table as its own backfill describes it (e.g. as a downgrade leaves it), else as the models do
    ops = {op.table_name: op for op in backfills}
    described = [ops.get(tables[key].name) or make_op(BackfillVersionsOp, tables[key], "") for key in root.joined_with]
    joined = {op.table_name: {k: v for k, v in op.arguments().items() if k in JOINED_KEYS} for op in described}
    own = ops.get(root.name) or make_op(BackfillVersionsOp, root, "")
    own.joined, own.finding = joined_tables(root.name, joined), finding
    return own


def _incomplete(tables: dict[str, VersionedTable], base: str, root: VersionedTable | None) -> str:
    """Why the hierarchy of ``base`` cannot be backfilled as a whole here ("" when it can)."""
    if root is None:
        return f"its base table {base!r} is not among the tables autogenerate compares"
    missing = [key for key in root.joined_with if key not in tables]
    if missing:
        return f"its table(s) {missing} are not among the tables autogenerate compares"
    elsewhere = [key for key in root.joined_with if tables[key].schema != root.schema]
    if elsewhere:
        return f"its table(s) {elsewhere} are not in schema {root.schema!r} of {base!r}"
    return ""
