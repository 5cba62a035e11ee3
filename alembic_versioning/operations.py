"""The migration operations, registered on :class:`alembic.operations.Operations`.

Each class describes one operation; its implementation lives in
:mod:`alembic_versioning.implementations`. Every operation takes the live table's name first, plus
``schema``, Continuum's naming options (see :class:`~alembic_versioning.model.Naming`) and
``primary_key``, which offline migrations need when ``target_metadata`` lacks the table.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, TypedDict, TypeVar, Unpack

from alembic.operations import MigrateOperation, Operations

from .errors import VersioningError
from .model import InsertFlags, Naming, Strategy


class NamingOptions(TypedDict, total=False):
    """Keyword arguments naming the version table and its columns (Continuum's options)."""

    version_table_format: str
    transaction_column_name: str
    end_transaction_column_name: str
    operation_type_column_name: str
    mod_suffix: str
    transaction_table: str
    transaction_sequence: str


def make_naming(table_name: str, options: NamingOptions, arguments: Sequence[str] = ()) -> Naming:
    """Return the :class:`Naming` of the naming keyword arguments ``options``, checked.

    ``arguments``: the op's own keyword arguments, named in the error for an unknown one."""
    unknown = set(options) - set(NamingOptions.__annotations__)
    if unknown:
        own = f"its arguments are {sorted(arguments)} and " if arguments else ""
        raise VersioningError(
            f"Unknown option(s) {sorted(unknown)} for table {table_name!r}; "
            f"{own}naming options are {sorted(NamingOptions.__annotations__)}."
        )
    for option, value in options.items():
        if not isinstance(value, str) or not value:
            raise VersioningError(
                f"{option}={value!r} for table {table_name!r}: pass the name as a non-empty string, "
                f"e.g. {option}={getattr(Naming(), option)!r} (Continuum's default)."
            )
    naming = Naming(**options)
    _check_version_table_format(table_name, naming.version_table_format)
    columns = [naming.transaction_column_name, naming.end_transaction_column_name, naming.operation_type_column_name]
    if len(set(columns)) < len(columns):
        raise VersioningError(
            f"transaction_column_name={columns[0]!r}, end_transaction_column_name={columns[1]!r} and "
            f"operation_type_column_name={columns[2]!r} for table {table_name!r} must name three different "
            f"columns of the version table."
        )
    return naming


def _check_version_table_format(table_name: str, format: str) -> None:
    """Refuse a ``version_table_format`` that is not a ``%s`` format giving a name other than the table's."""
    fix = "like Continuum's 'table_name' option, e.g. '%s_version' or '%s_history' (write a literal % as %%)"
    try:
        named = format % "x" if format.count("%s") == 1 else None
    except (TypeError, ValueError):
        named = None
    if named is None or named == "x":
        raise VersioningError(
            f"version_table_format={format!r} for table {table_name!r} must contain '%s' exactly once and "
            f"no other % directive, {fix}."
        )


def names(argument: str, value: Any, table_name: str, example: str = "id") -> tuple[str, ...] | None:
    """Return ``value`` (a list of column or class names, or ``None``) as a tuple, checked.

    Refused: a string alone, anything but a sequence or set, an item that is not a non-empty
    string."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, AbstractSet)):
        raise VersioningError(
            f"{argument}={value!r} for table {table_name!r}: pass a list of names, e.g. {argument}=[{example!r}]."
        )
    wrong = [item for item in value if not isinstance(item, str) or not item]
    if wrong:
        raise VersioningError(
            f"{argument}={list(value)!r} for table {table_name!r}: {wrong} are not names; pass strings, "
            f"e.g. {argument}=[{example!r}]."
        )
    return tuple(value)


def mapping(argument: str, value: Any, table_name: str, example: str) -> dict[str, Any]:
    """``value`` (a mapping with string keys, or ``None``) as a dict, checked."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise VersioningError(
            f"{argument}={value!r} for table {table_name!r}: pass a dict keyed by name, e.g. {argument}={example}."
        )
    return dict(value)


