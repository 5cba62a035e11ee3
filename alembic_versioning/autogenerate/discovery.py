"""Find the versioned tables of an application's MetaData.

From a SQLAlchemy-Continuum or sqlalchemy-history versioning manager when the application
uses one (its options: names, strategy, plugins, exclusions), else by the naming convention.
Neither library is imported here: importing Continuum has global side effects, so a manager
is only looked up in a module the application has already imported.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from ..catalog import metadata_list, table_key
from ..model import Naming, VersionedTable

#: Modules whose default ``versioning_manager`` is used when the application imported them.
MANAGER_MODULES = ("sqlalchemy_continuum", "sqlalchemy_history")


def imported_managers(metadata: sa.MetaData | Sequence[sa.MetaData] = ()) -> list[Any]:
    """The versioning managers in use: the default ones of the versioning libraries already
    imported, and those of the mapped classes whose tables are in ``metadata``."""
    found = {id(m): m for m in (sys.modules[n].versioning_manager for n in MANAGER_MODULES if n in sys.modules)}
    metadatas = metadata_list(metadata) if metadata else []
    # SQLAlchemy has no public registry of registries; without it, only the defaults are found.
    mapper_module = sys.modules.get("sqlalchemy.orm.mapper")
    registries: set[Any] = getattr(mapper_module, "_all_registries", set)() if metadatas else set()
    for registry in registries:
        for mapper in registry.mappers:
            manager = getattr(mapper.class_, "__versioning_manager__", None)
            if manager is not None and getattr(mapper.local_table, "metadata", None) in metadatas:
                found.setdefault(id(manager), manager)
    return list(found.values())


def _plugin(manager: Any, name: str) -> Any:
    """``manager``'s plugin of the class named ``name`` (found by name: nothing is imported), or ``None``."""
    return next((p for p in manager.plugins if type(p).__name__ == name), None)


def _mod_tracker(manager: Any) -> Any:
    """``manager``'s PropertyModTrackerPlugin, or ``None``."""
    return _plugin(manager, "PropertyModTrackerPlugin")


def _records_changes(manager: Any) -> bool:
    """Whether ``manager`` has the TransactionChangesPlugin (``transaction_changes`` rows)."""
    return _plugin(manager, "TransactionChangesPlugin") is not None


def _nulls_deletes(manager: Any) -> bool:
    """Whether ``manager`` has the NullDeletePlugin (DELETE versions hold NULL in their data columns)."""
    return _plugin(manager, "NullDeletePlugin") is not None


def _mod_suffix(manager: Any) -> str:
    tracker = _mod_tracker(manager)
    return Naming.mod_suffix if tracker is None else str(tracker.column_suffix)


def _transaction_names(manager: Any, schema: str | None, default_schema: str | None) -> dict[str, str]:
    """``transaction_table`` (qualified when not in ``schema``) and ``transaction_sequence`` of
    the manager's transaction class, once built."""
    table = getattr(manager.transaction_cls, "__table__", None)
    if table is None:
        return {}
    owner = table.schema if table.schema is not None else default_schema
    # unqualified means "in the live table's schema"; with the default schema unknown, that is the guess
    same = owner is None or owner == schema or (table.schema is None and schema is None)
    names = {"transaction_table": table.name if same else f"{owner}.{table.name}"}
    ids = [c for c in table.c if c.primary_key]
    if len(ids) == 1 and isinstance(ids[0].default, sa.Sequence):
        sequence = ids[0].default
        names["transaction_sequence"] = f"{sequence.schema}.{sequence.name}" if sequence.schema else sequence.name
    return names


