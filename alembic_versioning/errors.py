"""The one error type the package raises for bad input."""

from __future__ import annotations

from alembic.util import CommandError


class VersioningError(CommandError):
    """A versioned table cannot be handled as asked; the message names the table and the fix.

    A subclass of :class:`alembic.util.CommandError`, so ``alembic`` reports it like its own.
    """
