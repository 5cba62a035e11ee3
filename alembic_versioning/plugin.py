"""The Alembic plugin (``alembic.plugins`` entry point ``alembic_versioning.drift``).

Enable it in ``env.py`` with ``context.configure(..., autogenerate_plugins=[
"alembic.autogenerate.*", "alembic_versioning.*"])``. Loading it registers the
operations; the autogenerate comparators register here as they are added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import implementations as _implementations  # noqa: F401  (registers the operations)

if TYPE_CHECKING:
    from alembic.runtime.plugins import Plugin


def setup(plugin: Plugin) -> None:
    """Register the package's autogenerate comparators on ``plugin``."""
