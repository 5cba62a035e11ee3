"""``vacuum_versions``: delete futile versions, keeping chains and mod flags correct.

A futile version is an UPDATE whose compared data columns all equal (NULL-safely) those of the
entity's previous version in transaction order, that previous version not being a DELETE, and
whose mod flags, where it has them, flag none of those columns (false or NULL); with columns left
out of the comparison, an entity's latest version that differs in them from the last version kept
is kept too (the live row's values). Up to three
statements, each classifying the rows afresh (none of them changes what the classification
reads: data columns, transaction ids, operation types, the compared columns' flags):

1. validity strategy: each surviving version followed by a run of futile ones takes the run's
   end id, so the chain skips the run;
2. with flagged columns left out of the comparison: the version after a run gets their flags
   recomputed against the survivor (those of the compared columns stand: the run equals the
   survivor in them);
3. the futile versions are deleted.

The tables of a joined-table inheritance hierarchy, whose versions Continuum writes together
(one row in each table an entity has a row in, at one transaction), are vacuumed together: a
version is futile when it is futile in every table that has a row of it. Those versions are
computed first, into temporary tables, and each table's statements then classify by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..model import DELETE, UPDATE, VersionedTable
from .constructs import (
    Analyze,
    CreateTemporaryTableAs,
    Differs,
    DropTemporaryTableIfExists,
    constant,
    same_entity_across,
    unset,
)
from .history import History, history, same_version
from .mod_flags import mod_flag_expression

FUTILE = "_av_futile"


def is_futile(h: History, compared: Sequence[str]) -> ColumnElement[bool]:
    """Whether a version is futile.

    It is when:

    - it is an UPDATE;
    - its previous version is not a DELETE, and it equals that version in ``compared``;
    - it flags none of ``compared`` that have mod flags (a true flag records that the application
      wrote the column: Continuum's ORM writes such a version when an attribute is changed and
      changed back within one transaction)."""
    flagged = [h.c[h.table.mod_column(c)] for c in compared if c in h.table.mod_columns]
    return sa.and_(
        h.c[h.table.naming.operation_type_column_name] == constant(UPDATE),
        h.previous_op.is_not(None),
        h.previous_op != constant(DELETE),
        *(~Differs(h.c[c], h.previous(c)) for c in compared),
        *(unset(flag) for flag in flagged),
    )


def classified_versions(table: VersionedTable, version: sa.Table, compared: Sequence[str]) -> sa.Subquery:
    """Every version with ``_av_futile`` (1 or 0) and ``_av_after_futile`` (whether the
    version just before it is futile)."""
    h = history(table, version, compared, name="previous", previous_op=True, whole=True)
    marked = sa.select(
        *(h.c[c.name] for c in version.c),
        sa.case((is_futile(h, compared), constant(1)), else_=constant(0)).label(FUTILE),
    ).subquery("marked")
    ignored = [c for c in table.columns if c not in compared]
    if ignored:
        marked = _latest_kept(table, marked, ignored)
    return _with_after_futile(table, marked)


def _latest_kept(table: VersionedTable, marked: sa.Subquery, ignored: Sequence[str]) -> sa.Subquery:
    """Return ``marked`` with some entities' latest versions no longer futile.

    A latest version stays when it differs in an ``ignored`` column from the version it would fall
    back to (the last one kept before it): that version would then no longer equal the live row,
    and a backfill would write it again."""
    m = marked.c
    tx = m[table.naming.transaction_column_name]
    key = table.key_columns(m)
    kept_so_far = sa.func.sum(constant(1) - m[FUTILE]).over(partition_by=key, order_by=tx, rows=(None, 0))
    grouped = sa.select(
        marked, kept_so_far.label("_av_group"), sa.func.lead(tx).over(partition_by=key, order_by=tx).label("_av_next")
    ).subquery("grouped")
    g = grouped.c
    run: dict[str, Any] = {"partition_by": [*table.key_columns(g), g._av_group], "order_by": g[tx.name]}
    survivor = sa.select(
        grouped, *(sa.func.first_value(g[c]).over(**run).label(f"_av_kept_{i}") for i, c in enumerate(ignored))
    ).subquery("survivor")
    v = survivor.c
    differs = sa.or_(*(Differs(v[c], v[f"_av_kept_{i}"]) for i, c in enumerate(ignored)))
    futile = sa.case((sa.and_(v._av_next.is_(None), differs), constant(0)), else_=v[FUTILE])
    return sa.select(*(v[c.name] for c in marked.c if c.name != FUTILE), futile.label(FUTILE)).subquery("kept")


def _with_after_futile(table: VersionedTable, marked: sa.Subquery) -> sa.Subquery:
    """``marked`` (versions with ``_av_futile``) with ``_av_after_futile``: whether the version
    just before each is futile."""
    m = marked.c
    after = sa.func.lag(m[FUTILE]).over(
        partition_by=table.key_columns(m), order_by=m[table.naming.transaction_column_name]
    )
    return sa.select(marked, after.label("_av_after_futile")).subquery("classified")


def relink_update(table: VersionedTable, version: sa.Table, classified: sa.Subquery) -> sa.Update:
    """Give each survivor followed by futile versions the end id of the run's last version."""
    names = table.naming
    c = classified.c
    tx, end = c[names.transaction_column_name], c[names.end_transaction_column_name]
    key = table.key_columns(c)
    group = sa.func.sum(constant(1) - c[FUTILE]).over(partition_by=key, order_by=tx, rows=(None, 0))
    grouped = sa.select(*key, tx, end, c[FUTILE], group.label("_av_group")).subquery("grouped")
    g = grouped.c
    run: dict[str, Any] = {"partition_by": [*table.key_columns(g), g._av_group]}
    runs = sa.select(
        *table.key_columns(g),
        g[names.transaction_column_name],
        g[FUTILE],
        sa.func.last_value(g[names.end_transaction_column_name])
        .over(**run, order_by=g[names.transaction_column_name], rows=(None, None))
        .label("_av_run_end"),
        sa.func.count().over(**run).label("_av_run_size"),
    ).subquery("runs")
    stored_end = version.c[names.end_transaction_column_name]
    return (
        sa.update(version)
        .values({stored_end: runs.c._av_run_end})
        .where(
            *same_version(table, version, runs),
            runs.c[FUTILE] == constant(0),
            runs.c._av_run_size > constant(1),
            Differs(stored_end, runs.c._av_run_end),
        )
    )


