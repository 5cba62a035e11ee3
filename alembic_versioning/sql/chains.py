"""``update_end_transaction_ids``: rebuild the validity chain in one ``UPDATE ... FROM``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..model import VersionedTable
from .constructs import Differs
from .history import History, history


def broken_link(h: History) -> ColumnElement[bool]:
    """Whether a version's stored end id is not the entity's next transaction id."""
    return Differs(h.c[h.table.naming.end_transaction_column_name], h.next_tx)


def end_transaction_update(table: VersionedTable) -> sa.Update:
    """Set each version's end id to the entity's next transaction id (NULL for the last).

    Only rows whose end id differs from that are written.
    """
    version = table.version_table()
    h = history(table, version, name="chain", next_tx=True)
    end: Any = version.c[table.naming.end_transaction_column_name]
    return sa.update(version).values({end: h.next_tx}).where(*h.matches(version), broken_link(h))
