"""The Alembic plugin (``alembic.plugins`` entry point ``alembic_versioning.drift``).

Enable it in ``env.py`` with ``context.configure(..., autogenerate_plugins=[
"alembic.autogenerate.*", "alembic_versioning.*"])``. Loading it registers the
operations; ``setup`` registers the drift comparator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import implementations as _implementations  # noqa: F401  (registers the operations)
from .autogenerate import render as _render  # noqa: F401  (registers the renderers)
from .autogenerate.compare import compare_versioned_tables

if TYPE_CHECKING:
    from alembic.runtime.plugins import Plugin


def setup(plugin: Plugin) -> None:
    """Register the drift comparator, after Alembic's schema comparison (``LAST``)."""
    from alembic.util import DispatchPriority  # Alembic >= 1.18, as plugins are

    plugin.add_autogenerate_comparator(compare_versioned_tables, "schema", priority=DispatchPriority.LAST)


def register_legacy() -> None:
    """Register the comparator the pre-plugin way, for Alembic < 1.18 (call it in ``env.py``).

    There Alembic's own comparators are registered first and so run first. With Alembic
    >= 1.18 use ``autogenerate_plugins`` instead: legacy comparators run before Alembic's
    table comparison there. Calling it again (``env.py`` runs once per command) changes nothing.
    """
    from alembic.autogenerate import comparators

    if compare_versioned_tables not in comparators._registry.get(("schema", "default"), []):
        comparators.dispatch_for("schema")(compare_versioned_tables)
