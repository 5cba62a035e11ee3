"""``backfill_versions``: new versions wherever the version table no longer reflects the live table.

The statements, in order (a bounded number per table, nothing read back), run after the writers'
lock on the transaction, live and version tables (:class:`~.constructs.LockForWrite`), which the
operation takes first, in the order Continuum's writers take them: a writer that already took a
transaction id commits first, later writers wait, and none ends up with an id older than the
backfill's below versions newer than its own.

1. check that the sequence of transaction ids exists;
2. compute the versions to write once, into a temporary table (analysed, so the planner
   knows its size and the columns the closing join uses), and create a temporary one-row
   table with the transaction id in it, only if some entity needs a version: the database
   transaction's current record (see :class:`TransactionRecord`), else a new id;
3. insert the transaction record unless it exists, fill in its ``transaction=`` values, note it as
   the current one, and add the ``transaction_meta`` and ``transaction_changes`` rows it lacks;
4. validity strategy: close each affected entity's latest version with the new id (in a joined-table
   inheritance hierarchy, every table's version at the base table's latest transaction; never in an
   association table, whose end ids Continuum leaves NULL);
5. insert the new versions;
6. drop the temporary tables (the session's table of the current record stays: later backfills of
   the database transaction join its record).

With no entity needing a version the temporary table stays empty, every later statement
affects no row, and no transaction record is written, online or offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..model import DELETE, INSERT, UPDATE, VersionedTable
from .constructs import (
    AddressIn,
    Analyze,
    CreateTemporaryTableAs,
    Differs,
    DistinctOn,
    DropTemporaryTableIfExists,
    FullJoinSelect,
    NextTransactionId,
    RowAddress,
    StopIf,
    UnlessDistinctOn,
    UpdateAtAddresses,
    UtcNow,
    as_version_type,
    constant,
    refuse_native_versioning,
    same_entity,
    same_entity_across,
    to_regclass,
)
from .mod_flags import subclass_delete_flag

#: Names of the temporary tables holding the new transaction id and the versions to write.
PENDING_TRANSACTION = "_av_backfill_transaction"
PENDING_VERSIONS = "_av_backfill_pending"
#: The session's temporary table holding the id of its database transaction's current record.
CURRENT_RECORD = "_av_backfill_record"
OPERATION, LATEST_TX, LATEST_ROW, LATEST_OP = "_av_operation", "_av_latest_tx", "_av_latest_row", "_av_latest_op"


def current_record_table() -> sa.Table:
    """Return the session's table holding the id of the current record of its database transaction.

    It serves ORM versioning; under native versioning the record is in Continuum's own table.

    - PostgreSQL: every commit empties it (``ON COMMIT DELETE ROWS``).
    - Elsewhere a temporary table outlives a commit, so :attr:`TransactionRecord.fresh` empties it."""
    return sa.Table(
        CURRENT_RECORD,
        sa.MetaData(),
        sa.Column("id", sa.BigInteger),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


@dataclass(frozen=True)
class TransactionRecord:
    """The transaction record the new versions belong to.

    The backfills of one database transaction share one record, as Continuum writes one per
    transaction: the first that writes a version creates it, the later ones join it (its id is
    held in ``current``), filling in their ``values`` where it has none and adding the ``meta`` keys
    and ``entity_names`` it lacks. ``values`` are extra column values (``issued_at`` defaults to
    now, naive UTC); ``meta`` (key, value) pairs are written as ``meta_table`` rows, ``entity_names``
    as ``changes_table`` rows.

    ``current`` holds the current record's id: under ``native`` versioning Continuum's
    ``temporary_transaction`` (its triggers fill it, and write into that record only); else
    :func:`current_record_table`, joined only while its record is the newest transaction (one left
    behind by a committed transaction that others wrote after is not joined). ``fresh``: the
    backfill starts a new database transaction's record, so ``current`` is emptied first (where
    temporary tables outlive a commit: SQLite).
    """

    table: sa.Table
    sequence: sa.Sequence
    values: Mapping[str, ColumnElement[Any]]
    meta: Sequence[tuple[ColumnElement[Any], ColumnElement[Any]]] = ()
    meta_table: sa.Table | None = None
    entity_names: Sequence[ColumnElement[Any]] = ()
    changes_table: sa.Table | None = None
    current: sa.Table = field(default_factory=current_record_table)
    native: bool = False
    fresh: bool = False
    #: Offline, not told whether native versioning is installed: the script stops, with this, where it is.
    refuse_native: str | None = None


def reused_id(
    record: TransactionRecord, above: Sequence[sa.Column[Any]], unless: Sequence[ColumnElement[bool]] = ()
) -> ColumnElement[Any]:
    """Return the id of the current record a backfill joins, NULL where it creates one.

    - Under native versioning: the one in Continuum's table.
    - Else ours, while no id in the transaction table or ``above`` (the version tables'
      transaction ids) is higher, and none of ``unless`` holds."""
    current = record.current.c.id
    held = sa.select(sa.func.max(current))
    if not record.native:
        newest = [sa.select(sa.func.max(c)).scalar_subquery() for c in (record.table.c.id, *above)]
        held = held.where(*(current >= sa.func.coalesce(n, current) for n in newest), *(~c for c in unless))
    return held.scalar_subquery()


def latest_versions(table: VersionedTable, version: sa.Table) -> sa.Subquery:
    """Each entity's latest version: the one with the highest transaction id.

    For an intact validity chain that is the open row; for a broken one it is still a single,
    well-defined row. PostgreSQL picks it with ``DISTINCT ON`` (reading Continuum's
    ``(pk, transaction_id DESC)`` index, with a sound row estimate); elsewhere a correlated
    ``max()`` keeps it.

    For a batch's entities (:attr:`VersionedTable.key_range`) their keys and transaction ids come
    first, then their rows: on PostgreSQL the keys come from the index alone, in its order (an
    index-only scan, no sort), where picking whole rows over a key range would sort them all.
    """
    if table.key_range is None:
        return _of_latest(table, version, version, RowAddress(version).label(LATEST_ROW)).subquery("latest")
    tx = version.c[table.naming.transaction_column_name]
    newest = _of_latest(table, version, *table.key_columns(version.c), tx).subquery("newest")
    return (
        sa.select(version, RowAddress(version).label(LATEST_ROW))
        .join(newest, sa.and_(*same_entity(table, newest.c, version.c), newest.c[tx.name] == tx))
        .where(*table.in_key_range(version.c))
        .subquery("latest")
    )


def _of_latest(table: VersionedTable, version: sa.Table, *columns: Any) -> sa.Select[Any]:
    """Return the select of ``columns`` of each entity's latest version (in the table's key range)."""
    tx = version.c[table.naming.transaction_column_name]
    key = table.key_columns(version.c)
    return (
        sa.select(*columns)
        .prefix_with(DistinctOn(*key), dialect="postgresql")  # type: ignore[arg-type]  # a StatementOptionRole
        .where(UnlessDistinctOn(tx == _newest(table, version)), *table.in_key_range(version.c))
        .order_by(*key, tx.desc())
    )


def _newest(table: VersionedTable, version: sa.Table) -> ColumnElement[Any]:
    """The highest transaction id of the entity of ``version``'s row (a correlated ``max()``, one
    index lookup per row)."""
    tx = table.naming.transaction_column_name
    other = version.alias("other")
    return sa.select(sa.func.max(other.c[tx])).where(*same_entity(table, other.c, version.c)).scalar_subquery()


def pending_versions(table: VersionedTable, version: sa.Table, live: Any, columns: Sequence[str]) -> sa.SelectBase:
    """The versions to write: one row per entity whose latest version does not match the live row.

    Columns: the entity key, ``columns`` (new values), the operation type, the latest
    version's transaction id (NULL when there is none) and, per column, the latest value.
    With a primary key, one ``FULL JOIN`` of the live rows with the latest versions reads each
    once; an association table without one (whose key columns may be NULL) and SQLite (see
    :class:`~alembic_versioning.sql.constructs.FullJoinSelect`) get the ``UNION ALL`` of the live
    rows' and the deleted entities' versions.
    """
    data = [c for c in columns if c not in table.entity_key]
    latest = latest_versions(table, version)
    live = _in_version_types(live, version, [*table.entity_key, *data])
    if table.key_range is not None:  # a batch: its entities' live rows
        live = sa.select(live).where(*table.in_key_range(live.c)).subquery(live.name)
    if not table.primary_key:
        return _pending_union(table, latest, live, data)
    return FullJoinSelect.of(
        _pending_full_join(table, latest, live, data), lambda: _pending_union(table, latest, live, data)
    )


def _in_version_types(live: sa.Table, version: sa.Table, columns: Sequence[str]) -> Any:
    """``live``, or where a column's type is not its version column's (see
    :func:`~alembic_versioning.sql.constructs.as_version_type`) a subquery of it in those types."""
    values = {c: as_version_type(live.c[c], version.c[c].type) for c in columns}
    if all(value is live.c[c] for c, value in values.items()):
        return live
    return sa.select(*(value.label(c) for c, value in values.items())).subquery(live.name)


def _typed(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A latest version's ``value`` in its column's type as the models have it, the live side's (see
    :func:`~alembic_versioning.sql.constructs.as_version_type`): where the two meet, so only on the
    latest versions."""
    return as_version_type(value, value.type)


