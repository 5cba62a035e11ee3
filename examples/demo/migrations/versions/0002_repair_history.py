"""Repair the history Continuum wrote: validity chains and mod flags.

Each call is one set-based UPDATE per table, online or in ``alembic upgrade --sql``.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01 00:00:01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

import alembic_versioning  # noqa: F401  (registers the versioning operations on op)

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.update_end_transaction_ids("article")
    op.update_mod_flags("article")
    op.update_end_transaction_ids("translation")  # composite primary key (article_id, lang)
    op.update_mod_flags("translation")


def downgrade() -> None:
    """Nothing to undo: the repaired history is also correct at revision 0001."""