def manager_naming(
    manager: Any, model: Any = None, schema: str | None = None, default_schema: str | None = None
) -> Naming:
    """Continuum's naming options for ``model`` (manager-wide ones when ``model`` is None),
    whose tables live in ``schema`` (``default_schema`` names the database's default)."""

    def option(name: str) -> str:
        return str(manager.option(model, name) if model is not None else manager.options[name])

    return Naming(
        version_table_format=option("table_name"),
        transaction_column_name=option("transaction_column_name"),
        end_transaction_column_name=option("end_transaction_column_name"),
        operation_type_column_name=option("operation_type_column_name"),
        mod_suffix=_mod_suffix(manager),
        **_transaction_names(manager, schema, default_schema),
    )


def _association_tables(manager: Any) -> set[sa.Table]:
    """Return the ``secondary`` tables of the versioned models' relationships.

    Continuum lists them in ``association_tables``; sqlalchemy-history versions them too but keeps
    no such list."""
    listed = getattr(manager, "association_tables", None)
    if listed is not None:
        return set(listed)
    return {
        relationship.secondary
        for model in manager.version_class_map
        for relationship in sa.inspect(model).relationships
        if isinstance(relationship.secondary, sa.Table)
    }


def _sharing_rows(mapper: Any) -> list[sa.Table]:
    """Return the tables holding a row of each entity of ``mapper``'s class, the root's first.

    These are its own and those of the ancestors it inherits rows from:

    - joined-table inheritance adds a table per level (keyed like the root's);
    - single-table inheritance shares the parent's;
    - a concrete class has a whole table of its own, with its own entities (its ancestors' rows
      are others)."""
    tables: list[sa.Table] = []
    for level in mapper.iterate_to_root():
        if level.local_table not in tables:
            tables.insert(0, level.local_table)
        if level.concrete:
            break
    return tables


def _delete_flags(table: VersionedTable, live: sa.Table, mappers: Sequence[Any]) -> VersionedTable:
    """Return ``table`` with its ``subclass_columns`` (and ``discriminator``).

    Subclass columns are the flagged columns only some of ``mappers`` (the classes with rows in
    ``live``) map; Continuum flags them on a DELETE version only for those classes. Each comes with
    the polymorphic identities of the classes that map it, and ``discriminator`` names the column
    that tells them, when:

    - the hierarchy's ``polymorphic_on`` is a data column of ``live``;
    - every class has an identity rendered as a literal (a string or an integer).

    Else they come with no identities."""
    mapped = [{c.name for prop in m.column_attrs for c in prop.columns if c.table is live} for m in mappers]
    partial = [c for c in table.mod_columns if not all(c in names for names in mapped)]
    if not partial:
        return table
    on = mappers[0].polymorphic_on
    identities = [m.polymorphic_identity for m in mappers]
    told = (
        isinstance(on, sa.Column)
        and on.table is live
        and on.name in table.columns
        and all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in identities)
    )
    subclass = {
        c: tuple(i for i, names in zip(identities, mapped, strict=True) if c in names) if told else () for c in partial
    }
    return dataclasses.replace(table, subclass_columns=subclass, discriminator=on.name if told else None)


