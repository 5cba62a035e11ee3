"""Tables the migration stops versioning: their downgrade brings the version table back empty.

When a model stops being versioned, autogenerate drops its version table; the downgrade creates
it again, without a row. The repair is a backfill, which gives every live row an INSERT version,
as a migration that starts versioning a table does. The table is no longer in the models, so it
is described from the dropped table Alembic reflected, named as the versioning managers name
their tables (else as the remaining versioned tables are, else by Continuum's defaults).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from alembic import util
from alembic.operations import ops as alembic_ops

from ..catalog import metadata_list
from ..errors import no_room_for_backfill
from ..model import Naming, VersionedTable, one_version_per_transaction
from ..operations import BackfillVersionsOp, VersionedTableOp, joined_tables
from .discovery import imported_managers, manager_naming
from .factory import joined_description, make_op
from .options import Options
from .predicted import SchemaChanges
from .targets import included

Found = list[tuple[VersionedTable, list[VersionedTableOp]]]


@dataclasses.dataclass
class _Unversioned:
    """A live table whose version table the upgrade drops, described as it was dropped."""

    live: sa.Table
    table: VersionedTable
    version: sa.Table


def unversioned_repairs(
    autogen_context: Any,
    upgrade_ops: alembic_ops.UpgradeOps,
    changes: SchemaChanges,
    tables: dict[str, VersionedTable],
    options: Options,
) -> Found:
    """Return a downgrade backfill of each live table the upgrade keeps but whose version table it drops.

    Such a table's model is no longer versioned.

    - Tables keyed on one another (joined-table inheritance, whose versions are written together)
      get one backfill on the base table, ``joined`` with the others.
    - Left out, with a warning naming the fix: a table whose version table holds one version per
      transaction, and one whose transaction table is not there."""
    if not options.enabled("backfill"):
        return []
    found: list[_Unversioned] = []
    versioned = {(t.schema, t.version_name) for t in tables.values()}
    for version in _dropped_tables(upgrade_ops):
        if (version.schema, version.name) in versioned:
            continue
        described = _describe(autogen_context, options, tables, version, changes)
        if described is not None and not options.skips(described.table, autogen_context.dialect.default_schema_name):
            found.append(described)
    repairs: Found = []
    for base, members in _hierarchies(found):
        op = make_op(
            BackfillVersionsOp,
            base.table,
            f"{base.version.name} is back, empty: versions for the existing rows of {base.live.name}"
            + "".join(f" and {m.live.name}" for m in members),
        )
        if members:
            op.joined = joined_tables(base.table.name, joined_description([m.table for m in members]))
        repairs.append((base.table, [op]))
    return repairs


def _dropped_tables(upgrade_ops: alembic_ops.UpgradeOps) -> list[sa.Table]:
    """The tables the upgrade drops, as Alembic reflected them."""
    return [op.to_table() for op in upgrade_ops.ops if isinstance(op, alembic_ops.DropTableOp) and op._reverse]


def _describe(
    autogen_context: Any, options: Options, tables: dict[str, VersionedTable], version: sa.Table, changes: SchemaChanges
) -> _Unversioned | None:
    """``version`` as the version table of a live table the upgrade keeps, or ``None``."""
    for naming in _namings(autogen_context, options, tables, version.schema):
        live = _live_table(autogen_context, version, naming)
        if live is None:
            continue
        if (live.schema, live.name) in changes.created | changes.dropped or not included(
            autogen_context, live.name, live.schema
        ):
            return None
        if {naming.transaction_column_name, naming.operation_type_column_name} - set(version.c.keys()):
            return None
        why = _unrepairable(version, naming, live.name)
        if why:
            util.warn(f"alembic-versioning leaves out the downgrade's backfill_versions({live.name!r}): {why}")
            return None
        association = all(column.foreign_keys for column in live.c)
        table = VersionedTable.from_version_table(version, name=live.name, naming=naming, association=association)
        return _Unversioned(live, table, version)
    return None


def _namings(
    autogen_context: Any, options: Options, tables: dict[str, VersionedTable], schema: str | None
) -> list[Naming]:
    """Return the namings a version table in ``schema`` may have.

    - the versioning managers' (their transaction table placed for ``schema``);
    - the remaining versioned tables';
    - Continuum's defaults."""
    default = autogen_context.dialect.default_schema_name
    managers = options.managers if options.managers is not None else imported_managers(autogen_context.metadata)
    namings = [manager_naming(manager, None, schema, default) for manager in managers]
    for table in tables.values():
        owner, name = table.naming.transaction_location(table.schema)
        same = (owner or default) == (schema or default)
        namings.append(
            dataclasses.replace(table.naming, transaction_table=name if same else f"{owner or default}.{name}")
        )
    return [*namings, Naming()]


def _live_table(autogen_context: Any, version: sa.Table, naming: Naming) -> sa.Table | None:
    """The live table ``version`` belongs to under ``naming``, in the target MetaData."""
    for md in metadata_list(autogen_context.metadata):
        for table in md.tables.values():
            if table.schema == version.schema and naming.version_table_name(table.name) == version.name:
                return table
    return None


def _unrepairable(version: sa.Table, naming: Naming, name: str) -> str:
    """Return why a backfill of ``version`` could only fail ("" when it can run).

    A missing transaction table is found later, as for every backfill."""
    if one_version_per_transaction(version, naming):
        return no_room_for_backfill(name, naming)
    return ""


def _hierarchies(found: list[_Unversioned]) -> list[tuple[_Unversioned, list[_Unversioned]]]:
    """``found`` grouped by the tables keyed on one another (joined-table inheritance): each base
    table with the tables below it, in order."""

    def parent(u: _Unversioned) -> _Unversioned | None:
        """The table whose whole primary key ``u``'s whole primary key refers to, column for column."""
        key = list(u.live.primary_key.columns)
        for other in found:
            their = set(other.live.primary_key.columns)
            refers = all(any(fk.column in their for fk in column.foreign_keys) for column in key)
            if other is not u and key and len(their) == len(key) and refers:
                return other
        return None

    def root(u: _Unversioned) -> _Unversioned:
        seen = [u]
        while (up := parent(seen[-1])) is not None and up not in seen:
            seen.append(up)
        return seen[-1]

    groups: dict[int, tuple[_Unversioned, list[_Unversioned]]] = {}
    for u in found:
        base = root(u)
        members = groups.setdefault(id(base), (base, []))[1]
        if u is not base:
            members.append(u)
    return list(groups.values())
