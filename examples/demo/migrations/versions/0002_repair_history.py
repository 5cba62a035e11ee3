"""Repair the history Continuum wrote: validity chains and mod flags.

Each call is one set-based UPDATE per table, online or in ``alembic upgrade --sql``.

The operations are called through ``alembic_versioning.op``, their typed spelling: mypy and
pyright check every argument (``op.update_mod_flags(...)`` runs the same, but type checkers
see no such attribute on Alembic's ``op``).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01 00:00:01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic_versioning import op as versioning

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    versioning.update_end_transaction_ids("article")
    versioning.update_mod_flags("article")
    versioning.update_end_transaction_ids("translation")  # composite primary key (article_id, lang)
    versioning.update_mod_flags("translation")


def downgrade() -> None:
    """Nothing to undo: the repaired history is also correct at revision 0001."""