#: ``subclass_columns=`` of ``update_mod_flags`` and ``backfill_versions``: column names, or names
#: mapped to the polymorphic identities of the classes that map them.
SubclassColumns = Sequence[str] | Mapping[str, Sequence[str | int]]


class DeleteFlags:
    """The op arguments that say a DELETE version's mod flags under single-table inheritance.

    - ``subclass_columns``: the flagged columns only some of the classes sharing the table map
      (Continuum flags them on a DELETE only where the deleted entity's class maps them), as a
      list, or mapped to those classes' polymorphic identities;
    - ``discriminator``: the column that tells the identities (with the mapping only)."""

    def __init__(self, table_name: str, subclass_columns: SubclassColumns | None, discriminator: str | None) -> None:
        identities: dict[str, Any] = {}
        if isinstance(subclass_columns, Mapping):
            identities = dict(subclass_columns)
        elif subclass_columns is not None:
            identities = dict.fromkeys(names("subclass_columns", subclass_columns, table_name, "title") or (), ())
        literal = (str, int)
        wrong = (
            not all(isinstance(c, str) and c for c in identities)
            or not all(isinstance(v, Sequence) and not isinstance(v, (str, bytes)) for v in identities.values())
            or not all(isinstance(i, literal) and not isinstance(i, bool) for v in identities.values() for i in v)
            or (discriminator is not None and (not isinstance(discriminator, str) or not discriminator))
            or any(identities.values()) != (discriminator is not None)
        )
        if wrong:
            raise VersioningError(
                f"subclass_columns={subclass_columns!r}, discriminator={discriminator!r} for table {table_name!r}: "
                f"list the columns only some classes of the single-table inheritance hierarchy map, e.g. "
                f"subclass_columns=['title'], or map each to the polymorphic identities (strings or integers) "
                f"of the classes that map it and name the discriminator column, e.g. "
                f"subclass_columns={{'title': ['blog_post']}}, discriminator='type'."
            )
        self.subclass_columns: dict[str, tuple[str | int, ...]] = {c: tuple(v) for c, v in identities.items()}
        self.discriminator = discriminator

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments that recreate them (none when there are no subclass columns)."""
        if not self.subclass_columns:
            return {}
        if self.discriminator is None:
            return {"subclass_columns": list(self.subclass_columns)}
        return {
            "subclass_columns": {c: list(v) for c, v in self.subclass_columns.items()},
            "discriminator": self.discriminator,
        }


def flag(argument: str, value: Any, table_name: str) -> bool:
    """``value``, checked to be ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise VersioningError(f"{argument}={value!r} for table {table_name!r}: pass True or False.")
    return value


def batching(
    table_name: str, batch_size: Any, lock_timeout: Any, batch_seconds: Any
) -> tuple[int | None, float | None, float | None]:
    """Return ``batch_size``, ``lock_timeout`` and ``batch_seconds``, checked.

    - ``batch_size``: entities per batch (the most, with ``batch_seconds``), or ``None`` (one
      transaction);
    - ``lock_timeout``: seconds a batch waits for the writers' lock, with batches only;
    - ``batch_seconds``: seconds a batch aims to hold the writers' lock (``0``: batches of
      ``batch_size`` whatever they take), with batches only."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise VersioningError(
            f"batch_size={batch_size!r} for table {table_name!r}: pass the number of entities per batch as a "
            f"positive integer, e.g. batch_size=10000, or leave it out (one transaction)."
        )
    if lock_timeout is not None and not seconds(lock_timeout, zero=False):
        raise VersioningError(
            f"lock_timeout={lock_timeout!r} for table {table_name!r}: pass the seconds a batch may wait for "
            f"the writers' lock as a positive number up to {MAX_SECONDS}, e.g. lock_timeout=3."
        )
    if batch_seconds is not None and not seconds(batch_seconds, zero=True):
        raise VersioningError(
            f"batch_seconds={batch_seconds!r} for table {table_name!r}: pass the seconds a batch should hold "
            f"the writers' lock as a positive number up to {MAX_SECONDS}, e.g. batch_seconds=0.5, or 0 for "
            f"batches of batch_size entities however long they take."
        )
    for name, value, what in (
        ("lock_timeout", lock_timeout, "bounds each batch's wait for the writers' lock"),
        ("batch_seconds", batch_seconds, "sizes each batch by the time it holds the writers' lock"),
    ):
        if value is not None and batch_size is None:
            raise VersioningError(
                f"{name}={value!r} for table {table_name!r} {what}: pass batch_size=... too (without it the "
                f"operation runs in the migration's transaction, which holds the lock until the migration "
                f"commits)."
            )
    return batch_size, lock_timeout, batch_seconds


#: The most seconds ``lock_timeout`` and ``batch_seconds`` take: a day.
MAX_SECONDS = 86_400
#: The arguments of a batched run: without ``batch_size``, none of them.
BATCH_ARGUMENTS = ("batch_size", "lock_timeout", "batch_seconds")


def seconds(value: Any, *, zero: bool) -> bool:
    """Whether ``value`` is a number of seconds above 0 (or 0 itself, with ``zero``), at most
    :data:`MAX_SECONDS`."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and (0 < value <= MAX_SECONDS or (zero and value == 0))


