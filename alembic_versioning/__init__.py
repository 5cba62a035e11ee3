"""Alembic operations and autogenerate support for SQLAlchemy-Continuum version tables.

Importing this package registers every operation on ``alembic.op`` and its autogenerate renderer.
"""

from __future__ import annotations

from . import implementations as _implementations  # noqa: F401  (registers the operations)
from .autogenerate import render as _render  # noqa: F401  (registers their renderers)
from .errors import VersioningError
from .model import DELETE, INSERT, UPDATE, Naming, VersionedTable
from .operations import (
    BackfillVersionsOp,
    LeftOutOp,
    RepairOnDowngradeOp,
    UpdateEndTransactionIdsOp,
    UpdateModFlagsOp,
    VacuumVersionsOp,
    VersionedTableOp,
)

__all__ = [
    "DELETE",
    "INSERT",
    "UPDATE",
    "BackfillVersionsOp",
    "LeftOutOp",
    "Naming",
    "RepairOnDowngradeOp",
    "UpdateEndTransactionIdsOp",
    "UpdateModFlagsOp",
    "VacuumVersionsOp",
    "VersionedTable",
    "VersionedTableOp",
    "VersioningError",
]