def _latest_columns(table: VersionedTable, latest: sa.Subquery, data: list[str]) -> list[ColumnElement[Any]]:
    """The pending row's columns about the latest version: its transaction id, its address, its
    operation type and its values (``_av_latest_<i>``, what new mod flags are compared with)."""
    return [
        latest.c[table.naming.transaction_column_name].label(LATEST_TX),
        latest.c[LATEST_ROW],
        latest.c[table.naming.operation_type_column_name].label(LATEST_OP),
        *(latest.c[c].label(f"_av_latest_{i}") for i, c in enumerate(data)),
    ]


def _pending_full_join(table: VersionedTable, latest: sa.Subquery, live: sa.Table, data: list[str]) -> sa.Select[Any]:
    """The pending versions as one ``FULL JOIN`` of the live rows with the latest versions."""
    names = table.naming
    tx, op = latest.c[names.transaction_column_name], latest.c[names.operation_type_column_name]
    present = live.c[table.primary_key[0]].is_not(None)
    changed = sa.or_(sa.false(), *(Differs(live.c[c], latest.c[c]) for c in data))
    return (
        sa.select(
            *(sa.func.coalesce(live.c[k], latest.c[k]).label(k) for k in table.entity_key),
            *(sa.case((present, live.c[c]), else_=_typed(latest.c[c])).label(c) for c in data),
            sa.case(
                (~present, constant(DELETE)),
                (tx.is_(None), constant(INSERT)),
                (op == constant(DELETE), constant(INSERT)),
                else_=constant(UPDATE),
            ).label(OPERATION),
            *_latest_columns(table, latest, data),
        )
        .select_from(live.join(latest, sa.and_(*same_entity(table, live.c, latest.c)), full=True))
        .where(
            sa.or_(
                sa.and_(~present, op != constant(DELETE)),
                sa.and_(present, sa.or_(tx.is_(None), op == constant(DELETE), changed)),
            )
        )
    )


