"""Find the versioned tables of an application's MetaData.

From a SQLAlchemy-Continuum or sqlalchemy-history versioning manager when the application
uses one (its options: names, strategy, plugins, exclusions), else by the naming convention.
Neither library is imported here: importing Continuum has global side effects, so a manager
is only looked up in a module the application has already imported.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from .model import Naming, VersionedTable
from .reflection import describe_version_table

#: Modules whose default ``versioning_manager`` is used when the application imported them.
MANAGER_MODULES = ("sqlalchemy_continuum", "sqlalchemy_history")


def imported_managers() -> list[Any]:
    """The default versioning managers of the versioning libraries already imported."""
    return [sys.modules[name].versioning_manager for name in MANAGER_MODULES if name in sys.modules]


def _metadata_list(metadata: sa.MetaData | Sequence[sa.MetaData]) -> list[sa.MetaData]:
    return list(metadata) if isinstance(metadata, (list, tuple)) else [metadata]  # type: ignore[list-item]


def _mod_suffix(manager: Any) -> str:
    for plugin in manager.plugins:
        if type(plugin).__name__ == "PropertyModTrackerPlugin":
            return str(plugin.column_suffix)
    return Naming.mod_suffix


def _transaction_table(manager: Any) -> str:
    table = getattr(manager.transaction_cls, "__table__", None)
    return table.name if table is not None else Naming.transaction_table


def manager_naming(manager: Any, model: Any = None) -> Naming:
    """Continuum's naming options for ``model`` (manager-wide ones when ``model`` is None)."""

    def option(name: str) -> str:
        return str(manager.option(model, name) if model is not None else manager.options[name])

    return Naming(
        version_table_format=option("table_name"),
        transaction_column_name=option("transaction_column_name"),
        end_transaction_column_name=option("end_transaction_column_name"),
        operation_type_column_name=option("operation_type_column_name"),
        mod_suffix=_mod_suffix(manager),
        transaction_table=_transaction_table(manager),
    )


def tables_from_manager(manager: Any, metadata: sa.MetaData | Sequence[sa.MetaData]) -> list[VersionedTable]:
    """The versioned tables ``manager`` built in ``metadata``, association tables included."""
    metadatas = _metadata_list(metadata)
    found: dict[str, VersionedTable] = {}
    for model, version_cls in manager.version_class_map.items():
        live, version = sa.inspect(model).local_table, version_cls.__table__
        if live.metadata not in metadatas or version.key in found:
            continue
        found[version.key] = describe_version_table(
            version,
            name=live.name,
            naming=manager_naming(manager, model),
            strategy=manager.option(model, "strategy"),
        )
    naming = manager_naming(manager)
    for live in manager.association_tables:
        key = sa.Table(naming.version_table_name(live.name), sa.MetaData(), schema=live.schema).key
        if live.metadata in metadatas and key in live.metadata.tables and key not in found:
            found[key] = describe_version_table(
                live.metadata.tables[key], name=live.name, naming=naming, association=True
            )
    return list(found.values())


def tables_by_convention(
    metadata: sa.MetaData | Sequence[sa.MetaData], naming: Naming = Naming()
) -> list[VersionedTable]:
    """Pairs ``t`` / ``naming.version_table_name(t)`` in ``metadata`` whose version table has
    the transaction and operation-type columns."""
    found = []
    for md in _metadata_list(metadata):
        for live in md.tables.values():
            version = md.tables.get(
                sa.Table(naming.version_table_name(live.name), sa.MetaData(), schema=live.schema).key
            )
            if version is None or live is version:
                continue
            if {naming.transaction_column_name, naming.operation_type_column_name} <= set(version.c.keys()):
                found.append(describe_version_table(version, name=live.name, naming=naming))
    return found


def find_versioned_tables(
    metadata: sa.MetaData | Sequence[sa.MetaData],
    *,
    managers: Iterable[Any] | None = None,
    naming: Naming = Naming(),
) -> list[VersionedTable]:
    """The versioned tables of ``metadata``.

    ``managers`` default to the default managers of Continuum / sqlalchemy-history when the
    application imported them; when none of them knows a table of ``metadata``, the naming
    convention ``naming`` is used.
    """
    found: dict[tuple[str | None, str], VersionedTable] = {}
    for manager in imported_managers() if managers is None else managers:
        for table in tables_from_manager(manager, metadata):
            found.setdefault((table.schema, table.version_name), table)
    return list(found.values()) if found else tables_by_convention(metadata, naming)
