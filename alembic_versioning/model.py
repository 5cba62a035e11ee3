"""The model of one versioned table: what every operation and comparator works on.

A :class:`VersionedTable` names the live table, its version (history) table and every
column the operations touch. It is built from explicit op arguments, or from a version table's
``Table`` (:meth:`VersionedTable.from_version_table`) that the database (:mod:`.catalog`),
``target_metadata`` or a Continuum versioning manager (:mod:`.autogenerate.discovery`) gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from .errors import VersioningError

#: Continuum's ``strategy`` option.
Strategy = Literal["validity", "subquery"]
#: What ``update_mod_flags`` gives INSERT versions (and UPDATE versions without a previous one).
InsertFlags = Literal["keep", "non_null", "all"]
#: Types a mod flag column may have (``NullType``: not known, as offline without target_metadata;
#: MariaDB's BOOLEAN is a ``TINYINT(1)``, see :func:`is_flag_type`).
FLAG_TYPES = (sa.Boolean, sa.types.NullType)


def is_flag_type(type_: Any) -> bool:
    """Whether a column of ``type_`` may be a mod flag.

    It may be one of :data:`FLAG_TYPES`, or MariaDB's reflected BOOLEAN, ``TINYINT(1)`` (a wider
    TINYINT is an application's number)."""
    if isinstance(type_, FLAG_TYPES):
        return True
    from sqlalchemy.dialects.mysql import TINYINT

    return isinstance(type_, TINYINT) and type_.display_width == 1


#: ``operation_type`` values written by Continuum.
INSERT, UPDATE, DELETE = 0, 1, 2


@dataclass(frozen=True)
class Naming:
    """Continuum's naming options, with Continuum's defaults.

    ``version_table_format`` is the ``%s`` format of the version table's name (Continuum
    option ``table_name``); ``mod_suffix`` is ``PropertyModTrackerPlugin.column_suffix``;
    ``transaction_table`` is the name of the transaction table (``schema.name`` when it is not in
    the live table's schema) and ``transaction_sequence``
    the sequence its ids come from where the database has sequences (``schema.name`` or a
    name found on the search path).
    """

    version_table_format: str = "%s_version"
    transaction_column_name: str = "transaction_id"
    end_transaction_column_name: str = "end_transaction_id"
    operation_type_column_name: str = "operation_type"
    mod_suffix: str = "_mod"
    transaction_table: str = "transaction"
    transaction_sequence: str = "transaction_id_seq"

    def transaction_location(self, schema: str | None) -> tuple[str | None, str]:
        """Return ``(schema, name)`` of the transaction table.

        ``transaction_table`` may be ``schema.name``; unqualified, it lives in ``schema``, the live
        table's."""
        owner, _, name = self.transaction_table.rpartition(".")
        return (owner or schema, name)

    def version_table_name(self, live_table: str) -> str:
        """The version table's name for ``live_table``."""
        return self.version_table_format % live_table

    def non_default(self) -> dict[str, str]:
        """The options that differ from Continuum's defaults, as op keyword arguments."""
        default = Naming()
        return {name: value for name, value in vars(self).items() if value != getattr(default, name)}


@dataclass(frozen=True)
class KeyRange:
    """The entities of one batch of an operation: those whose key is above ``after`` and at most ``upto``.

    Key values are in the entity key's order; ``None`` leaves that side unbounded. Consecutive
    batches share a bound, so together they cover every key, whichever table holds it."""

    after: tuple[Any, ...] | None = None
    upto: tuple[Any, ...] | None = None

    def conditions(self, key: Sequence[ColumnElement[Any]]) -> list[ColumnElement[bool]]:
        """Return the conditions keeping ``key`` (the entity key's columns of one selectable) in the range.

        Each compares the column, or for a composite key the row value (``(a, b) > (x, y)``)."""
        return [
            _compare(key, bound, above)
            for bound, above in ((self.after, True), (self.upto, False))
            if bound is not None
        ]


def _compare(key: Sequence[ColumnElement[Any]], values: Sequence[Any], above: bool) -> ColumnElement[bool]:
    """``key > values`` (``above``) or ``key <= values``, each value bound in its column's type."""
    bound = [sa.literal(v, c.type) for c, v in zip(key, values, strict=True)]
    left: Any = key[0] if len(key) == 1 else sa.tuple_(*key)
    right: Any = bound[0] if len(bound) == 1 else sa.tuple_(*bound)
    return left > right if above else left <= right