#: The last paragraph of each operation's docstring: every operation takes ``batch_size``,
#: ``lock_timeout`` and ``batch_seconds``.
BATCHES_DOC = """``batch_size=N`` works through the entities in key order, at most ``N`` per batch, each in its own
short transaction holding the writers' lock for that batch only (waiting at most
``lock_timeout`` seconds for it, 3 by default) about ``batch_seconds`` (0.5 by default): each
batch is sized by the time the one before held it (``batch_seconds=0``: ``N`` each). Online only.
See "Large tables in production"."""

_Method = TypeVar("_Method", bound=Callable[..., None])


def batched(method: _Method) -> _Method:
    """Return ``method`` with :data:`BATCHES_DOC` added to its docstring as the last paragraph."""
    method.__doc__ = f"{inspect.cleandoc(method.__doc__ or '')}\n\n{BATCHES_DOC}\n"
    return method


class VersionedTableOp(MigrateOperation):
    """Common arguments of the operations on one versioned table."""

    #: The op's name on ``op.`` and in diff tuples.
    op_name: str = ""
    #: What autogenerate found, rendered as a comment above the op.
    finding: str | None = None
    #: Whether the op compares every versioned data column (offline without ``target_metadata``
    #: it then needs ``columns=[...]``).
    reads_data = False

    def __init__(
        self,
        table_name: str,
        *,
        schema: str | None = None,
        primary_key: Sequence[str] | None = None,
        naming: Naming = Naming(),
        strategy: Strategy | None = None,
        batch_size: int | None = None,
        lock_timeout: float | None = None,
        batch_seconds: float | None = None,
    ) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise VersioningError(
                f"table_name={table_name!r}: pass the live table's name as a non-empty string, e.g. 'article'."
            )
        if schema is not None and (not isinstance(schema, str) or not schema):
            raise VersioningError(
                f"schema={schema!r} for table {table_name!r}: pass the schema's name as a string, or leave it out."
            )
        self.table_name = table_name
        self.schema = schema
        self.primary_key = names("primary_key", primary_key, table_name)
        self.naming = naming
        if strategy not in (None, "validity", "subquery"):
            raise VersioningError(f"strategy={strategy!r} for table {table_name!r}: use 'validity' or 'subquery'.")
        self.strategy: Strategy | None = strategy
        self.batch_size, self.lock_timeout, self.batch_seconds = batching(
            table_name, batch_size, lock_timeout, batch_seconds
        )

    def describes_table(self) -> bool:
        """Whether the op's own arguments say all an offline run needs.

        Autogenerate renders them, so that they win over ``target_metadata``, which describes the
        head revision. ``primary_key=[]`` (an association table without one) is not enough: its
        entities are keyed by all its data columns, which only ``columns`` or ``target_metadata``
        name."""
        return bool(self.primary_key)

    @classmethod
    def run(cls, operations: Operations, table_name: str, naming: NamingOptions, **kwargs: Any) -> None:
        """Build the op from a call's arguments and invoke it."""
        operations.invoke(cls(table_name, naming=make_naming(table_name, naming, list(kwargs)), **kwargs))

    def reverse(self) -> VersionedTableOp:
        """A data repair's downgrade is the same repair.

        The repaired history is also correct for the previous revision, and the broken
        state holds nothing worth restoring; running the repair again changes nothing
        when the data is still correct.
        """
        again = copy.copy(self)
        again.finding = f"downgrade: {self.op_name} again, which changes nothing while the history is correct"
        return again

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``(operation name, schema, live table)``: what ``alembic check`` reports."""
        return (self.op_name, self.schema, self.table_name)

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments that recreate this op, defaults left out (for rendering)."""
        kwargs: dict[str, Any] = {}
        if self.schema is not None:
            kwargs["schema"] = self.schema
        if self.primary_key is not None:
            kwargs["primary_key"] = list(self.primary_key)
        if self.strategy is not None:
            kwargs["strategy"] = self.strategy
        kwargs.update(self.naming.non_default())
        for name in BATCH_ARGUMENTS:
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs


