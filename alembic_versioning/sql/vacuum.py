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

On PostgreSQL and MariaDB the futile versions are listed in a temporary table first, and these
statements read the list (:func:`lists_futile_versions_first`, :func:`listed_vacuum_statements`).

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
    MARIADB,
    Analyze,
    CreateTemporaryTableAs,
    Differs,
    DropTemporaryTableIfExists,
    constant,
    same_entity,
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
    return _with_after_futile(table, _marked(table, version, compared, h))


def _marked(
    table: VersionedTable, version: sa.Table, compared: Sequence[str], h: History, carried: Sequence[str] = ()
) -> sa.Subquery:
    """Every version of ``h`` (a whole history with the previous operation type) with ``_av_futile``
    and the ``carried`` columns of ``h``."""
    marked = sa.select(
        *(h.c[c.name] for c in version.c),
        *(h.c[c] for c in carried),
        sa.case((is_futile(h, compared), constant(1)), else_=constant(0)).label(FUTILE),
    ).subquery("marked")
    ignored = [c for c in table.columns if c not in compared]
    if ignored:
        marked = _latest_kept(table, marked, ignored)
    return marked


def joined_history(table: VersionedTable, version: sa.Table, compared: Sequence[str]) -> History:
    """What ``history(table, version, compared, previous_tx=True, previous_op=True, whole=True)`` gives, the previous
    version found by a join on its transaction id (a window over the key and transaction ids alone
    gives it) instead of by ``lag()`` of every compared column.

    MariaDB computes a window over whole rows in a temporary table, on disk where they hold text:
    at 200k versions 2.6 s, where this join takes 0.3 s (see :func:`listed_vacuum_statements`)."""
    names = table.naming
    tx = version.c[names.transaction_column_name]
    key = table.key_columns(version.c)
    neighbours = (
        sa.select(*key, tx, sa.func.lag(tx).over(partition_by=key, order_by=tx).label("_av_previous_tx"))
        .where(*table.in_key_range(version.c))
        .subquery("neighbours")
    )
    n = neighbours.c
    before = version.alias("before")
    joined = neighbours.join(version, sa.and_(*same_entity(table, version.c, n), tx == n[tx.name])).outerjoin(
        before, sa.and_(*same_entity(table, before.c, n), before.c[tx.name] == n._av_previous_tx)
    )
    subquery = (
        sa.select(
            *version.c,
            n._av_previous_tx,
            before.c[names.operation_type_column_name].label("_av_previous_op"),
            *(before.c[c].label(f"_av_previous_{i}") for i, c in enumerate(compared)),
        )
        .select_from(joined)
        .subquery("previous")
    )
    return History(table, subquery, tuple(compared))


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


def listed_delete(table: VersionedTable, version: sa.Table, futile: sa.Table) -> sa.Delete:
    """Delete the versions the table ``futile`` lists, by a join (``DELETE ... USING`` on MariaDB)."""
    return sa.delete(version).where(*same_version(table, version, futile))


def lists_futile_versions_first(dialect: Any) -> bool:
    """Whether ``vacuum_versions`` on ``dialect`` lists the futile versions in a temporary table
    before it relinks and deletes (:func:`listed_vacuum_statements`), rather than classifying the
    versions afresh in each statement (:func:`classified_vacuum_statements`).

    - PostgreSQL does: the classification (a window over every compared column) is most of a
      statement's work, and the listed versions are then relinked and deleted by joins with the
      list (a batch of 20,000 entities of 10M versions: 0.35 s instead of 0.65 s).
    - MariaDB does: it runs a ``DELETE ... WHERE EXISTS`` over the classifying window query as if
      it computed the query per row (200k versions: 7 to 13 s, of 11 s in all; deleted by a join
      with the listed versions: 0.2 s), and its windows over whole rows are slow (see
      :func:`classifies_by_join`).
    - SQLite runs the classifying statements in about the time of a join, without a temporary
      table to write.

    A hierarchy's futile versions are listed in temporary tables on every database
    (:func:`hierarchy_vacuum_statements`)."""
    return bool(dialect.name == "postgresql" or dialect.name in MARIADB)


def classifies_by_join(dialect: Any) -> bool:
    """Whether the futile versions listed on ``dialect`` are classified with :func:`joined_history`
    (MariaDB, whose windows over whole rows are slow) rather than by ``lag()`` of every compared
    column; there a hierarchy's are deleted by a join with their list too."""
    return bool(dialect.name in MARIADB)


