"""Databases the statements are not built for are refused up front, with the fix named."""

from __future__ import annotations

import io
from typing import Any

import pytest
from alembic.autogenerate.api import AutogenContext
from alembic.migration import MigrationContext
from alembic.operations import Operations, ops

import alembic_versioning  # noqa: F401  (registers the operations)
from alembic_versioning import VersioningError
from alembic_versioning.autogenerate.compare import compare_versioned_tables

from .support.apps import versioned_app

CALLS = {
    "update_end_transaction_ids": lambda op: op.update_end_transaction_ids("article"),
    "update_mod_flags": lambda op: op.update_mod_flags("article"),
    "backfill_versions": lambda op: op.backfill_versions("article"),
    "vacuum_versions": lambda op: op.vacuum_versions("article"),
}
REFUSED = "not MySQL"


def mysql_context(metadata: Any, buffer: io.StringIO) -> MigrationContext:
    """An offline (``--sql``) migration context for MySQL, as Alembic's env.py configures one."""
    return MigrationContext.configure(
        dialect_name="mysql",
        opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True, "target_metadata": metadata},
    )


@pytest.mark.parametrize("name", CALLS)
def test_operations_refuse_other_databases(name: str) -> None:
    """Every op names itself, its table and the databases it supports, and emits nothing."""
    buffer = io.StringIO()
    with versioned_app(mod_tracker=True) as app:
        context = mysql_context(app.metadata, buffer)
        with pytest.raises(VersioningError, match=rf"op\.{name}\('article'\): .*{REFUSED}"):
            CALLS[name](Operations(context))
    assert buffer.getvalue() == ""


def test_autogenerate_refuses_other_databases() -> None:
    """With versioned tables in the target MetaData the comparator refuses rather than skip its
    checks (``alembic check`` would pass without having looked)."""
    with versioned_app() as app:
        context = AutogenContext(mysql_context(app.metadata, io.StringIO()), metadata=app.metadata, autogenerate=False)
        with pytest.raises(VersioningError, match=rf"autogenerate, versioned table '\w+': .*{REFUSED}"):
            compare_versioned_tables(context, ops.UpgradeOps([]), [None])
