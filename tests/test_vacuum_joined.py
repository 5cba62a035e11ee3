"""op.vacuum_versions(base, joined=[...]): joined-table inheritance, checked against Continuum.

Continuum writes each version of a ``Doc(Item)`` as a row in ``item_version`` and one in
``doc_version``; the half of the table whose columns did not change repeats its values. A version
is futile only when both halves are. The history a versioned ``item.extra`` leaves once the column
is dropped, vacuumed, must equal the history Continuum writes for the same changes without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from alembic_versioning import VersioningError

from .support.apps import VARIANTS, joined_app, versions
from .support.migrate import run


def write(engine: sa.Engine, metadata: sa.MetaData, item: type, doc: type, extra: bool) -> None:
    """Fresh tables and six transactions through Continuum; ``extra`` set where the model has it."""
    metadata.drop_all(engine)
    metadata.create_all(engine)
    more: Callable[..., dict[str, Any]] = (lambda **kw: kw) if extra else (lambda **kw: {})
    steps: list[Callable[[Session], None]] = [
        lambda s: s.add_all(
            [
                doc(id=1, name="a", body="b", **more(extra="x")),
                doc(id=2, name="c", body="d", **more(extra="x")),
                item(id=3, name="i", **more(extra="y")),
            ]
        ),
        lambda s: [setattr(s.get(doc, 1), k, v) for k, v in more(extra="x2").items()],  # futile once dropped
        lambda s: setattr(s.get(doc, 1), "body", "b2"),  # only the doc half changes: both kept
        lambda s: [setattr(o, k, v) for o in (s.get(doc, 2), s.get(item, 3)) for k, v in more(extra="z").items()],
        lambda s: setattr(s.get(doc, 2), "name", "c2"),  # only the item half changes: both kept
        lambda s: [setattr(s.get(doc, 1), k, v) for k, v in {**more(extra="x3"), "body": "b3"}.items()],
    ]
    for step in steps:
        with Session(engine) as session:
            step(session)
            session.commit()


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_vacuum_after_a_dropped_column_gives_continuums_history(engine: sa.Engine, variant: str, mode: str) -> None:
    with joined_app(**VARIANTS[variant]) as (metadata, _, item, doc):
        write(engine, metadata, item, doc, extra=False)
        expected = versions(engine, metadata)
    with joined_app(extra=True, **VARIANTS[variant]) as (metadata, _, item, doc):
        write(engine, metadata, item, doc, extra=True)
        flagged = "extra_mod" in metadata.tables["item_version"].c
    with engine.begin() as conn:
        for table, column in [("item", "extra"), ("item_version", "extra"), ("item_version", "extra_mod")]:
            if column != "extra_mod" or flagged:
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    with joined_app(**VARIANTS[variant]) as (metadata, _, item, doc):

        def vacuum(op: Any) -> None:
            op.vacuum_versions("item", joined=["doc"])

        run(engine, vacuum, mode, target_metadata=metadata)
        assert versions(engine, metadata) == expected
        run(engine, vacuum, mode, target_metadata=metadata)  # nothing left to delete
        assert versions(engine, metadata) == expected
        with Session(engine) as session:
            assert [(v.name, v.body) for v in session.get(doc, 1).versions] == [("a", "b"), ("a", "b2"), ("a", "b3")]
            assert session.get(doc, 2).versions.all()[-1].changeset == {"name": ["c", "c2"]}


def test_ignore_columns_and_joined_are_refused() -> None:
    from alembic_versioning.operations import VacuumVersionsOp

    with pytest.raises(VersioningError, match="ignore_columns or joined, not both"):
        VacuumVersionsOp("item", joined=["doc"], ignore_columns=["name"])