def vacuum_statements(table: VersionedTable, compared: Sequence[str], dialect: Any = None) -> list[sa.Executable]:
    """The statements that remove ``table``'s futile versions, comparing ``compared`` columns, in
    the form suited to ``dialect`` (see :func:`lists_futile_versions_first`; without one, the
    classifying form)."""
    if dialect is not None and lists_futile_versions_first(dialect):
        return listed_vacuum_statements(table, compared, joined=classifies_by_join(dialect))
    return classified_vacuum_statements(table, compared)


def classified_vacuum_statements(table: VersionedTable, compared: Sequence[str]) -> list[sa.Executable]:
    """The statements of :func:`vacuum_statements`, each classifying the versions afresh."""
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


def listed_vacuum_statements(table: VersionedTable, compared: Sequence[str], joined: bool) -> list[sa.Executable]:
    """The statements of :func:`vacuum_statements` with the futile versions listed first.

    The futile versions (entity key and transaction id, the table's primary key where the entity
    has one; with the validity strategy also the previous version's transaction id and their end
    id) go into a temporary table (analysed, for the joins' plans), classified once (``joined``:
    by :func:`joined_history`); each later statement then reads that list (nothing they change
    alters what the classification reads): the chains are relinked from the list alone
    (:func:`listed_relink_update`), the follower flags recomputed as by the classifying statements
    over the versions marked by an outer join with the list, and the listed versions deleted by a
    join."""
    version = table.version_table()
    part = VacuumPart(table, compared)
    relinked = table.strategy == "validity"
    futile = _futile_table(FUTILE, part, relinked)
    listing = futile_versions(part, joined=joined, relinked=relinked)
    listed = CreateTemporaryTableAs(futile, listing, whole_derived=joined)
    statements: list[sa.Executable] = [DropTemporaryTableIfExists(futile), listed, Analyze(futile)]
    if relinked:
        statements.append(listed_relink_update(table, version, futile))
    ignored_flags = [c for c in table.mod_columns if c not in compared]
    if ignored_flags:
        statements.append(follower_flags_update(table, version, classified_by(part, futile, part), ignored_flags))
    statements += [listed_delete(table, version, futile), sa.schema.DropTable(futile)]
    return statements


@dataclass(frozen=True)
class VacuumPart:
    """One version table of a vacuum and the data columns compared."""

    table: VersionedTable
    compared: Sequence[str]


def futile_versions(part: VacuumPart, joined: bool = False, relinked: bool = False) -> sa.Select[Any]:
    """The entity key and transaction id of ``part``'s futile versions, its table alone (``joined``:
    found by :func:`joined_history`), and with ``relinked`` their previous version's transaction id
    and their end id too (see :func:`listed_relink_update`)."""
    table, version, compared = part.table, part.table.version_table(), part.compared
    extra = ["_av_previous_tx"] if relinked else []
    h = (
        joined_history(table, version, compared)
        if joined
        else history(table, version, compared, name="previous", previous_tx=relinked, previous_op=True, whole=True)
    )
    c = _marked(table, version, compared, h, extra).c
    ends = [c._av_previous_tx, c[table.naming.end_transaction_column_name]] if relinked else []
    return sa.select(*_version_key(part, c), *ends).where(c[FUTILE] == constant(1))