@Operations.register_operation("update_end_transaction_ids")
class UpdateEndTransactionIdsOp(VersionedTableOp):
    """Recompute the validity strategy's end-transaction column of a version table."""

    op_name = "update_end_transaction_ids"
    #: What ``joined=`` may say of a table.
    joined_keys: tuple[str, ...] = ("primary_key",)

    def __init__(self, table_name: str, *, joined: Joined = (), **kw: Any) -> None:
        super().__init__(table_name, **kw)
        self.joined = joined_tables(table_name, joined, self.joined_keys)

    @classmethod
    @batched
    def update_end_transaction_ids(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        primary_key: Sequence[str] | None = None,
        strategy: Strategy | None = None,
        batch_size: int | None = None,
        lock_timeout: float | None = None,
        batch_seconds: float | None = None,
        joined: Joined = (),
        **naming: Unpack[NamingOptions],
    ) -> None:
        """Rebuild ``end_transaction_id`` of ``table_name``'s version table.

        Per entity, in transaction order:

        - each version's end id becomes the next version's transaction id;
        - the last version's end id becomes NULL.

        Only differing rows are written. ``strategy="validity"`` tells an offline run so where
        ``target_metadata`` (another revision) shows the subquery strategy.

        ``joined`` names the other versioned tables of a joined-table inheritance hierarchy whose
        base table is ``table_name`` (same schema). Their versions end where the base table's
        version of the same transaction ends, as Continuum writes them, even when the entity's
        next version has no row in their table (its key reused by another class). Offline, a
        mapping ``{name: {"primary_key": [...]}}`` describes them.
        """
        cls.run(
            operations,
            table_name,
            naming,
            schema=schema,
            primary_key=primary_key,
            strategy=strategy,
            joined=joined,
            batch_size=batch_size,
            lock_timeout=lock_timeout,
            batch_seconds=batch_seconds,
        )

    def arguments(self) -> dict[str, Any]:
        return {**super().arguments(), **joined_argument(self.joined)}


