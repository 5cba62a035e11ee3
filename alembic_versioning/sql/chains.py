"""``update_end_transaction_ids``: rebuild the validity chain in one ``UPDATE ... FROM`` per table.

In a joined-table inheritance hierarchy an entity is its key across the hierarchy, whatever
its class: the base table's versions are its chain, and a version in another table of the
hierarchy ends where the base table's version of the same transaction ends. Continuum writes
exactly that (the end id is one attribute of a version, stored in each of its tables), also
where the next version has no row in that table: a key another class reuses, as SQLite does
with the highest deleted id. A version without a row in the base table follows its own table.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..model import VersionedTable
from .constructs import Differs, same_entity_across
from .history import History, history, same_version

#: The label of the end id a version must have, in :func:`end_transaction_update`.
EXPECTED_END = "_av_expected_end"


def base_chain(base: VersionedTable) -> History:
    """The versions of a hierarchy's ``base`` table, each with the entity's next transaction id."""
    return history(base, base.version_table(), name="base_chain", next_tx=True)


def with_base(h: History, base: History | None) -> Any:
    """``h``'s versions, outer-joined with the ``base`` table's version of the same entity and
    transaction (at most one) where a base chain is given."""
    if base is None:
        return h.subquery
    tx, base_tx = h.table.naming.transaction_column_name, base.table.naming.transaction_column_name
    entity = same_entity_across(h.table, h.c, base.table, base.c)
    return h.subquery.outerjoin(base.subquery, sa.and_(*entity, h.c[tx] == base.c[base_tx]))


def expected_end(h: History, base: History | None = None) -> ColumnElement[Any]:
    """Return the end id a version must have: the entity's next transaction id.

    - Without ``base``: in its own table.
    - With ``base`` (joined by :func:`with_base`): in the base table where that has the version,
      else in its own table."""
    if base is None:
        return h.next_tx
    in_base = base.c[base.table.naming.transaction_column_name].is_not(None)
    return sa.case((in_base, base.next_tx), else_=h.next_tx)


def broken_link(h: History, base: History | None = None) -> ColumnElement[bool]:
    """Whether a version's stored end id is not :func:`expected_end`."""
    return Differs(h.c[h.table.naming.end_transaction_column_name], expected_end(h, base))


def end_transaction_update(table: VersionedTable, base: VersionedTable | None = None) -> sa.Update:
    """Set each version's end id to the entity's next transaction id (NULL for the last), in
    ``base``'s chain for a table of a joined-table inheritance hierarchy (see the module).

    Only rows whose end id differs from that are written.
    """
    version = table.version_table()
    h = history(table, version, name="chain", next_tx=True)
    chain = base_chain(base) if base is not None else None
    linked = (
        sa.select(
            *table.key_columns(h.c),
            h.c[table.naming.transaction_column_name],
            expected_end(h, chain).label(EXPECTED_END),
        )
        .select_from(with_base(h, chain))
        .where(broken_link(h, chain))
        .subquery("linked")
    )
    end: Any = version.c[table.naming.end_transaction_column_name]
    return sa.update(version).values({end: linked.c[EXPECTED_END]}).where(*same_version(table, version, linked))
