"""The one error type the package raises for bad input, and the checks every entry point shares."""

from __future__ import annotations

from alembic.util import CommandError
from sqlalchemy.engine import Dialect

#: The databases the statements are built and tested for.
SUPPORTED_DIALECTS = ("postgresql", "sqlite")


class VersioningError(CommandError):
    """A versioned table cannot be handled as asked; the message names the table and the fix.

    A subclass of :class:`alembic.util.CommandError`, so ``alembic`` reports it like its own.
    """


def require_supported(dialect: Dialect, doing: str) -> None:
    """Refuse, before anything is read or written, a database the statements are not built for
    (another dialect's SQL could fail halfway, or worse, run with other semantics)."""
    if dialect.name not in SUPPORTED_DIALECTS:
        raise VersioningError(
            f"{doing}: alembic-versioning supports {' and '.join(SUPPORTED_DIALECTS)}, not {dialect.name!r}; "
            f"leave its operations and its autogenerate plugin out of migrations for this database."
        )
