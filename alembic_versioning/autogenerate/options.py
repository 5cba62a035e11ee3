"""The autogenerate options: which tables and checks, read from ``env.py`` and the config file.

``context.configure(..., alembic_versioning={...})`` in ``env.py``, ``[tool.alembic.versioning]``
in ``pyproject.toml`` or an ``[alembic_versioning]`` section in ``alembic.ini`` (``env.py`` wins):

``skip_tables``
    live table names (``name`` or ``schema.name``) never checked;
``disable``
    checks switched off, of ``backfill``, ``chains``, ``mod_flags``, ``vacuum``;
``vacuum``
    ``true`` to switch on the futile-version check (off by default: the repair deletes history);
``batch_threshold``
    the estimated number of versions (PostgreSQL's ``pg_class.reltuples``, SQLite's largest
    ``rowid``, MariaDB's ``table_rows``; nothing is counted) from which a table's generated repairs run in batches, in a
    revision without schema changes (default 1,000,000; see the "Large tables in production" page);
``batch_size``
    the ``batch_size=`` those repairs get (default 10,000; ``0`` switches automatic batching off);
``render``
    how generated scripts spell the operations: ``typed`` (the default),
    ``versioning.backfill_versions(...)`` with ``from alembic_versioning import op as versioning``,
    which mypy and pyright check; ``op``, ``op.backfill_versions(...)`` (registered on Alembic's
    ``op`` at run time, so type checkers report it); ``op-type-ignore``, the ``op.`` spelling with
    ``# type: ignore[attr-defined]`` on each call;
``managers``
    (``env.py`` only) the Continuum / sqlalchemy-history versioning managers to read, when the
    application does not use the libraries' default ``versioning_manager``;
``transaction``, ``meta``
    the ``transaction=`` values and ``meta=`` keys of every generated backfill (see
    :mod:`.attribution`): names mapped to values, or to ``{"env": "NAME"}`` read from the
    environment at upgrade time (in the ini file, as JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from alembic.util import CommandError

from ..model import VersionedTable
from .attribution import attribution_values

CHECKS = ("backfill", "chains", "mod_flags", "vacuum")
KEYS = (
    "skip_tables",
    "disable",
    "vacuum",
    "render",
    "managers",
    "batch_threshold",
    "batch_size",
    "transaction",
    "meta",
)
#: Defaults of ``batch_threshold`` and ``batch_size``.
BATCH_THRESHOLD, BATCH_SIZE = 1_000_000, 10_000
#: How generated scripts spell the operations (the ``render`` option).
RenderMode = Literal["typed", "op", "op-type-ignore"]
RENDER_MODES: tuple[RenderMode, ...] = get_args(RenderMode)


def _names(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return frozenset(str(v) for v in value or ())


def _count(name: str, value: Any) -> int:
    """A non-negative integer option (``1_000_000``, ``"1000000"``, ``"1_000_000"``)."""
    try:
        number = int(value.replace("_", "").replace(",", "")) if isinstance(value, str) else value
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise CommandError(f"alembic_versioning {name}={value!r}: pass a whole number, 0 or more.")
    return number


def _flag(value: Any) -> bool:
    return value.strip().lower() in ("true", "yes", "on", "1") if isinstance(value, str) else bool(value)


@dataclass(frozen=True)
class Options:
    """What the comparator checks."""

    skip_tables: frozenset[str] = frozenset()
    disable: frozenset[str] = frozenset()
    vacuum: bool = False
    render: RenderMode = "typed"
    managers: tuple[Any, ...] | None = None
    batch_threshold: int = BATCH_THRESHOLD
    batch_size: int = BATCH_SIZE
    transaction: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def enabled(self, check: str) -> bool:
        """Whether ``check`` runs."""
        return check not in self.disable and (check != "vacuum" or self.vacuum)

    def skips(self, table: VersionedTable, default_schema: str | None = None) -> bool:
        """Whether ``table`` is left out (in ``skip_tables``).

        It may be named bare, or qualified with its schema (the database's ``default_schema`` for a
        table without one)."""
        schema = table.schema or default_schema
        return table.name in self.skip_tables or f"{schema}.{table.name}" in self.skip_tables

    @classmethod
    def from_settings(cls, *sources: Mapping[str, Any]) -> Options:
        """Return the options of settings mappings, later ones winning; an unknown key is an error."""
        merged: dict[str, Any] = {}
        for source in sources:
            unknown = sorted(set(source) - set(KEYS))
            if unknown:
                raise CommandError(f"Unknown alembic_versioning option(s) {unknown}; the options are {list(KEYS)}.")
            merged.update(source)
        disable = _names(merged.get("disable"))
        if disable - set(CHECKS):
            raise CommandError(f"alembic_versioning disable={sorted(disable)}: the checks are {list(CHECKS)}.")
        render = str(merged.get("render", "typed")).strip()
        if render not in RENDER_MODES:
            raise CommandError(f"alembic_versioning render={render!r}: use one of {list(RENDER_MODES)}.")
        managers = merged.get("managers")
        if isinstance(managers, str):
            raise CommandError("alembic_versioning option 'managers' takes a list of versioning manager objects.")
        return cls(
            skip_tables=_names(merged.get("skip_tables")),
            disable=disable,
            vacuum=_flag(merged.get("vacuum", False)),
            render=cast(RenderMode, render),
            managers=tuple(managers) if isinstance(managers, Iterable) else None,
            batch_threshold=_count("batch_threshold", merged.get("batch_threshold", BATCH_THRESHOLD)),
            batch_size=_count("batch_size", merged.get("batch_size", BATCH_SIZE)),
            transaction=attribution_values("transaction", merged.get("transaction", {})),
            meta=attribution_values("meta", merged.get("meta", {})),
        )


def _file_settings(source: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    if "managers" in source:
        raise CommandError(
            f"alembic_versioning option 'managers' in {where}: versioning managers are Python objects; "
            f"pass them in env.py: context.configure(..., alembic_versioning={{'managers': [...]}})."
        )
    return source


def options_for(autogen_context: Any) -> Options:
    """The options of one autogenerate run: config file first, then ``env.py``."""
    sources: list[Mapping[str, Any]] = []
    migration_context = autogen_context.migration_context  # None in render_python_code() without one
    config = migration_context.config if migration_context is not None else None
    if config is not None:
        toml: Mapping[str, Any] = getattr(config, "toml_alembic_config", {})  # Alembic >= 1.16
        sources.append(_file_settings(toml.get("versioning", {}), "pyproject.toml"))
        ini = config.file_config
        if ini.has_section("alembic_versioning"):
            section = {k: v for k, v in ini.items("alembic_versioning") if k not in ini.defaults()}
            sources.append(_file_settings(section, "the ini file"))
    sources.append(autogen_context.opts.get("alembic_versioning") or {})
    return Options.from_settings(*sources)