def _pending_union(table: VersionedTable, latest: sa.Subquery, live: sa.Table, data: list[str]) -> sa.SelectBase:
    """The pending versions as the ``UNION ALL`` of the live rows' and the deleted entities' (no ``FULL JOIN``)."""
    names = table.naming
    tx, op = latest.c[names.transaction_column_name], latest.c[names.operation_type_column_name]
    changed = sa.or_(sa.false(), *(Differs(live.c[c], latest.c[c]) for c in data))
    from_live = (
        sa.select(
            *(live.c[k] for k in table.entity_key),
            *(live.c[c] for c in data),
            sa.case(
                (tx.is_(None), constant(INSERT)), (op == constant(DELETE), constant(INSERT)), else_=constant(UPDATE)
            ).label(OPERATION),
            *_latest_columns(table, latest, data),
        )
        .select_from(live.outerjoin(latest, sa.and_(*same_entity(table, live.c, latest.c))))
        .where(sa.or_(tx.is_(None), op == constant(DELETE), changed))
    )
    gone = (
        sa.select(
            *(latest.c[k] for k in table.entity_key),
            *(_typed(latest.c[c]) for c in data),
            constant(DELETE).label(OPERATION),
            *_latest_columns(table, latest, data),
        )
        .where(op != constant(DELETE))
        .where(~sa.exists().where(*same_entity(table, live.c, latest.c)))
    )
    return sa.union_all(from_live, gone)


