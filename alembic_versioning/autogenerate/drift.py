"""Drift in the database: counts of what each repair would change, for tables the migration
leaves alone. Two aggregate queries per table (see :mod:`alembic_versioning.sql.checks`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from ..catalog import ReflectedTables
from ..model import VersionedTable
from ..operations import (
    BackfillVersionsOp,
    UpdateEndTransactionIdsOp,
    UpdateModFlagsOp,
    VacuumVersionsOp,
    VersionedTableOp,
)
from ..sql.checks import backfill_check, hierarchy_futile_check, history_check
from ..sql.vacuum import VacuumPart
from .factory import joined_description, make_op
from .options import Options


def _counted(*parts: tuple[int, str, str]) -> str:
    """Return the non-zero counts, each with its singular or plural phrase.

    E.g. ``"1,204 live rows without a current version, 1 stale current version"``."""
    return ", ".join(f"{n:,} {one if n == 1 else many}" for n, one, many in parts if n)


def _known(types: dict[str, Any]) -> dict[str, Any]:
    """``types`` without those the dialect does not know (the models' stand)."""
    return {name: type_ for name, type_ in types.items() if not isinstance(type_, sa.types.NullType)}


def drift_ops(
    connection: sa.engine.Connection,
    reflected: ReflectedTables,
    table: VersionedTable,
    options: Options,
    joined: Sequence[VersionedTable] | None = None,
    unflagged: Collection[str] = (),
    base: VersionedTable | None = None,
) -> list[VersionedTableOp]:
    """The repairs ``table``'s data needs, each carrying what was found (in run order).

    A table of a joined-table inheritance hierarchy has its futile versions counted across the
    hierarchy, on its base table, with the other tables ``joined`` (none: not counted), and its
    chain compared with its ``base`` table's, where that can be read (else with its own). The mod
    flags of the ``unflagged`` columns are not checked (see :func:`.pairs.auto_updated_columns`).

    The columns are compared in the types the database holds them in (``reflected``), as the repairs do."""
    if not (reflected.has_table(table.version_name, table.schema) and reflected.has_table(table.name, table.schema)):
        return []
    found: list[VersionedTableOp] = []
    in_database = _known(reflected.types(table.version_name, table.schema))
    table = dataclasses.replace(table, types={**table.types, **in_database})
    checked = dataclasses.replace(table, mod_columns=tuple(c for c in table.mod_columns if c not in unflagged))
    counts: Any = connection.execute(
        history_check(
            checked,
            chains=options.enabled("chains"),
            mod_flags=options.enabled("mod_flags"),
            futile=options.enabled("vacuum") and not table.joined_with,
            base=base if base is not None and reflected.has_table(base.version_name, base.schema) else None,
        )
    ).one()
    futile = counts.futile
    if options.enabled("vacuum") and table.joined_with and table.joined_base is None and joined is not None:
        parts = [VacuumPart(t, t.columns) for t in (table, *joined)]
        futile = connection.execute(hierarchy_futile_check(parts)).scalar_one()
    if counts.broken_links:
        found.append(
            make_op(
                UpdateEndTransactionIdsOp,
                table,
                _counted(
                    (
                        counts.broken_links,
                        "version whose end id is not the next version's transaction id",
                        "versions whose end id is not the next version's transaction id",
                    )
                ),
            )
        )
    if futile:
        found.append(
            make_op(
                VacuumVersionsOp,
                table,
                _counted(
                    (
                        futile,
                        "futile version (identical to the previous one)",
                        "futile versions (identical to the previous one)",
                    )
                ),
                **({"joined": joined_description(joined)} if table.joined_with and joined is not None else {}),
            )
        )
    if counts.missing_flags:
        found.append(
            make_op(
                UpdateModFlagsOp,
                table,
                _counted(
                    (
                        counts.missing_flags,
                        "version missing mod flags its data shows",
                        "versions missing mod flags their data shows",
                    )
                ),
                keep_true=True,  # set what was found missing; a true flag may be Continuum's own
            )
        )
    if options.enabled("backfill"):
        live_types = reflected.types(table.name, table.schema)
        columns = [c for c in table.columns if c in live_types]
        live = table.live_table(columns, _known(live_types))
        pending: Any = connection.execute(backfill_check(table, live, columns)).one()
        finding = _counted(
            (pending.missing, "live row without a current version", "live rows without a current version"),
            (pending.stale, "stale current version", "stale current versions"),
            (pending.undeleted, "deleted row without a DELETE version", "deleted rows without a DELETE version"),
        )
        if finding:
            found.append(make_op(BackfillVersionsOp, table, finding))
    return found
