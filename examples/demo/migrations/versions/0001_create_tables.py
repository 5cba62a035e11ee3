"""Create the live tables, their Continuum version tables and the transaction table.

The version tables have exactly the columns and indexes SQLAlchemy-Continuum (validity
strategy, PropertyModTrackerPlugin) expects: the live columns (non-key ones nullable),
``transaction_id``, ``end_transaction_id``, ``operation_type`` and a ``<column>_mod`` flag
per non-key column.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Continuum compiles BIGINT as INTEGER on SQLite, so that transaction.id is the rowid.
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
transaction_id_seq = sa.Sequence("transaction_id_seq")


def version_table(name: str, key: list[sa.Column[Any]], data: list[sa.Column[Any]]) -> None:
    """Create ``<name>_version``: ``key`` + ``data`` columns, Continuum's columns and indexes."""
    table = f"{name}_version"
    op.create_table(
        table,
        *key,
        *data,
        sa.Column("transaction_id", BigInt, primary_key=True, autoincrement=False),
        sa.Column("end_transaction_id", BigInt, nullable=True),
        sa.Column("operation_type", sa.SmallInteger(), nullable=False),
        *(sa.Column(f"{c.name}_mod", sa.Boolean(), server_default=sa.false(), nullable=False) for c in data),
    )
    pk = [c.name for c in key]
    for column in ("transaction_id", "end_transaction_id", "operation_type"):
        op.create_index(f"ix_{table}_{column}", table, [column])
    op.create_index(f"ix_{table}_pk_transaction_id", table, [*pk, sa.text("transaction_id DESC")])
    op.create_index(f"ix_{table}_pk_validity", table, [*pk, "transaction_id", "end_transaction_id"])


def upgrade() -> None:
    if op.get_context().dialect.supports_sequences:
        op.execute(sa.schema.CreateSequence(transaction_id_seq))
    op.create_table(
        "transaction",
        sa.Column("id", BigInt, transaction_id_seq, primary_key=True, autoincrement=True),
        sa.Column("remote_addr", sa.String(50), nullable=True),
        sa.Column("issued_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "article",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
    )
    version_table(
        "article",
        [sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False)],
        [
            sa.Column("title", sa.String(200), nullable=True),
            sa.Column("body", sa.Text(), nullable=True),
            sa.Column("status", sa.String(20), nullable=True),
        ],
    )
    op.create_table(
        "translation",
        sa.Column("article_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("lang", sa.String(5), primary_key=True),
        sa.Column("title", sa.String(200), nullable=True),
    )
    version_table(
        "translation",
        [
            sa.Column("article_id", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("lang", sa.String(5), primary_key=True),
        ],
        [sa.Column("title", sa.String(200), nullable=True)],
    )


def downgrade() -> None:
    for table in ("translation_version", "translation", "article_version", "article", "transaction"):
        op.drop_table(table)
    if op.get_context().dialect.supports_sequences:
        op.execute(sa.schema.DropSequence(transaction_id_seq))