def new_mod_flag(table: VersionedTable, pending: sa.Table, column: str, index: int) -> ColumnElement[bool]:
    """A new version's flag, following ``update_mod_flags``' convention.

    DELETE: true, or for a subclass column as Continuum flags it where the discriminator tells
    (see :func:`~alembic_versioning.sql.mod_flags.subclass_delete_flag`), else whether its last
    value is set (a class that does not map the column leaves it NULL); UPDATE: whether the value
    differs from the latest version's; INSERT (not derivable from the data): whether the value is
    set, as if the application assigned every non-NULL value.
    """
    op = pending.c[OPERATION]
    is_set = pending.c[column].is_not(None)  # a DELETE's pending values are the last ones (see new_value)
    subclass = subclass_delete_flag(table, pending.c, column)
    return sa.case(
        (op == constant(DELETE), sa.true() if subclass is None else sa.func.coalesce(subclass, is_set)),
        (op == constant(UPDATE), Differs(pending.c[column], pending.c[f"_av_latest_{index}"])),
        else_=is_set,
    )


def new_value(table: VersionedTable, pending: sa.Table, column: str) -> ColumnElement[Any]:
    """A new version's value of the data ``column``: the pending one, but NULL in a DELETE version
    under Continuum's ``NullDeletePlugin`` (``table.null_delete``)."""
    if not table.null_delete:
        return pending.c[column]
    return sa.case((pending.c[OPERATION] == constant(DELETE), sa.null()), else_=pending.c[column])


def merge_into_own_version(
    table: VersionedTable, version: sa.Table, pending: sa.Table, data: Sequence[str], own: ColumnElement[bool]
) -> sa.Update:
    """Bring each entity's version under the migration's own (native) transaction record up to date with the live row.

    - its values: the live row's;
    - its operation type: a DELETE when the row is gone; an INSERT stays one;
    - its flags: also set where the value changed;
    - it is left open."""
    names = table.naming
    op = pending.c[OPERATION]
    stored_op = version.c[names.operation_type_column_name]
    values: dict[Any, ColumnElement[Any]] = {version.c[c]: new_value(table, pending, c) for c in data}
    values[stored_op] = sa.case(
        (op == constant(DELETE), constant(DELETE)),
        (pending.c[LATEST_OP] == constant(INSERT), constant(INSERT)),
        else_=constant(UPDATE),
    )
    if table.strategy == "validity":  # the entity's latest version: open (the triggers may have closed it on itself)
        values[version.c[names.end_transaction_column_name]] = sa.null()
    for i, c in enumerate(data):
        if c in table.mod_columns:
            flag = version.c[table.mod_column(c)]
            values[flag] = sa.or_(op == constant(DELETE), flag, Differs(pending.c[c], pending.c[f"_av_latest_{i}"]))
    tx = version.c[names.transaction_column_name]
    return (
        sa.update(version)
        .values(values)
        .where(
            *same_entity(table, version.c, pending.c), tx == pending.c[LATEST_TX], own, *table.in_key_range(version.c)
        )
    )


@dataclass(frozen=True)
class BackfillPart:
    """One version table a backfill writes: its description, its live table (the versioned
    columns, in the live types) and the columns compared."""

    table: VersionedTable
    live: sa.Table
    columns: Sequence[str]

    @property
    def data(self) -> list[str]:
        """The compared columns that are not the entity key."""
        return [c for c in self.columns if c not in self.table.entity_key]


