"""``update_end_transaction_ids``: rebuild the validity chain in one ``UPDATE ... FROM``."""

from __future__ import annotations

import sqlalchemy as sa

from ..model import VersionedTable
from .constructs import Differs, same_entity


def end_transaction_update(table: VersionedTable) -> sa.Update:
    """Set each version's end id to the entity's next transaction id (NULL for the last).

    Only rows whose end id differs from that are written.
    """
    names = table.naming
    version = table.version_table()
    key = [version.c[k] for k in table.entity_key]
    tx = version.c[names.transaction_column_name]
    end = version.c[names.end_transaction_column_name]
    chain = sa.select(
        *key,
        tx,
        sa.func.lead(tx).over(partition_by=key, order_by=tx).label("_av_next_tx"),
    ).subquery("chain")
    next_tx = chain.c._av_next_tx
    return (
        sa.update(version)
        .values({end: next_tx})
        .where(
            *same_entity(version.c, chain.c, table.entity_key, key_is_primary=bool(table.primary_key)),
            tx == chain.c[tx.name],
            Differs(end, next_tx),
        )
    )
