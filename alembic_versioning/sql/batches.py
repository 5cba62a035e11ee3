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

#: The label of the number of keys a source holds up to its end (see :func:`batch_ends`).
FOUND = "_av_found"


def batch_ends(table: VersionedTable, sources: Sequence[sa.Table], size: int) -> sa.Select[Any]:
    """Return the select of where the next batch may end: a row per source that holds a key above
    the table's key range's ``after``, lowest first (at most one per source).

    A source's row holds:

    - the last of its first ``size`` entity keys above ``after`` (its keys read in key order, an
      index range scan);
    - how many keys that is (:data:`FOUND`; fewer than ``size``: the source has no more).

    The batch ends at the first row with ``size`` keys: then it holds at most ``size`` keys of each
    source (``size`` entities where the sources share their keys). Without one it is the last batch.
    """
    after = KeyRange(after=table.key_range.after if table.key_range is not None else None)
    labels = [f"_av_key_{i}" for i in range(len(table.entity_key))]
    ends: list[sa.Select[Any]] = []
    for source in sources:
        key = table.key_columns(source.c)
        labelled = [c.label(label) for c, label in zip(key, labels, strict=True)]
        first = sa.select(*labelled).where(*after.conditions(key)).distinct().order_by(*labels).limit(size).subquery()
        end = sa.select(*first.c, sa.func.count().over().label(FOUND)).order_by(*(c.desc() for c in first.c)).limit(1)
        ends.append(sa.select(end.subquery()))
    union = sa.union_all(*ends).subquery("ends") if len(ends) > 1 else ends[0].subquery("ends")
    return sa.select(union).order_by(*(union.c[label] for label in labels))
