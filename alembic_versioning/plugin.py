"""The Alembic plugin (``alembic.plugins`` entry point ``alembic_versioning.drift``).

Enable it in ``env.py`` with ``context.configure(..., autogenerate_plugins=[
"alembic.autogenerate.*", "alembic_versioning.*"])``. Loading it registers the
operations; ``setup`` registers the drift comparator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic.util import DispatchPriority

from . import implementations as _implementations  # noqa: F401  (registers the operations)
from .autogenerate import compare_versioned_tables
from .autogenerate import render as _render  # noqa: F401  (registers the renderers)

if TYPE_CHECKING:
    from alembic.runtime.plugins import Plugin


def setup(plugin: Plugin) -> None:
    """Register the drift comparator, after Alembic's schema comparison (``LAST``)."""
    plugin.add_autogenerate_comparator(compare_versioned_tables, "schema", priority=DispatchPriority.LAST)
