"""Joined-table inheritance: one backfill per hierarchy, on its base table.

Continuum writes every table of a hierarchy at each version of an entity, so the backfills the
tables of one hierarchy need become one ``backfill_versions(base, joined=[...])`` (see
:func:`~alembic_versioning.sql.backfill.backfill_statements`), placed after the repairs of the
hierarchy's last table. A hierarchy the migration cannot backfill as a whole (a table of it
skipped, or in another schema than the base) gets none, with a warning naming the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alembic import util

from ..model import VersionedTable
from ..operations import JOINED_KEYS, BackfillVersionsOp, VersionedTableOp, joined_tables
from .factory import make_op

Found = list[tuple[VersionedTable, list[VersionedTableOp]]]


def joined_backfills(
    found: Found, describe: Callable[[VersionedTable], VersionedTable | None] = lambda table: table
) -> Found:
    """``found`` (each versioned table with its repairs, in order) with the backfills of the
    tables of a joined-table inheritance hierarchy merged into one on its base table, right after
    the hierarchy's last table. ``describe`` gives a table of the hierarchy that has no backfill
    of its own as the repairs find it (a downgrade's: as the downgrade leaves it; ``None``: not
    versioned then)."""
    tables = {table.qualified_name: table for table, _ in found}
    groups: dict[str, list[BackfillVersionsOp]] = {}
    last: dict[str, int] = {}
    result: Found = []
    for table, ops in found:
        if not table.joined_with:
            result.append((table, ops))
            continue
        base = table.joined_base or table.qualified_name
        groups.setdefault(base, []).extend(op for op in ops if isinstance(op, BackfillVersionsOp))
        result.append((table, [op for op in ops if not isinstance(op, BackfillVersionsOp)]))
        last[base] = len(result)
    for base, backfills in sorted(groups.items(), key=lambda group: -last[group[0]]):  # later first: stable indexes
        merged = _merged(tables, base, backfills, describe) if backfills else None
        if merged is not None:
            result.insert(last[base], (tables[base], [merged]))
    return result


def _merged(
    tables: dict[str, VersionedTable],
    base: str,
    backfills: Sequence[BackfillVersionsOp],
    describe: Callable[[VersionedTable], VersionedTable | None],
) -> BackfillVersionsOp | None:
    """One backfill of the hierarchy of ``base`` for ``backfills`` (its tables' own), or ``None``
    and a warning when the hierarchy cannot be backfilled as a whole here."""
    root = tables.get(base)
    problem = _incomplete(tables, base, root)
    ops = {op.table_name: op for op in backfills}
    own = ops.get(root.name) if root is not None else None
    described = describe(root) if root is not None and own is None else root
    if root is None or problem or described is None:
        names = sorted({op.table_name for op in backfills})
        problem = problem or f"its base table {base!r} is not versioned then"
        util.warn(
            f"alembic-versioning leaves out backfill_versions of {names}: joined-table inheritance versions "
            f"them together, and {problem}; backfill them with op.backfill_versions(base, joined=[...]) by "
            f"hand, or add them to skip_tables."
        )
        return None
    alone = len(backfills) == 1 and backfills[0].table_name == root.name
    finding = "; ".join(op.finding if alone else f"{op.table_name}: {op.finding}" for op in backfills if op.finding)
    # each table as its own backfill describes it, else as ``describe`` does (left out: not versioned then)
    members = [ops.get(tables[key].name) or _described(describe, tables[key]) for key in root.joined_with]
    joined = {op.table_name: {k: v for k, v in op.arguments().items() if k in JOINED_KEYS} for op in members if op}
    merged = own or make_op(BackfillVersionsOp, described, "")
    merged.joined, merged.finding = joined_tables(root.name, joined), finding
    return merged


def _described(
    describe: Callable[[VersionedTable], VersionedTable | None], table: VersionedTable
) -> BackfillVersionsOp | None:
    found = describe(table)
    return make_op(BackfillVersionsOp, found, "") if found is not None else None


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