def unchanged_halves(
    part: BackfillPart, pending: sa.Table, others: Sequence[tuple[BackfillPart, sa.Table]]
) -> sa.Insert:
    """Insert into ``pending`` the versions of ``part`` that other tables of its hierarchy imply.

    These are the versions of entities another table of the hierarchy writes a version of while
    ``part``'s row is unchanged. Continuum writes every table of a joined-table inheritance
    hierarchy at each version, an unchanged one as an UPDATE version of the same values (no flag
    set). The latest version is found by key, entity by entity."""
    table, live = part.table, part.live
    version = table.version_table()
    tx = table.naming.transaction_column_name
    newest = version.c[tx] == _newest(table, version)
    latest = (
        sa.select(version, RowAddress(version).label(LATEST_ROW))
        .where(newest, *table.in_key_range(version.c))
        .subquery("latest")
    )
    # the entities written elsewhere, joined (an IN under OR, or a correlated EXISTS, can turn into a
    # subplan rescanned per row: PostgreSQL past work_mem, SQLite without an index)
    keys = [f"_av_key_{i}" for i in range(len(table.entity_key))]
    elsewhere = sa.union(
        *(sa.select(*(c.label(k) for c, k in zip(o.table.key_columns(p.c), keys, strict=True))) for o, p in others)
    ).subquery("elsewhere")
    written_elsewhere = [live.c[k] == elsewhere.c[e] for k, e in zip(table.entity_key, keys, strict=True)]
    changed = sa.or_(sa.false(), *(Differs(live.c[c], latest.c[c]) for c in part.data))
    found = (
        sa.select(
            *(live.c[k] for k in table.entity_key),
            *(live.c[c] for c in part.data),
            constant(UPDATE),
            *_latest_columns(table, latest, part.data),
        )
        .select_from(
            live.join(elsewhere, sa.and_(*written_elsewhere)).join(
                latest, sa.and_(*same_entity(table, live.c, latest.c))
            )
        )
        # not already pending here (told by the data, not by reading ``pending`` while inserting into it)
        .where(latest.c[table.naming.operation_type_column_name] != constant(DELETE), ~changed)
    )
    return sa.insert(pending).from_select([c.name for c in pending.c], found)


def same_operation(part: BackfillPart, pending: sa.Table, base: BackfillPart, base_pending: sa.Table) -> sa.Update:
    """Give ``part``'s new versions the operation type of the base table's new version of the same entity.

    Continuum writes one operation for all tables of a version, so a half without a version yet,
    under an entity that has one, is an UPDATE. A half whose row is gone stays a DELETE."""
    return (  # UPDATE ... FROM: one join of the two temporary tables (they have no index)
        sa.update(pending)
        .values({OPERATION: base_pending.c[OPERATION]})
        .where(
            pending.c[OPERATION] != constant(DELETE),
            *same_entity_across(part.table, pending.c, base.table, base_pending.c),
        )
    )


def backfill_setup(parts: Sequence[BackfillPart], record: TransactionRecord) -> list[sa.Executable]:
    """The statements a backfill runs once, before :func:`backfill_statements` (a batched one:
    in its first batch): the checks that the sequence of transaction ids exists and (offline,
    where unknown) that native versioning is not installed, and the session's table of the
    current record (see :func:`current_record_table`)."""
    statements: list[sa.Executable] = []
    if record.refuse_native is not None:
        statements.append(refuse_native_versioning(record.table, record.refuse_native))
    statements.append(_sequence_exists(parts[0].table.name, record.sequence))
    statements.append(sa.schema.CreateTable(record.current, if_not_exists=True))
    return statements