def listed_relink_update(table: VersionedTable, version: sa.Table, futile: sa.Table) -> sa.Update:
    """:func:`relink_update` from the list of futile versions alone (``futile``: key, transaction
    id, ``_av_previous_tx`` and end id of each), a window over those rows instead of every version.

    A futile version starts a run unless the futile version before it (in the list) is its
    previous version; that previous version is the run's survivor, which takes the end id of the
    run's last version."""
    names = table.naming
    f = futile.c
    tx, end = names.transaction_column_name, names.end_transaction_column_name
    listed_before = sa.func.lag(f[tx]).over(partition_by=table.key_columns(f), order_by=f[tx])
    start = sa.case((Differs(listed_before, f._av_previous_tx), constant(1)), else_=constant(0))
    starts = sa.select(*table.key_columns(f), f[tx], f._av_previous_tx, f[end], start.label("_av_start")).subquery(
        "starts"
    )
    s = starts.c
    group = sa.func.sum(s._av_start).over(partition_by=table.key_columns(s), order_by=s[tx], rows=(None, 0))
    grouped = sa.select(starts, group.label("_av_group")).subquery("grouped")
    g = grouped.c
    run: dict[str, Any] = {"partition_by": [*table.key_columns(g), g._av_group], "order_by": g[tx]}
    runs = sa.select(
        *table.key_columns(g),
        g._av_start,
        g._av_previous_tx.label("_av_survivor_tx"),
        sa.func.last_value(g[end]).over(**run, rows=(None, None)).label("_av_run_end"),
    ).subquery("runs")
    r = runs.c
    stored_end = version.c[end]
    return (
        sa.update(version)
        .values({stored_end: r._av_run_end})
        .where(
            *same_entity(table, version.c, r),
            version.c[tx] == r._av_survivor_tx,
            *table.in_key_range(version.c),
            r._av_start == constant(1),
            Differs(stored_end, r._av_run_end),
        )
    )


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


def classified_by(part: VacuumPart, futile: Any, base: VacuumPart, columns: Sequence[str] | None = None) -> sa.Subquery:
    """``part``'s versions classified as :func:`classified_versions` does, futile being those in
    ``futile`` (versions of the hierarchy, keyed like the ``base`` table), found by an outer join.

    With ``columns``, each version carries only its key, transaction id and those columns."""
    table = part.table
    version = table.version_table()
    listed = futile.alias("listed")
    found = _version_key(base, listed.c)[0].is_not(None)
    carried: Any = version.c
    if columns is not None:
        carried = [*_version_key(part, version.c), *(version.c[c] for c in columns)]
    marked = (
        sa.select(*carried, sa.case((found, constant(1)), else_=constant(0)).label(FUTILE))
        .select_from(version.outerjoin(listed, sa.and_(*_same_version(part, version.c, base, listed.c))))
        .where(*table.in_key_range(version.c))
        .subquery("marked")
    )
    return _with_after_futile(table, marked)


def hierarchy_vacuum_statements(parts: Sequence[VacuumPart], dialect: Any = None) -> list[sa.Executable]:
    """The statements that remove the futile versions of a hierarchy's tables (``parts``, base first).

    Where they are classified by a join (see :func:`classifies_by_join`), each
    table's chains are relinked over its key, transaction and end ids alone, and its listed
    versions deleted by a join."""
    listed = dialect is not None and classifies_by_join(dialect)
    own = [_futile_table(f"{FUTILE}_{i}", part) for i, part in enumerate(parts)]
    base = parts[0]
    throughout = _futile_table(FUTILE, base)
    statements: list[sa.Executable] = [DropTemporaryTableIfExists(t) for t in (*own, throughout)]
    for table, part in zip(own, parts, strict=True):
        own_futile = futile_versions(part, joined=listed)
        statements += [CreateTemporaryTableAs(table, own_futile, whole_derived=listed), Analyze(table)]
    statements += [CreateTemporaryTableAs(throughout, hierarchy_futile(parts, own)), Analyze(throughout)]
    for part in parts:
        version = part.table.version_table()
        if part.table.strategy == "validity":
            ends = [part.table.naming.end_transaction_column_name] if listed else None
            statements.append(relink_update(part.table, version, classified_by(part, throughout, base, ends)))
        if listed:
            joined = [*_same_version(part, version.c, base, throughout.c), *part.table.in_key_range(version.c)]
            statements.append(sa.delete(version).where(*joined))
        else:
            statements.append(futile_delete(part.table, version, classified_by(part, throughout, base)))
    statements += [sa.schema.DropTable(t) for t in (*own, throughout)]
    return statements


def _futile_table(name: str, part: VacuumPart, relinked: bool = False) -> sa.Table:
    """A temporary table of versions (entity key and transaction id) of ``part``'s table; with
    ``relinked``, also the previous version's transaction id and the end id of each."""
    version = part.table.version_table()
    keyed = bool(part.table.primary_key)  # else the entity is every column, which may be NULL
    columns = [sa.Column(c.name, c.type, primary_key=keyed) for c in _version_key(part, version.c)]
    if relinked:
        end = part.table.naming.end_transaction_column_name
        columns += [sa.Column("_av_previous_tx", sa.BigInteger), sa.Column(end, sa.BigInteger)]
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
