"""Drift checks: aggregate queries that count what each repair would change, fetching no rows.

Two queries per versioned table: one window pass over the version table counts broken chain
links, wrong mod flags and futile versions together; one join of the live table with each
entity's latest version counts the versions ``backfill_versions`` would write, by kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..model import DELETE, INSERT, UPDATE, VersionedTable
from .backfill import OPERATION, pending_versions
from .chains import base_chain, broken_link, with_base
from .constructs import constant
from .history import history
from .mod_flags import missing_flags
from .vacuum import VacuumPart, futile_versions, hierarchy_futile, is_futile


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, constant(1)), else_=constant(0))), constant(0))


def history_check(
    table: VersionedTable, *, chains: bool, mod_flags: bool, futile: bool, base: VersionedTable | None = None
) -> sa.Select[Any]:
    """One row: ``broken_links``, ``missing_flags``, ``futile`` (0 for the kinds not asked for).

    Association tables get no chain check: Continuum never fills their end ids (it reads them
    with ``max(transaction_id)``). The chain of a table of a joined-table inheritance hierarchy
    is its ``base`` table's, as ``update_end_transaction_ids(base, joined=[...])`` repairs it (see
    :mod:`~alembic_versioning.sql.chains`). Missing flags are flags the data proves missing (see
    :func:`~alembic_versioning.sql.mod_flags.missing_flags`), so histories Continuum wrote count none.
    """
    flags = mod_flags and bool(table.mod_columns)
    chains = chains and table.strategy == "validity" and not table.association
    lagged = table.columns if futile else table.mod_columns if flags else ()  # chains alone: narrow
    h = history(table, table.version_table(), lagged, next_tx=chains, previous_tx=flags, previous_op=futile)
    chain = base_chain(base) if chains and base is not None else None
    zero = constant(0)
    counts = sa.select(
        (_count(broken_link(h, chain)) if chains else zero).label("broken_links"),
        (_count(missing_flags(h, table.mod_columns)) if flags else zero).label("missing_flags"),
        (_count(is_futile(h, table.columns)) if futile else zero).label("futile"),
    )
    return counts.select_from(with_base(h, chain)) if chain is not None else counts


def backfill_check(table: VersionedTable, live: sa.Table, columns: Sequence[str]) -> sa.Select[Any]:
    """Return the select of one row of counts of the entities a backfill would write a version of.

    - ``missing``: live rows without a current version, or whose latest is a DELETE;
    - ``stale``: the latest version differs from the live row;
    - ``undeleted``: no live row, the latest version not a DELETE."""
    pending = pending_versions(table, table.version_table(), live, columns).subquery("pending")
    op = pending.c[OPERATION]
    return sa.select(
        _count(op == constant(INSERT)).label("missing"),
        _count(op == constant(UPDATE)).label("stale"),
        _count(op == constant(DELETE)).label("undeleted"),
    )


def hierarchy_futile_check(parts: Sequence[VacuumPart]) -> sa.Select[Any]:
    """One row: ``futile``, the versions of a joined-table inheritance hierarchy (``parts``, the base
    table first) futile in every table that has a row of them, as ``vacuum_versions(joined=...)`` sees them."""
    futile = [futile_versions(part).subquery(f"futile_{i}") for i, part in enumerate(parts)]
    throughout = hierarchy_futile(parts, futile).subquery("throughout")
    return sa.select(sa.func.count().label("futile")).select_from(throughout)