def follower_flags_update(
    table: VersionedTable, version: sa.Table, classified: sa.Subquery, flagged: Sequence[str]
) -> sa.Update:
    """Recompute the ``flagged`` columns' flags of each version that follows a futile run,
    against the survivor."""
    names = table.naming
    c = classified.c
    tx = c[names.transaction_column_name]
    window: dict[str, Any] = {"partition_by": table.key_columns(c), "order_by": tx}
    survivors = (
        sa.select(
            classified,
            sa.func.lag(tx).over(**window).label("_av_survivor_tx"),
            *(sa.func.lag(c[col]).over(**window).label(f"_av_survivor_{i}") for i, col in enumerate(flagged)),
        )
        .where(c[FUTILE] == constant(0))
        .subquery("survivors")
    )
    s = survivors.c
    has_previous = s._av_survivor_tx.is_not(None)
    flags = {
        version.c[table.mod_column(col)]: mod_flag_expression(
            s, table, col, s[f"_av_survivor_{i}"], has_previous, "keep"
        )
        for i, col in enumerate(flagged)
    }
    return (
        sa.update(version)
        .values(flags)
        .where(
            *same_version(table, version, survivors),
            s._av_after_futile == constant(1),
            sa.or_(*(Differs(flag, value) for flag, value in flags.items())),
        )
    )


def futile_delete(table: VersionedTable, version: sa.Table, classified: sa.Subquery) -> sa.Delete:
    """Delete the futile versions."""
    futile = sa.select(classified).where(classified.c[FUTILE] == constant(1)).subquery("futile")
    return sa.delete(version).where(sa.exists().where(*same_version(table, version, futile)))


def vacuum_statements(table: VersionedTable, compared: Sequence[str]) -> list[sa.Executable]:
    """The statements that remove ``table``'s futile versions, comparing ``compared`` columns."""
    version = table.version_table()
    classified = classified_versions(table, version, compared)
    statements: list[sa.Executable] = []
    if table.strategy == "validity":
        statements.append(relink_update(table, version, classified))
    # A futile run equals the survivor in the compared columns, so the follower's flags of those
    # stand (rewriting them would also change what the next statement classifies as futile).
    ignored_flags = [c for c in table.mod_columns if c not in compared]
    if ignored_flags:
        statements.append(follower_flags_update(table, version, classified, ignored_flags))
    statements.append(futile_delete(table, version, classified))
    return statements


@dataclass(frozen=True)
class VacuumPart:
    """One version table of a vacuum and the data columns compared."""

    table: VersionedTable
    compared: Sequence[str]


