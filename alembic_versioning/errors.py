"""The one error type the package raises for bad input, the checks every entry point shares, and the
messages several modules raise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic.util import CommandError
from sqlalchemy.engine import Dialect

if TYPE_CHECKING:
    from .model import Naming

#: The databases the statements are built and tested for.
SUPPORTED_DIALECTS = ("postgresql", "sqlite", "mariadb")
#: The oldest MariaDB the statements are built and tested for.
MARIADB_FLOOR = (10, 6)


class VersioningError(CommandError):
    """A versioned table cannot be handled as asked; the message names the table and the fix.

    A subclass of :class:`alembic.util.CommandError`, so ``alembic`` reports it like its own.
    """


def require_supported(dialect: Dialect, doing: str) -> None:
    """Refuse a database the statements are not built for, before anything is read or written.

    Another dialect's SQL could fail halfway, or worse, run with other semantics."""
    floor = ".".join(map(str, MARIADB_FLOOR))
    version = getattr(dialect, "server_version_info", None)
    if dialect.name == "mysql" and getattr(dialect, "is_mariadb", False):
        pass  # a mysql:// URL on a MariaDB server, online (offline the server is not known: see below)
    elif dialect.name == "mysql":
        raise VersioningError(
            f"{doing}: alembic-versioning supports PostgreSQL, SQLite and MariaDB >= {floor}, not MySQL "
            f"(Continuum's transaction ids need a SEQUENCE, which MySQL lacks, and MySQL cannot read a temporary "
            f"table twice in one statement). For MariaDB through a mysql:// URL offline (--sql), where the server "
            f"is not known, use a mariadb:// URL (mariadb+pymysql://...). Otherwise leave its operations and its "
            f"autogenerate plugin out of migrations for this database."
        )
    elif dialect.name not in SUPPORTED_DIALECTS:
        raise VersioningError(
            f"{doing}: alembic-versioning supports postgresql, sqlite and mariadb (>= {floor}), not "
            f"{dialect.name!r}; leave its operations and its autogenerate plugin out of migrations for this database."
        )
    if getattr(dialect, "is_mariadb", False) and version and tuple(version[:2]) < MARIADB_FLOOR:
        raise VersioningError(
            f"{doing}: alembic-versioning supports MariaDB >= {floor}, not {'.'.join(map(str, version[:3]))}."
        )


def missing_table(name: str, schema: str | None, why: str) -> VersioningError:
    """Return the error for a table ``schema.name`` that does not exist but is needed (``why``)."""
    where = f" in schema {schema!r}" if schema else ""
    return VersioningError(f"Table {name!r}{where} does not exist: {why}.")


def missing_version_table(name: str, schema: str | None, naming: Naming) -> VersioningError:
    """Return the error for a live table whose version table cannot be found."""
    version = naming.version_table_name(name)
    where = f" in schema {schema!r}" if schema else ""
    return VersioningError(
        f"No version table {version!r}{where} for table {name!r}. Check the table name, pass "
        f"schema=... if it lives in another schema, or version_table_format=... if the "
        f"versioning manager's 'table_name' option is not {naming.version_table_format!r}."
    )


def no_room_for_backfill(name: str, naming: Naming) -> str:
    """Return why ``backfill_versions`` cannot write ``name``'s versions, and the fix.

    See :func:`~alembic_versioning.model.one_version_per_transaction`."""
    version, column = naming.version_table_name(name), naming.transaction_column_name
    return (
        f"{version!r} (table {name!r}) has the primary key ({column}) alone, so it holds one version "
        f"per transaction, and backfill_versions writes all its versions in one. Give {name!r} a primary "
        f"key (Continuum then keys {version!r} on it and {column}), or drop that primary key constraint "
        f"of {version!r}."
    )