@dataclass(frozen=True)
class VersionedTable:
    """A live table and its version table, with the columns the operations need.

    ``primary_key`` holds the live table's primary-key columns; an association table
    without a primary key has none, and its entities are keyed by all its columns
    (see :attr:`entity_key`). ``columns`` are the versioned non-key data columns, and
    ``mod_columns`` those of them that carry a ``<column><mod_suffix>`` flag.
    """

    name: str
    schema: str | None = None
    naming: Naming = Naming()
    primary_key: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    mod_columns: tuple[str, ...] = ()
    strategy: Strategy = "validity"
    association: bool = False
    types: Mapping[str, TypeEngine] = field(default_factory=dict, compare=False)
    #: The other versioned live tables (``schema.name`` keys) of a joined-table inheritance hierarchy,
    #: whose versions Continuum writes together with this table's (one version class, several tables).
    joined_with: tuple[str, ...] = ()
    #: In such a hierarchy, the key of its versioned base table (the one every entity has a row in),
    #: for the other tables; ``None`` for the base table itself and for tables outside a hierarchy.
    joined_base: str | None = None
    #: With Continuum's ``TransactionChangesPlugin``: the names of the model classes mapped to this
    #: table, which a backfill records as ``transaction_changes`` rows (empty without the plugin).
    entity_names: tuple[str, ...] = ()
    #: Under single-table inheritance, the flagged columns only some of the classes sharing the table
    #: map: Continuum flags them on a DELETE version only when the deleted entity's class maps them.
    #: Keyed by column, the polymorphic identities of the classes that map it (empty: not known).
    subclass_columns: Mapping[str, tuple[str | int, ...]] = field(default_factory=dict)
    #: The table's discriminator column (``polymorphic_on``), whose value tells each row's class, when
    #: ``subclass_columns`` name the identities.
    discriminator: str | None = None
    #: With Continuum's ``NullDeletePlugin``: DELETE versions hold NULL in every non-key data column.
    null_delete: bool = False
    #: The entities an operation's statements cover (one batch); ``None``: all.
    key_range: KeyRange | None = None

    def in_key_range(self, columns: Any) -> list[ColumnElement[bool]]:
        """Conditions keeping the rows of ``columns`` (a column collection of this table) in
        :attr:`key_range`: none without one."""
        return self.key_range.conditions(self.key_columns(columns)) if self.key_range is not None else []

    @property
    def version_name(self) -> str:
        """The version table's name."""
        return self.naming.version_table_name(self.name)

    @property
    def entity_key(self) -> tuple[str, ...]:
        """The columns that identify one entity's history."""
        return self.primary_key or self.columns

    def key_columns(self, columns: Any) -> list[Any]:
        """The entity-key columns of a column collection (``table.c``, ``subquery.c``)."""
        return [columns[k] for k in self.entity_key]

    @property
    def qualified_name(self) -> str:
        """``schema.table`` of the live table, for messages."""
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @property
    def qualified_version_name(self) -> str:
        """``schema.table`` of the version table, for messages."""
        return f"{self.schema}.{self.version_name}" if self.schema else self.version_name

    def mod_column(self, column: str) -> str:
        """The name of ``column``'s modification flag."""
        return column + self.naming.mod_suffix

    def version_table(self) -> sa.Table:
        """A Core table for the version table, carrying only what the statements need."""
        n = self.naming
        cols = [sa.Column(name, self.types.get(name, sa.types.NULLTYPE), primary_key=True) for name in self.primary_key]
        data = list(self.columns)
        if self.discriminator is not None and self.discriminator not in (*data, *self.primary_key):
            data.append(self.discriminator)  # read for DELETE flags (see subclass_columns)
        cols += [sa.Column(name, self.types.get(name, sa.types.NULLTYPE)) for name in data]
        cols.append(sa.Column(n.transaction_column_name, sa.BigInteger, primary_key=True))
        if self.strategy == "validity":
            cols.append(sa.Column(n.end_transaction_column_name, sa.BigInteger))
        cols.append(sa.Column(n.operation_type_column_name, sa.SmallInteger))
        cols += [sa.Column(self.mod_column(c), sa.Boolean) for c in self.mod_columns]
        return sa.Table(self.version_name, sa.MetaData(), *cols, schema=self.schema)

    def live_table(
        self, columns: Sequence[str] | None = None, types: Mapping[str, TypeEngine] | None = None
    ) -> sa.Table:
        """A Core table for the live table's versioned columns (or just ``columns`` of them), of
        the live table's own ``types`` where given, else of the version table's."""
        known = {**self.types, **(types or {})}
        cols = [sa.Column(name, known.get(name, sa.types.NULLTYPE), primary_key=True) for name in self.primary_key]
        data = self.columns if columns is None else columns
        cols += [sa.Column(name, known.get(name, sa.types.NULLTYPE)) for name in data]
        return sa.Table(self.name, sa.MetaData(), *cols, schema=self.schema)

    @classmethod
    def from_version_table(
        cls,
        version: sa.Table,
        *,
        name: str,
        naming: Naming,
        primary_key: Sequence[str] | None = None,
        strategy: Strategy | None = None,
        association: bool = False,
        mod_tracker: bool = True,
        data_columns: Sequence[str] | None = None,
    ) -> VersionedTable:
        """The versioned table whose version table is ``version``, for live table ``name``.

        A column ``<c><mod_suffix>`` is the mod flag of data column ``c`` when it is boolean (or of
        unknown type), ``mod_tracker`` is not false (the versioning manager has no tracker) and
        ``data_columns`` (the data columns an op names) does not name it: an application's
        ``price_mod`` integer, or boolean named as data, stays a data column.

        Raises :class:`~alembic_versioning.errors.VersioningError` naming the missing column and the
        option to pass when the table does not have the shape ``naming`` and ``strategy`` say it should.
        """
        cols = {c.name: c for c in version.c}
        where = f"version table {version.fullname!r} of {name!r}"
        for option in ("transaction_column_name", "operation_type_column_name"):
            column = getattr(naming, option)
            if column not in cols:
                raise VersioningError(
                    f"The {where} has no column {column!r}; pass {option}=... with the name the versioning "
                    f"manager uses."
                )
        end = naming.end_transaction_column_name
        found = strategy_of(version, naming)
        if strategy is not None and strategy != found:
            raise VersioningError(
                f"The {where} has {'a' if found == 'validity' else 'no'} column {end!r}, so it "
                f"uses the {found!r} strategy, not {strategy!r}; pass strategy={found!r}"
                + ("" if found == "validity" else " or end_transaction_column_name=... if it is renamed")
                + "."
            )
        tx = naming.transaction_column_name
        if primary_key is None:
            key = tuple(c.name for c in version.primary_key.columns if c.name != tx)
        else:
            key = tuple(primary_key)
            unknown = [c for c in key if c not in cols]
            if unknown:
                raise VersioningError(f"The {where} has no primary-key column(s) {unknown}; fix primary_key=[...].")
        internal = {tx, end, naming.operation_type_column_name}
        data = [c for c in cols if c not in internal and c not in key]
        named = data_columns or ()
        flags = (
            {c + naming.mod_suffix for c in flagged(version, naming, data, named)} & set(data) if mod_tracker else set()
        )
        columns = tuple(c for c in data if c not in flags)
        mods = tuple(c for c in columns if c + naming.mod_suffix in flags)
        return cls(
            name=name,
            schema=version.schema,
            naming=naming,
            primary_key=key,
            columns=columns,
            mod_columns=mods,
            strategy=found,
            association=association,
            types={name: c.type for name, c in cols.items()},
        )


def strategy_of(version: sa.Table, naming: Naming) -> Strategy:
    """The strategy a version table's columns show: validity when it has the end-transaction column."""
    return "validity" if naming.end_transaction_column_name in version.c else "subquery"


def one_version_per_transaction(version: sa.Table, naming: Naming) -> bool:
    """Whether ``version`` is keyed on the transaction column alone.

    That is Continuum's shape for an association table without a primary key. It holds one version
    per transaction, while ``backfill_versions`` writes all its versions in one."""
    return [c.name for c in version.primary_key.columns] == [naming.transaction_column_name]


def flagged(version: sa.Table, naming: Naming, columns: Sequence[str], named: Sequence[str] = ()) -> list[str]:
    """Return the ``columns`` with a mod flag in ``version``.

    A column's flag is a ``<c><mod_suffix>`` column of ``version``:

    - boolean, or of unknown type;
    - not named as data by ``named`` (the data columns an op names)."""
    found = []
    for column in columns:
        flag = version.c.get(column + naming.mod_suffix)
        if flag is not None and flag.name != column and is_flag_type(flag.type) and flag.name not in named:
            found.append(column)
    return found