def backfill_statements(
    parts: Sequence[BackfillPart], record: TransactionRecord
) -> tuple[list[sa.Executable], list[int]]:
    """The statements that write the missing versions of ``parts`` in one new transaction, and
    the indexes of those inserting the versions.

    One part is one version table. Several are the tables of a joined-table inheritance
    hierarchy, its base table first: an entity needing a version in any of them gets one in
    each table that has its row (or, gone, a version not yet a DELETE), all at the new
    transaction and of the base table's operation type. They run under the writers' lock, which
    on MariaDB takes the new record's id (see :class:`~.constructs.LockForWrite`).
    """
    found = [pending_versions(p.table, p.table.version_table(), p.live, p.columns) for p in parts]
    pendings = [
        sa.Table(
            PENDING_VERSIONS if i == 0 else f"{PENDING_VERSIONS}_{i}",
            sa.MetaData(),
            *(sa.Column(c.name, c.type) for c in f.selected_columns),
            prefixes=["TEMPORARY"],
        )
        for i, f in enumerate(found)
    ]
    new_tx = sa.Table(PENDING_TRANSACTION, sa.MetaData(), sa.Column("id", sa.BigInteger), prefixes=["TEMPORARY"])
    new_id = sa.select(new_tx.c.id).scalar_subquery()
    txt, current = record.table, record.current
    versions = [p.table.version_table() for p in parts]
    versions_tx = [v.c[p.table.naming.transaction_column_name] for p, v in zip(parts, versions, strict=True)]
    statements: list[sa.Executable] = [sa.delete(current)] if record.fresh else []
    # left over on SQLite (whose DDL a failed migration does not roll back)
    statements += [DropTemporaryTableIfExists(t) for t in (*pendings, new_tx)]
    statements += [CreateTemporaryTableAs(pending, select) for pending, select in zip(pendings, found, strict=True)]
    paired = list(zip(parts, pendings, strict=True))
    if len(parts) > 1:
        statements += [unchanged_halves(p, t, [o for o in paired if o[1] is not t]) for p, t in paired]
        statements += [same_operation(p, t, parts[0], pendings[0]) for p, t in paired[1:]]
    statements += [Analyze(t, [*p.table.entity_key, LATEST_TX]) for p, t in paired]
    # A joined hierarchy's versions are not brought up to date in place: one written under the
    # current record earlier in the transaction makes the backfill take a record of its own.
    own_before = [sa.exists().where(t.c[LATEST_TX] == current.c.id) for t in pendings] if len(parts) > 1 else []
    statements += [
        sa.schema.CreateTable(new_tx),
        sa.insert(new_tx).from_select(
            ["id"],
            sa.select(
                NextTransactionId(txt.c.id, record.sequence, reused_id(record, versions_tx, own_before), versions_tx)
            ).where(sa.or_(*(sa.exists().select_from(t) for t in pendings))),
        ),
    ]
    statements.append(_sequence_ahead(parts, versions_tx, new_tx, record))
    if record.values:
        statements.append(_same_values(parts[0].table.name, txt, new_tx, record.values))
    values = {"issued_at": UtcNow(getattr(txt.c.issued_at.type, "timezone", False)), **record.values}
    # Only the current record may exist already (_sequence_ahead stopped any other id the
    # transaction table holds).
    statements.append(
        sa.insert(txt).from_select(
            ["id", *values],
            sa.select(new_tx.c.id, *values.values()).where(~sa.exists().where(txt.c.id == new_tx.c.id)),
        )
    )
    if record.values:  # the current record's, where it has none
        filled = {txt.c[k]: sa.func.coalesce(txt.c[k], v) for k, v in record.values.items()}
        statements.append(sa.update(txt).values(filled).where(txt.c.id == new_id))
    if not record.native:  # (native versioning's trigger notes the records it sees created)
        statements += [
            sa.delete(current).where(current.c.id != new_id),
            sa.insert(current).from_select(
                ["id"], sa.select(new_tx.c.id).where(~sa.exists().where(current.c.id == new_tx.c.id))
            ),
        ]
    if record.meta_table is not None:
        statements += _record_rows(record.meta_table, new_tx, ["key", "value"], record.meta)
    if record.changes_table is not None:
        statements += _record_rows(record.changes_table, new_tx, ["entity_name"], [(n,) for n in record.entity_names])
    inserting = []
    # a fresh record's id is new: no version to bring up to date carries it
    in_place = len(parts) == 1 and not record.fresh
    for i, (part, pending) in enumerate(paired):
        base = paired[0] if i else None  # the hierarchy's chain is its base table's
        has_new = sa.exists().select_from(new_tx)
        statements += _write_versions(part, pending, record, new_id, has_new, base, in_place)
        inserting.append(len(statements) - 1)
    statements += [sa.schema.DropTable(t) for t in (new_tx, *pendings)]
    return statements, inserting


def _sequence_exists(table_name: str, sequence: sa.Sequence) -> StopIf:
    """Stop where the sequence new transaction ids come from does not exist (a wrong
    ``transaction_sequence``), before anything is written; online it is checked before this."""
    where = f"in schema {sequence.schema!r}" if sequence.schema else "on the search path"
    return StopIf(
        to_regclass(sequence.schema, sequence.name).is_(None),
        f"backfill_versions({table_name!r}) takes the new transaction id from the sequence {sequence.name!r}, "
        f"which does not exist {where}; render the script again with transaction_sequence=... naming the "
        f"sequence the transaction table's ids come from.",
        "no sequence: new transaction ids follow the largest taken",
    )


