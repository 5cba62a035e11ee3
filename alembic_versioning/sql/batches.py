"""Batch boundaries: the keys that split an operation's entities into batches (keyset pagination).

Each batch covers the entities whose key is above the previous batch's last key and at most its
own (:class:`~alembic_versioning.model.KeyRange`); the first has no lower bound and the last no
upper bound, so together they cover every key, whichever table holds it and whenever it was
written. The boundary is read just before the batch's transaction, so that the writers' lock is
held for the batch's work alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..model import KeyRange, VersionedTable


def batch_end(table: VersionedTable, sources: Sequence[sa.Table], size: int) -> sa.Select[Any]:
    """Return the select of where the next batch ends: the lowest of the sources' ``size``-th
    entity keys above the table's key range's ``after``; no row if none holds that many.

    Each source's keys are read in key order (an index range scan) and skipped up to the
    ``size``-th, nothing more computed over them. Ending at the lowest, the batch holds at most
    ``size`` keys of each source (``size`` entities where the sources share their keys). Without
    a row it is the last batch: it takes every key left (see :func:`keys_left`).
    """
    ends = [
        sa.select(_keys_above(table, source).order_by(*_labels(table)).offset(size - 1).limit(1).subquery())
        for source in sources
    ]
    union = sa.union_all(*ends).subquery("ends") if len(ends) > 1 else ends[0].subquery("ends")
    return sa.select(union).order_by(*union.c).limit(1)


def keys_left(table: VersionedTable, sources: Sequence[sa.Table]) -> sa.Select[Any]:
    """Return the select of the most entity keys any one source holds above the table's key
    range's ``after`` (about the last batch's entities)."""
    counts = [sa.select(sa.func.count().label("n")).select_from(_keys_above(table, s).subquery()) for s in sources]
    each = sa.union_all(*counts).subquery("counts") if len(counts) > 1 else counts[0].subquery("counts")
    return sa.select(sa.func.max(each.c.n))


def _labels(table: VersionedTable) -> list[str]:
    return [f"_av_key_{i}" for i in range(len(table.entity_key))]


def _keys_above(table: VersionedTable, source: sa.Table) -> sa.Select[Any]:
    """The distinct entity keys of ``source`` above the table's key range's ``after``."""
    after = KeyRange(after=table.key_range.after if table.key_range is not None else None)
    key = table.key_columns(source.c)
    return (
        sa.select(*(c.label(label) for c, label in zip(key, _labels(table), strict=True)))
        .where(*after.conditions(key))
        .distinct()
    )