@Operations.register_operation("update_mod_flags")
class UpdateModFlagsOp(VersionedTableOp):
    """Recompute the ``<column>_mod`` flags of a version table."""

    op_name = "update_mod_flags"

    def __init__(
        self,
        table_name: str,
        columns: Sequence[str] | None = None,
        *,
        insert_flags: InsertFlags = "keep",
        keep_true: bool = False,
        subclass_columns: SubclassColumns | None = None,
        discriminator: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(table_name, **kw)
        self.columns = names("columns", columns, table_name, "name")
        self.delete_flags = DeleteFlags(table_name, subclass_columns, discriminator)
        if insert_flags not in ("keep", "non_null", "all"):
            raise VersioningError(
                f"insert_flags={insert_flags!r} for table {table_name!r}: use 'keep', 'non_null' or 'all'."
            )
        self.insert_flags: InsertFlags = insert_flags
        self.keep_true = flag("keep_true", keep_true, table_name)

    @classmethod
    @batched
    def update_mod_flags(
        cls,
        operations: Operations,
        table_name: str,
        columns: Sequence[str] | None = None,
        *,
        schema: str | None = None,
        primary_key: Sequence[str] | None = None,
        insert_flags: InsertFlags = "keep",
        keep_true: bool = False,
        subclass_columns: SubclassColumns | None = None,
        discriminator: str | None = None,
        strategy: Strategy | None = None,
        batch_size: int | None = None,
        lock_timeout: float | None = None,
        batch_seconds: float | None = None,
        **naming: Unpack[NamingOptions],
    ) -> None:
        """Recompute the mod flags of ``columns`` (default: every flagged column).

        Each version is compared NULL-safely with the entity's previous version in transaction
        order, and its flags are set and cleared. With ``keep_true=True`` they are only set: a true
        flag stays, as Continuum's ORM writes one for a value changed and changed back in one
        transaction. Apart from that:

        - DELETE versions get all flags true, but those of ``subclass_columns``. These are, under
          single-table inheritance, the columns only some classes sharing the table map, which
          Continuum flags on a DELETE only where the deleted entity's class maps them. Their flags:

          - are kept, with ``subclass_columns`` a list;
          - with each column mapped to the polymorphic identities of the classes that map it and
            the ``discriminator`` column named: are set where the row's discriminator names one of
            them, else cleared.

        - INSERT versions, and UPDATE versions with no previous version, keep their flags
          (``insert_flags="keep"``), or get ``value IS NOT NULL`` (``"non_null"``) or true
          (``"all"``).

        ``strategy`` matters offline only, without ``target_metadata`` holding the table.
        """
        cls.run(
            operations,
            table_name,
            naming,
            columns=columns,
            insert_flags=insert_flags,
            keep_true=keep_true,
            subclass_columns=subclass_columns,
            discriminator=discriminator,
            schema=schema,
            primary_key=primary_key,
            strategy=strategy,
            batch_size=batch_size,
            lock_timeout=lock_timeout,
            batch_seconds=batch_seconds,
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return (*super().to_diff_tuple(), self.columns)

    def describes_table(self) -> bool:
        return super().describes_table() and self.columns is not None

    def arguments(self) -> dict[str, Any]:
        kwargs = super().arguments()
        if self.columns is not None:
            kwargs["columns"] = list(self.columns)
        if self.insert_flags != "keep":
            kwargs["insert_flags"] = self.insert_flags
        if self.keep_true:
            kwargs["keep_true"] = True
        kwargs.update(self.delete_flags.arguments())
        return kwargs


#: ``joined=`` of ``backfill_versions``, ``vacuum_versions`` and ``update_end_transaction_ids``: table
#: names, or names mapped to their description.
Joined = Sequence[str] | Mapping[str, Mapping[str, Sequence[str]]]
#: What ``joined=`` of ``backfill_versions`` and ``vacuum_versions`` may say of a table.
JOINED_KEYS = ("primary_key", "columns", "mod_columns")


def joined_tables(
    table_name: str, joined: Joined, keys: Sequence[str] = JOINED_KEYS
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Return ``joined=`` checked, as a mapping of each table's name to what it says of the table.

    ``keys``: what it may say of a table."""
    if isinstance(joined, Mapping):
        about: Mapping[str, Any] = joined
    else:
        about = {name: {} for name in names("joined", joined, table_name, "doc") or ()}
    wrong = any(
        not isinstance(name, str) or not name or not isinstance(described, Mapping) or set(described) - set(keys)
        for name, described in about.items()
    )
    if table_name in about or wrong:
        example = {"primary_key": ["id"], "columns": ["body"]}
        raise VersioningError(
            f"joined={joined!r} for table {table_name!r}: list the other tables of its joined-table "
            f"inheritance hierarchy, without {table_name!r} itself, e.g. joined=['doc'], or map each to "
            f"its {list(keys)}, e.g. joined={ {'doc': {k: v for k, v in example.items() if k in keys}} }."
        )
    return {
        name: {k: names(f"joined[{name!r}][{k!r}]", v, table_name) or () for k, v in described.items()}
        for name, described in about.items()
    }


def joined_argument(joined: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, Any]:
    """Return the ``joined=`` argument that recreates ``joined`` (none when empty).

    It is a list of names, or a mapping where ``joined`` describes the tables."""
    if any(joined.values()):
        return {"joined": {name: {k: list(v) for k, v in about.items()} for name, about in joined.items()}}
    return {"joined": list(joined)} if joined else {}


class VersionedDataOp(VersionedTableOp):
    """An op that reads every versioned data column.

    Offline, without ``target_metadata``, it needs them listed (``columns``, and ``mod_columns``
    for those with flags)."""

    reads_data = True
    #: What ``joined=`` may say of a table.
    joined_keys: tuple[str, ...] = JOINED_KEYS

    def __init__(
        self,
        table_name: str,
        *,
        columns: Sequence[str] | None = None,
        mod_columns: Sequence[str] | None = None,
        joined: Joined = (),
        **kw: Any,
    ) -> None:
        super().__init__(table_name, **kw)
        self.columns = names("columns", columns, table_name, "name")
        self.mod_columns = names("mod_columns", mod_columns, table_name, "name")
        self.joined = joined_tables(table_name, joined, self.joined_keys)

    def describes_table(self) -> bool:
        return self.primary_key is not None and self.columns is not None and bool(self.primary_key or self.columns)

    def arguments(self) -> dict[str, Any]:
        kwargs = super().arguments()
        for name in ("columns", "mod_columns"):
            if getattr(self, name) is not None:
                kwargs[name] = list(getattr(self, name))
        kwargs.update(joined_argument(self.joined))
        return kwargs


#: The ops that take ``joined=``: the other tables of a joined-table inheritance hierarchy.
HierarchyOp = VersionedDataOp | UpdateEndTransactionIdsOp


@Operations.register_operation("backfill_versions")
class BackfillVersionsOp(VersionedDataOp):
    """Write new versions so the version table reflects the live table."""

    op_name = "backfill_versions"
    #: What ``joined=`` may say of a table: also its ``subclass_columns`` (a list: a joined table's
    #: discriminator, if any, is its base table's).
    joined_keys = (*JOINED_KEYS, "subclass_columns")

    def __init__(
        self,
        table_name: str,
        *,
        transaction: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        entity_names: Sequence[str] = (),
        native_versioning: bool | None = None,
        association: bool = False,
        null_delete: bool = False,
        subclass_columns: SubclassColumns | None = None,
        discriminator: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(table_name, **kw)
        self.association = flag("association", association, table_name)
        self.null_delete = flag("null_delete", null_delete, table_name)
        self.delete_flags = DeleteFlags(table_name, subclass_columns, discriminator)
        self.transaction = mapping("transaction", transaction, table_name, "{'remote_addr': '10.0.0.1'}")
        self.meta = mapping("meta", meta, table_name, "{'comment': 'backfill'}")
        self.entity_names = names("entity_names", entity_names, table_name, "Article") or ()
        if native_versioning not in (None, True, False):
            raise VersioningError(
                f"native_versioning={native_versioning!r} for table {table_name!r}: pass True or False, or "
                f"leave it out (online it is found in the database)."
            )
        self.native_versioning = native_versioning
        if "id" in self.transaction:
            raise VersioningError(
                f"transaction={{'id': ...}} for table {table_name!r}: the new transaction's id comes "
                f"from the database ({self.naming.transaction_sequence!r} or the table's own ids)."
            )

    @classmethod
    @batched
    def backfill_versions(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        transaction: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        entity_names: Sequence[str] = (),
        primary_key: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        mod_columns: Sequence[str] | None = None,
        native_versioning: bool | None = None,
        association: bool = False,
        null_delete: bool = False,
        subclass_columns: SubclassColumns | None = None,
        discriminator: str | None = None,
        strategy: Strategy | None = None,
        batch_size: int | None = None,
        lock_timeout: float | None = None,
        batch_seconds: float | None = None,
        joined: Joined = (),
        **naming: Unpack[NamingOptions],
    ) -> None:
        """Write the versions that make ``table_name``'s version table reflect its live rows.

        Per entity, against its latest version (highest transaction id):

        - a live row without one, or whose latest version is a DELETE, gets an INSERT version;
        - a live row that differs from it (NULL-safely) gets an UPDATE version;
        - a latest version without a live row gets a DELETE version with the last known values.

        Nothing is written when nothing differs. All new versions belong to one new transaction
        record, with:

        - ``transaction``: extra column values such as ``user_id`` or ``issued_at`` (which
          defaults to now in naive UTC);
        - ``meta``: its ``transaction_meta`` rows;
        - ``entity_names``: the model class names written as ``transaction_changes`` rows, as
          Continuum's ``TransactionChangesPlugin`` records the classes a transaction changed.

        ``columns``, ``mod_columns``, ``strategy`` and ``native_versioning`` matter offline only,
        where nothing can be reflected.

        Versions are written as Continuum writes them:

        - ``association=True`` (a ``secondary`` table of a versioned relationship) leaves the end
          ids of its versions NULL, as Continuum never fills them;
        - ``null_delete=True`` (Continuum's ``NullDeletePlugin``) writes NULL in every non-key
          data column of a DELETE version;
        - a DELETE version flags every column but ``subclass_columns`` (see ``update_mod_flags``),
          of which it flags those the row's class maps where the ``discriminator`` tells the
          class, else those whose last value is set (a class that does not map a column leaves it
          NULL).

        ``joined`` names the other versioned tables of a joined-table inheritance hierarchy whose
        base table is ``table_name`` (same schema): their versions are written together, as
        Continuum writes them, one row in each table an entity has a row in, at one transaction.
        Offline, a mapping ``{name: {"primary_key": [...], "columns": [...], "mod_columns": [...]}}``
        describes them as ``primary_key``, ``columns`` and ``mod_columns`` describe ``table_name``
        (and ``"subclass_columns": [...]``, a table's columns only some classes map).
        """
        cls.run(
            operations,
            table_name,
            naming,
            transaction=transaction,
            meta=meta,
            entity_names=entity_names,
            columns=columns,
            mod_columns=mod_columns,
            native_versioning=native_versioning,
            association=association,
            null_delete=null_delete,
            subclass_columns=subclass_columns,
            discriminator=discriminator,
            schema=schema,
            primary_key=primary_key,
            strategy=strategy,
            joined=joined,
            batch_size=batch_size,
            lock_timeout=lock_timeout,
            batch_seconds=batch_seconds,
        )

    def arguments(self) -> dict[str, Any]:
        kwargs = super().arguments()
        for name in ("transaction", "meta"):
            if getattr(self, name):
                kwargs[name] = getattr(self, name)
        if self.entity_names:
            kwargs["entity_names"] = list(self.entity_names)
        if self.native_versioning is not None:
            kwargs["native_versioning"] = self.native_versioning
        kwargs.update({name: True for name in ("association", "null_delete") if getattr(self, name)})
        kwargs.update(self.delete_flags.arguments())
        return kwargs


@Operations.register_operation("vacuum_versions")
class VacuumVersionsOp(VersionedDataOp):
    """Delete futile versions: UPDATE versions identical to the previous version."""

    op_name = "vacuum_versions"

    def __init__(
        self,
        table_name: str,
        *,
        ignore_columns: Sequence[str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(table_name, **kw)
        self.ignore_columns = names("ignore_columns", ignore_columns, table_name, "name") or ()
        if self.ignore_columns and self.joined:
            raise VersioningError(
                f"vacuum_versions({table_name!r}) takes ignore_columns or joined, not both: a hierarchy's "
                f"versions are compared in every column of every table."
            )

    @classmethod
    @batched
    def vacuum_versions(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        ignore_columns: Sequence[str] | None = None,
        primary_key: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        mod_columns: Sequence[str] | None = None,
        strategy: Strategy | None = None,
        batch_size: int | None = None,
        lock_timeout: float | None = None,
        batch_seconds: float | None = None,
        joined: Joined = (),
        **naming: Unpack[NamingOptions],
    ) -> None:
        """Delete the futile versions of ``table_name``: this deletes history.

        A version is futile when:

        - it is an UPDATE;
        - its versioned data columns (minus ``ignore_columns``) all equal, NULL-safely, those of
          the entity's previous version in transaction order;
        - that previous version is not a DELETE.

        For the validity strategy the surviving previous version takes the deleted run's end id.
        The flags of the version after a run are recomputed against the survivor. ``columns`` and
        ``mod_columns`` (and ``strategy``) matter offline only, where nothing can be reflected.

        ``joined`` names the other versioned tables of a joined-table inheritance hierarchy whose
        base table is ``table_name``, as for ``backfill_versions``: a version of an entity is
        futile only when it is futile in every table that has a row of it, and is then deleted
        from all of them.
        """
        cls.run(
            operations,
            table_name,
            naming,
            ignore_columns=ignore_columns,
            joined=joined,
            columns=columns,
            mod_columns=mod_columns,
            schema=schema,
            primary_key=primary_key,
            strategy=strategy,
            batch_size=batch_size,
            lock_timeout=lock_timeout,
            batch_seconds=batch_seconds,
        )

    def arguments(self) -> dict[str, Any]:
        kwargs = super().arguments()
        if self.ignore_columns:
            kwargs["ignore_columns"] = list(self.ignore_columns)
        return kwargs


__all__ = [
    "BackfillVersionsOp",
    "DeleteFlags",
    "LeftOutOp",
    "NamingOptions",
    "RepairOnDowngradeOp",
    "UpdateEndTransactionIdsOp",
    "UpdateModFlagsOp",
    "VacuumVersionsOp",
    "VersionedDataOp",
    "VersionedTableOp",
]


class RepairOnDowngradeOp(MigrateOperation):
    """A repair that only a downgrade needs: nothing on upgrade; its :meth:`reverse` is ``repair``.

    Autogenerate puts it first in the upgrade, so that the repair comes last in the downgrade,
    after Alembic has brought back the columns the upgrade dropped (an end-transaction or mod
    flag column comes back empty) or dropped the columns it added.
    """

    def __init__(self, repair: VersionedTableOp) -> None:
        self.repair = repair

    def reverse(self) -> VersionedTableOp:
        return self.repair

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("repair_on_downgrade", *the repair's tuple)``."""
        return ("repair_on_downgrade", *self.repair.to_diff_tuple())


class LeftOutOp(MigrateOperation):
    """A repair autogenerate found needed but leaves out, since it could only fail or do harm.

    ``why`` names the fix. Nothing runs; the script says what was found (and, with
    ``show_repair``, the repair, commented out); ``alembic check`` keeps failing as long as the
    drift lasts."""

    def __init__(self, repair: VersionedTableOp, why: str, show_repair: bool = True) -> None:
        self.repair = repair
        self.why = why
        self.show_repair = show_repair

    def reverse(self) -> LeftOutOp:
        """Left out in the downgrade too: the same repair, for the same reason."""
        repair = copy.copy(self.repair)
        repair.finding = f"downgrade: {repair.finding}" if repair.finding else "downgrade"
        return LeftOutOp(repair, self.why, self.show_repair)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("left_out", *the repair's tuple, why)``."""
        return ("left_out", *self.repair.to_diff_tuple(), self.why)


#: What autogenerate finds for a table: a repair it emits, or one it leaves out.
Repair = VersionedTableOp | LeftOutOp


def repair_of(found: Repair) -> VersionedTableOp:
    """Return the op a repair runs (or would run, when left out)."""
    return found.repair if isinstance(found, LeftOutOp) else found


#: The repair operations, one per ``op_name``.
OP_CLASSES: tuple[type[VersionedTableOp], ...] = (
    BackfillVersionsOp,
    UpdateEndTransactionIdsOp,
    UpdateModFlagsOp,
    VacuumVersionsOp,
)