def _sequence_ahead(
    parts: Sequence[BackfillPart], versions_tx: Sequence[sa.Column[Any]], new_tx: sa.Table, record: TransactionRecord
) -> StopIf:
    """Stop where a new transaction id is not above every id the transaction table and the version tables hold.

    A sequence behind them (as after a restore without ``setval``) would date the new versions
    before, or file them under, existing transactions. The check is an indexed ``max()`` per table.

    - The database transaction's current record, joined, is its own: versions its backfills (or
      native versioning's triggers) wrote may carry its id already, but none may come after it.
    - SQLite needs no check: its ids are taken above those (see
      :class:`~alembic_versioning.sql.constructs.NextTransactionId`)."""
    from sqlalchemy.dialects import postgresql  # the check runs on PostgreSQL and MariaDB: the hint is in their SQL

    taken = [record.table.c.id, *versions_tx]
    newest = [sa.select(sa.func.max(column)).scalar_subquery() for column in taken]
    behind = sa.or_(*(new_tx.c.id <= n for n in newest))
    reused = sa.exists().where(record.current.c.id == new_tx.c.id)  # may carry versions already, none after it
    behind = sa.or_(sa.and_(~reused, behind), sa.and_(reused, sa.or_(*(new_tx.c.id < n for n in newest[1:]))))
    quote = postgresql.dialect(paramstyle="named").identifier_preparer  # "%" as psql reads it, not "%%"
    sequence = quote.format_sequence(record.sequence)
    highest = ", ".join(
        f"(SELECT max({quote.quote(c.name)}) FROM {quote.format_table(c.table)})"  # type: ignore[arg-type]
        for c in taken
    )
    tables = ", ".join([record.table.name, *(p.table.qualified_version_name for p in parts)])
    behind_ids = (
        f"backfill_versions({parts[0].table.name!r}): the transaction id {record.sequence.name!r} gives is not "
        f"above every transaction id of {tables}"
    )
    why = ", so the new versions would be dated before, or filed under, existing transactions"
    fix = ". Move the sequence past them and run it again: "
    return StopIf(
        sa.exists().where(behind),
        behind_ids + why + fix + f"SELECT setval('{sequence.replace(chr(39), chr(39) * 2)}', greatest({highest}));",
        "new transaction ids follow the largest taken: no sequence to check",
        # SIGNAL's message holds 512 characters: the statement goes before the why
        messages={"mariadb": behind_ids + fix + _setval_mariadb(record.sequence, taken) + " (" + why[2:] + ".)"},
    )


def _setval_mariadb(sequence: sa.Sequence, taken: Sequence[sa.Column[Any]]) -> str:
    """MariaDB's statements moving ``sequence`` past the largest of ``taken``: ``SETVAL`` takes a
    constant, so the largest is read into a variable first (``GREATEST`` is NULL where any
    argument is: an empty table counts 0), and the ``SETVAL`` run from a string, the sequence's
    name escaped as MariaDB reads string literals unless ``NO_BACKSLASH_ESCAPES`` is set."""
    from sqlalchemy.dialects import mysql

    quote = mysql.dialect(paramstyle="named").identifier_preparer
    highest = ", ".join(
        f"COALESCE((SELECT max({quote.quote(c.name)}) FROM {quote.format_table(c.table)}), 0)"  # type: ignore[arg-type]
        for c in taken
    )
    # a string literal as MariaDB reads it by default: a backslash in a name is an escape there
    setval = f"SELECT SETVAL({quote.format_sequence(sequence)}, ".replace("\\", "\\\\").replace("'", "''")
    return f"SELECT GREATEST({highest}) INTO @av_taken; EXECUTE IMMEDIATE CONCAT('{setval}', @av_taken, ')');"


def _same_values(table_name: str, txt: sa.Table, new_tx: sa.Table, values: Mapping[str, ColumnElement[Any]]) -> StopIf:
    """Stop where the current record the backfill joins already holds another value than
    ``values`` gives for one of its columns (before anything is written; online the values are
    compared before this, naming them)."""
    differing = [sa.and_(txt.c[k].is_not(None), Differs(txt.c[k], v)) for k, v in values.items()]
    return StopIf(
        sa.exists().where(txt.c.id == new_tx.c.id, sa.or_(*differing)),
        f"backfill_versions({table_name!r}): the transaction record this database transaction's backfills "
        f"share (created by an earlier backfill, or by Continuum) holds other values for {sorted(values)} than "
        f"its transaction=... gives. Give the backfills of one transaction the same transaction=... values "
        f"(or leave them out after the first), or run them in separate transactions.",
        "the shared transaction record holds the transaction=... values given, or none",
        everywhere=True,
    )