def tables_from_manager(
    manager: Any, metadata: sa.MetaData | Sequence[sa.MetaData], default_schema: str | None = None
) -> list[VersionedTable]:
    """The versioned tables ``manager`` built in ``metadata``, association tables included.

    ``default_schema`` (the database's default schema) qualifies the transaction table when it
    is not in a table's own schema.
    """
    metadatas = metadata_list(metadata)
    found: dict[str, VersionedTable] = {}
    versioned = {sa.inspect(model).local_table for model in manager.version_class_map}
    hierarchies: dict[str, set[str]] = {}  # live table key -> the versioned tables joined with it
    bases: dict[str, str] = {}  # live table key -> its hierarchy's versioned base table (others only)
    for model, version_cls in manager.version_class_map.items():
        mapper = sa.inspect(model)
        live, version = mapper.local_table, version_cls.__table__
        chain = [table.key for table in _sharing_rows(mapper) if table in versioned]
        joined = set(chain)
        if len(joined) > 1:
            for key in joined:
                hierarchies.setdefault(key, set()).update(joined - {key})
                if key != chain[0]:
                    bases[key] = chain[0]
        if live.metadata not in metadatas or version.key in found:
            continue
        found[version.key] = VersionedTable.from_version_table(
            version,
            name=live.name,
            naming=manager_naming(manager, model, live.schema, default_schema),
            strategy=manager.option(model, "strategy"),
            mod_tracker=_mod_tracker(manager) is not None,
        )
    mappers = [sa.inspect(model) for model in manager.version_class_map]
    for key, table in found.items():
        live = next(m.local_table for m in mappers if m.local_table.key == table_key(table.name, table.schema))
        sharing = [m for m in mappers if live in _sharing_rows(m)]
        found[key] = dataclasses.replace(_delete_flags(table, live, sharing), null_delete=_nulls_deletes(manager))
    entities: dict[str, list[str]] = {}  # live table key -> the names of the models mapped to it
    if _records_changes(manager):
        for model in manager.version_class_map:
            entities.setdefault(sa.inspect(model).local_table.key, []).append(model.__name__)
    for key, table in found.items():
        live_key = table_key(table.name, table.schema)
        if live_key in hierarchies:
            table = dataclasses.replace(
                table, joined_with=tuple(sorted(hierarchies[live_key])), joined_base=bases.get(live_key)
            )
        found[key] = dataclasses.replace(table, entity_names=tuple(sorted(entities.get(live_key, ()))))
    for live in _association_tables(manager):
        naming = manager_naming(manager, None, live.schema, default_schema)
        key = table_key(naming.version_table_name(live.name), live.schema)
        if live.metadata in metadatas and key in live.metadata.tables and key not in found:
            found[key] = VersionedTable.from_version_table(
                live.metadata.tables[key], name=live.name, naming=naming, association=True
            )
    return list(found.values())


def tables_by_convention(
    metadata: sa.MetaData | Sequence[sa.MetaData], naming: Naming = Naming()
) -> list[VersionedTable]:
    """Return the versioned tables of ``metadata`` found by name: ``t`` and ``naming.version_table_name(t)``.

    A pair counts where the version table has the transaction and operation-type columns.

    A live table made only of foreign-key columns is taken for an association table (the
    ``secondary`` of a many-to-many relationship, whose end ids Continuum never fills): without
    the versioning manager nothing else tells them apart, and mistaking a mapped link class for
    one only skips its chain check, where the converse would report drift in every history."""
    found = []
    for md in metadata_list(metadata):
        for live in md.tables.values():
            version = md.tables.get(table_key(naming.version_table_name(live.name), live.schema))
            if version is None or live is version:
                continue
            if {naming.transaction_column_name, naming.operation_type_column_name} <= set(version.c.keys()):
                association = all(column.foreign_keys for column in live.c)
                found.append(
                    VersionedTable.from_version_table(version, name=live.name, naming=naming, association=association)
                )
    return found


def find_versioned_tables(
    metadata: sa.MetaData | Sequence[sa.MetaData],
    *,
    managers: Iterable[Any] | None = None,
    naming: Naming = Naming(),
    default_schema: str | None = None,
) -> list[VersionedTable]:
    """The versioned tables of ``metadata``.

    ``managers`` default to those in use (:func:`imported_managers`); in a MetaData (of a list of
    them) none of whose tables they know, the naming convention ``naming`` is used. (Not per table: in
    an application's own MetaData, a version table its manager no longer builds is history kept, not
    a table to check.)
    """
    found: dict[tuple[str | None, str], VersionedTable] = {}
    for manager in imported_managers(metadata) if managers is None else managers:
        for table in tables_from_manager(manager, metadata, default_schema):
            found.setdefault((table.schema, table.version_name), table)
    known = {table_key(version, schema) for schema, version in found}
    unknown = [md for md in metadata_list(metadata) if not known & set(md.tables)]
    return list(found.values()) + (tables_by_convention(unknown, naming) if unknown else [])
