"""Batch boundaries: the keys that split an operation's entities into batches (keyset pagination).

Each batch covers the entities whose key is above the previous batch's last key and at most its
own (:class:`~alembic_versioning.model.KeyRange`); the first has no lower bound and the last no
upper bound, so together they cover every key, whichever table holds it and whenever it was
written. The boundary is read inside the batch's own transaction, once it holds the writers' lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..model import KeyRange, VersionedTable

#: The label of the number of keys :func:`batch_end` found.
FOUND = "_av_found"


def batch_end(table: VersionedTable, sources: Sequence[sa.Table], size: int) -> sa.Select[Any]:
    """Return the select of the end of the next batch: one row, or none when no key is left.

    The row holds:

    - the highest of the first ``size`` entity keys above the table's key range's ``after`` that
      ``sources`` (tables keyed like ``table``: its version and live tables) hold;
    - how many keys that is (:data:`FOUND`; fewer than ``size``: the last batch).

    Each source is read in key order up to ``size`` distinct keys (an index range scan), the union
    of those likewise."""
    after = KeyRange(after=table.key_range.after if table.key_range is not None else None)
    labels = [f"_av_key_{i}" for i in range(len(table.entity_key))]
    firsts: list[sa.Select[Any]] = []
    for source in sources:
        key = table.key_columns(source.c)
        labelled = [c.label(label) for c, label in zip(key, labels, strict=True)]
        first = sa.select(*labelled).where(*after.conditions(key)).distinct().order_by(*labels).limit(size)
        firsts.append(sa.select(first.subquery()))
    keys = sa.union(*firsts).subquery("keys") if len(firsts) > 1 else firsts[0].subquery("keys")
    batch = sa.select(keys).order_by(*keys.c).limit(size).subquery("batch")
    return sa.select(*batch.c, sa.func.count().over().label(FOUND)).order_by(*(c.desc() for c in batch.c)).limit(1)
