"""Joined-table inheritance: one chain repair, one backfill and one vacuum per hierarchy, on its base table.

Continuum writes every table of a hierarchy at each version of an entity, and its end id to each
of them, so the backfills (the vacuums, the chain repairs) the tables of one hierarchy need become
one ``backfill_versions(base, joined=...)`` (one ``vacuum_versions(base, joined=...)``, one
``update_end_transaction_ids(base, joined=...)``), placed after the repairs of the hierarchy's
last table. A hierarchy the migration cannot repair as a whole (a table of it skipped, or in another
schema than the base) gets none: the repair is left out (``LeftOutOp``), with a warning naming the fix.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from alembic import util

from ..model import VersionedTable
from ..operations import (
    BackfillVersionsOp,
    HierarchyOp,
    LeftOutOp,
    Repair,
    UpdateEndTransactionIdsOp,
    VacuumVersionsOp,
    joined_tables,
)
from .factory import joined_description, make_op

Found = list[tuple[VersionedTable, Sequence[Repair]]]
Describe = Callable[[VersionedTable], VersionedTable | None]
#: The ops merged per hierarchy, in the order they run.
MERGED: tuple[type[HierarchyOp], ...] = (UpdateEndTransactionIdsOp, VacuumVersionsOp, BackfillVersionsOp)


def hierarchy_of(tables: dict[str, VersionedTable], base: VersionedTable) -> list[VersionedTable] | None:
    """Return the other tables of ``base``'s hierarchy among ``tables`` (keyed by qualified name).

    ``None`` when it cannot be repaired as a whole here (see :func:`incomplete`)."""
    return None if incomplete(tables, base.qualified_name, base) else [tables[key] for key in base.joined_with]


def joined_repairs(found: Found, tables: dict[str, VersionedTable], describe: Describe = lambda table: table) -> Found:
    """Return ``found`` with each joined-table inheritance hierarchy's repairs merged on its base table.

    The chain repairs, the backfills and the vacuums of the hierarchy's tables become one of each
    on its base table, right after the hierarchy's last table.

    - ``found``: each versioned table with its repairs, in order;
    - ``tables``: every versioned table compared, by qualified name;
    - ``describe``: gives a table of the hierarchy without an op of its own as the repairs find it
      (a downgrade's: as the downgrade leaves it; ``None``: not versioned then)."""
    groups: dict[str, list[HierarchyOp]] = {}
    last: dict[str, int] = {}
    first: dict[str, VersionedTable] = {}
    result: Found = []
    for table, ops in found:
        if not table.joined_with:
            result.append((table, ops))
            continue
        base = table.joined_base or table.qualified_name
        first.setdefault(base, table)
        groups.setdefault(base, []).extend(op for op in ops if isinstance(op, MERGED))
        result.append((table, [op for op in ops if not isinstance(op, MERGED)]))
        last[base] = len(result)
    for base, group in sorted(groups.items(), key=lambda item: -last[item[0]]):  # later first: stable indexes
        merged = [_merged(tables, base, [op for op in group if type(op) is kind], describe) for kind in MERGED]
        if any(merged):
            result.insert(last[base], (tables.get(base, first[base]), [op for op in merged if op is not None]))
    return result


def _merged(
    tables: dict[str, VersionedTable], base: str, ops: Sequence[HierarchyOp], describe: Describe
) -> HierarchyOp | LeftOutOp | None:
    """Return one op of the hierarchy of ``base`` for ``ops`` (its tables' own, of one kind).

    - ``None`` without ops;
    - when the hierarchy cannot be repaired as a whole here: the first of ``ops`` left out, with
      a warning."""
    if not ops:
        return None
    root = tables.get(base)
    problem = incomplete(tables, base, root)
    own = {op.table_name: op for op in ops}
    found = own.get(root.name) if root is not None else None
    described = describe(root) if root is not None and found is None else root
    if root is None or problem or described is None:
        why = (
            f"joined-table inheritance versions the tables of the hierarchy of {base!r} together, and "
            f"{problem or f'its base table {base!r} is not versioned then'}; repair {sorted(own)} with "
            f"op.{ops[0].op_name}(base, joined=[...]) by hand, or add them to skip_tables."
        )
        util.warn(f"alembic-versioning leaves out {ops[0].op_name} of {sorted(own)}: {why}")
        left_out = copy.copy(ops[0])  # names the op and a table for alembic check; no call: it writes half versions
        left_out.finding = "; ".join(f"{op.table_name}: {op.finding}" for op in ops if op.finding)
        return LeftOutOp(left_out, why, show_repair=False)
    alone = len(ops) == 1 and ops[0].table_name == root.name
    finding = "; ".join(op.finding if alone else f"{op.table_name}: {op.finding}" for op in ops if op.finding)
    # each table as its own op describes it, else as ``describe`` does (left out: not versioned then)
    members = [own.get(tables[key].name) or describe(tables[key]) for key in root.joined_with]
    merged = found or make_op(type(ops[0]), described, "")
    keys = merged.joined_keys
    merged.joined = joined_tables(root.name, joined_description([m for m in members if m is not None], keys), keys)
    merged.finding = finding
    if isinstance(merged, BackfillVersionsOp):  # which classes changed is in the rows; every one of them
        classes = {*root.entity_names, *(name for key in root.joined_with for name in tables[key].entity_names)}
        merged.entity_names = tuple(sorted(classes))
    return merged


def incomplete(tables: dict[str, VersionedTable], base: str, root: VersionedTable | None) -> str:
    """Why the hierarchy of ``base`` cannot be repaired as a whole here ("" when it can)."""
    if root is None:
        return f"its base table {base!r} is not among the tables autogenerate compares"
    missing = [key for key in root.joined_with if key not in tables]
    if missing:
        return f"its table(s) {missing} are not among the tables autogenerate compares"
    elsewhere = [key for key in root.joined_with if tables[key].schema != root.schema]
    if elsewhere:
        return f"its table(s) {elsewhere} are not in schema {root.schema!r} of {base!r}"
    return ""