def _record_rows(
    table: sa.Table, new_tx: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[ColumnElement[Any]]]
) -> list[sa.Executable]:
    """Return one ``INSERT`` of each of ``rows`` (values of ``columns``) into ``table``, under the new transaction id.

    ``table`` is a Continuum plugin's table keyed on the transaction id and the first column
    (``transaction_meta``'s key, ``transaction_changes``' entity name). A row whose key the record
    has already is left out: the backfills of a database transaction share its record (the first
    value stays)."""
    return [
        sa.insert(table).from_select(
            ["transaction_id", *columns],
            sa.select(new_tx.c.id, *row).where(
                ~sa.exists().where(table.c.transaction_id == new_tx.c.id, table.c[columns[0]] == row[0])
            ),
        )
        for row in rows
    ]


def _write_versions(
    part: BackfillPart,
    pending: sa.Table,
    record: TransactionRecord,
    new_id: Any,
    has_new: ColumnElement[bool],
    base: tuple[BackfillPart, sa.Table] | None = None,
    in_place: bool = True,
) -> list[sa.Executable]:
    """Return the statements that write the new versions of ``part``.

    1. Close the latest versions (validity strategy).
    2. Bring those under the current record up to date (``in_place``: not in a joined hierarchy,
       see :func:`backfill_statements`, and not under a fresh record, which no version carries).
    3. Insert the new versions (the last statement).

    In another table of a joined-table inheritance hierarchy than its ``base`` (with the base
    table's pending versions), the versions closed are those of the base table's latest
    transaction of each entity it writes, as Continuum closes them (the base table's chain is
    the entity's: see :mod:`~alembic_versioning.sql.chains`), not necessarily the table's own
    latest (older where another class of the hierarchy reused the key since)."""
    table, data = part.table, part.data
    names = table.naming
    version = table.version_table()
    statements: list[sa.Executable] = []
    # The backfills of a database transaction share its record: an entity may already have a
    # version under it (written by an earlier backfill, or by native versioning's triggers). That
    # version is brought up to date in place, as Continuum does, instead of closed and followed.
    own = pending.c[LATEST_TX] == new_id
    elsewhere = [sa.or_(pending.c[LATEST_TX].is_(None), pending.c[LATEST_TX] != new_id)] if in_place else []
    if table.strategy == "validity" and not table.association:  # Continuum never closes a link's versions
        tx, end = version.c[names.transaction_column_name], version.c[names.end_transaction_column_name]
        close = sa.update(version).values({end: new_id})
        if base is not None:  # UPDATE ... FROM the base table's pending versions (never native versioning's)
            chain, latest = base[0].table, base[1].c
            entity = same_entity_across(table, version.c, chain, latest)
            statements.append(close.where(*entity, tx == latest[LATEST_TX], has_new, *table.in_key_range(version.c)))
        else:
            statements.append(
                UpdateAtAddresses.of(
                    close.where(AddressIn(version, sa.select(pending.c[LATEST_ROW]).where(*elsewhere)), has_new),
                    close.where(
                        *same_entity(table, version.c, pending.c),
                        tx == pending.c[LATEST_TX],
                        *elsewhere,
                        has_new,
                        *table.in_key_range(version.c),
                    ),
                )
            )
    if in_place:
        statements.append(merge_into_own_version(table, version, pending, data, own))
    new_values: dict[str, ColumnElement[Any]] = {k: pending.c[k] for k in table.entity_key}
    new_values.update({c: new_value(table, pending, c) for c in data})
    new_values[names.transaction_column_name] = new_id
    new_values[names.operation_type_column_name] = pending.c[OPERATION]
    new_values.update(
        {table.mod_column(c): new_mod_flag(table, pending, c, i) for i, c in enumerate(data) if c in table.mod_columns}
    )
    inserted = sa.select(*new_values.values()).where(*elsewhere, has_new)
    statements.append(sa.insert(version).from_select(list(new_values), inserted))
    return statements