def futile_versions(part: VacuumPart) -> sa.Select[Any]:
    """The entity key and transaction id of ``part``'s futile versions, its table alone."""
    classified = classified_versions(part.table, part.table.version_table(), part.compared)
    c = classified.c
    tx = c[part.table.naming.transaction_column_name]
    return sa.select(*part.table.key_columns(c), tx).where(c[FUTILE] == constant(1))


def _version_key(part: VacuumPart, columns: Any) -> list[Any]:
    """``part``'s entity key and transaction id among ``columns``."""
    return [*part.table.key_columns(columns), columns[part.table.naming.transaction_column_name]]


def _same_version(part: VacuumPart, columns: Any, other: VacuumPart, other_columns: Any) -> list[ColumnElement[bool]]:
    """One version (entity and transaction id) in two tables of a hierarchy."""
    tx, other_tx = part.table.naming.transaction_column_name, other.table.naming.transaction_column_name
    entity = same_entity_across(part.table, columns, other.table, other_columns)
    return [*entity, columns[tx] == other_columns[other_tx]]


def hierarchy_futile(parts: Sequence[VacuumPart], futile: Sequence[Any]) -> sa.Select[Any]:
    """Return the versions futile throughout a hierarchy, keyed like the base table.

    - ``parts``: the hierarchy's tables, the base table first;
    - ``futile``: each table's own futile versions.

    They are the base table's futile versions where every other table has either no row of that
    version or a futile one. Outer joins only (each version is at most one row of each table),
    which both databases run in linear time; an ``IN`` under ``OR`` would be a subplan PostgreSQL
    rescans per row once it outgrows ``work_mem``."""
    base, found = parts[0], futile[0]
    joined: Any = found
    throughout = []
    for i, (part, own) in enumerate(zip(parts[1:], futile[1:], strict=True)):
        version = part.table.version_table().alias(f"v_{i}")
        listed = own.alias(f"f_{i}")
        in_range = part.table.in_key_range(version.c)
        joined = joined.outerjoin(version, sa.and_(*_same_version(part, version.c, base, found.c), *in_range))
        joined = joined.outerjoin(listed, sa.and_(*_same_version(part, listed.c, part, version.c)))
        has_row = _version_key(part, version.c)[0].is_not(None)
        throughout.append(sa.or_(~has_row, _version_key(part, listed.c)[0].is_not(None)))
    return sa.select(*_version_key(base, found.c)).select_from(joined).where(*throughout)


def classified_by(part: VacuumPart, futile: Any, base: VacuumPart) -> sa.Subquery:
    """``part``'s versions classified as :func:`classified_versions` does, futile being those in
    ``futile`` (versions of the hierarchy, keyed like the ``base`` table), found by an outer join."""
    table = part.table
    version = table.version_table()
    listed = futile.alias("listed")
    found = _version_key(base, listed.c)[0].is_not(None)
    marked = (
        sa.select(version, sa.case((found, constant(1)), else_=constant(0)).label(FUTILE))
        .select_from(version.outerjoin(listed, sa.and_(*_same_version(part, version.c, base, listed.c))))
        .where(*table.in_key_range(version.c))
        .subquery("marked")
    )
    return _with_after_futile(table, marked)


def hierarchy_vacuum_statements(parts: Sequence[VacuumPart]) -> list[sa.Executable]:
    """The statements that remove the futile versions of a hierarchy's tables (``parts``, base first)."""
    own = [_futile_table(f"{FUTILE}_{i}", part) for i, part in enumerate(parts)]
    base = parts[0]
    throughout = _futile_table(FUTILE, base)
    statements: list[sa.Executable] = [DropTemporaryTableIfExists(t) for t in (*own, throughout)]
    for table, part in zip(own, parts, strict=True):
        statements += [CreateTemporaryTableAs(table, futile_versions(part)), Analyze(table)]
    statements += [CreateTemporaryTableAs(throughout, hierarchy_futile(parts, own)), Analyze(throughout)]
    for part in parts:
        version = part.table.version_table()
        classified = classified_by(part, throughout, base)
        if part.table.strategy == "validity":
            statements.append(relink_update(part.table, version, classified))
        statements.append(futile_delete(part.table, version, classified))
    statements += [sa.schema.DropTable(t) for t in (*own, throughout)]
    return statements


def _futile_table(name: str, part: VacuumPart) -> sa.Table:
    """A temporary table of versions (entity key and transaction id) of ``part``'s table."""
    version = part.table.version_table()
    columns = (sa.Column(c.name, c.type) for c in _version_key(part, version.c))
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
